"""The Jira maintenance flows against the sandbox, in Cloud and Data Center mode."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
from prefect.client.schemas.objects import State
from pydantic import SecretStr

import atlasflow.flows.jira_maintenance as jm
from atlasflow.blocks import JiraCredentials
from atlasflow.flows.jira_maintenance import (
    IssuesFailed,
    cell,
    jira_bulk_update,
    jira_delete_issues,
    jira_permissions_check,
    same_value,
)
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.core import Faults

OPS = [f"OPS-{n}" for n in range(1, 21)]
OPS_SUBTASKS = {"OPS-1": ["OPS-2", "OPS-3", "OPS-4"], "OPS-8": ["OPS-9", "OPS-10"], "OPS-14": ["OPS-15"]}
LOWEST_ALREADY = {"OPS-5", "OPS-10", "OPS-15", "OPS-20"}


# ----------------------------------------------------------------------------------------- helpers


def snapshot(site: Sandbox) -> dict[str, dict[str, Any]]:
    """Every issue of the site as plain data (``Issue`` compares by identity)."""
    assert site.jira is not None
    every_key = site.jira.keys()
    return {key: dataclasses.asdict(site.jira.issue(key)) for key in every_key}


def writes(site: Sandbox) -> list[str]:
    return [f"{e.method} {e.path}" for e in site.state.log.entries if e.method in ("PUT", "DELETE")]


def save_viewer_block(site: Sandbox) -> str:
    JiraCredentials(
        url=site.jira_url,
        username="viewer@example.com",
        token=SecretStr("viewer-token"),
        deployment=site.mode,
        timeout_seconds=10,
    ).save("jira-viewer", overwrite=True)
    return "jira-viewer"


def artifact(state: State[Any], key: str) -> tuple[list[dict[str, str]], str]:
    """(rows, description) of the run's table artifact ``key``."""
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]),
                key=ArtifactFilterKey(any_=[key]),
            )
        )
    assert len(found) == 1, [a.key for a in found]
    data = found[0].data
    assert isinstance(data, str)  # table artifacts are stored as JSON text
    rows: list[dict[str, str]] = json.loads(data)
    return rows, found[0].description or ""


def rich_text(site: Sandbox, text: str) -> Any:
    """A description value as the site's REST API takes it (Cloud v3: an Atlassian Document)."""
    if site.mode == "datacenter":
        return text
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


# ------------------------------------------------------------------------------------- permissions


def test_permissions_granted_and_gaps_named(site: Sandbox) -> None:
    state = jira_permissions_check("OPS", ["browse_projects", "EDIT_ISSUES", "DELETE_ISSUES"], return_state=True)
    assert state.is_completed(), state.message
    assert state.result() == {
        "project": "OPS",
        "account": "Demo Admin",
        "permissions": {"BROWSE_PROJECTS": True, "EDIT_ISSUES": True, "DELETE_ISSUES": True},
    }
    rows, _ = artifact(state, "jira-permissions-check")
    assert rows == [
        {"permission": "BROWSE_PROJECTS", "granted": "yes"},
        {"permission": "EDIT_ISSUES", "granted": "yes"},
        {"permission": "DELETE_ISSUES", "granted": "yes"},
    ]

    # the read-only viewer: each missing permission named
    block = save_viewer_block(site)
    state = jira_permissions_check(
        "OPS", ["BROWSE_PROJECTS", "EDIT_ISSUES", "DELETE_ISSUES"], jira_block=block, return_state=True
    )
    assert state.is_failed()
    message = state.message or ""
    assert "Vera Viewer lacks 2 required permission(s) in project OPS: EDIT_ISSUES, DELETE_ISSUES" in message
    rows, description = artifact(state, "jira-permissions-check")
    assert {r["permission"]: r["granted"] for r in rows} == {
        "BROWSE_PROJECTS": "yes",
        "EDIT_ISSUES": "no",
        "DELETE_ISSUES": "no",
    }
    assert "missing EDIT_ISSUES, DELETE_ISSUES" in description


# ------------------------------------------------------------------------------------- bulk update


def test_bulk_update_dry_run_changes_nothing(site: Sandbox) -> None:
    assert site.jira is not None
    site.jira.update_issue("OPS-6", description="first | line\nsecond line")
    before = snapshot(site)
    site.state.log.clear()

    state = jira_bulk_update(
        "project = OPS",
        {"Priority": {"name": "Lowest"}, "description": rich_text(site, "new | text")},
        return_state=True,
    )

    assert state.is_completed(), state.message
    result = state.result()
    assert result["dry_run"] is True
    assert (result["matched"], result["to_update"], result["updated"], result["skipped"]) == (20, 20, 0, 0)
    assert result["would_refuse"] is None
    assert writes(site) == []
    assert snapshot(site) == before
    rows, description = artifact(state, "jira-bulk-update-plan")
    assert len(rows) == 40 and {r["key"] for r in rows} == set(OPS)
    ops6 = {r["field"]: r for r in rows if r["key"] == "OPS-6"}
    assert ops6["Priority (priority)"]["before"] == "High" and ops6["Priority (priority)"]["after"] == "Lowest"
    assert ops6["description"]["before"] == "first \\| line ⏎ second line"
    assert ops6["description"]["after"] == "new \\| text"
    assert "dry run" in description and "20 to update" in description


def test_bulk_update_changes_exactly_the_matched_issues(site: Sandbox) -> None:
    assert site.jira is not None
    customer = site.jira.custom_field("Customer").id
    before = snapshot(site)
    site.state.log.clear()
    targets = ["OPS-6", "OPS-7", "OPS-20"]

    result = jira_bulk_update(
        f"key in ({', '.join(targets)})",
        {"priority": {"name": "Lowest"}, "Customer": "Globex Ltd"},
        dry_run=False,
    )

    assert {k: result[k] for k in ("matched", "to_update", "updated", "failed", "skipped")} == {
        "matched": 3,
        "to_update": 3,
        "updated": 3,
        "failed": 0,
        "skipped": 0,
    }
    assert result["errors"] == {}
    after = snapshot(site)
    for key in targets:
        assert after[key]["priority"] == "Lowest" and after[key]["custom"][customer] == "Globex Ltd"
    assert {k for k in after if after[k] != before[k]} == set(targets)
    puts = site.state.log.matching(method="PUT")
    assert sorted(e.path.rsplit("/", 1)[1] for e in puts) == sorted(targets)
    assert all("notifyUsers=false" in e.query for e in puts)

    site.state.log.clear()
    again = jira_bulk_update(
        f"key in ({', '.join(targets)})",
        {"priority": {"name": "Lowest"}, "Customer": "Globex Ltd"},
        dry_run=False,
    )
    assert (again["updated"], again["skipped"]) == (0, 3)  # already set: nothing written
    assert writes(site) == []


def test_bulk_update_never_touches_more_than_max_issues(site: Sandbox) -> None:
    before = snapshot(site)
    site.state.log.clear()
    fields = {"priority": {"name": "Lowest"}}

    preview = jira_bulk_update("project = OPS", fields, max_issues=10)
    assert "16 issues would change, more than max_issues=10" in preview["would_refuse"]
    state = jira_bulk_update("project = OPS", fields, dry_run=False, max_issues=10, return_state=True)
    assert state.is_failed()
    assert "Nothing was updated: 16 issues would change, more than max_issues=10" in (state.message or "")
    assert writes(site) == [] and snapshot(site) == before
    _, description = artifact(state, "jira-bulk-update-plan")
    assert "refused: 16 issues would change" in description

    # issues already holding the value do not count: 16 to change fit max_issues=16
    result = jira_bulk_update("project = OPS", fields, dry_run=False, max_issues=16)
    assert (result["matched"], result["updated"], result["skipped"]) == (20, 16, 4)
    assert len(writes(site)) == 16
    assert not {e.path.rsplit("/", 1)[1] for e in site.state.log.matching(method="PUT")} & LOWEST_ALREADY


def test_bulk_update_reports_each_failed_issue_and_finishes_the_rest(site: Sandbox) -> None:
    """Moving issues under an epic: the sub-task among them cannot go, the others do."""
    assert site.jira is not None
    fields: dict[str, Any] = {"Epic Link": "DEMO-1"} if site.mode == "datacenter" else {"parent": {"key": "DEMO-1"}}

    with pytest.raises(IssuesFailed) as failure:
        jira_bulk_update("key in (OPS-2, OPS-5, OPS-6)", fields, dry_run=False)

    result = failure.value.result
    assert (result["updated"], result["failed"]) == (2, 1)
    assert list(result["errors"]) == ["OPS-2"] and result["errors"]["OPS-2"].startswith("400: ")
    assert "1 of 3 issue updates failed: OPS-2: 400" in str(failure.value)
    moved = {k: site.jira.issue(k) for k in ("OPS-5", "OPS-6")}
    assert all((i.epic if site.mode == "datacenter" else i.parent) == "DEMO-1" for i in moved.values())
    assert site.jira.issue("OPS-2").parent == "OPS-1"


def test_bulk_update_without_edit_permission_fails_every_issue(site: Sandbox) -> None:
    block = save_viewer_block(site)
    before = snapshot(site)

    state = jira_bulk_update(
        "key in (OPS-5, OPS-6, OPS-7)",
        {"priority": {"name": "Medium"}},
        dry_run=False,
        jira_block=block,
        return_state=True,
    )

    assert state.is_failed()
    message = state.message or ""
    assert "3 of 3 issue updates failed" in message
    for key in ("OPS-5", "OPS-6", "OPS-7"):
        assert f"{key}: 403: You do not have permission to edit issues in this project." in message
    assert len(site.state.log.matching(method="PUT")) == 3  # every issue tried, none written
    assert snapshot(site) == before
    rows, description = artifact(state, "jira-bulk-update-result")
    assert [r["outcome"] for r in rows] == ["failed"] * 3
    assert "0 updated, 3 failed" in description


def test_a_retried_apply_task_resumes_and_a_lasting_outage_is_reported(
    cloud_site: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OPS-6 answers 429 for good: task retries resume after OPS-7 (not written twice), then the run fails."""
    monkeypatch.setattr(jm, "apply_updates", jm.apply_updates.with_options(retry_delay_seconds=0))
    cloud_site.state.faults = Faults(rate_429=1.0, retry_after=0, path_prefix="/rest/api/3/issue/OPS-6")

    with pytest.raises(IssuesFailed) as failure:
        jira_bulk_update(
            "key in (OPS-5, OPS-6, OPS-7) ORDER BY key DESC", {"priority": {"name": "Medium"}}, dry_run=False
        )

    result = failure.value.result
    assert (result["updated"], result["failed"], result["not_attempted"]) == (1, 0, 2)
    assert "stopped by a transient failure" in str(failure.value) and "429" in str(failure.value)
    puts = [e.path.rsplit("/", 1)[1] for e in cloud_site.state.log.matching(method="PUT")]
    assert puts.count("OPS-7") == 1 and puts.count("OPS-6") == 3 * 6 and "OPS-5" not in puts
    assert cloud_site.jira.issue("OPS-7").priority == "Medium"  # type: ignore[union-attr]


def test_bulk_update_refuses_unknown_fields_before_searching(cloud_site: Sandbox) -> None:
    state = jira_bulk_update("project = OPS", {"No Such Field": 1}, dry_run=False, return_state=True)
    assert state.is_failed() and "No Such Field" in (state.message or "")
    assert not [e for e in cloud_site.state.log.entries if "search" in e.path]
    assert writes(cloud_site) == []


# ------------------------------------------------------------------------------------------ delete


def test_delete_dry_run_and_a_wrong_count_delete_nothing(site: Sandbox) -> None:
    before = snapshot(site)
    site.state.log.clear()

    state = jira_delete_issues("project = OPS", confirm_count=20, return_state=True)

    assert state.is_completed(), state.message
    result = state.result()
    assert (result["dry_run"], result["matched"], result["deleted"], result["would_refuse"]) == (
        True,
        20,
        0,
        None,
    )
    assert writes(site) == [] and snapshot(site) == before
    rows, _ = artifact(state, "jira-delete-issues-plan")
    by_key = {r["key"]: r for r in rows}
    assert set(by_key) == set(OPS)
    assert by_key["OPS-1"]["sub-tasks"] == "3" and by_key["OPS-1"]["type"] == "Task"
    assert by_key["OPS-2"]["type"] == "Sub-task" and by_key["OPS-5"]["sub-tasks"] == "0"
    assert by_key["OPS-1"]["summary"] == cell(site.jira.issue("OPS-1").summary)  # type: ignore[union-attr]

    # a real run with the wrong count is refused before the first deletion
    state = jira_delete_issues("key in (OPS-5, OPS-6, OPS-7)", confirm_count=2, dry_run=False, return_state=True)
    assert state.is_failed()
    assert "Nothing was deleted: the JQL matches 3 issue(s) but confirm_count is 2" in (state.message or "")
    assert writes(site) == [] and snapshot(site) == before
    preview = jira_delete_issues("key in (OPS-5, OPS-6, OPS-7)", confirm_count=2)
    assert "confirm_count=3" in preview["would_refuse"]


def test_delete_refuses_issues_with_subtasks_unless_asked(site: Sandbox) -> None:
    assert site.jira is not None
    before = snapshot(site)

    state = jira_delete_issues("key in (OPS-1, OPS-5)", confirm_count=2, dry_run=False, return_state=True)

    assert state.is_failed()
    assert "Nothing was deleted: 1 issue(s) have sub-tasks the JQL does not match" in (state.message or "")
    assert "OPS-1 (sub-tasks OPS-2, OPS-3, OPS-4)" in (state.message or "")
    assert "delete_subtasks=True" in (state.message or "")
    assert writes(site) == [] and snapshot(site) == before

    result = jira_delete_issues("key in (OPS-1, OPS-5)", confirm_count=2, dry_run=False, delete_subtasks=True)
    assert (result["deleted"], result["failed"], result["extra_subtasks"]) == (2, 0, 3)
    remaining = set(site.jira.keys("OPS"))
    assert remaining == set(OPS) - {"OPS-1", "OPS-2", "OPS-3", "OPS-4", "OPS-5"}


@pytest.mark.parametrize("delete_subtasks", [False, True])
def test_delete_with_the_right_count(site: Sandbox, delete_subtasks: bool) -> None:
    """Parents and their sub-tasks all matched: no 404 for sub-tasks already gone with their parent."""
    assert site.jira is not None
    others = set(site.jira.keys()) - set(OPS)
    site.state.log.clear()

    state = jira_delete_issues(
        "project = OPS", confirm_count=20, dry_run=False, delete_subtasks=delete_subtasks, return_state=True
    )

    assert state.is_completed(), state.message
    result = state.result()
    assert {k: result[k] for k in ("matched", "deleted", "failed", "skipped", "extra_subtasks")} == {
        "matched": 20,
        "deleted": 20,
        "failed": 0,
        "skipped": 0,
        "extra_subtasks": 0,
    }
    assert site.jira.keys("OPS") == [] and set(site.jira.keys()) == others
    deletes = site.state.log.matching(method="DELETE")
    assert all(e.status == 204 for e in deletes)
    subtasks = [s for subs in OPS_SUBTASKS.values() for s in subs]
    assert len(deletes) == (20 - len(subtasks) if delete_subtasks else 20)
    rows, _ = artifact(state, "jira-delete-issues-result")
    outcomes = {r["key"]: (r["outcome"], r["detail"]) for r in rows}
    assert all(o == "deleted" for o, _ in outcomes.values())
    if delete_subtasks:
        assert outcomes["OPS-3"] == ("deleted", "with OPS-1")


def test_delete_without_permission_fails_every_issue(dc_site: Sandbox) -> None:
    block = save_viewer_block(dc_site)
    with pytest.raises(IssuesFailed) as failure:
        jira_delete_issues("key in (OPS-5, OPS-6)", confirm_count=2, dry_run=False, jira_block=block)
    assert set(failure.value.result["errors"]) == {"OPS-5", "OPS-6"}
    assert failure.value.result["deleted"] == 0
    assert {"OPS-5", "OPS-6"} <= set(dc_site.jira.keys("OPS"))  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------- pieces


def test_cells_cannot_break_a_markdown_table() -> None:
    assert cell("a | b\r\nc\nd") == "a \\| b ⏎ c ⏎ d"
    assert cell("back\\|slash") == "back\\\\\\|slash"
    assert cell(None) == "(empty)" and cell([]) == "(empty)"
    assert cell({"name": "High", "id": "2"}) == "High"
    assert cell(["x", "y"]) == "x, y"
    assert len(cell("x" * 1000)) == 200


def test_same_value_reads_a_request_value_inside_jiras_answer() -> None:
    assert same_value({"name": "High", "id": "2", "self": "..."}, {"name": "High"})
    assert not same_value({"name": "Low"}, {"name": "High"})
    assert same_value(None, None) and not same_value(None, [])
    assert same_value(["a", "b"], ["a", "b"]) and not same_value(["a"], ["a", "b"])
    assert not same_value(1, True) and same_value(5, 5.0)
