"""Streaming Excel export of issue trees.

The workbook is written with xlsxwriter in ``constant_memory`` mode: every row goes
to disk as soon as the next one starts, so memory does not grow with the number of
issues; only the counters shown on the Summary sheet are kept. Every text cell is
written with ``write_string``: Jira text such as ``=HYPERLINK(...)`` stays text.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from math import ceil, isfinite
from pathlib import Path
from typing import Any
from urllib.parse import quote

from xlsxwriter import Workbook
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from formats.changes import ChangeReport, FieldChange, describe_changes
from formats.records import ExportRow

MAX_LINKS_PER_SHEET = 65_530
"""Excel keeps at most this many hyperlinks per worksheet; further keys are plain text."""

MAX_CELL_CHARS = 32_767
"""Excel's limit on the length of a cell, in UTF-16 code units."""

MAX_ROWS_PER_SHEET = 1_048_576
"""Excel's limit on the rows of a worksheet, header included."""

DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
DATE_FORMAT = "yyyy-mm-dd"

ROOT_COLUMNS: tuple[str, ...] = (
    "Key",
    "Summary",
    "Type",
    "Status",
    "Priority",
    "Assignee",
    "Created",
    "Updated",
)
CHILD_COLUMNS: tuple[str, ...] = (*ROOT_COLUMNS, "Parent", "Root", "Level", "Relation")
CHANGE_COLUMNS: tuple[str, ...] = ("Change", "Key", "Summary", "Field", "Old", "New")

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


@dataclass
class WorkbookStats:
    """What :func:`write_export_workbook` wrote.

    Attributes:
        path: The workbook written.
        root_rows: Rows on the "Root Issues" sheet.
        child_rows: Rows on the "Child Issues" sheet.
        links_written: Keys written as hyperlinks, all sheets together.
        links_dropped: Keys written as plain text because a sheet reached
            :data:`MAX_LINKS_PER_SHEET` (or Excel refused the URL).
    """

    path: Path
    root_rows: int
    child_rows: int
    links_written: int
    links_dropped: int


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


@dataclass(frozen=True)
class _Formats:
    header: Format
    title: Format
    datetime: Format
    date: Format


class _Cells:
    """Typed, safe cell writing on one worksheet."""

    def __init__(self, worksheet: Worksheet, formats: _Formats) -> None:
        self.worksheet = worksheet
        self.formats = formats

    def text(self, row: int, col: int, value: str | None) -> None:
        if value is not None:
            self.worksheet.write_string(row, col, clean_text(value))

    def datetime(self, row: int, col: int, value: datetime | None) -> None:
        if value is not None:
            self.worksheet.write_datetime(row, col, excel_datetime(value), self.formats.datetime)

    def value(self, row: int, col: int, value: Any) -> None:
        """Write a loosely typed value: numbers as numbers, dates as dates, anything else as text."""
        if value is None:
            return
        if isinstance(value, str):
            self.text(row, col, value)
        elif isinstance(value, bool):
            self.worksheet.write_boolean(row, col, value)
        elif isinstance(value, int | float) and isfinite(value):
            self.worksheet.write_number(row, col, value)
        elif isinstance(value, datetime):
            self.datetime(row, col, value)
        elif isinstance(value, date):
            self.worksheet.write_datetime(row, col, value, self.formats.date)
        elif isinstance(value, list | tuple):
            self.text(row, col, ", ".join(str(item) for item in value))
        else:
            self.text(row, col, str(value))


class _Sheet(_Cells):
    """A table filled row after row under a frozen bold header, counting its hyperlinks."""

    def __init__(
        self,
        worksheet: Worksheet,
        formats: _Formats,
        columns: Sequence[str],
        browse_url: str | None,
    ) -> None:
        super().__init__(worksheet, formats)
        self.columns = len(columns)
        self.browse_url = browse_url
        self.last_row = 0
        self.links_written = 0
        self.links_dropped = 0
        for col, title in enumerate(columns):
            worksheet.set_column(col, col, _WIDTHS.get(title, _EXTRA_WIDTH))
            worksheet.write_string(0, col, clean_text(title), formats.header)
        worksheet.freeze_panes(1, 0)

    def new_row(self) -> int:
        """Return the index of the next data row.

        Raises:
            ValueError: The sheet is full: Excel would drop the row.
        """
        if self.last_row + 1 >= MAX_ROWS_PER_SHEET:
            raise ValueError(f"more rows than Excel's {MAX_ROWS_PER_SHEET:,} rows per sheet")
        self.last_row += 1
        return self.last_row

    def finish(self) -> None:
        """Put an autofilter over the header and every written row."""
        self.worksheet.autofilter(0, 0, self.last_row, self.columns - 1)

    def key(self, row: int, col: int, key: str | None) -> None:
        """Write an issue key, as a link to the issue while the sheet may hold more links."""
        if key is None:
            return
        text = clean_text(key)
        if self.browse_url is not None:
            if self.links_written < MAX_LINKS_PER_SHEET:
                url = self.browse_url + quote(text, safe="")
                if self.worksheet.write_url(row, col, url, string=text) == 0:
                    self.links_written += 1
                    return
            self.links_dropped += 1
        self.worksheet.write_string(row, col, text)


def write_export_workbook(
    path: Path,
    rows: Iterable[ExportRow],
    *,
    extra_columns: Sequence[str],
    query: str,
    generated_at: datetime,
    browse_url: str | None,
    changes: ChangeReport | None = None,
    changes_note: str | None = None,
) -> WorkbookStats:
    """Write an export workbook, streaming the rows, and atomically replace ``path`` with it.

    Sheets: "Root Issues" (level 0), "Child Issues" (level >= 1), "Changes" (only
    when ``changes`` or ``changes_note`` is given) and "Summary" (scope, counts by
    status, type and level with charts, and the change counts).

    Args:
        path: Where the workbook goes. It is written to a hidden temporary file in the
            same directory first, which replaces ``path`` only once complete; on error
            the temporary file is removed and ``path`` is left untouched.
        rows: Roots and descendants in any order, iterated once.
        extra_columns: Titles of ``ExportRow.extra`` to add as columns, in this order.
        query: Human description of the scope (JQL, roots).
        generated_at: When the export was made (naive values are taken as UTC).
        browse_url: Prefix making keys links (e.g. ``https://acme.atlassian.net/browse/``),
            or ``None`` for no links.
        changes: Differences from the previous export, listed on a "Changes" sheet.
        changes_note: A note on the changes, e.g. why there is nothing to compare with.

    Returns:
        What was written.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{secrets.token_hex(8)}.xlsx")
    try:
        # xlsxwriter keeps each sheet's rows in named temporary files that only close()
        # removes: give it a scratch directory that goes away even when the export fails.
        with tempfile.TemporaryDirectory(prefix="atlasflow-xlsx-", ignore_cleanup_errors=True) as scratch:
            workbook = Workbook(str(temporary), {"constant_memory": True, "tmpdir": scratch})
            stats = _fill_workbook(
                workbook, rows, extra_columns, query, generated_at, browse_url, changes, changes_note
            )
        with temporary.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return WorkbookStats(path, *stats)


def _fill_workbook(
    workbook: Workbook,
    rows: Iterable[ExportRow],
    extra_columns: Sequence[str],
    query: str,
    generated_at: datetime,
    browse_url: str | None,
    changes: ChangeReport | None,
    changes_note: str | None,
) -> tuple[int, int, int, int]:
    """Fill and close the workbook; return root rows, child rows, links written, links dropped."""
    formats = _Formats(
        header=workbook.add_format({"bold": True, "bottom": 1, "bg_color": "#DDEBF7"}),
        title=workbook.add_format({"bold": True, "font_size": 14}),
        datetime=workbook.add_format({"num_format": DATETIME_FORMAT}),
        date=workbook.add_format({"num_format": DATE_FORMAT}),
    )
    roots = _Sheet(workbook.add_worksheet("Root Issues"), formats, (*ROOT_COLUMNS, *extra_columns), browse_url)
    children = _Sheet(workbook.add_worksheet("Child Issues"), formats, (*CHILD_COLUMNS, *extra_columns), browse_url)

    counts = _Counts()
    for row in rows:
        counts.add(row)
        if row.level == 0:
            _write_row(roots, row, extra_columns, child=False)
        else:
            _write_row(children, row, extra_columns, child=True)
    roots.finish()
    children.finish()
    sheets = [roots, children]
    if changes is not None:
        changes_sheet = _Sheet(workbook.add_worksheet("Changes"), formats, CHANGE_COLUMNS, browse_url)
        sheets.append(_write_changes(changes_sheet, changes))
    elif changes_note:
        note_sheet = workbook.add_worksheet("Changes")
        note_sheet.set_column(0, 0, 100)
        _Cells(note_sheet, formats).text(0, 0, changes_note)

    links_dropped = sum(sheet.links_dropped for sheet in sheets)
    facts: list[tuple[str, str | int | datetime]] = [
        ("Scope", query),
        ("Generated (UTC)", generated_at),
        ("Root issues", roots.last_row),
        ("Child issues", children.last_row),
        ("Total issues", roots.last_row + children.last_row),
    ]
    if changes is not None:
        facts.append(("Changes", describe_changes(changes)))
    if changes_note:
        facts.append(("Changes note" if changes is not None else "Changes", changes_note))
    if links_dropped:
        facts.append((f"Keys not linked (Excel keeps {MAX_LINKS_PER_SHEET:,} links a sheet)", links_dropped))
    _write_summary(workbook, _Cells(workbook.add_worksheet("Summary"), formats), facts, counts)
    workbook.close()
    links_written = sum(sheet.links_written for sheet in sheets)
    return roots.last_row, children.last_row, links_written, links_dropped


def _write_row(sheet: _Sheet, row: ExportRow, extra_columns: Sequence[str], *, child: bool) -> None:
    index = sheet.new_row()
    sheet.key(index, 0, row.key)
    sheet.text(index, 1, row.summary)
    sheet.text(index, 2, row.type)
    sheet.text(index, 3, row.status)
    sheet.text(index, 4, row.priority)
    sheet.text(index, 5, row.assignee)
    sheet.datetime(index, 6, row.created)
    sheet.datetime(index, 7, row.updated)
    col = len(ROOT_COLUMNS)
    if child:
        sheet.key(index, 8, row.parent)
        sheet.key(index, 9, row.root)
        sheet.worksheet.write_number(index, 10, row.level)
        sheet.text(index, 11, row.relation)
        col = len(CHILD_COLUMNS)
    extra = row.extra
    for offset, title in enumerate(extra_columns):
        sheet.value(index, col + offset, extra.get(title))


def _write_changes(sheet: _Sheet, changes: ChangeReport) -> _Sheet:
    """Fill the "Changes" table: one row per changed field, one per new or gone issue."""
    for issue in changes.ordered():
        fields: list[FieldChange | None] = list(issue.changes) or [None]
        for change in fields:
            index = sheet.new_row()
            sheet.text(index, 0, issue.kind)
            sheet.key(index, 1, issue.key)
            sheet.text(index, 2, issue.summary)
            if change is not None:
                sheet.text(index, 3, change.field)
                sheet.value(index, 4, change.old)
                sheet.value(index, 5, change.new)
    sheet.finish()
    return sheet


class _Counts:
    """Issue counts by status, type and level, for the Summary sheet."""

    def __init__(self) -> None:
        self.status: Counter[str] = Counter()
        self.type: Counter[str] = Counter()
        self.level: Counter[int] = Counter()

    def add(self, row: ExportRow) -> None:
        self.status[row.status or "(none)"] += 1
        self.type[row.type or "(none)"] += 1
        self.level[row.level] += 1


def _write_summary(
    workbook: Workbook,
    cells: _Cells,
    facts: Sequence[tuple[str, str | int | datetime]],
    counts: _Counts,
) -> None:
    """Fill the "Summary" sheet: the facts, then per dimension a count table with its chart beside."""
    worksheet, formats = cells.worksheet, cells.formats
    worksheet.set_column(0, 0, 28)
    worksheet.set_column(1, 1, 14)
    worksheet.set_column(2, 2, 3)
    worksheet.write_string(0, 0, "Jira export", formats.title)
    for row, (label, value) in enumerate(facts, start=1):
        worksheet.write_string(row, 0, label, formats.header)
        cells.value(row, 1, value)
    row = len(facts) + 2
    tables: list[tuple[str, str, Sequence[tuple[str | int, int]], str]] = [
        ("Status", "Issues by status", _by_count(counts.status), "bar"),
        ("Type", "Issues by type", _by_count(counts.type), "bar"),
        ("Level (0 = roots)", "Issues by level", sorted(counts.level.items()), "column"),
    ]
    for header, title, table, chart_type in tables:
        row = _write_count_table(workbook, cells, row, header, title, table, chart_type)


def _by_count(counter: Counter[str]) -> list[tuple[str | int, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def _write_count_table(
    workbook: Workbook,
    cells: _Cells,
    first_row: int,
    header: str,
    title: str,
    counts: Sequence[tuple[str | int, int]],
    chart_type: str,
) -> int:
    """Write a two-column count table and a chart of it beside; return the next free row."""
    worksheet = cells.worksheet
    worksheet.write_string(first_row, 0, header, cells.formats.header)
    worksheet.write_string(first_row, 1, "Issues", cells.formats.header)
    for row, (label, count) in enumerate(counts, start=first_row + 1):
        cells.value(row, 0, label)
        worksheet.write_number(row, 1, count)
    height = max(_CHART_MIN_PX, 100 + 22 * len(counts))
    if counts:
        last_row = first_row + len(counts)
        chart = workbook.add_chart({"type": chart_type})
        chart.add_series(
            {
                "name": title,
                "categories": ["Summary", first_row + 1, 0, last_row, 0],
                "values": ["Summary", first_row + 1, 1, last_row, 1],
                "data_labels": {"value": True},
            }
        )
        chart.set_title({"name": title})
        chart.set_legend({"none": True})
        chart.set_size({"width": 520, "height": height})
        worksheet.insert_chart(first_row, 3, chart)
    return first_row + max(len(counts) + 2, ceil(height / _CHART_ROW_PX) + 1)


def read_export_rows(path: Path) -> Iterator[ExportRow]:
    """The issues of an export workbook written by :func:`write_export_workbook`, back as rows.

    Columns after the standard ones come back in ``extra``; dates come back as aware UTC datetimes.

    Raises:
        ValueError: The file is not an atlasflow export (a sheet or a standard column is missing).
    """
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True)
    try:
        for sheet, columns in (("Root Issues", ROOT_COLUMNS), ("Child Issues", CHILD_COLUMNS)):
            if sheet not in workbook.sheetnames:
                raise ValueError(f"{path} is not an atlasflow export: no sheet {sheet!r}")
            lines = workbook[sheet].iter_rows(values_only=True)
            header = [str(h) for h in next(lines, ())]
            missing = [c for c in columns if c not in header]
            if missing:
                raise ValueError(f"{path}: sheet {sheet!r} lacks the column(s) {missing}")
            for line in lines:
                yield _row_from_cells(dict(zip(header, (_aware(v) for v in line), strict=False)), columns)
    finally:
        workbook.close()


def _aware(value: Any) -> Any:
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value


def _row_from_cells(cells: dict[str, Any], columns: Sequence[str]) -> ExportRow:
    level = cells.get("Level")
    return ExportRow(
        key=str(cells["Key"]),
        summary=str(cells.get("Summary") or ""),
        type=str(cells.get("Type") or ""),
        status=str(cells.get("Status") or ""),
        priority=cells.get("Priority"),
        assignee=cells.get("Assignee"),
        created=cells.get("Created"),
        updated=cells.get("Updated"),
        parent=cells.get("Parent"),
        root=cells.get("Root"),
        level=int(level) if level is not None else 0,
        relation=cells.get("Relation"),
        extra={k: v for k, v in cells.items() if k not in columns},
    )
