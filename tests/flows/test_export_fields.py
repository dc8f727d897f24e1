"""Every kind of Jira field in an export, asked for by the name Jira's UI shows, in Cloud and Data Center."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
from prefect.states import State

from atlasflow.blocks import jira_client
from atlasflow.errors import ApiError
from atlasflow.flows.jira_export import jira_export
from atlasflow.sandbox.app import Sandbox

CF = "com.atlassian.jira.plugin.system.customfieldtypes:"
FIELDS = [
    "Description",
    "Fix versions",
    "Component/s",  # the Data Center spelling works on Cloud too, and the other way round
    "Due date",
    "Time tracking",
    "Original estimate",
    "Comment",
    "Log Work",
    "Watchers",
    "Votes",
    "Attachment",
    "Linked Issues",
    "Sprint",
    "Region",
    "Platforms",
    "Reviewers",
    "QA Owner",
    "Owning Group",
    "Spec URL",
    "Go-live",
    "Release Notes",
    "Story Points",
    "Team",
]


def summary_artifact(state: State[Any]) -> dict[str, str]:
    """The run's summary table artifact as ``{figure: value}``."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
                key=ArtifactFilterKey(any_=["jira-export-summary"]),
            )
        )
    return {row["figure"]: row["value"] for row in json.loads(str(found[0].data))}


def test_every_field_type_reads_as_jira_shows_it(site: Sandbox, tmp_path: Path) -> None:
    cloud = site.mode == "cloud"
    state = jira_export(
        root_tickets=["DEMO-1"],
        fields=FIELDS,
        max_depth=1,
        output_dir=str(tmp_path),
        jira_block="jira",
        return_state=True,
    )
    result = state.result()
    figures = summary_artifact(state)
    assert figures["by level"] == "0: 1, 1: 8" and "{" not in figures["by type"]
    book = load_workbook(result["path"])
    tree = book["Hierarchy"]
    assert [tree.cell(r, 1).value for r in range(2, 5)] == ["DEMO-1", "DEMO-2", "DEMO-4"]
    assert [tree.row_dimensions[r].outline_level for r in range(2, 5)] == [0, 1, 1]
    sheet = book["Child Issues"]
    header = [c.value for c in sheet[1]]
    cells = {row[0].value: dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2)}
    story, other = cells["DEMO-2"], cells["DEMO-4"]
    value = {title: story[title].value for title in FIELDS}

    summary = '=HYPERLINK("http://evil","x")'
    if cloud:  # ADF, rendered: paragraphs on lines, the list with bullets
        assert value["Description"] == f"Details for: {summary}\nAcceptance criteria:\n- it works\n- it is tested"
        assert value["Release Notes"] == "Release note for DEMO-2\n• faster\n• safer"
    else:  # wiki markup, as it is
        assert value["Description"] == f"Details for: {summary}\n\nAcceptance criteria:\n- it works\n- it is tested"
        assert value["Release Notes"] == "Release note for DEMO-2\n\n* faster\n* safer"
    assert value["Fix versions"] == "1.0, 1.1"
    assert value["Component/s"] == "API"
    assert value["Due date"] == datetime(2026, 1, 10) and story["Due date"].number_format == "yyyy-mm-dd"
    assert value["Time tracking"] == "Estimated 1d · Remaining 0m · Logged 2h"
    assert value["Original estimate"] == "1d"
    assert value["Comment"] is None
    assert other["Comment"].value == (
        "1 comment; last by Bob Brandt on 2026-01-06 11:15 UTC: Looks good to me, see DEMO-4."
    )
    assert value["Log Work"] == "1 worklog; last by Alice Anders on 2026-01-05 12:15 UTC: 2h (pairing)"
    assert (value["Watchers"], value["Votes"]) == (1, 0)
    assert other["Attachment"].value == "1: trace.log"
    assert value["Linked Issues"] == "blocks DEMO-4; is blocked by DEMO-7"
    assert value["Sprint"] == "Sprint 12" and other["Sprint"].value == "Sprint 13, Sprint 14"
    assert value["Region"] == "EMEA" and other["Region"].value == "Americas / São Paulo"
    assert value["Platforms"] == "iOS" and other["Platforms"].value == "iOS, Android"
    assert value["Reviewers"] == "Alice Anders, Carol Chen"
    assert value["QA Owner"] == "Bob Brandt"
    assert value["Owning Group"] == "jira-software-users"
    url = "https://wiki.example.com/spec/DEMO-2?v=0"
    assert value["Spec URL"] == url and story["Spec URL"].hyperlink.target == url
    assert isinstance(value["Go-live"], datetime)
    assert isinstance(value["Story Points"], int | float) and value["Team"] in ("Platform", "Payments", "Mobile")
    for row in cells.values():  # no Python or JSON structure anywhere
        for title in FIELDS:
            shown = str(row[title].value or "")
            assert not shown.startswith(("{", "[")) and "{'" not in shown and "com.atlassian" not in shown, shown


def test_field_names_resolve_like_jiras_ui(site: Sandbox) -> None:
    client = jira_client("jira")
    try:
        resolved = client.resolve_fields(["Due Date", "fixVersions", "Fix Version/s", "component", "Story Points"])
        assert resolved["Due Date"] == "duedate"
        assert resolved["fixVersions"] == resolved["Fix Version/s"] == "fixVersions"
        assert resolved["component"] == "components"  # the JQL clause name
        assert resolved["Story Points"].startswith("customfield_")
        assert site.jira is not None
        second = site.jira.add_custom_field("Team", "option", f"{CF}select")
        client._fields = None  # a fresh client would read the catalogue again
        with pytest.raises(ApiError) as refused:
            client.resolve_fields(["Team", "Nonsense"])
        first = site.jira.custom_field("Team").id
        message = str(refused.value)
        assert f"'Team' names 2 fields: {first} (Team, select), {second.id} (Team, select)" in message
        assert 'unknown field(s) "Nonsense"' in message
        assert client.resolve_fields([second.id]) == {second.id: second.id}  # ids as given
    finally:
        client.close()


def test_dates_before_1900_are_text(dc_site: Sandbox, tmp_path: Path) -> None:
    assert dc_site.jira is not None
    dc_site.jira.update_issue("DEMO-2", **{"Target Date": "1850-01-02"}, duedate="2026-05-01")
    result = jira_export(
        root_tickets=["DEMO-2"], fields=["Target Date", "Due Date"], output_dir=str(tmp_path), jira_block="jira"
    )
    row = next(load_workbook(result["path"])["Root Issues"].iter_rows(min_row=2))
    header = [c.value for c in next(load_workbook(result["path"])["Root Issues"].iter_rows(max_row=1))]
    cells = dict(zip(header, row, strict=True))
    assert cells["Target Date"].value == "1850-01-02" and cells["Target Date"].data_type == "s"
    assert cells["Due Date"].value == datetime(2026, 5, 1)
    assert date(1850, 1, 2).isoformat() == cells["Target Date"].value
