"""The Jira export flow against the sandbox, in Cloud and Data Center mode."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import sheet_rows, workbook_data
from openpyxl import load_workbook

from atlasflow.flows.jira_export import jira_export
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.core import Faults

DEMO_1_TREE = {f"DEMO-{n}" for n in range(1, 30)}


def test_exports_a_whole_hierarchy(site: Sandbox, tmp_path: Path) -> None:
    result = jira_export(root_tickets=["DEMO-1"], output_dir=str(tmp_path), jira_block="jira")

    assert Path(result["path"]).is_file() and Path(result["path"]).parent == tmp_path
    roots = sheet_rows(result["path"], "Root Issues")
    children = sheet_rows(result["path"], "Child Issues")
    assert [r["Key"] for r in roots] == ["DEMO-1"]
    assert {r["Key"] for r in children} == DEMO_1_TREE - {"DEMO-1"}
    assert len(children) == len(DEMO_1_TREE) - 1  # every issue once
    by_key = {r["Key"]: r for r in children}
    assert by_key["DEMO-2"]["Level"] == 1 and by_key["DEMO-2"]["Relation"] == "epic child"
    assert by_key["DEMO-3"]["Level"] == 2 and by_key["DEMO-3"]["Relation"] == "sub-task"
    assert by_key["DEMO-3"]["Parent"] == "DEMO-2" and by_key["DEMO-3"]["Root"] == "DEMO-1"
    assert isinstance(by_key["DEMO-3"]["Created"], datetime)
    assert result["issues"] == len(DEMO_1_TREE)
    assert sum(result["by_level"].values()) == len(DEMO_1_TREE)
    # fields, roots, one search per level, and the empty level that ends the walk
    assert result["requests"] <= 5


def test_text_from_jira_stays_inert(cloud_site: Sandbox, tmp_path: Path) -> None:
    result = jira_export(root_tickets=["DEMO-1"], output_dir=str(tmp_path), jira_block="jira")
    ws = load_workbook(result["path"])["Child Issues"]
    cells = {row[0].value: row[1] for row in ws.iter_rows(min_row=2)}
    for key in ("DEMO-2", "DEMO-3", "DEMO-4", "DEMO-5", "DEMO-6", "DEMO-8"):
        summary = cells[key]
        assert summary.data_type == "s", (key, summary.value)
        assert summary.value == cloud_site.jira.issue(key).summary  # type: ignore[union-attr]
    assert str(cells["DEMO-2"].value).startswith("=HYPERLINK")


def test_links_and_cycles_visit_every_issue_once(site: Sandbox, tmp_path: Path) -> None:
    result = jira_export(root_tickets=["DEMO-1"], include_links=True, output_dir=str(tmp_path), jira_block="jira")
    children = sheet_rows(result["path"], "Child Issues")
    keys = [r["Key"] for r in children]
    assert len(keys) == len(set(keys))
    linked = {r["Key"]: r for r in children if r["Relation"] not in ("epic child", "sub-task", "child")}
    assert "DEMO-223" in linked and linked["DEMO-223"]["Parent"] == "DEMO-1"
    assert "OPS-1" in linked  # DEMO-11 relates to OPS-1, across projects


def test_max_depth_and_extra_fields_by_name(site: Sandbox, tmp_path: Path) -> None:
    result = jira_export(
        root_tickets=["DEMO-1"],
        fields=["Story Points", "Team"],
        max_depth=1,
        output_dir=str(tmp_path),
        jira_block="jira",
    )
    children = sheet_rows(result["path"], "Child Issues")
    assert {r["Level"] for r in children} == {1}
    points = [r["Story Points"] for r in children if r["Story Points"] is not None]
    assert points and all(isinstance(p, int | float) for p in points)
    assert {r["Team"] for r in children} <= {None, "Platform", "Payments", "Mobile"}


def test_project_export_arranges_trees(site: Sandbox, tmp_path: Path) -> None:
    result = jira_export(project_key="OPS", output_dir=str(tmp_path), jira_block="jira")
    roots = {r["Key"] for r in sheet_rows(result["path"], "Root Issues")}
    children = {r["Key"]: r for r in sheet_rows(result["path"], "Child Issues")}
    assert "OPS-1" in roots and "OPS-2" not in roots
    assert children["OPS-2"]["Parent"] == "OPS-1" and children["OPS-2"]["Relation"] == "sub-task"
    assert len(roots) + len(children) == 20


def test_root_without_children(site: Sandbox, tmp_path: Path) -> None:
    result = jira_export(root_tickets=["DEMO-283"], output_dir=str(tmp_path), jira_block="jira")
    assert result["issues"] == 1
    assert sheet_rows(result["path"], "Child Issues") == []


@pytest.mark.parametrize(
    ("kwargs", "quoted"),
    [
        ({"root_tickets": ["DEMO-99999"]}, "DEMO-99999"),
        ({"jql": "project = DEMO AND summary ~ 'x' AND foo = bar"}, "Jira answered 400"),
    ],
)
def test_bad_input_fails_fast_with_jiras_message(
    site: Sandbox, tmp_path: Path, kwargs: dict[str, Any], quoted: str
) -> None:
    state = jira_export(**kwargs, output_dir=str(tmp_path), jira_block="jira", return_state=True)
    assert state.is_failed()
    assert quoted in (state.message or "")
    searches = [e for e in site.state.log.entries if "search" in e.path]
    assert len(searches) == 1  # no retry of a 400
    assert list(tmp_path.iterdir()) == []


def test_a_storm_of_transient_faults_gives_the_same_workbook(site: Sandbox, tmp_path: Path) -> None:
    clean = jira_export(
        root_tickets=["DEMO-1"], include_links=True, output_dir=str(tmp_path / "clean"), jira_block="jira"
    )
    site.state.faults = Faults(rate_429=0.15, rate_5xx=0.15, rate_drop=0.05, retry_after=0, seed=3)
    stormy = jira_export(
        root_tickets=["DEMO-1"], include_links=True, output_dir=str(tmp_path / "storm"), jira_block="jira"
    )
    faulted = [e for e in site.state.log.entries if e.fault]
    assert faulted, "the storm injected no fault"
    assert workbook_data(stormy["path"]) == workbook_data(clean["path"])


def test_a_walk_without_max_depth_stops_at_max_levels_with_one_line(cloud_site: Sandbox, tmp_path: Path) -> None:
    """A chain of links longer than MAX_LEVELS (as a server inventing a new level each time would answer)."""
    from atlasflow.reports.tree import MAX_LEVELS

    jira = cloud_site.jira
    chain = [jira.create_issue("DEMO", "Task", f"link {i}") for i in range(MAX_LEVELS + 2)]
    for source, target in itertools.pairwise(chain):
        jira.link_issues(source, target)

    state = jira_export(root_tickets=[chain[0]], include_links=True, output_dir=str(tmp_path), return_state=True)

    assert state.is_failed() and f"{MAX_LEVELS} levels below the roots" in (state.message or ""), state.message
    assert "\n" not in (state.message or "")
    deep = jira_export(root_tickets=[chain[0]], include_links=True, max_depth=MAX_LEVELS + 1, output_dir=str(tmp_path))
    assert deep["issues"] == MAX_LEVELS + 2  # an explicit depth is the user's bound
