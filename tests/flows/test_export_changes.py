"""The export's "Changes" sheet: what moved since the previous export of the same scope."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers import sheet_rows
from openpyxl import load_workbook
from prefect.filesystems import LocalFileSystem

from atlasflow.flows.jira_export import jira_export
from atlasflow.sandbox.app import Sandbox


def export(tmp_path: Path, **kwargs: Any) -> dict[str, Any]:
    return jira_export(root_tickets=["DEMO-1"], output_dir=str(tmp_path), **kwargs)


def edit_the_site(sb: Sandbox) -> str:
    """The edits the Changes sheet must report, and nothing else; returns the new sub-task's key."""
    jira = sb.jira
    assert jira is not None
    jira.update_issue("DEMO-3", status="Done")
    jira.update_issue("DEMO-5", assignee="frank" if jira.issue("DEMO-5").assignee != "frank" else "alice")
    jira.move_issue("DEMO-6", "DEMO-7")
    jira.delete_issue("DEMO-10")
    jira.update_issue("DEMO-12", summary='=HYPERLINK("http://evil","x")')
    return jira.create_issue("DEMO", "Sub-task", "A new sub-task", parent="DEMO-2")


def changes(path: str) -> dict[str, set[str]]:
    """Changes sheet as {key: {"new" | "gone" | field, ...}}."""
    found: dict[str, set[str]] = {}
    for row in sheet_rows(path, "Changes"):
        found.setdefault(row["Key"], set()).add(row["Field"] if row["Change"] == "changed" else row["Change"])
    return found


def test_edits_between_two_exports_are_reported_exactly(site: Sandbox, tmp_path: Path) -> None:
    first = export(tmp_path)
    assert first["changes"] == "first export of this scope: nothing to compare with"
    new_key = edit_the_site(site)
    second = export(tmp_path)

    assert changes(second["path"]) == {
        "DEMO-3": {"status"},
        "DEMO-5": {"assignee"},
        "DEMO-6": {"parent"},
        "DEMO-10": {"gone"},
        "DEMO-12": {"summary"},
        new_key: {"new"},
    }
    assert second["changes"].startswith("1 new, 1 gone, 4 changed")
    rows = sheet_rows(second["path"], "Changes")
    moved = next(r for r in rows if r["Key"] == "DEMO-6")
    assert (moved["Old"], moved["New"]) == ("DEMO-4", "DEMO-7")
    assert [r["Key"] for r in rows][:2] in (["DEMO-3", "DEMO-6"], ["DEMO-6", "DEMO-3"])  # big moves first
    formula = load_workbook(second["path"])["Changes"]
    cells = [c for row in formula.iter_rows() for c in row if c.value == '=HYPERLINK("http://evil","x")']
    assert cells and all(c.data_type == "s" for c in cells)
    summary = [c.value for row in load_workbook(second["path"])["Summary"].iter_rows() for c in row]
    assert any(isinstance(v, str) and "1 new, 1 gone, 4 changed" in v for v in summary)


def test_an_unchanged_site_reports_no_changes(cloud_site: Sandbox, tmp_path: Path) -> None:
    export(tmp_path)
    again = export(tmp_path)
    assert again["changes"] == "no changes"
    assert sheet_rows(again["path"], "Changes") == [] or changes(again["path"]) == {}


def test_compare_to_a_workbook_and_to_nothing(cloud_site: Sandbox, tmp_path: Path) -> None:
    first = export(tmp_path, compare_to=None)
    assert "Changes" not in load_workbook(first["path"]).sheetnames
    edit_the_site(cloud_site)
    against_file = export(tmp_path / "other", compare_to=first["path"])
    assert set(changes(against_file["path"])) >= {"DEMO-3", "DEMO-5", "DEMO-6", "DEMO-10", "DEMO-12"}


def test_a_failed_run_never_replaces_the_snapshot(cloud_site: Sandbox, tmp_path: Path) -> None:
    LocalFileSystem(basepath=str(tmp_path / "shared-snapshots")).save("snapshots", overwrite=True)
    block = "local-file-system/snapshots"
    export(tmp_path / "a", snapshot_block=block)
    edit_the_site(cloud_site)
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("x")
    failed = jira_export(
        root_tickets=["DEMO-1"], output_dir=str(not_a_directory), snapshot_block=block, return_state=True
    )
    assert failed.is_failed()
    later = export(tmp_path / "b", snapshot_block=block)  # another machine would see the same block
    assert "DEMO-10" in changes(later["path"])
