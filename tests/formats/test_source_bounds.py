"""Table-sync sources are bounded: a zip bomb is refused before it is opened, rows, columns and cells as they
are read, each with a one-line message naming the file and the limit."""

from __future__ import annotations

import csv
import io
import re
import tracemalloc
import zipfile
from pathlib import Path

import openpyxl
import pytest

from atlasflow.formats.sources import SourceError, SourceLimits, read_rows

LIMITS = SourceLimits()
MIB = 1 << 20
SHEET = "xl/worksheets/sheet1.xml"


def workbook_bytes(*rows: list[object]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def repacked(path: Path, source: bytes, sheet_xml: bytes | None = None, padding_mib: int = 0) -> Path:
    """``source`` packed again, its sheet replaced by ``sheet_xml`` and followed by ``padding_mib`` MiB of spaces."""
    with (
        zipfile.ZipFile(io.BytesIO(source)) as old,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as new,
    ):
        for info in old.infolist():
            data = old.read(info.filename)
            if info.filename != SHEET:
                new.writestr(info.filename, data)
                continue
            with new.open(SHEET, "w", force_zip64=True) as part:
                part.write(sheet_xml or data)
                for _ in range(padding_mib):
                    part.write(b" " * MIB)
    return path


def test_a_tiny_workbook_claiming_a_million_rows_by_a_million_columns_is_refused_at_the_row_limit(
    tmp_path: Path,
) -> None:
    source = workbook_bytes(["Key", "Name"], ["ALI", "Ali"])
    with zipfile.ZipFile(io.BytesIO(source)) as book:
        xml = book.read(SHEET).decode()
    xml = re.sub(r'<dimension ref="[^"]*"/>', '<dimension ref="A1:XFD1048576"/>', xml)
    last = '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'
    path = repacked(tmp_path / "tiny.xlsx", source, xml.replace("</sheetData>", last + "</sheetData>").encode())
    assert path.stat().st_size < 8_000
    tracemalloc.start()
    try:
        with pytest.raises(SourceError) as caught:
            read_rows(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (
        str(caught.value)
        == f"source tiny.xlsx, sheet 'Sheet': more than {LIMITS.rows:,} rows (empty rows below the data count too)"
    )
    assert peak < 64 * MIB


def test_a_zip_bomb_workbook_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    path = repacked(tmp_path / "bomb.xlsx", workbook_bytes(["Key"], ["ALI"]), padding_mib=32)
    assert path.stat().st_size < 64_000
    with pytest.raises(SourceError, match=rf"^source bomb.xlsx: part {SHEET} would unzip to [\d,]+ times its packed"):
        read_rows(path)
    small = repacked(tmp_path / "big.xlsx", workbook_bytes(["Key"], ["ALI"]), padding_mib=2)
    with pytest.raises(SourceError, match=r"^source big.xlsx would unzip to [\d,]+ bytes, more than the 1 MiB allowed"):
        read_rows(small, limits=SourceLimits(unpacked_bytes=MIB))


def test_workbook_cells_and_columns_past_their_limits_are_named(tmp_path: Path) -> None:
    source = workbook_bytes(["Key", "Note"], ["ALI", "x" * LIMITS.cell_chars])  # openpyxl writes no more
    with zipfile.ZipFile(io.BytesIO(source)) as book:
        xml = book.read(SHEET).replace(b"x" * LIMITS.cell_chars, b"x" * 40_000)  # as another program may
    long = repacked(tmp_path / "long.xlsx", source, xml)
    with pytest.raises(SourceError, match=r"^source long.xlsx, sheet 'Sheet', cell B2: 40,000 characters, more than"):
        read_rows(long)
    wide = tmp_path / "wide.xlsx"
    wide.write_bytes(workbook_bytes(["Key", *([None] * LIMITS.columns), "Late"]))
    with pytest.raises(
        SourceError, match=r"^source wide.xlsx, sheet 'Sheet': a heading in column 202, past column 200"
    ):
        read_rows(wide)
    assert read_rows(long, limits=SourceLimits(cell_chars=40_000))[0]["Note"] == "x" * 40_000


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows(rows)
    return path


def test_csv_lines_cells_and_columns_past_their_limits_are_named(tmp_path: Path) -> None:
    many = write_csv(tmp_path / "many.csv", [["Key"]] + [[f"K{n}"] for n in range(LIMITS.rows)])
    with pytest.raises(SourceError, match=r"^source many.csv: more than 20,000 lines"):
        read_rows(many)
    long = write_csv(tmp_path / "long.csv", [["Key", "Note"], ["ALI", "x" * 40_000]])
    with pytest.raises(SourceError, match=r"^source long.csv, line 2, column 2: 40,000 characters, more than"):
        read_rows(long)
    huge = write_csv(tmp_path / "huge.csv", [["Key", "Note"], ["ALI", "x" * 200_000]])  # past csv's own limit
    with pytest.raises(SourceError, match=r"^source huge.csv, line 2: field larger than field limit"):
        read_rows(huge, limits=SourceLimits(cell_chars=10**6))
    wide = write_csv(tmp_path / "wide.csv", [["Key", *([""] * LIMITS.columns), "Late"]])
    with pytest.raises(SourceError, match=r"^source wide.csv, line 1: a value past column 200"):
        read_rows(wide)
    with pytest.raises(SourceError, match=r"^source long.csv: [\d,]+ bytes, more than the 10,000 bytes allowed"):
        read_rows(long, limits=SourceLimits(unpacked_bytes=10_000))
    assert len(read_rows(many, limits=SourceLimits(rows=LIMITS.rows + 1))) == LIMITS.rows
