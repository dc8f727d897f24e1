"""Tests of formats.xlsx_stream: the parts of the package, and the cells read back with openpyxl."""

from __future__ import annotations

import posixpath
import tempfile
import zipfile
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import openpyxl
import pytest
from lxml import etree

from atlasflow.formats.xlsx_stream import (
    MAX_URL_CHARS,
    STYLE_DATE,
    STYLE_DATETIME,
    STYLE_HEADER,
    STYLE_LINK,
    BarChart,
    StreamingWorkbook,
    bool_cell,
    chart_range,
    column_letters,
    date_cell,
    excel_serial,
    number_cell,
    text_cell,
)

_RELS_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_TYPES_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"


def _book(path: Path) -> None:
    """Two sheets filled in turns, a link, a refused link and a chart on a third sheet."""
    with path.open("wb") as file:
        book = StreamingWorkbook(file)
        first = book.add_sheet("First", 3, [10, 40], freeze_header=True, autofilter=True)
        second = book.add_sheet("Second's", 2)
        first.write_row(0, [text_cell("A1", "Key", STYLE_HEADER), text_cell("B1", "Text", STYLE_HEADER)])
        second.write_row(0, [number_cell("A1", 1.5), bool_cell("B1", False)])
        assert first.add_link("A2", "https://example.com/browse/A%26B?x=1&y=2")
        assert not first.add_link("A3", "https://example.com/" + "x" * MAX_URL_CHARS)
        first.write_row(1, [text_cell("A2", "A&B", STYLE_LINK), text_cell("B2", ' <a href="x"> & \r\n ')])
        first.write_row(2, [text_cell("A3", "long"), date_cell("C3", datetime(2024, 1, 2, 10, 30), STYLE_DATETIME)])
        second.write_row(3, [date_cell("A4", date(2024, 12, 31), STYLE_DATE), text_cell("B4", "=1+1")])
        chart_sheet = book.add_sheet("Chart", 2)
        chart_sheet.write_row(0, [text_cell("A1", "x"), number_cell("B1", 3)])
        chart_sheet.charts.append(
            BarChart(
                title="Counts <by> x",
                categories=chart_range("Chart", 0, 0, 0),
                values=chart_range("Chart", 1, 0, 0),
                text_categories=True,
                horizontal=False,
                anchor=(0, 3),
                size=(520, 288),
            )
        )
        book.close()


def test_cells_read_back(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    _book(path)

    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["First", "Second's", "Chart"]
    first, second = book["First"], book["Second's"]
    assert [[cell.value for cell in row] for row in first.iter_rows()] == [
        ["Key", "Text", None],
        ["A&B", ' <a href="x"> & \r\n ', None],
        ["long", None, datetime(2024, 1, 2, 10, 30)],
    ]
    assert first["A1"].font.b
    assert first["C3"].number_format == "yyyy-mm-dd hh:mm"
    assert first.freeze_panes == "A2"
    assert first.auto_filter.ref == "A1:C3"
    assert first.column_dimensions["B"].width > 3 * first.column_dimensions["A"].width
    assert first["A2"].hyperlink.target == "https://example.com/browse/A%26B?x=1&y=2"
    assert first["A3"].hyperlink is None
    assert [second["A1"].value, second["B1"].value, second["A4"].value] == [1.5, False, datetime(2024, 12, 31)]
    assert (second["B4"].value, second["B4"].data_type) == ("=1+1", "s")
    assert second["B4"].quotePrefix, "formula-like text must keep Excel from turning it live on edit"
    assert not first["B2"].quotePrefix and not first["A1"].quotePrefix
    assert second["A4"].number_format == "yyyy-mm-dd"
    assert second.freeze_panes is None
    assert len(book["Chart"]._charts) == 1


def test_parts_are_well_formed_typed_and_linked(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    _book(path)

    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        parts = {name: etree.fromstring(archive.read(name)) for name in names}
        assert not any(info.extra for info in archive.infolist())  # no zip64 headers for small parts
    overrides = {node.get("PartName") for node in parts["[Content_Types].xml"].iter(f"{_TYPES_NS}Override")}
    assert overrides == {f"/{name}" for name in names if not name.endswith(".rels") and name != "[Content_Types].xml"}
    for name in (name for name in names if name.endswith(".rels")):
        base = posixpath.dirname(posixpath.dirname(name))
        for relationship in parts[name].iter(f"{_RELS_NS}Relationship"):
            if relationship.get("TargetMode") != "External":
                assert posixpath.normpath(posixpath.join(base, relationship.get("Target"))) in names
    chart = etree.tostring(parts["xl/charts/chart1.xml"]).decode()
    assert "<c:f>Chart!$A$1:$A$1</c:f>" in chart
    assert "Counts &lt;by&gt; x" in chart
    workbook = etree.tostring(parts["xl/workbook.xml"]).decode()
    assert "First!$A$1:$C$3</definedName>" in workbook


def test_discard_and_close_leave_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with (tmp_path / "book.xlsx").open("wb") as file:
        book = StreamingWorkbook(file)
        book.add_sheet("A", 1).write_row(0, [text_cell("A1", "x")])
        book.discard()

    assert list(scratch.iterdir()) == []


def test_rows_go_down_only(tmp_path: Path) -> None:
    with (tmp_path / "book.xlsx").open("wb") as file:
        book = StreamingWorkbook(file)
        sheet = book.add_sheet("A", 1)
        sheet.write_row(1, [])
        with pytest.raises(ValueError, match="comes after row 1"):
            sheet.write_row(1, [])
        book.discard()


def test_column_letters() -> None:
    letters = column_letters(16_384)
    assert letters[:3] == ["A", "B", "C"]
    assert letters[25:28] == ["Z", "AA", "AB"]
    assert letters[701:703] == ["ZZ", "AAA"]
    assert letters[-1] == "XFD"


def test_excel_serial() -> None:
    assert excel_serial(date(2024, 12, 31)) == 45657
    assert excel_serial(datetime(1900, 3, 1)) == 61
    assert excel_serial(datetime(1900, 2, 28)) == 59  # Excel's phantom 1900-02-29 is 60
    assert excel_serial(datetime(1900, 1, 1)) == 1
    noon = datetime(2024, 7, 1, 12, 0)
    assert excel_serial(noon) == 45474.5
    assert excel_serial(noon.replace(tzinfo=UTC)) == 45474.5
    assert excel_serial(datetime(2024, 7, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))) == 45474.5


class _Points(int):
    def __repr__(self) -> str:
        return f"_Points({int(self)})"


def test_formula_like_text_keeps_its_style_with_a_quote_prefix(tmp_path: Path) -> None:
    path = tmp_path / "quoted.xlsx"
    with path.open("wb") as file:
        book = StreamingWorkbook(file)
        sheet = book.add_sheet("S", 3)
        assert sheet.add_link("C1", "https://example.com/x")
        cells = [text_cell("A1", "@SUM(A2)", STYLE_HEADER), text_cell("B1", "+cmd|' /C calc'!A0")]
        sheet.write_row(0, [*cells, text_cell("C1", "-1", STYLE_LINK)])
        book.close()
    sheet = openpyxl.load_workbook(path)["S"]
    assert [c.value for c in sheet[1]] == ["@SUM(A2)", "+cmd|' /C calc'!A0", "-1"]
    assert all(c.quotePrefix and c.data_type == "s" for c in sheet[1])
    assert sheet["A1"].font.b and sheet["C1"].font.u


def test_cell_fragments() -> None:
    assert text_cell("B2", "a & b") == '<c r="B2" t="inlineStr"><is><t>a &amp; b</t></is></c>'
    assert text_cell("B2", " x", STYLE_LINK) == (
        f'<c r="B2" s="{STYLE_LINK}" t="inlineStr"><is><t xml:space="preserve"> x</t></is></c>'
    )
    assert text_cell("B2", "") == '<c r="B2" t="inlineStr"><is><t></t></is></c>'
    assert number_cell("C3", 13) == '<c r="C3"><v>13</v></c>'
    assert number_cell("C3", 0.1) == '<c r="C3"><v>0.1</v></c>'
    assert number_cell("C3", _Points(2)) == '<c r="C3"><v>2.0</v></c>'
    assert bool_cell("D4", True) == '<c r="D4" t="b"><v>1</v></c>'
    assert date_cell("E5", date(2024, 12, 31), STYLE_DATE) == f'<c r="E5" s="{STYLE_DATE}"><v>45657</v></c>'


def test_chart_range_quotes_sheet_names() -> None:
    assert chart_range("Summary", 1, 9, 12) == "Summary!$B$10:$B$13"
    assert chart_range("Bob's sheet", 0, 0, 0) == "'Bob''s sheet'!$A$1:$A$1"
