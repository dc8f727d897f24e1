"""Day-to-day notifications: quiet when nothing happened, one post per report, figures as words."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import fresh_watermark
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.client.schemas.objects import Artifact
from prefect.variables import Variable

from atlasflow.flows.confluence_table_sync import confluence_table_sync, read_confluence_table
from atlasflow.flows.jira_export import jira_export
from atlasflow.flows.job_inbox import COLUMNS, run_job_inbox
from atlasflow.flows.pipeline import pipeline
from atlasflow.flows.report_results import report_results
from atlasflow.formats.confluence_tables import read_table
from atlasflow.runtime.failures import is_expected
from atlasflow.runtime.notify import NOTIFY_VARIABLE
from atlasflow.runtime.params import page_key
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.confluence import EXPORT_SUMMARY_ID, JOB_INBOX_ID, JOB_RESULTS_ID, TEAM_ROSTER_ID


def empty_inbox(sb: Sandbox) -> str:
    """A page with an inbox table and no requests in it."""
    assert sb.confluence is not None
    header = "".join(f"<th><p>{c}</p></th>" for c in COLUMNS)
    return sb.confluence.add_page(
        f"Quiet inbox {uuid.uuid4().hex[:6]}", f"<table><tbody><tr>{header}</tr></tbody></table>"
    )


def texts(sb: Sandbox) -> list[str]:
    return [p.text for p in sb.mattermost.posts]


@pytest.fixture
def policy() -> Iterator[None]:
    """Restores the default notification policy after a test that changes it."""
    yield
    Variable.unset(NOTIFY_VARIABLE)


def test_a_day_posts_only_for_exports_failures_and_reports(cloud_site: Sandbox, tmp_path: Path) -> None:
    """A day in small: inbox runs with no requests, reports, two exports of which one fails."""
    inbox = empty_inbox(cloud_site)
    watermark = fresh_watermark()  # from here on is the day
    inbox_runs = [run_job_inbox(page_id=inbox, return_state=True) for _ in range(3)]
    ok = jira_export(root_tickets=["DEMO-1"], output_dir=str(tmp_path), return_state=True)
    bad = jira_export(root_tickets=["DEMO-99999", "DEMO-99998"], output_dir=str(tmp_path), return_state=True)
    run_job_inbox(page_id=inbox)
    first = report_results(confluence_page_id=JOB_RESULTS_ID, watermark_variable=watermark, settle_seconds=0)
    second = report_results(confluence_page_id=JOB_RESULTS_ID, watermark_variable=watermark, settle_seconds=0)

    assert all(s.is_completed() for s in inbox_runs) and ok.is_completed() and bad.is_failed()
    posts = texts(cloud_site)
    assert len(posts) == 3, posts
    export_ok, export_bad, digest = posts
    assert "jira-export" in export_ok and "Completed" in export_ok
    assert "Failed" in export_bad and "root tickets: DEMO-99999, DEMO-99998" in export_bad
    assert digest.startswith("atlasflow report: 2 run(s)")
    assert not any("run-job-inbox" in p or "report-results" in p for p in posts)
    assert first["runs"] == 2 and first["digest_posted"]
    assert second["runs"] == 0 and not second["digest_posted"]
    rows = {r["Run ID"]: r for r in read_table(cloud_site.confluence.page(JOB_RESULTS_ID).body, "Results").rows}  # type: ignore[union-attr]
    assert {str(ok.state_details.flow_run_id), str(bad.state_details.flow_run_id)} <= set(rows)
    assert not {str(s.state_details.flow_run_id) for s in inbox_runs} & set(rows)
    summary = rows[str(ok.state_details.flow_run_id)]["Summary"]
    assert "workbook" not in summary.lower().split(".xlsx")[-1]  # the link artifact is not appended
    for text in (export_ok, export_bad, digest, *(r["Summary"] for r in rows.values())):
        assert "None" not in text and "{'" not in text and "['" not in text
    artifacts = run_artifacts(ok.state_details.flow_run_id)
    assert [a.data for a in artifacts if a.type == "progress"] == [100.0]  # the bar moved per level, to the end
    table = next(a.data for a in artifacts if a.key == "jira-export-summary")
    summary_rows = json.loads(table) if isinstance(table, str) else table
    by_level = next(r["value"] for r in summary_rows if r["figure"] == "by level")
    assert by_level.startswith("0: 1, 1: ")


def test_an_inbox_posts_when_it_rejects_a_new_request_only(dc_site: Sandbox) -> None:
    first = run_job_inbox(page_id=JOB_INBOX_ID, job_map={})
    again = run_job_inbox(page_id=JOB_INBOX_ID, job_map={})

    assert first["rejected"] == again["rejected"] == 4
    assert first["newly_rejected"] == 4 and again["newly_rejected"] == 0
    posts = texts(dc_site)
    assert len(posts) == 1 and "run-job-inbox" in posts[0] and "newly rejected: 4" in posts[0]


def test_a_sync_that_changes_nothing_posts_nothing(cloud_site: Sandbox) -> None:
    rows = [{"Key": "QUI", "Name": "Quinn Example", "Team": "Platform"}]
    changed = confluence_table_sync(page_id=int(TEAM_ROSTER_ID), table=0, key_column="Key", rows=rows)
    unchanged = confluence_table_sync(page_id=TEAM_ROSTER_ID, table="0", key_column="Key", rows=rows)

    assert changed["added"] == 1 and not unchanged["written"]
    posts = texts(cloud_site)
    assert len(posts) == 1 and "added: 1" in posts[0]


def test_policy_failures_posts_failures_only(cloud_site: Sandbox, tmp_path: Path, policy: None) -> None:
    Variable.set(NOTIFY_VARIABLE, "failures", overwrite=True)
    read_confluence_table(page_id=TEAM_ROSTER_ID)
    jira_export(root_tickets=["DEMO-99999"], output_dir=str(tmp_path), return_state=True)
    assert [("Failed" in t) for t in texts(cloud_site)] == [True]


def test_policy_always_posts_every_run_but_still_once_per_report(cloud_site: Sandbox, policy: None) -> None:
    Variable.set(NOTIFY_VARIABLE, "always", overwrite=True)
    inbox = empty_inbox(cloud_site)
    watermark = fresh_watermark()
    run_job_inbox(page_id=inbox)
    read_confluence_table(page_id=TEAM_ROSTER_ID)  # a run the report writes (an idle inbox run is not)
    report = report_results(confluence_page_id=JOB_RESULTS_ID, watermark_variable=watermark, settle_seconds=0)
    posts = texts(cloud_site)
    assert report["runs"] == 1 and report["digest_posted"]
    assert len(posts) == 3 and "run-job-inbox" in posts[0] and "read-confluence-table" in posts[1]
    assert posts[2].startswith("atlasflow report: 1 run(s)")


def run_artifacts(flow_run_id: Any) -> list[Artifact]:
    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )


def test_a_failed_run_says_why_in_one_line_and_pickles_nothing(
    cloud_site: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = jira_export(root_tickets=["DEMO-99999"], output_dir=str(tmp_path), return_state=True)

    assert state.is_failed()
    assert state.message and state.message.startswith("Jira answered 400 to GET ")
    assert "DEMO-99999" in state.message and "\n" not in state.message
    assert "encountered an exception" not in state.message
    assert not [r for r in caplog.records if r.exc_info], "an expected error is logged without a traceback"
    assert [a.type for a in run_artifacts(state.state_details.flow_run_id) if a.type == "result"] == []
    post = cloud_site.mattermost.posts[-1].text
    assert "Reason: Jira answered 400" in post


def test_a_bug_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    state = read_confluence_table(page_id=TEAM_ROSTER_ID, confluence_block="no-such-block", return_state=True)
    assert state.is_failed()
    assert any(r.exc_info for r in caplog.records)  # not an API's answer: the stack is kept


def test_a_library_error_is_a_bug_even_inside_a_checkout_named_atlasflow() -> None:
    library = "/srv/atlasflow/.venv/lib/python3.11/site-packages/prefect/blocks/core.py"
    with pytest.raises(ValueError) as raised:
        exec(compile("raise ValueError('Unable to find block document')", library, "exec"), {"__name__": "prefect"})
    assert not is_expected(raised.value)
    with pytest.raises(ValueError) as ours:  # a plain ValueError, raised by atlasflow's own code
        page_key("not-a-page")
    assert isinstance(ours.value, ValueError) and is_expected(ours.value)


def test_the_pipeline_summarises_its_steps_and_its_timeouts_need_no_warning(
    cloud_site: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = pipeline(
        page_id=int(EXPORT_SUMMARY_ID),
        table="Exported tickets",
        columns=["Summary", "Status"],
        report_page_id=JOB_RESULTS_ID,
        root_tickets=["DEMO-1"],
        output_dir=str(tmp_path),
        report_watermark_variable=fresh_watermark(),
        return_state=True,
    )

    assert state.is_completed(), state.message
    assert not [r for r in caplog.records if "worker thread" in r.getMessage()]
    summaries = [a.description for a in run_artifacts(state.state_details.flow_run_id) if a.key == "pipeline-summary"]
    assert summaries and summaries[0].startswith("export completed (") and "table-sync completed (" in summaries[0]
    posts = texts(cloud_site)
    assert not any("atlasflow atlasflow-pipeline:" in p for p in posts)  # its steps posted their own ends
    assert any("atlasflow jira-export: Completed" in p for p in posts)
