"""Streaming Excel export of issue trees.

The workbook is written with :mod:`formats.xlsx_stream`: every row goes to disk as
it comes, so memory does not grow with the number of issues; only the counters shown
on the Summary sheet and the sheets' hyperlinks are kept. Every text cell is an inline
string: Jira text such as ``=HYPERLINK(...)`` stays text.
"""

from __future__ import annotations

import os
import re
import secrets
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from math import ceil, isfinite
from pathlib import Path
from typing import Any
from urllib.parse import quote

from atlasflow.formats.changes import ChangeReport, FieldChange, describe_changes
from atlasflow.formats.excel_limits import MAX_CELL_CHARS, MAX_LINKS_PER_SHEET, MAX_OUTLINE_LEVEL, MAX_ROWS_PER_SHEET
from atlasflow.formats.jira_values import Link
from atlasflow.formats.records import ExportRow
from atlasflow.formats.xlsx_stream import (
    STYLE_DATE,
    STYLE_DATETIME,
    STYLE_HEADER,
    STYLE_LINK,
    STYLE_TITLE,
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
HIERARCHY_COLUMNS: tuple[str, ...] = (*ROOT_COLUMNS, "Level", "Relation", "Parent")
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


def _text(ref: str, value: str | None) -> str:
    return "" if value is None else text_cell(ref, clean_text(value))


def _datetime(ref: str, value: datetime | None) -> str:
    return "" if value is None else _date(ref, value)


def _date(ref: str, value: date) -> str:
    """A date cell; before 1900, which Excel has no serial numbers for, the date as ISO text."""
    if isinstance(value, datetime):
        if excel_datetime(value).year < 1900:
            return text_cell(ref, excel_datetime(value).strftime("%Y-%m-%d %H:%M"))
        return date_cell(ref, value, STYLE_DATETIME)
    if value.year < 1900:
        return text_cell(ref, value.isoformat())
    return date_cell(ref, value, STYLE_DATE)


def _value(ref: str, value: Any) -> str:
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
        return _date(ref, value)
    if isinstance(value, Link):
        return _text(ref, value.text)
    if isinstance(value, list | tuple):
        return _text(ref, ", ".join(str(item) for item in value))
    return _text(ref, str(value))


class _Table:
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
            raise ValueError(f"more rows than Excel's {MAX_ROWS_PER_SHEET:,} rows per sheet")
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
            return _text(ref, value.text)
        return _value(ref, value)

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
    hierarchy: bool = False,
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
        hierarchy: Add a "Hierarchy" sheet: every issue in tree order (each under its parent), grouped
            with Excel outline levels so that a reader folds an epic to one line. The rows are kept
            until the other sheets are written.

    Returns:
        What was written.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{secrets.token_hex(8)}.xlsx")
    try:
        with temporary.open("xb") as file:
            book = StreamingWorkbook(file)
            try:
                stats = _fill_workbook(
                    book, rows, extra_columns, query, generated_at, browse_url, changes, changes_note, hierarchy
                )
            finally:
                book.discard()  # the sheets' temporary files, also when the export fails
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return WorkbookStats(path, *stats)


def _fill_workbook(
    book: StreamingWorkbook,
    rows: Iterable[ExportRow],
    extra_columns: Sequence[str],
    query: str,
    generated_at: datetime,
    browse_url: str | None,
    changes: ChangeReport | None,
    changes_note: str | None,
    hierarchy: bool = False,
) -> tuple[int, int, int, int]:
    """Fill and close the workbook; return root rows, child rows, links written, links dropped."""
    roots = _Table(book, "Root Issues", (*ROOT_COLUMNS, *extra_columns), browse_url)
    children = _Table(book, "Child Issues", (*CHILD_COLUMNS, *extra_columns), browse_url)
    tree = _Table(book, "Hierarchy", (*HIERARCHY_COLUMNS, *extra_columns), browse_url) if hierarchy else None

    counts = _Counts()
    kept: list[ExportRow] = []
    for row in rows:
        counts.add(row)
        if tree is not None:
            kept.append(row)
        if row.level == 0:
            _write_row(roots, row, extra_columns, child=False)
        else:
            _write_row(children, row, extra_columns, child=True)
    tables = [roots, children]
    if tree is not None:
        tables.append(_write_hierarchy(tree, kept, extra_columns))
    if changes is not None:
        tables.append(_write_changes(_Table(book, "Changes", CHANGE_COLUMNS, browse_url), changes))
    elif changes_note:
        book.add_sheet("Changes", 1, [100]).write_row(0, [_text("A1", changes_note)])

    links_dropped = sum(table.links_dropped for table in tables)
    facts: list[tuple[str, str | int | datetime]] = [
        ("Scope", query),
        ("Generated (UTC)", generated_at),
        ("Root issues", roots.last_row),
        ("Child issues", children.last_row),
        ("Total issues", roots.last_row + children.last_row),
        ("Depth (levels below the roots)", max(counts.level, default=0)),
    ]
    if tree is not None and max(counts.level, default=0) > MAX_OUTLINE_LEVEL:
        facts.append(("Hierarchy", f"Excel folds {MAX_OUTLINE_LEVEL} levels: deeper issues are grouped at the last"))
    if changes is not None:
        facts.append(("Changes", describe_changes(changes)))
    if changes_note:
        facts.append(("Changes note" if changes is not None else "Changes", changes_note))
    if links_dropped:
        facts.append((f"Keys not linked (Excel keeps {MAX_LINKS_PER_SHEET:,} links a sheet)", links_dropped))
    _write_summary(book.add_sheet("Summary", 2, [28, 14, 3]), facts, counts)
    book.close()
    links_written = sum(table.links_written for table in tables)
    return roots.last_row, children.last_row, links_written, links_dropped


def _write_row(table: _Table, row: ExportRow, extra_columns: Sequence[str], *, child: bool) -> None:
    number = table.new_row()
    letters = table.letters
    cells = [
        table.key(letters[0] + number, row.key),
        _text(letters[1] + number, row.summary),
        _text(letters[2] + number, row.type),
        _text(letters[3] + number, row.status),
        _text(letters[4] + number, row.priority),
        _text(letters[5] + number, row.assignee),
        _datetime(letters[6] + number, row.created),
        _datetime(letters[7] + number, row.updated),
    ]
    if child:
        cells += (
            table.key(letters[8] + number, row.parent),
            table.key(letters[9] + number, row.root),
            number_cell(letters[10] + number, row.level),
            _text(letters[11] + number, row.relation),
        )
    extra = row.extra
    col = len(cells)
    cells += (table.value(letters[col + off] + number, extra.get(title)) for off, title in enumerate(extra_columns))
    table.write(cells)


def tree_order(rows: Sequence[ExportRow]) -> Iterator[ExportRow]:
    """``rows`` depth first: each issue followed by its children (in the order given), then the next root.

    An issue whose parent is not among ``rows`` is a root.
    """
    keys = {row.key for row in rows}
    below: dict[str, list[ExportRow]] = {}
    tops: list[ExportRow] = []
    for row in rows:
        if row.parent is not None and row.parent in keys and row.parent != row.key:
            below.setdefault(row.parent, []).append(row)
        else:
            tops.append(row)
    stack = list(reversed(tops))
    seen: set[str] = set()
    while stack:
        row = stack.pop()
        if row.key in seen:
            continue
        seen.add(row.key)
        yield row
        stack.extend(reversed(below.get(row.key, ())))


def _write_hierarchy(table: _Table, rows: Sequence[ExportRow], extra_columns: Sequence[str]) -> _Table:
    """Fill the "Hierarchy" table: issues in tree order, each row one outline level below its parent."""
    letters = table.letters
    for row in tree_order(rows):
        number = table.new_row()
        base = len(ROOT_COLUMNS)
        cells = [
            table.key(letters[0] + number, row.key),
            _text(letters[1] + number, row.summary),
            _text(letters[2] + number, row.type),
            _text(letters[3] + number, row.status),
            _text(letters[4] + number, row.priority),
            _text(letters[5] + number, row.assignee),
            _datetime(letters[6] + number, row.created),
            _datetime(letters[7] + number, row.updated),
            number_cell(letters[base] + number, row.level),
            _text(letters[base + 1] + number, row.relation),
            table.key(letters[base + 2] + number, row.parent),
        ]
        first = len(cells)
        extra = row.extra
        cells += (table.value(letters[first + n] + number, extra.get(title)) for n, title in enumerate(extra_columns))
        table.sheet.write_row(table.last_row, cells, outline_level=row.level)
    return table


def _write_changes(table: _Table, changes: ChangeReport) -> _Table:
    """Fill the "Changes" table: one row per changed field, one per new or gone issue."""
    for issue in changes.ordered():
        fields: list[FieldChange | None] = list(issue.changes) or [None]
        for change in fields:
            number = table.new_row()
            cells = [
                _text(f"A{number}", issue.kind),
                table.key(f"B{number}", issue.key),
                _text(f"C{number}", issue.summary),
            ]
            if change is not None:
                cells += (
                    _text(f"D{number}", change.field),
                    _value(f"E{number}", change.old),
                    _value(f"F{number}", change.new),
                )
            table.write(cells)
    return table


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


def _write_summary(sheet: Sheet, facts: Sequence[tuple[str, str | int | datetime]], counts: _Counts) -> None:
    """Fill the "Summary" sheet: the facts, then per dimension a count table with its chart beside."""
    sheet.write_row(0, [text_cell("A1", "Jira export", STYLE_TITLE)])
    for row, (label, value) in enumerate(facts, start=1):
        sheet.write_row(row, [text_cell(f"A{row + 1}", clean_text(label), STYLE_HEADER), _value(f"B{row + 1}", value)])
    row = len(facts) + 2
    tables: list[tuple[str, str, Sequence[tuple[str | int, int]], bool]] = [
        ("Status", "Issues by status", _by_count(counts.status), True),
        ("Type", "Issues by type", _by_count(counts.type), True),
        ("Level (0 = roots)", "Issues by level", sorted(counts.level.items()), False),
    ]
    for header, title, table, horizontal in tables:
        row = _write_count_table(sheet, row, header, title, table, horizontal)


def _by_count(counter: Counter[str]) -> list[tuple[str | int, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def _write_count_table(
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
        sheet.write_row(row, [_value(f"A{row + 1}", label), number_cell(f"B{row + 1}", count)])
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
