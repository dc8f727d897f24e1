"""Per-job notifications and the exactly-once results table."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import fresh_watermark

import atlasflow.flows.report_results as report_module
from atlasflow.blocks import ConfluenceCredentials
from atlasflow.flows.confluence_table_sync import read_confluence_table
from atlasflow.flows.jira_export import jira_export
from atlasflow.flows.report_results import report_results
from atlasflow.formats.confluence_tables import read_table
from atlasflow.formats.messages import MATTERMOST_POST_LIMIT
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.confluence import JOB_RESULTS_ID, TEAM_ROSTER_ID
from atlasflow.sandbox.core import Faults


def results_rows(sb: Sandbox) -> list[dict[str, str]]:
    return read_table(sb.confluence.page(JOB_RESULTS_ID).body, "Results").rows  # type: ignore[union-attr]


def run_jobs(tmp_path: Path) -> list[str]:
    """One completed and one failed job; their run ids."""
    ok = read_confluence_table(page_id=TEAM_ROSTER_ID, table=0, return_state=True)
    bad = jira_export(root_tickets=["DEMO-99999"], output_dir=str(tmp_path), return_state=True)
    assert ok.is_completed() and bad.is_failed()
    return [str(ok.state_details.flow_run_id), str(bad.state_details.flow_run_id)]


def report(watermark: str) -> dict[str, object]:
    return report_results(
        confluence_page_id=JOB_RESULTS_ID, table="Results", watermark_variable=watermark, settle_seconds=0
    )


def test_each_job_posts_how_it_ended(cloud_site: Sandbox, tmp_path: Path) -> None:
    run_jobs(tmp_path)
    posts = cloud_site.mattermost.posts
    assert len(posts) == 2
    ok, bad = (p.text for p in posts)
    assert "read-confluence-table" in ok and "Completed" in ok
    assert "jira-export" in bad and "Failed" in bad and "DEMO-99999" in bad
    assert all(len(p.text) <= MATTERMOST_POST_LIMIT for p in posts)


def test_a_timed_out_job_is_reported(cloud_site: Sandbox, tmp_path: Path) -> None:
    cloud_site.state.faults = Faults(latency_ms=1500)
    state = jira_export.with_options(timeout_seconds=1)(
        root_tickets=["DEMO-1"], output_dir=str(tmp_path), return_state=True
    )
    assert state.is_failed() and state.name == "TimedOut"
    assert "TimedOut" in cloud_site.mattermost.posts[-1].text


def test_mentions_and_markdown_from_parameters_ping_no_one(cloud_site: Sandbox, tmp_path: Path) -> None:
    jql = 'summary ~ "@channel <!here> ```x``` | [a](http://evil)" AND @all = 1'
    state = jira_export(jql=jql, output_dir=str(tmp_path), return_state=True)
    assert state.is_failed()
    post = cloud_site.mattermost.posts[-1]
    assert "jira-export" in post.text
    assert post.mentions == ()
    assert cloud_site.mattermost.mentions() == {}
    assert "```" not in post.text and "[a](" not in post.text


def test_a_failing_notification_never_fails_the_job(cloud_site: Sandbox) -> None:
    cloud_site.state.faults = Faults(rate_5xx=1.0, path_prefix="/hooks/")
    state = read_confluence_table(page_id=TEAM_ROSTER_ID, table=0, return_state=True)
    assert state.is_completed()
    assert cloud_site.mattermost.posts == []


def test_report_writes_each_run_once_and_posts_a_digest(cloud_site: Sandbox, tmp_path: Path) -> None:
    watermark = fresh_watermark()
    run_ids = run_jobs(tmp_path)
    first = report(watermark)
    rows = {r["Run ID"]: r for r in results_rows(cloud_site)}
    assert set(rows) == set(run_ids) and first["runs"] == first["added"] == 2
    assert len(rows) == len(results_rows(cloud_site))  # no duplicate run ids
    assert rows[run_ids[0]]["Job"] == "read-confluence-table" and rows[run_ids[0]]["State"] == "Completed"
    assert rows[run_ids[1]]["State"] == "Failed" and "DEMO-99999" in rows[run_ids[1]]["Summary"]
    assert first["digest_posted"]
    assert any(p.text.startswith("atlasflow report") for p in cloud_site.mattermost.posts)

    versions = len(cloud_site.confluence.history(JOB_RESULTS_ID))
    again = report(watermark)
    assert again["runs"] == 0 and again["added"] == 0
    assert len(cloud_site.confluence.history(JOB_RESULTS_ID)) == versions


def test_a_crash_between_page_write_and_watermark_leaves_no_duplicates(
    cloud_site: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watermark = fresh_watermark()
    run_ids = run_jobs(tmp_path)

    def crash(name: str, until: object) -> None:
        raise RuntimeError("process died before the watermark moved")

    monkeypatch.setattr(report_module, "advance_watermark", crash)
    assert report_results(
        confluence_page_id=JOB_RESULTS_ID, watermark_variable=watermark, settle_seconds=0, return_state=True
    ).is_failed()
    written = [r["Run ID"] for r in results_rows(cloud_site)]
    assert set(written) == set(run_ids)

    monkeypatch.undo()
    rerun = report(watermark)
    assert rerun["runs"] == 2 and rerun["added"] == 0  # the same runs again, already on the page
    final = [r["Run ID"] for r in results_rows(cloud_site)]
    assert sorted(final) == sorted(run_ids)


def test_a_failed_page_write_loses_nothing(cloud_site: Sandbox, tmp_path: Path) -> None:
    watermark = fresh_watermark()
    run_ids = run_jobs(tmp_path)
    ConfluenceCredentials(
        url=cloud_site.confluence_url, username="viewer@example.com", token="viewer-token", deployment="cloud"
    ).save("confluence-viewer", overwrite=True)
    failed = report_results(
        confluence_page_id=JOB_RESULTS_ID,
        confluence_block="confluence-viewer",
        watermark_variable=watermark,
        settle_seconds=0,
        return_state=True,
    )
    assert failed.is_failed() and "403" in (failed.message or "")
    assert results_rows(cloud_site) == []

    report(watermark)
    assert sorted(r["Run ID"] for r in results_rows(cloud_site)) == sorted(run_ids)
