"""Source files of a table sync: formula cells and encodings are never silently wrong."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from atlasflow.formats.sources import SourceError, read_rows
from atlasflow.formats.xlsx_stream import StreamingWorkbook, number_cell, text_cell


def cached_formula_book(path: Path, *, cached: bool) -> Path:
    """A workbook as Excel saves it: formula cells with (or without) the value computed at save time."""
    value = "<v>84</v>" if cached else ""
    with path.open("wb") as file:
        book = StreamingWorkbook(file)
        sheet = book.add_sheet("Roster", 3)
        sheet.write_row(0, [text_cell("A1", "Key"), text_cell("B1", "Points"), text_cell("C1", "Note")])
        sheet.write_row(1, [text_cell("A2", "ALI"), f'<c r="B2"><f>42*2</f>{value}</c>', text_cell("C2", "=typed")])
        sheet.write_row(2, [text_cell("A3", "BOB"), number_cell("B3", 3), text_cell("C3", "")])
        book.close()
    return path


def test_formula_cells_are_refused_with_their_references(tmp_path: Path) -> None:
    path = tmp_path / "formulas.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["Key", "Points"])
    book.active.append(['=CONCAT("A","LI")', 1])
    book.active.append(["BOB", "=B2*2"])
    book.save(path)
    with pytest.raises(SourceError) as caught:
        read_rows(path)
    assert "formulas.xlsx" in str(caught.value) and "A2, B3 are formulas" in str(caught.value)
    with pytest.raises(SourceError, match=r"B3.*no value was saved"):
        read_rows(path, formulas="cached")


def test_cached_formula_values_are_used_only_when_asked(tmp_path: Path) -> None:
    path = cached_formula_book(tmp_path / "cached.xlsx", cached=True)
    with pytest.raises(SourceError, match="B2 is a formula"):
        read_rows(path)
    assert read_rows(path, formulas="cached") == [
        {"Key": "ALI", "Points": 84, "Note": "=typed"},
        {"Key": "BOB", "Points": 3, "Note": ""},
    ]
    uncached = cached_formula_book(tmp_path / "uncached.xlsx", cached=False)
    with pytest.raises(SourceError, match="B2 is a formula; no value was saved"):
        read_rows(uncached, formulas="cached")


def test_a_csv_that_is_not_utf8_names_file_byte_and_line(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes("Key,Name\nALI,Ali\nBOB,Zoë Müller\n".encode("cp1252"))
    with pytest.raises(SourceError) as caught:
        read_rows(path)
    message = str(caught.value)
    assert "roster.csv is not valid utf-8" in message
    assert "byte 0xeb at byte position 23 (line 3)" in message and "encoding" in message
    assert read_rows(path, encoding="cp1252")[1] == {"Key": "BOB", "Name": "Zoë Müller"}
    with pytest.raises(SourceError, match="unknown encoding 'klingon'"):
        read_rows(path, encoding="klingon")


def test_a_utf8_csv_with_a_byte_order_mark_reads_as_is(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("Key,Name,\n".encode("utf-8-sig") + b"ALI,=1+1,\n,,\n")
    assert read_rows(path) == [{"Key": "ALI", "Name": "=1+1"}]


def test_a_missing_sheet_and_other_file_types_are_named(tmp_path: Path) -> None:
    path = cached_formula_book(tmp_path / "book.xlsx", cached=True)
    with pytest.raises(SourceError, match=r"no sheet 'Nope' \(sheets: Roster\)"):
        read_rows(path, sheet="Nope")
    with pytest.raises(SourceError, match=r"not \.txt"):
        read_rows(tmp_path / "notes.txt")
