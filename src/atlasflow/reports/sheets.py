"""Stage "sheets": the export workbook's layout ("Root Issues", "Child Issues", "Hierarchy", "Changes",
"Summary") on the streaming xlsx writer of :mod:`atlasflow.formats.excel`, and reading an export back.

Every row goes to disk as it comes, so memory does not grow with the number of issues; only the counters shown
on the Summary sheet, the sheets' hyperlinks and, for "Hierarchy", the rows are kept. Every text cell is an
inline string: Jira text such as ``=HYPERLINK(...)`` stays text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from atlasflow.errors import ConfigurationError
from atlasflow.formats import excel
from atlasflow.formats.changes import ChangeReport, FieldChange, describe_changes
from atlasflow.formats.excel import (
    Table,
    any_value,
    clean_text,
    datetime_value,
    text_value,
    write_count_table,
    write_workbook,
)
from atlasflow.formats.excel_limits import MAX_OUTLINE_LEVEL
from atlasflow.formats.records import ExportRow
from atlasflow.formats.xlsx_stream import STYLE_HEADER, STYLE_TITLE, Sheet, StreamingWorkbook, number_cell, text_cell

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


@dataclass
class WorkbookStats:
    """What :func:`write_export_workbook` wrote.

    Attributes:
        path: The workbook written.
        root_rows: Rows on the "Root Issues" sheet.
        child_rows: Rows on the "Child Issues" sheet.
        links_written: Keys written as hyperlinks, all sheets together.
        links_dropped: Keys written as plain text because a sheet reached
            :data:`atlasflow.formats.excel_limits.MAX_LINKS_PER_SHEET` (or Excel refused the URL).
    """

    path: Path
    root_rows: int
    child_rows: int
    links_written: int
    links_dropped: int


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

    def fill(book: StreamingWorkbook) -> tuple[int, int, int, int]:
        return _fill_workbook(
            book, rows, extra_columns, query, generated_at, browse_url, changes, changes_note, hierarchy
        )

    return WorkbookStats(path, *write_workbook(path, fill))


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
    roots = Table(book, "Root Issues", (*ROOT_COLUMNS, *extra_columns), browse_url)
    children = Table(book, "Child Issues", (*CHILD_COLUMNS, *extra_columns), browse_url)
    tree = Table(book, "Hierarchy", (*HIERARCHY_COLUMNS, *extra_columns), browse_url) if hierarchy else None

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
        tables.append(_write_changes(Table(book, "Changes", CHANGE_COLUMNS, browse_url), changes))
    elif changes_note:
        book.add_sheet("Changes", 1, [100]).write_row(0, [text_value("A1", changes_note)])

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
        cap = excel.MAX_LINKS_PER_SHEET  # the cap the tables applied
        facts.append((f"Keys not linked (Excel keeps {cap:,} links a sheet)", links_dropped))
    _write_summary(book.add_sheet("Summary", 2, [28, 14, 3]), facts, counts)
    book.close()
    links_written = sum(table.links_written for table in tables)
    return roots.last_row, children.last_row, links_written, links_dropped


def _write_row(table: Table, row: ExportRow, extra_columns: Sequence[str], *, child: bool) -> None:
    number = table.new_row()
    letters = table.letters
    cells = _issue_cells(table, number, row)
    if child:
        cells += (
            table.key(letters[8] + number, row.parent),
            table.key(letters[9] + number, row.root),
            number_cell(letters[10] + number, row.level),
            text_value(letters[11] + number, row.relation),
        )
    extra = row.extra
    col = len(cells)
    cells += (table.value(letters[col + off] + number, extra.get(title)) for off, title in enumerate(extra_columns))
    table.write(cells)


def _issue_cells(table: Table, number: str, row: ExportRow) -> list[Any]:
    """The cells every issue sheet starts with (the columns of ``ROOT_COLUMNS``), for row ``number``."""
    letters = table.letters
    return [
        table.key(letters[0] + number, row.key),
        text_value(letters[1] + number, row.summary),
        text_value(letters[2] + number, row.type),
        text_value(letters[3] + number, row.status),
        text_value(letters[4] + number, row.priority),
        text_value(letters[5] + number, row.assignee),
        datetime_value(letters[6] + number, row.created),
        datetime_value(letters[7] + number, row.updated),
    ]


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


def _write_hierarchy(table: Table, rows: Sequence[ExportRow], extra_columns: Sequence[str]) -> Table:
    """Fill the "Hierarchy" table: issues in tree order, each row one outline level below its parent."""
    letters = table.letters
    for row in tree_order(rows):
        number = table.new_row()
        base = len(ROOT_COLUMNS)
        cells = [
            *_issue_cells(table, number, row),
            number_cell(letters[base] + number, row.level),
            text_value(letters[base + 1] + number, row.relation),
            table.key(letters[base + 2] + number, row.parent),
        ]
        first = len(cells)
        extra = row.extra
        cells += (table.value(letters[first + n] + number, extra.get(title)) for n, title in enumerate(extra_columns))
        table.sheet.write_row(table.last_row, cells, outline_level=row.level)
    return table


def _write_changes(table: Table, changes: ChangeReport) -> Table:
    """Fill the "Changes" table: one row per changed field, one per new or gone issue."""
    for issue in changes.ordered():
        fields: list[FieldChange | None] = list(issue.changes) or [None]
        for change in fields:
            number = table.new_row()
            cells = [
                text_value(f"A{number}", issue.kind),
                table.key(f"B{number}", issue.key),
                text_value(f"C{number}", issue.summary),
            ]
            if change is not None:
                cells += (
                    text_value(f"D{number}", change.field),
                    any_value(f"E{number}", change.old),
                    any_value(f"F{number}", change.new),
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
        sheet.write_row(
            row, [text_cell(f"A{row + 1}", clean_text(label), STYLE_HEADER), any_value(f"B{row + 1}", value)]
        )
    row = len(facts) + 2
    tables: list[tuple[str, str, Sequence[tuple[str | int, int]], bool]] = [
        ("Status", "Issues by status", _by_count(counts.status), True),
        ("Type", "Issues by type", _by_count(counts.type), True),
        ("Level (0 = roots)", "Issues by level", sorted(counts.level.items()), False),
    ]
    for header, title, table, horizontal in tables:
        row = write_count_table(sheet, row, header, title, table, horizontal)


def _by_count(counter: Counter[str]) -> list[tuple[str | int, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


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
                raise ConfigurationError(f"{path} is not an atlasflow export: no sheet {sheet!r}")
            lines = workbook[sheet].iter_rows(values_only=True)
            header = [str(h) for h in next(lines, ())]
            missing = [c for c in columns if c not in header]
            if missing:
                raise ConfigurationError(f"{path}: sheet {sheet!r} lacks the column(s) {missing}")
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
