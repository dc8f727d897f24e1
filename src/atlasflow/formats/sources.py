"""Rows from a spreadsheet file (.xlsx/.xlsm or .csv): the input of a table sync.

A file is data: a formula cell is not evaluated here and its text is never published as a value. By default
a formula is refused with its cell reference; with ``formulas="cached"`` the value Excel saved with the
formula is used, and a formula without one (a workbook written by a program that does not compute) is
refused still. A CSV is decoded strictly (UTF-8 by default, a byte-order mark allowed); a byte that does not
decode is reported with the file name, its position and line, and how to name the right encoding.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal

FormulaMode = Literal["refuse", "cached"]
#: Formula cells named in one error at most.
SHOWN_CELLS = 10


class SourceError(ValueError):
    """A source file that cannot be read as rows; the message names the file and the place."""


def read_rows(
    path: Path, *, sheet: str | None = None, encoding: str | None = None, formulas: FormulaMode = "refuse"
) -> list[dict[str, Any]]:
    """The rows of ``path`` as ``{header: value}``, the first row being the header.

    Args:
        path: An .xlsx/.xlsm or .csv file.
        sheet: With a workbook, the sheet (default: the first).
        encoding: With a CSV, its text encoding (default UTF-8).
        formulas: With a workbook, ``"refuse"`` formula cells or use their ``"cached"`` values.

    Raises:
        SourceError: Unsupported file type, a CSV that does not decode, a missing sheet, formula cells.
    """
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(path, encoding or "utf-8")
    if suffix in (".xlsx", ".xlsm"):
        return _workbook_rows(path, sheet, formulas)
    raise SourceError(f"source must be .xlsx or .csv, not {suffix or 'a file without extension'}: {path.name}")


def _csv_rows(path: Path, encoding: str) -> list[dict[str, Any]]:
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise SourceError(f"source {path.name}: unknown encoding {encoding!r}") from None
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
    records = csv.reader(io.StringIO(text, newline=""))
    return _records(records)


def _workbook_rows(path: Path, sheet: str | None, formulas: FormulaMode) -> list[dict[str, Any]]:
    from openpyxl import load_workbook  # here: every flow-run process imports this module, few read a file

    book = load_workbook(path, read_only=True, data_only=False)
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise SourceError(f"source {path.name} has no sheet {sheet!r} (sheets: {', '.join(book.sheetnames)})")
        name = sheet or book.sheetnames[0]
        raw = [[(c.value, c.data_type) for c in row] for row in book[name].iter_rows()]
    finally:
        book.close()
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
        cached = _cached_values(path, name)
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


def _cached_values(path: Path, sheet: str) -> list[list[Any]]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        return [[c.value for c in row] for row in book[sheet].iter_rows()]
    finally:
        book.close()


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
