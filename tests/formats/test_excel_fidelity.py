"""What Excel shows is what Jira holds: escapes kept, old dates, links, long text, a hierarchy that folds."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.utils.escape import unescape

from atlasflow.formats.jira_values import Link, render
from atlasflow.formats.records import ExportRow
from atlasflow.reports.sheets import tree_order, write_export_workbook

WHEN = datetime(2026, 1, 5, 10, 15, tzinfo=UTC)


def row(key: str, level: int = 0, parent: str | None = None, **extra: Any) -> ExportRow:
    return ExportRow(
        key=key,
        summary=f"summary of {key}",
        type="Epic" if level == 0 else "Story",
        status="To Do",
        created=WHEN,
        updated=WHEN,
        parent=parent,
        root=None if level == 0 else "E-1",
        level=level,
        relation=None if level == 0 else "child",
        extra=extra,
    )


def write(tmp_path: Path, rows: list[ExportRow], columns: tuple[str, ...] = (), **kwargs: Any) -> Path:
    path = tmp_path / "export.xlsx"
    write_export_workbook(
        path,
        rows,
        extra_columns=columns,
        query="q",
        generated_at=WHEN,
        browse_url="https://acme.atlassian.net/browse/",
        **kwargs,
    )
    return path


def test_text_that_looks_like_an_xml_escape_is_shown_as_written(tmp_path: Path) -> None:
    texts = ["_x0041_", "a_x263A_b", "_x005F_", "_xZZZZ_", "_x12345_"]
    rows = [row(f"E-{n}", Note=text) for n, text in enumerate(texts, start=1)]
    path = write(tmp_path, rows, ("Note",))
    sheet = openpyxl.load_workbook(path)["Root Issues"]
    stored = [sheet.cell(r, 9).value for r in range(2, 2 + len(texts))]
    # openpyxl leaves inline strings undecoded; Excel decodes ECMA-376's _xHHHH_ as unescape() does
    assert [unescape(text) for text in stored] == texts
    assert stored[0] == "_x005F_x0041_" and stored[3] == "_xZZZZ_"


def test_dates_before_1900_are_text_and_later_ones_dates(tmp_path: Path) -> None:
    rows = [row("E-1", Old=date(1850, 1, 2), Stamp=datetime(1899, 12, 31, 23, 0, tzinfo=UTC), New=date(1900, 3, 1))]
    sheet = openpyxl.load_workbook(write(tmp_path, rows, ("Old", "Stamp", "New")))["Root Issues"]
    old, stamp, new = (sheet.cell(2, col) for col in (9, 10, 11))
    assert (old.value, old.data_type) == ("1850-01-02", "s")
    assert (stamp.value, stamp.data_type) == ("1899-12-31 23:00", "s")
    assert new.value == datetime(1900, 3, 1) and new.is_date


def test_url_fields_are_links_and_long_text_carries_its_note(tmp_path: Path) -> None:
    long = render({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
        {"type": "text", "text": "x" * 40_000}]}]}, {"type": "string", "system": "description"})  # fmt: skip
    rows = [row("E-1", Spec=Link("https://example.com/a", "https://example.com/a"), Description=long)]
    sheet = openpyxl.load_workbook(write(tmp_path, rows, ("Spec", "Description")))["Root Issues"]
    assert sheet.cell(2, 9).value == "https://example.com/a"
    assert sheet.cell(2, 9).hyperlink.target == "https://example.com/a"
    description = sheet.cell(2, 10).value
    assert len(description) == 32_767 and description.endswith("the first 32,767 shown]")


def test_hierarchy_sheet_folds_in_tree_order(tmp_path: Path) -> None:
    rows = [  # level by level, as the export walks them
        row("E-1"),
        row("E-9"),
        row("S-2", 1, "E-1"),
        row("S-3", 1, "E-1"),
        row("S-10", 1, "E-9"),
        row("T-4", 2, "S-2"),
        row("T-5", 2, "S-3"),
        row("U-6", 3, "T-4"),
    ]
    path = write(tmp_path, rows, hierarchy=True)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Root Issues", "Child Issues", "Hierarchy", "Summary"]
    sheet = book["Hierarchy"]
    keys = [sheet.cell(r, 1).value for r in range(2, sheet.max_row + 1)]
    assert keys == ["E-1", "S-2", "T-4", "U-6", "S-3", "T-5", "E-9", "S-10"]
    levels = [sheet.row_dimensions[r].outline_level for r in range(2, sheet.max_row + 1)]
    assert levels == [0, 1, 2, 3, 1, 2, 0, 1]
    assert sheet.sheet_properties.outlinePr.summaryBelow is False  # the button sits on the parent row
    assert sheet.cell(3, 1).hyperlink.target.endswith("/browse/S-2")
    summary = {r[0].value: r[1].value for r in book["Summary"].iter_rows(min_row=2) if r[0].value}
    assert summary["Depth (levels below the roots)"] == 3


def test_tree_order_survives_orphans_and_self_parents() -> None:
    rows = [row("A-1"), row("B-2", 1, "GONE-1"), row("C-3", 1, "C-3"), row("D-4", 1, "A-1")]
    assert [r.key for r in tree_order(rows)] == ["A-1", "D-4", "B-2", "C-3"]
