"""Who asked for an inbox row (the page history, without gaps) and what they may have (their own Jira access,
the job's projects, caps): issue 27 items 2 and 3, through real HTTP against the sandbox."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun
from pydantic import SecretStr

from atlasflow.blocks import JiraCredentials
from atlasflow.blocks.credentials import confluence_client
from atlasflow.flows.inbox_access import Rejected, RowHistory, requester_tag
from atlasflow.flows.jira_export import jira_export
from atlasflow.flows.job_inbox import KEY, request_text, run_job_inbox
from atlasflow.formats.confluence_tables import merge_rows, read_table
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.confluence import JOB_INBOX_ID
from atlasflow.sandbox.core import default_accounts
from atlasflow.sandbox.identity import account_id
from atlasflow.sandbox.jira.jql import parse, search

EXPORT = "jira_export"


pytestmark = pytest.mark.usefixtures("inbox_deployments")


def rows_of(sb: Sandbox) -> dict[str, dict[str, str]]:
    assert sb.confluence is not None
    return {r["Request"]: r for r in read_table(sb.confluence.page(JOB_INBOX_ID).body, 0).rows}


def put_rows(sb: Sandbox, rows: list[dict[str, Any]], by: str) -> None:
    """The inbox table holds exactly ``rows`` (the demo's rows go), written by ``by`` (a display name)."""
    assert sb.confluence is not None
    body = merge_rows(sb.confluence.page(JOB_INBOX_ID).body, 0, "Request", rows, delete_missing=True).storage
    sb.confluence.edit_page(JOB_INBOX_ID, body, by=by)


def edit_elsewhere(sb: Sandbox, times: int) -> None:
    """Edits of the page around the table, by a colleague."""
    assert sb.confluence is not None
    for n in range(times):
        body = sb.confluence.page(JOB_INBOX_ID).body.replace("Add a row", f"Add a row ({n})", 1)
        sb.confluence.edit_page(JOB_INBOX_ID, body, by="Colleague")


def jira_user(sb: Sandbox, name: str) -> str:
    """Make the Confluence editor ``name`` a Jira user too (as one Atlassian account); return the username."""
    assert sb.jira is not None
    username = name.lower().replace(" ", ".")
    sb.jira.add_user(username, name)
    return username


def export_row(request: str, parameters: str) -> dict[str, str]:
    return {"Request": request, "Job": EXPORT, "Parameters": parameters, "Priority": "low"}


def runs_tagged(*tags: str) -> list[FlowRun]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=list(tags))))


def read_run(run_id: str) -> FlowRun:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(run_id))


def test_a_row_removed_and_readded_belongs_to_whoever_readded_it(cloud_site: Sandbox) -> None:
    mallory = jira_user(cloud_site, "Mallory Editor")
    jira_user(cloud_site, "Alice Anders")
    row = export_row("REQ-R", '{"project_key": "DEMO", "max_depth": 1}')
    put_rows(cloud_site, [row], by="Alice Anders")
    put_rows(cloud_site, [], by="Bob Brandt")
    put_rows(cloud_site, [row], by="Mallory Editor")  # the identical text, re-added
    edit_elsewhere(cloud_site, 3)

    result = run_job_inbox(page_id=JOB_INBOX_ID)

    state = rows_of(cloud_site)["REQ-R"]
    assert result["started"] == 1 and state["State"] == "Scheduled · requested by Mallory Editor", state
    tags = read_run(state["Run ID"]).tags
    assert "requester:Mallory Editor" in tags and requester_tag(cloud_site.confluence_url, account_id(mallory)) in tags


def test_the_requester_walk_is_capped_and_refuses_beyond_it(site: Sandbox) -> None:
    put_rows(site, [export_row("REQ-OLD", '{"project_key": "DEMO"}')], by="Demo Admin")  # version 2 of 6
    edit_elsewhere(site, 4)
    assert site.confluence is not None
    page = site.confluence.page(JOB_INBOX_ID)
    row = rows_of(site)["REQ-OLD"]
    client = confluence_client("confluence")
    try:
        found = RowHistory(client, JOB_INBOX_ID, 0, page.number, key=KEY, text=request_text, limit=5).requester(row)
        assert (found.account, found.name) == (
            account_id("demo@example.com") if site.mode == "cloud" else "demo@example.com",
            "Demo Admin",
        )
        short = RowHistory(client, JOB_INBOX_ID, 0, page.number, key=KEY, text=request_text, limit=4)
        with pytest.raises(Rejected, match="reads the same in the 4 page versions before this one"):
            short.requester(row)
    finally:
        client.close()


def test_a_viewer_cannot_export_a_project_they_cannot_browse(site: Sandbox) -> None:
    viewer = export_row("REQ-SECRET", '{"project_key": "SECRET"}')
    put_rows(site, [viewer], by="Vera Viewer")

    refused = run_job_inbox(page_id=JOB_INBOX_ID)

    row = rows_of(site)["REQ-SECRET"]
    assert row["State"] == "Rejected: Vera Viewer may not browse Jira project SECRET" and row["Run ID"] == ""
    assert refused["started"] == 0 and refused["rejected"] == 1
    assert runs_tagged("requester:Vera Viewer") == []
    searches = [e for e in site.state.log.entries if "/search" in e.path and "/permission/" not in e.path]
    assert searches == [], "an issue search was sent for the viewer's request"

    put_rows(site, [viewer, export_row("REQ-ADMIN", '{"project_key": "SECRET", "max_depth": 0}')], by="Demo Admin")
    granted = run_job_inbox(page_id=JOB_INBOX_ID)  # whoever may browse it, gets it

    assert rows_of(site)["REQ-ADMIN"]["State"] == "Scheduled · requested by Demo Admin"
    assert granted["started"] == 1 and rows_of(site)["REQ-SECRET"]["Run ID"] == ""


INJECTIONS = [
    ("INJ-OR", {"project_key": "OPS", "jql": "project = OPS OR project != OPS"}, {"OPS"}),
    ("INJ-NOT", {"project_key": "DEMO", "jql": "NOT project = OPS"}, {"DEMO"}),
    ("INJ-ORDER", {"project_key": "OPS", "jql": "project = OPS ORDER BY key"}, "ORDER BY"),
    ("INJ-PAREN", {"project_key": "OPS", "jql": "status = Done) OR (project = SECRET"}, "unbalanced parentheses"),
    ("INJ-QUOTE", {"project_key": "OPS", "jql": 'summary ~ "x) OR project = SECRET'}, "unbalanced quotes"),
    ("INJ-FUNC", {"project_key": "OPS", "jql": 'issue in linkedIssues("SECRET-1")'}, "linkedIssues"),
    ("INJ-BARE", {"jql": "project = OPS OR project != OPS"}, "name its project"),
    ("INJ-ROOT", {"project_key": "DEMO", "root_tickets": ["SECRET-2"]}, "not in the named project"),
]


def test_jql_injections_are_refused_or_contained_in_the_named_projects(cloud_site: Sandbox) -> None:
    import json

    put_rows(cloud_site, [export_row(name, json.dumps(p)) for name, p, _ in INJECTIONS], by="Demo Admin")

    run_job_inbox(page_id=JOB_INBOX_ID)

    rows = rows_of(cloud_site)
    assert cloud_site.jira is not None
    admin = default_accounts()[0]
    reached: set[str] = set()
    for name, _, expected in INJECTIONS:
        if isinstance(expected, str):
            assert rows[name]["Run ID"] == "" and expected in rows[name]["State"], rows[name]
            continue
        jql = read_run(rows[name]["Run ID"]).parameters["jql"]
        projects = {i.project for i in search(cloud_site.jira, parse(jql, "cloud"), admin).issues}
        assert projects == expected, f"{name}: {jql} reaches {projects}"
        reached |= projects
    refused = sum(1 for n, _, e in INJECTIONS if isinstance(e, str))
    print(f"\nscope injections tried: {len(INJECTIONS)}, refused: {refused}, contained: {len(INJECTIONS) - refused}")


def test_an_operator_restricts_a_job_to_listed_projects(cloud_site: Sandbox) -> None:
    put_rows(
        cloud_site,
        [export_row("REQ-DEMO", '{"project_key": "DEMO"}'), export_row("REQ-OPS", '{"projects": ["DEMO", "OPS"]}')],
        by="Demo Admin",
    )
    job_map: dict[str, Any] = {EXPORT: {"deployment": "jira-export/demo-export", "projects": ["DEMO"]}}

    result = run_job_inbox(page_id=JOB_INBOX_ID, job_map=job_map)

    rows = rows_of(cloud_site)
    assert rows["REQ-DEMO"]["State"] == "Scheduled · requested by Demo Admin"
    assert rows["REQ-OPS"]["State"] == "Rejected: project OPS is not open to inbox requests of jira_export (open: DEMO)"
    assert result["started"] == 1 and rows["REQ-OPS"]["Run ID"] == ""


def test_a_request_is_capped_in_issues_before_it_starts(site: Sandbox) -> None:
    assert site.jira is not None
    put_rows(
        site,
        [export_row("REQ-SMALL", '{"project_key": "OPS"}'), export_row("REQ-BIG", '{"project_key": "DEMO"}')],
        by="Demo Admin",
    )

    result = run_job_inbox(page_id=JOB_INBOX_ID, max_issues=len(site.jira.keys("OPS")))

    rows = rows_of(site)
    assert rows["REQ-SMALL"]["State"] == "Scheduled · requested by Demo Admin"
    demo = len(site.jira.keys("DEMO"))
    cap = len(site.jira.keys("OPS"))
    assert rows["REQ-BIG"]["State"] == f"Rejected: the scope holds about {demo:,} issues, more than the cap of {cap:,}"
    assert result["started"] == 1


def test_a_requester_is_capped_in_requests_per_day(cloud_site: Sandbox) -> None:
    jira_user(cloud_site, "Dana Daily")
    asks = [export_row(f"REQ-D{n}", f'{{"project_key": "OPS", "max_depth": {n}}}') for n in range(3)]
    put_rows(cloud_site, asks, by="Dana Daily")

    first = run_job_inbox(page_id=JOB_INBOX_ID, max_requests_per_day=2)
    again = run_job_inbox(page_id=JOB_INBOX_ID, max_requests_per_day=2)

    rows = rows_of(cloud_site)
    assert first["started"] == 2 and again["started"] == 0
    assert rows["REQ-D2"]["State"] == (
        "Rejected: Dana Daily has had 2 inbox requests started in the last 24 hours (the cap)"
    )
    assert len(runs_tagged(requester_tag(cloud_site.confluence_url, account_id("dana.daily")))) == 2


def test_a_request_whose_access_cannot_be_checked_is_refused_not_started(site: Sandbox) -> None:
    # The inbox's Jira account is a viewer: Jira refuses it questions about other users' permissions.
    viewer: dict[str, Any] = {"username": "viewer@example.com"} if site.mode == "cloud" else {}
    JiraCredentials(
        url=site.jira_url, deployment=site.mode, timeout_seconds=10, token=SecretStr("viewer-token"), **viewer
    ).save("jira-viewer", overwrite=True)

    result = run_job_inbox(page_id=JOB_INBOX_ID, jira_block="jira-viewer")

    rows = rows_of(site)
    assert rows["REQ-1"]["Run ID"] == ""
    assert rows["REQ-1"]["State"].startswith(
        "Rejected: whether Demo Admin may browse Jira project DEMO could not be checked, so it is not started ("
    )
    assert "403" in rows["REQ-1"]["State"]
    assert rows["REQ-2"]["State"] == "Scheduled · requested by Demo Admin"  # a table sync reads no Jira project
    assert result["started"] == 1


def test_an_export_within_the_named_projects_reads_no_issue_of_another_even_along_links(
    site: Sandbox, tmp_path: Any
) -> None:
    """DEMO-16 blocks SECRET-2, which the service account may browse: bounded, neither root nor link leads there."""
    from helpers import workbook_data

    def keys(**bound: Any) -> set[str]:
        result = jira_export(
            root_tickets=["DEMO-16"], include_links=True, output_dir=str(tmp_path), compare_to=None, **bound
        )
        return {str(r["Key"]) for rows in workbook_data(result["path"]).values() for r in rows}

    assert "SECRET-2" in keys()  # unbounded, the service account follows the link
    bounded = keys(within_projects=["DEMO"])
    assert "SECRET-2" not in bounded and "DEMO-16" in bounded
    assert not [k for k in bounded if not k.startswith("DEMO-")]
