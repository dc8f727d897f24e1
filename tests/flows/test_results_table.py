"""The results table stays bounded: the oldest rows move to an archive page, each run still exactly once."""

from __future__ import annotations

import pytest
from helpers import fresh_watermark

from atlasflow.flows.confluence_table_sync import read_confluence_table
from atlasflow.flows.report_results import RESULT_COLUMNS, report_results
from atlasflow.formats.confluence_tables import read_table
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.confluence import JOB_RESULTS_ID, TEAM_ROSTER_ID


def run_ids(sb: Sandbox, page_id: str) -> list[str]:
    assert sb.confluence is not None
    return [r["Run ID"] for r in read_table(sb.confluence.page(page_id).body, "Results").rows if r["Run ID"]]


def test_rows_beyond_the_limit_move_to_the_archive_once(cloud_site: Sandbox) -> None:
    assert cloud_site.confluence is not None
    header = "".join(f"<th><p>{c}</p></th>" for c in RESULT_COLUMNS)
    archive = cloud_site.confluence.add_page(
        "Results archive", f"<h2>Results</h2><table><tbody><tr>{header}</tr></tbody></table>"
    )
    watermark = fresh_watermark()
    for _ in range(3):
        read_confluence_table(page_id=TEAM_ROSTER_ID)
    options = {"watermark_variable": watermark, "settle_seconds": 0, "max_rows": 2, "archive_page_id": int(archive)}

    first = report_results(confluence_page_id=JOB_RESULTS_ID, **options)
    kept, archived = run_ids(cloud_site, JOB_RESULTS_ID), run_ids(cloud_site, archive)

    assert len(kept) == 2 and first["runs"] == 3 and first["archived"] == 1
    assert not set(kept) & set(archived) and len(set(archived)) == len(archived)
    read_confluence_table(page_id=TEAM_ROSTER_ID)
    second = report_results(confluence_page_id=JOB_RESULTS_ID, **options)
    assert second["runs"] == 1 and second["archived"] == 1
    assert run_ids(cloud_site, JOB_RESULTS_ID)[:1] == kept[1:]  # the oldest left first
    assert run_ids(cloud_site, archive) == archived + kept[:1]


def test_a_limit_without_an_archive_is_refused(cloud_site: Sandbox) -> None:
    state = report_results(confluence_page_id=JOB_RESULTS_ID, max_rows=10, return_state=True)
    assert state.is_failed() and "archive_page_id" in (state.message or "")
    with pytest.raises(ValueError, match="go together"):
        report_results(confluence_page_id=JOB_RESULTS_ID, max_rows=10)
