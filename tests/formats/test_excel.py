"""Tests of formats.excel: the export workbook read back with openpyxl, cell by cell."""

from __future__ import annotations

import tempfile
import weakref
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from atlasflow.formats import excel
from atlasflow.formats.changes import describe_changes, diff_snapshots, snapshot_of
from atlasflow.formats.records import ExportRow
from atlasflow.reports.sheets import WorkbookStats, write_export_workbook

BROWSE = "https://acme.atlassian.net/browse/"
PARIS = timezone(timedelta(hours=2))
EXTRA = ("Story Points", "Due date", "Labels", "Team", "Notes")
GENERATED = datetime(2024, 7, 1, 9, 15, tzinfo=PARIS)
FORMULA_LIKE = (
    "=1+1",
    "+cmd|' /C calc'!A0",
    "@SUM(A1)",
    "-3",
    "<script>alert(1)</script> @channel",
)
ROOT_HEADERS = ["Key", "Summary", "Type", "Status", "Priority", "Assignee", "Created", "Updated"]
CHILD_HEADERS = [*ROOT_HEADERS, "Parent", "Root", "Level", "Relation"]


def _tree() -> list[ExportRow]:
    """Two roots; children, a grandchild and a link, with a root arriving after children."""
    return [
        ExportRow(
            "DEMO-1",
            "Épique Ünïcödé ✓ 日本語 🚀",
            "Epic",
            "In Progress",
            "High",
            "Zoë Ødegård",
            created=datetime(2024, 1, 2, 10, 30, tzinfo=PARIS),
            updated=datetime(2024, 3, 4, 5, 6, tzinfo=UTC),
            extra={
                "Story Points": 13,
                "Due date": datetime(2024, 6, 30, 18, 0, tzinfo=PARIS),
                "Labels": ["backend", "urgent"],
                "Team": {"name": "Atlas"},
                "Notes": "ok",
                "Not exported": "ignored",
            },
        ),
        ExportRow(
            "DEMO-2",
            FORMULA_LIKE[0],
            "Story",
            "To Do",
            parent="DEMO-1",
            root="DEMO-1",
            level=1,
            relation="epic child",
            extra={"Story Points": 2.5},
        ),
        ExportRow(
            "DEMO-3",
            FORMULA_LIKE[1],
            "Sub-task",
            "Done",
            parent="DEMO-2",
            root="DEMO-1",
            level=2,
            relation="sub-task",
        ),
        ExportRow(
            "DEMO-10",
            "Second root",
            "Epic",
            "Done",
            extra={"Due date": date(2024, 12, 31), "Story Points": float("nan"), "Notes": True},
        ),
        ExportRow(
            "DEMO-4",
            FORMULA_LIKE[2],
            "Bug",
            "Blocked",
            parent="DEMO-1",
            root="DEMO-1",
            level=1,
            relation="blocks",
        ),
        ExportRow(
            "DEMO-11",
            FORMULA_LIKE[3],
            "Task",
            "To Do",
            parent="DEMO-10",
            root="DEMO-10",
            level=1,
            relation="child",
        ),
        ExportRow(
            "DEMO-12",
            FORMULA_LIKE[4],
            "Task",
            "To Do",
            parent="DEMO-10",
            root="DEMO-10",
            level=1,
            relation="child",
            extra={"Notes": "bell\x07 and nul\x00 go\ttab and\nnewline stay"},
        ),
    ]


def _write(path: Path, rows: Iterable[ExportRow], **options: Any) -> WorkbookStats:
    arguments: dict[str, Any] = {
        "extra_columns": EXTRA,
        "query": "project = DEMO AND issuetype = Epic",
        "generated_at": GENERATED,
        "browse_url": BROWSE,
    }
    return write_export_workbook(path, iter(rows), **(arguments | options))


def _values(ws: Worksheet) -> list[list[Any]]:
    return [[cell.value for cell in row] for row in ws.iter_rows()]


def _facts(ws: Worksheet) -> dict[str, Any]:
    """Label -> value of the Summary lines above the first blank row."""
    facts = {}
    for label, value in ws.iter_rows(min_row=2, max_col=2, values_only=True):
        if label is None:
            break
        facts[label] = value
    return facts


def _table(ws: Worksheet, header: str) -> tuple[int, dict[Any, int]]:
    """Row (1-based) of a Summary count table's header, and its label -> count."""
    first = next(row[0].row for row in ws.iter_rows(max_col=1) if row[0].value == header)
    table = {}
    for label, count in ws.iter_rows(min_row=first + 1, max_col=2, values_only=True):
        if label is None:
            break
        table[label] = count
    return first, table


@pytest.fixture
def workbook_path(tmp_path: Path) -> Path:
    return tmp_path / "export.xlsx"


def test_sheets_headers_and_stats(workbook_path: Path) -> None:
    stats = _write(workbook_path, _tree())

    book = openpyxl.load_workbook(workbook_path)
    assert book.sheetnames == ["Root Issues", "Child Issues", "Summary"]
    assert _values(book["Root Issues"])[0] == [*ROOT_HEADERS, *EXTRA]
    assert _values(book["Child Issues"])[0] == [*CHILD_HEADERS, *EXTRA]
    assert all(cell.font.b for cell in book["Root Issues"][1])
    assert stats == WorkbookStats(workbook_path, root_rows=2, child_rows=5, links_written=17, links_dropped=0)


def test_root_rows_cell_by_cell(workbook_path: Path) -> None:
    _write(workbook_path, _tree())

    ws = openpyxl.load_workbook(workbook_path)["Root Issues"]
    # fmt: off
    assert _values(ws)[1:] == [
        ["DEMO-1", "Épique Ünïcödé ✓ 日本語 🚀", "Epic", "In Progress", "High", "Zoë Ødegård",
         datetime(2024, 1, 2, 8, 30), datetime(2024, 3, 4, 5, 6),
         13, datetime(2024, 6, 30, 16, 0), "backend, urgent", "{'name': 'Atlas'}", "ok"],
        ["DEMO-10", "Second root", "Epic", "Done", None, None, None, None,
         "nan", datetime(2024, 12, 31), None, None, True],
    ]
    # fmt: on
    assert isinstance(ws["I2"].value, int)
    assert ws["G2"].number_format == "yyyy-mm-dd hh:mm"
    assert ws["J2"].number_format == "yyyy-mm-dd hh:mm"
    assert ws["J3"].number_format == "yyyy-mm-dd"
    assert ws["A2"].hyperlink.target == BROWSE + "DEMO-1"
    assert ws["A3"].hyperlink.target == BROWSE + "DEMO-10"


def test_child_rows_cell_by_cell(workbook_path: Path) -> None:
    _write(workbook_path, _tree())

    ws = openpyxl.load_workbook(workbook_path)["Child Issues"]
    rows = _values(ws)[1:]
    key_columns = (0, 1, 2, 3, 8, 9, 10, 11, 12)  # Key .. Status, Parent .. Relation, Story Points
    assert [[row[col] for col in key_columns] for row in rows] == [
        ["DEMO-2", "=1+1", "Story", "To Do", "DEMO-1", "DEMO-1", 1, "epic child", 2.5],
        ["DEMO-3", FORMULA_LIKE[1], "Sub-task", "Done", "DEMO-2", "DEMO-1", 2, "sub-task", None],
        ["DEMO-4", "@SUM(A1)", "Bug", "Blocked", "DEMO-1", "DEMO-1", 1, "blocks", None],
        ["DEMO-11", "-3", "Task", "To Do", "DEMO-10", "DEMO-10", 1, "child", None],
        ["DEMO-12", FORMULA_LIKE[4], "Task", "To Do", "DEMO-10", "DEMO-10", 1, "child", None],
    ]
    assert all(value is None for row in rows for value in row[4:8])  # Priority .. Updated
    assert all(type(ws.cell(row, 11).value) is int for row in range(2, 7))
    assert ws["Q6"].value == "bell and nul go\ttab and\nnewline stay"
    assert [
        (ws[f"A{row}"].hyperlink.target, ws[f"I{row}"].hyperlink.target, ws[f"J{row}"].hyperlink.target)
        for row in (2, 3)
    ] == [
        (BROWSE + "DEMO-2", BROWSE + "DEMO-1", BROWSE + "DEMO-1"),
        (BROWSE + "DEMO-3", BROWSE + "DEMO-2", BROWSE + "DEMO-1"),
    ]


def test_formula_looking_text_is_stored_as_text(workbook_path: Path) -> None:
    _write(workbook_path, _tree())

    ws = openpyxl.load_workbook(workbook_path)["Child Issues"]
    summaries = [ws.cell(row, 2) for row in range(2, 7)]
    assert [cell.value for cell in summaries] == list(FORMULA_LIKE)
    assert [cell.data_type for cell in summaries] == ["s"] * 5
    with zipfile.ZipFile(workbook_path) as archive:
        sheets = [name for name in archive.namelist() if name.startswith("xl/worksheets/sheet")]
        assert sheets
        assert not any(b"<f>" in archive.read(name) or b"<f " in archive.read(name) for name in sheets)


def test_text_is_cut_to_the_cell_limit(workbook_path: Path) -> None:
    rows = [
        ExportRow("DEMO-1", "x" * 40_000, "Epic", "Open"),
        ExportRow("DEMO-2", "🚀" * 20_000, "Epic", "Open"),  # 2 UTF-16 units each
        ExportRow("DEMO-3", "lone \ud800 surrogate", "Epic", "Open"),  # not encodable: would break the file
    ]

    _write(workbook_path, rows)

    ws = openpyxl.load_workbook(workbook_path)["Root Issues"]
    assert ws["B2"].value == "x" * 32_767
    assert ws["B3"].value == "🚀" * 16_383
    assert ws["B4"].value == "lone  surrogate"


def test_frozen_header_autofilter_and_widths(workbook_path: Path) -> None:
    _write(workbook_path, _tree())

    book = openpyxl.load_workbook(workbook_path)
    roots, children = book["Root Issues"], book["Child Issues"]
    assert roots.freeze_panes == "A2"
    assert children.freeze_panes == "A2"
    assert roots.auto_filter.ref == "A1:M3"
    assert children.auto_filter.ref == "A1:Q6"
    assert roots.column_dimensions["B"].width > 2 * roots.column_dimensions["A"].width


def test_keys_are_plain_text_without_browse_url(workbook_path: Path) -> None:
    stats = _write(workbook_path, _tree(), browse_url=None)

    book = openpyxl.load_workbook(workbook_path)
    cells = [cell for ws in book for row in ws.iter_rows() for cell in row]
    assert not any(cell.hyperlink for cell in cells)
    assert book["Root Issues"]["A2"].value == "DEMO-1"
    assert (stats.links_written, stats.links_dropped) == (0, 0)


def test_keys_are_quoted_in_links(workbook_path: Path) -> None:
    _write(workbook_path, [ExportRow("ODD KEY#1/?", "s", "Epic", "Open")])

    cell = openpyxl.load_workbook(workbook_path)["Root Issues"]["A2"]
    assert cell.value == "ODD KEY#1/?"
    assert cell.hyperlink.target == BROWSE + "ODD%20KEY%231%2F%3F"


def test_links_past_the_cap_become_plain_text(workbook_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(excel, "MAX_LINKS_PER_SHEET", 4)

    stats = _write(workbook_path, _tree())

    book = openpyxl.load_workbook(workbook_path)
    children = book["Child Issues"]
    linked = [cell.coordinate for row in children.iter_rows() for cell in row if cell.hyperlink]
    assert linked == ["A2", "I2", "J2", "A3"]
    assert [children["I3"].value, children["J3"].value, children["A6"].value] == [
        "DEMO-2",
        "DEMO-1",
        "DEMO-12",
    ]
    assert stats.links_written == 2 + 4
    assert stats.links_dropped == 15 - 4
    facts = _facts(book["Summary"])
    assert facts["Keys not linked (Excel keeps 4 links a sheet)"] == 11


def test_summary_counts_and_charts(workbook_path: Path) -> None:
    _write(workbook_path, _tree())

    ws = openpyxl.load_workbook(workbook_path)["Summary"]
    assert _facts(ws) == {
        "Scope": "project = DEMO AND issuetype = Epic",
        "Generated (UTC)": datetime(2024, 7, 1, 7, 15),
        "Root issues": 2,
        "Child issues": 5,
        "Total issues": 7,
        "Depth (levels below the roots)": 2,
    }
    status_row, by_status = _table(ws, "Status")
    assert list(by_status.items()) == [("To Do", 3), ("Done", 2), ("Blocked", 1), ("In Progress", 1)]
    assert _table(ws, "Type")[1] == {"Epic": 2, "Task": 2, "Bug": 1, "Story": 1, "Sub-task": 1}
    assert _table(ws, "Level (0 = roots)")[1] == {0: 2, 1: 4, 2: 1}
    assert len(ws._charts) == 3
    with zipfile.ZipFile(workbook_path) as archive:
        status_chart = archive.read("xl/charts/chart1.xml").decode()
    assert f"<c:f>Summary!$B${status_row + 1}:$B${status_row + 4}</c:f>" in status_chart
    assert f"<c:f>Summary!$A${status_row + 1}:$A${status_row + 4}</c:f>" in status_chart


def test_empty_export(workbook_path: Path) -> None:
    stats = _write(workbook_path, [])

    book = openpyxl.load_workbook(workbook_path)
    assert (stats.root_rows, stats.child_rows) == (0, 0)
    assert book["Root Issues"].auto_filter.ref == "A1:M1"
    assert _facts(book["Summary"])["Total issues"] == 0
    assert book["Summary"]._charts == []


def _failing(rows: list[ExportRow], after: int) -> Iterator[ExportRow]:
    yield from rows[:after]
    raise RuntimeError("Jira went away")


def test_failure_midway_leaves_previous_file_untouched(workbook_path: Path) -> None:
    workbook_path.write_bytes(b"previous export")

    with pytest.raises(RuntimeError, match="Jira went away"):
        _write(workbook_path, _failing(_tree(), after=3))

    assert workbook_path.read_bytes() == b"previous export"
    assert [path.name for path in workbook_path.parent.iterdir()] == ["export.xlsx"]


def test_failure_midway_leaves_no_file(workbook_path: Path) -> None:
    with pytest.raises(RuntimeError):
        _write(workbook_path, _failing(_tree(), after=5))

    assert list(workbook_path.parent.iterdir()) == []


def test_success_replaces_previous_file_without_leftovers(workbook_path: Path) -> None:
    workbook_path.write_bytes(b"previous export")

    _write(workbook_path, _tree())

    assert zipfile.is_zipfile(workbook_path)
    assert [path.name for path in workbook_path.parent.iterdir()] == ["export.xlsx"]


def test_changes_sheet(workbook_path: Path) -> None:
    old = {row.key: snapshot_of(row, EXTRA) for row in _tree()}
    new_rows = _tree()
    new_rows[1].status = "Done"  # DEMO-2
    new_rows[1].extra["Story Points"] = 5
    new_rows[2].summary = '=HYPERLINK("http://evil","x")'  # DEMO-3
    del new_rows[4]  # DEMO-4 gone
    new_rows.append(
        ExportRow("DEMO-13", "@channel", "Sub-task", "To Do", parent="DEMO-11", root="DEMO-10", level=2)
    )
    report = diff_snapshots(old, {row.key: snapshot_of(row, EXTRA) for row in new_rows})

    _write(workbook_path, new_rows, changes=report)

    book = openpyxl.load_workbook(workbook_path)
    assert book.sheetnames == ["Root Issues", "Child Issues", "Changes", "Summary"]
    ws = book["Changes"]
    assert _values(ws) == [
        ["Change", "Key", "Summary", "Field", "Old", "New"],
        ["changed", "DEMO-2", "=1+1", "status", "To Do", "Done"],
        ["changed", "DEMO-2", "=1+1", "Story Points", 2.5, 5],
        [
            "changed",
            "DEMO-3",
            '=HYPERLINK("http://evil","x")',
            "summary",
            FORMULA_LIKE[1],
            '=HYPERLINK("http://evil","x")',
        ],
        ["new", "DEMO-13", "@channel", None, None, None],
        ["gone", "DEMO-4", "@SUM(A1)", None, None, None],
    ]
    assert all(cell.data_type == "s" for cell in [*ws["C"], ws["E4"], ws["F4"]])
    assert ws["B2"].hyperlink.target == BROWSE + "DEMO-2"
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:F6"
    assert _facts(book["Summary"])["Changes"] == describe_changes(report)
    assert describe_changes(report) == "1 new, 1 gone, 2 changed: 1 Story Points, 1 status, 1 summary"


def test_changes_note_without_report(workbook_path: Path) -> None:
    note = "first export of this scope: nothing to compare with"

    _write(workbook_path, _tree(), changes_note=note)

    book = openpyxl.load_workbook(workbook_path)
    assert book.sheetnames == ["Root Issues", "Child Issues", "Changes", "Summary"]
    assert _values(book["Changes"]) == [[note]]
    assert _facts(book["Summary"])["Changes"] == note


def test_failure_leaves_no_scratch_files(
    workbook_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path_factory.mktemp("system-tmp")
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    with pytest.raises(RuntimeError):
        _write(workbook_path, _failing(_tree(), after=5))

    assert list(scratch.iterdir()) == []


def test_more_rows_than_excel_holds_is_an_error(workbook_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(excel, "MAX_ROWS_PER_SHEET", 3)  # header + 2 rows
    roots = [ExportRow(f"DEMO-{n}", "s", "Epic", "Open") for n in range(1, 4)]

    with pytest.raises(ValueError, match="rows per sheet"):
        _write(workbook_path, roots)

    assert not workbook_path.exists()


def test_failure_after_the_workbook_is_written_removes_the_temporary_file(
    workbook_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workbook_path.write_bytes(b"previous export")

    def refuse(source: Any, target: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(excel.os, "replace", refuse)

    with pytest.raises(OSError, match="disk full"):
        _write(workbook_path, _tree())

    assert workbook_path.read_bytes() == b"previous export"
    assert [path.name for path in workbook_path.parent.iterdir()] == ["export.xlsx"]


def test_clean_text() -> None:
    assert excel.clean_text("plain text") == "plain text"
    assert excel.clean_text("a\x00b\x07c\x1fd\ufffe\uffff") == "abcd"
    assert excel.clean_text("tab\tnew\nline\rkept ünï 🚀") == "tab\tnew\nline\rkept ünï 🚀"
    assert excel.clean_text("lone \ud800 surrogate") == "lone  surrogate"
    assert excel.clean_text("x" * 40_000) == "x" * 32_767
    assert excel.clean_text("🚀" * 20_000) == "🚀" * 16_383  # never half a surrogate pair
    assert excel.clean_text("é" + "🚀" * 16_383) == "é" + "🚀" * 16_383  # exactly 32,767 units


class _TrackedRow(ExportRow):
    """An ExportRow that can be weakly referenced."""


def test_rows_are_written_as_they_come_and_not_kept(workbook_path: Path) -> None:
    seen: list[weakref.ref[_TrackedRow]] = []
    kept: list[str] = []

    def rows() -> Iterator[ExportRow]:
        for n in range(1, 201):
            for ref in seen[:-1]:  # every row but the one just written is gone
                if (alive := ref()) is not None:
                    kept.append(alive.key)
            level = 0 if n % 10 == 1 else 1
            row = _TrackedRow(
                f"DEMO-{n}", f"issue {n}", "Story", "To Do", level=level, extra={"Labels": ["a"]}
            )
            seen.append(weakref.ref(row))
            yield row

    stats = _write(workbook_path, rows())

    assert kept == []
    assert (stats.root_rows, stats.child_rows) == (20, 180)
