"""Stage "files": xlsx workbooks of any report, streamed (:mod:`atlasflow.formats.xlsx_stream`) and written atomically.

What every report's sheets are made of: :func:`write_workbook` (a temporary file that replaces the target only
once complete), :class:`Table` (a sheet under a frozen header, keys as links up to Excel's limit), cell values
(:func:`text_value`, :func:`datetime_value`, :func:`date_value`, :func:`any_value`; text cleaned by
:func:`clean_text`, so Jira text such as ``=HYPERLINK(...)`` stays text) and :func:`write_count_table` (a count
table with its bar chart, for Summary sheets). The export's own layout is :mod:`atlasflow.reports.sheets`.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from math import ceil, isfinite
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from atlasflow.errors import ConfigurationError
from atlasflow.formats.excel_limits import MAX_CELL_CHARS, MAX_ROWS_PER_SHEET
from atlasflow.formats.excel_limits import MAX_LINKS_PER_SHEET as MAX_LINKS_PER_SHEET  # read here: tests lower it
from atlasflow.formats.jira_values import Link
from atlasflow.formats.xlsx_stream import (
    STYLE_DATE,
    STYLE_DATETIME,
    STYLE_HEADER,
    STYLE_LINK,
    BarChart,
    Sheet,
    StreamingWorkbook,
    bool_cell,
    chart_range,
    column_letters,
    date_cell,
    number_cell,
    text_cell,
)

T = TypeVar("T")

DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
DATE_FORMAT = "yyyy-mm-dd"

_WIDTHS = {
    "Key": 14,
    "Summary": 60,
    "Type": 14,
    "Status": 16,
    "Priority": 10,
    "Assignee": 22,
    "Created": 17,
    "Updated": 17,
    "Parent": 14,
    "Root": 14,
    "Level": 7,
    "Relation": 16,
    "Change": 10,
    "Field": 18,
    "Old": 30,
    "New": 30,
}
_EXTRA_WIDTH = 18

# Characters an .xlsx file cannot hold: C0 controls other than \t \n \r, lone
# surrogates (not encodable as UTF-8) and the XML non-characters U+FFFE/U+FFFF.
_INVALID_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

_CHART_ROW_PX = 20
_CHART_MIN_PX = 288


def clean_text(text: str) -> str:
    """Return ``text`` as Excel can store it.

    Removes the characters an .xlsx file cannot hold and cuts the text to
    :data:`MAX_CELL_CHARS` UTF-16 code units (never inside a surrogate pair).
    """
    if not (text.isascii() and text.isprintable()):  # fast path for the common case
        text = _INVALID_CHARS.sub("", text)
    if len(text) * 2 > MAX_CELL_CHARS:  # cheap bound: a character is at most 2 UTF-16 units
        encoded = text.encode("utf-16-le")
        if len(encoded) > 2 * MAX_CELL_CHARS:
            text = encoded[: 2 * MAX_CELL_CHARS].decode("utf-16-le", errors="ignore")
    return text


def excel_datetime(value: datetime) -> datetime:
    """Return ``value`` as a naive UTC datetime (naive values are taken as UTC already)."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def text_value(ref: str, value: str | None) -> str:
    return "" if value is None else text_cell(ref, clean_text(value))


def datetime_value(ref: str, value: datetime | None) -> str:
    return "" if value is None else date_value(ref, value)


def date_value(ref: str, value: date) -> str:
    """A date cell; before 1900, which Excel has no serial numbers for, the date as ISO text."""
    if isinstance(value, datetime):
        if excel_datetime(value).year < 1900:
            return text_cell(ref, excel_datetime(value).strftime("%Y-%m-%d %H:%M"))
        return date_cell(ref, value, STYLE_DATETIME)
    if value.year < 1900:
        return text_cell(ref, value.isoformat())
    return date_cell(ref, value, STYLE_DATE)


def any_value(ref: str, value: Any) -> str:
    """A loosely typed value: numbers as numbers, dates as dates, anything else as text."""
    if value is None:
        return ""
    if type(value) is str:
        return text_cell(ref, clean_text(value))
    if isinstance(value, bool):
        return bool_cell(ref, value)
    if isinstance(value, int | float) and isfinite(value):
        return number_cell(ref, value)
    if isinstance(value, date):
        return date_value(ref, value)
    if isinstance(value, Link):
        return text_value(ref, value.text)
    if isinstance(value, list | tuple):
        return text_value(ref, ", ".join(str(item) for item in value))
    return text_value(ref, str(value))


class Table:
    """A sheet filled row after row under a frozen bold header, counting its hyperlinks."""

    def __init__(self, book: StreamingWorkbook, name: str, columns: Sequence[str], browse_url: str | None) -> None:
        self.sheet = book.add_sheet(
            name,
            len(columns),
            [_WIDTHS.get(title, _EXTRA_WIDTH) for title in columns],
            freeze_header=True,
            autofilter=True,
        )
        self.letters = column_letters(len(columns))
        self.browse_url = browse_url
        self.last_row = 0
        self.links_written = 0
        self.links_dropped = 0
        self.sheet.write_row(
            0,
            [
                text_cell(f"{letter}1", clean_text(title), STYLE_HEADER)
                for letter, title in zip(self.letters, columns, strict=True)
            ],
        )

    def new_row(self) -> str:
        """Return the number (1-based, as in cell references) of the next data row.

        Raises:
            ValueError: The sheet is full: Excel would drop the row.
        """
        if self.last_row + 1 >= MAX_ROWS_PER_SHEET:
            raise ConfigurationError(f"more rows than Excel's {MAX_ROWS_PER_SHEET:,} rows per sheet")
        self.last_row += 1
        return str(self.last_row + 1)

    def write(self, cells: list[str]) -> None:
        """Write the cells of the row :meth:`new_row` returned."""
        self.sheet.write_row(self.last_row, cells)

    def value(self, ref: str, value: Any) -> str:
        """A field value; a :class:`Link` as a hyperlink while the sheet may hold more links."""
        if isinstance(value, Link):
            if self.links_written < MAX_LINKS_PER_SHEET and self.sheet.add_link(ref, value.url):
                self.links_written += 1
                return text_cell(ref, clean_text(value.text), STYLE_LINK)
            return text_value(ref, value.text)
        return any_value(ref, value)

    def key(self, ref: str, key: str | None) -> str:
        """An issue key, as a link to the issue while the sheet may hold more links."""
        if key is None:
            return ""
        text = clean_text(key)
        if self.browse_url is not None:
            if self.links_written < MAX_LINKS_PER_SHEET and self.sheet.add_link(
                ref, self.browse_url + quote(text, safe="")
            ):
                self.links_written += 1
                return text_cell(ref, text, STYLE_LINK)
            self.links_dropped += 1
        return text_cell(ref, text)


def write_workbook(path: Path, fill: Callable[[StreamingWorkbook], T]) -> T:
    """Write a workbook with ``fill`` (which adds its sheets and closes the book) and atomically replace
    ``path`` with it; return what ``fill`` returns.

    The workbook is written to a hidden temporary file in the same directory first, which replaces ``path``
    only once complete; on error the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{secrets.token_hex(8)}.xlsx")
    try:
        with temporary.open("xb") as file:
            book = StreamingWorkbook(file)
            try:
                result = fill(book)
            finally:
                book.discard()  # the sheets' temporary files, also when the writing fails
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return result


def write_count_table(
    sheet: Sheet,
    first_row: int,
    header: str,
    title: str,
    counts: Sequence[tuple[str | int, int]],
    horizontal: bool,
) -> int:
    """Write a two-column count table and a chart of it beside; return the next free row."""
    number = first_row + 1
    sheet.write_row(
        first_row, [text_cell(f"A{number}", header, STYLE_HEADER), text_cell(f"B{number}", "Issues", STYLE_HEADER)]
    )
    for row, (label, count) in enumerate(counts, start=first_row + 1):
        sheet.write_row(row, [any_value(f"A{row + 1}", label), number_cell(f"B{row + 1}", count)])
    height = max(_CHART_MIN_PX, 100 + 22 * len(counts))
    if counts:
        last_row = first_row + len(counts)
        sheet.charts.append(
            BarChart(
                title=title,
                categories=chart_range(sheet.name, 0, first_row + 1, last_row),
                values=chart_range(sheet.name, 1, first_row + 1, last_row),
                text_categories=not all(isinstance(label, int) for label, _ in counts),
                horizontal=horizontal,
                anchor=(first_row, 3),
                size=(520, height),
            )
        )
    return first_row + max(len(counts) + 2, ceil(height / _CHART_ROW_PX) + 1)
