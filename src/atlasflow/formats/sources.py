"""Rows from a spreadsheet file (.xlsx/.xlsm or .csv): the input of a table sync.

A file is data: a formula cell is not evaluated here and its text is never published as a value. By default
a formula is refused with its cell reference; with ``formulas="cached"`` the value Excel saved with the
formula is used, and a formula without one (a workbook written by a program that does not compute) is
refused still. A CSV is decoded strictly (UTF-8 by default, a byte-order mark allowed); a byte that does not
decode is reported with the file name, its position and line, and how to name the right encoding.

A file is bounded (:class:`SourceLimits`): a workbook whose parts would unzip to more than the limit, or
far more than its packed size (a zip bomb), is refused before it is opened; rows, columns and cell sizes
are counted as they are read, and the first one past its limit ends the reading with a one-line message.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal

from atlasflow.errors import ConfigurationError
from atlasflow.formats.excel_limits import MAX_CELL_CHARS

FormulaMode = Literal["refuse", "cached"]
#: Formula cells named in one error at most.
SHOWN_CELLS = 10


class SourceError(ConfigurationError):
    """A source file that cannot be read as rows; the message names the file and the place."""


@dataclass(frozen=True)
class SourceLimits:
    """What a source file may hold; past any of these it is refused, naming the limit.

    Attributes:
        rows: Rows of the sheet or lines of the CSV, the header and empty rows included (a table on a page
            holds far fewer).
        columns: Columns with a value.
        cell_chars: Characters in one cell (Excel's own limit).
        unpacked_bytes: A workbook's parts once unzipped, as its zip directory declares them (a part cannot
            unzip to more than it declares); the size of a CSV.
        ratio: How many times its packed size a workbook part over 1 MiB may declare (spreadsheet XML packs
            some 5 to 30 times; a zip bomb about 1,000).
    """

    rows: int = 20_000
    columns: int = 200
    cell_chars: int = MAX_CELL_CHARS
    unpacked_bytes: int = 256 * 2**20
    ratio: int = 200


def read_rows(
    path: Path,
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    formulas: FormulaMode = "refuse",
    limits: SourceLimits = SourceLimits(),
) -> list[dict[str, Any]]:
    """The rows of ``path`` as ``{header: value}``, the first row being the header.

    Args:
        path: An .xlsx/.xlsm or .csv file.
        sheet: With a workbook, the sheet (default: the first).
        encoding: With a CSV, its text encoding (default UTF-8).
        formulas: With a workbook, ``"refuse"`` formula cells or use their ``"cached"`` values.
        limits: What the file may hold.

    Raises:
        SourceError: Unsupported file type, a CSV that does not decode, a missing sheet, formula cells, a
            file past one of ``limits``.
    """
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(path, encoding or "utf-8", limits)
    if suffix in (".xlsx", ".xlsm"):
        return _workbook_rows(path, sheet, formulas, limits)
    raise SourceError(f"source must be .xlsx or .csv, not {suffix or 'a file without extension'}: {path.name}")


def _csv_rows(path: Path, encoding: str, limits: SourceLimits) -> list[dict[str, Any]]:
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise SourceError(f"source {path.name}: unknown encoding {encoding!r}") from None
    size = path.stat().st_size
    if size > limits.unpacked_bytes:
        raise SourceError(f"source {path.name}: {size:,} bytes, more than the {_size(limits.unpacked_bytes)} allowed")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig" if codec == "utf-8" else codec)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SourceError(
            f"source {path.name} is not valid {encoding}: byte 0x{data[exc.start]:02x} at byte position "
            f"{exc.start} (line {line}) does not decode; give the file's encoding as the `encoding` "
            f'parameter (a CSV saved by Excel on Windows is often "cp1252"), or save it as UTF-8'
        ) from None
    return _records(_csv_lines(path, csv.reader(io.StringIO(text, newline="")), limits))


def _csv_lines(path: Path, reader: Any, limits: SourceLimits) -> Iterator[list[str]]:
    """The lines of ``reader`` (a ``csv.reader``), refused at the first one past ``limits``."""
    try:
        for number, line in enumerate(reader, start=1):
            where = f"source {path.name}, line {number}"
            if number > limits.rows:
                raise SourceError(f"source {path.name}: more than {limits.rows:,} lines (a table sync takes fewer)")
            if any(line[limits.columns :]):
                raise SourceError(f"{where}: a value past column {limits.columns} (more columns than allowed)")
            for column, cell in enumerate(line, start=1):
                if len(cell) > limits.cell_chars:
                    raise SourceError(f"{where}, column {column}: {_too_long(cell, limits)}")
            yield line
    except csv.Error as exc:
        raise SourceError(f"source {path.name}, line {reader.line_num}: {exc}") from None


def _workbook_rows(path: Path, sheet: str | None, formulas: FormulaMode, limits: SourceLimits) -> list[dict[str, Any]]:
    from openpyxl import load_workbook  # here: every flow-run process imports this module, few read a file

    _check_package(path, limits)
    try:
        book = load_workbook(path, read_only=True, data_only=False)
        try:
            if sheet is not None and sheet not in book.sheetnames:
                names = ", ".join(book.sheetnames)
                raise SourceError(f"source {path.name} has no sheet {sheet!r} (sheets: {names})")
            name = sheet or book.sheetnames[0]
            raw = _sheet_cells(path, book, name, limits)
        finally:
            book.close()
    except zipfile.BadZipFile as exc:  # e.g. a part that unzips to other than it declares
        raise SourceError(f"source {path.name} is a damaged workbook: {exc}") from None
    formula_cells = [(r, c) for r, row in enumerate(raw) for c, (_, kind) in enumerate(row) if kind == "f"]
    values = [[value for value, _ in row] for row in raw]
    if formula_cells:
        if formulas != "cached":
            raise _formula_error(
                path,
                name,
                formula_cells,
                'it is not evaluated here; pass formulas="cached" '
                "to use the values Excel saved, or paste the values into the cells",
            )
        cached = _cached_values(path, name, limits)
        missing = []
        for r, c in formula_cells:
            value = cached[r][c] if r < len(cached) and c < len(cached[r]) else None
            values[r][c] = value
            if value is None:
                missing.append((r, c))
        if missing:
            raise _formula_error(
                path,
                name,
                missing,
                "no value was saved with it (open and save the file in Excel, or paste the values into the cells)",
            )
    return _records(values)


def _cached_values(path: Path, sheet: str, limits: SourceLimits) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
        try:
            return [[value for value, _ in row] for row in _sheet_cells(path, book, sheet, limits)]
        finally:
            book.close()
    except zipfile.BadZipFile as exc:
        raise SourceError(f"source {path.name} is a damaged workbook: {exc}") from None


def _check_package(path: Path, limits: SourceLimits) -> None:
    """Refuse a workbook whose zip directory declares parts too large, or packed too densely, to be a
    spreadsheet (before any part is unzipped)."""
    try:
        with zipfile.ZipFile(path) as package:
            parts = package.infolist()
    except zipfile.BadZipFile:
        raise SourceError(f"source {path.name} is not an .xlsx workbook (not a zip package)") from None
    total = sum(part.file_size for part in parts)
    if total > limits.unpacked_bytes:
        raise SourceError(
            f"source {path.name} would unzip to {total:,} bytes, more than the {_size(limits.unpacked_bytes)} "
            "allowed; not opened"
        )
    for part in parts:
        if part.file_size > 2**20 and part.file_size > limits.ratio * max(part.compress_size, 1):
            ratio = part.file_size // max(part.compress_size, 1)
            raise SourceError(
                f"source {path.name}: part {part.filename} would unzip to {ratio:,} times its packed size "
                f"(a zip bomb? more than {limits.ratio} times is refused); not opened"
            )


def _sheet_cells(path: Path, book: Any, sheet: str, limits: SourceLimits) -> list[list[tuple[Any, str]]]:
    """The sheet's cells as ``(value, data type)`` by row, up to its last value, read no further than ``limits``.

    Columns are read as far as the header names them (a value in an unnamed column is dropped anyway), so a
    sheet claiming a million rows by 16,384 columns costs little.
    """
    where = f"source {path.name}, sheet {sheet!r}"
    worksheet = book[sheet]
    header = _row_cells(where, next(worksheet.iter_rows(max_row=1), ()), 1, limits)
    width = len(header)
    if width > limits.columns:
        raise SourceError(f"{where}: a heading in column {width}, past column {limits.columns} (too many columns)")
    rows = [header]
    for number, row in enumerate(
        worksheet.iter_rows(min_row=2, max_row=limits.rows + 1, max_col=max(width, 1)), start=2
    ):
        if number > limits.rows:
            raise SourceError(f"{where}: more than {limits.rows:,} rows (empty rows below the data count too)")
        rows.append(_row_cells(where, row, number, limits))
    return rows


def _row_cells(where: str, row: Iterable[Any], number: int, limits: SourceLimits) -> list[tuple[Any, str]]:
    """One row's ``(value, data type)`` up to its last value; a text longer than ``limits`` is refused."""
    from openpyxl.utils import get_column_letter

    cells: list[tuple[Any, str]] = []
    last = 0
    for column, cell in enumerate(row, start=1):
        value = cell.value
        if value is None:
            cells.append((None, "n"))
            continue
        if isinstance(value, str) and len(value) > limits.cell_chars:
            raise SourceError(f"{where}, cell {get_column_letter(column)}{number}: {_too_long(value, limits)}")
        cells.append((value, cell.data_type))
        last = column
    return cells[:last]


def _too_long(cell: str, limits: SourceLimits) -> str:
    return f"{len(cell):,} characters, more than the {limits.cell_chars:,} a cell may hold"


def _size(size: int) -> str:
    return f"{size // 2**20:,} MiB" if size % 2**20 == 0 else f"{size:,} bytes"


def _formula_error(path: Path, sheet: str, cells: list[tuple[int, int]], why: str) -> SourceError:
    from openpyxl.utils import get_column_letter

    refs = [f"{get_column_letter(c + 1)}{r + 1}" for r, c in cells[:SHOWN_CELLS]]
    more = f" and {len(cells) - SHOWN_CELLS} more" if len(cells) > SHOWN_CELLS else ""
    what = "is a formula" if len(cells) == 1 else "are formulas"
    return SourceError(f"source {path.name}, sheet {sheet!r}: cell(s) {', '.join(refs)}{more} {what}; {why}")


def _records(rows: Iterable[Iterable[Any]]) -> list[dict[str, Any]]:
    """Rows as ``{header: value}`` below the first row; columns without a header and empty rows dropped."""
    lines: Iterator[Iterable[Any]] = iter(rows)
    header = [None if h is None else str(h).strip() for h in next(lines, [])]
    named = [(i, h) for i, h in enumerate(header) if h]
    records = []
    for line in lines:
        cells = list(line)
        record = {h: _plain(cells[i]) if i < len(cells) else None for i, h in named}
        if any(v not in (None, "") for v in record.values()):
            records.append(record)
    return records


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value
