"""What reading and merging return: a table's summary, its text content, and a merge's outcome."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class TableInfo:
    """Summary of one table of a page.

    Attributes:
        index: Position among all tables of the page (nested ones included), from 0.
        heading: Text of the heading or paragraph just above the table, if any.
        header: Column names, from the first row.
        row_count: Number of rows after the header row.
        has_merged_cells: Whether a cell of the table spans several columns or rows.
    """

    index: int
    heading: str | None
    header: list[str]
    row_count: int
    has_merged_cells: bool


@dataclass
class Table:
    """The content of one table as text.

    Attributes:
        index: Position among all tables of the page (nested ones included), from 0.
        heading: Text of the heading or paragraph just above the table, if any.
        header: Column names, from the first row.
        rows: One dict per row after the header, keyed by column name; missing cells are ``""``.
        has_merged_cells: Whether a cell of the table spans several columns or rows.
    """

    index: int
    heading: str | None
    header: list[str]
    rows: list[dict[str, str]]
    has_merged_cells: bool


@dataclass
class CellChange:
    """One cell of an existing row whose text changed."""

    key: str
    column: str
    old: str
    new: str


@dataclass
class MergeResult:
    """Outcome of :func:`merge_rows`.

    Attributes:
        storage: The new page body (the input itself when nothing changed).
        added: Keys of the rows appended, in input order.
        updated: Keys of the existing rows with at least one changed cell, in table order.
        deleted: Keys of the rows removed, in table order.
        cell_changes: Every changed cell of the updated rows, in table order.
        ignored_columns: Input columns that are not in the table header, in first-seen order.
    """

    storage: str
    added: list[str]
    updated: list[str]
    deleted: list[str]
    cell_changes: list[CellChange]
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether the merge changed the page."""
        return bool(self.added or self.updated or self.deleted)

    def diff_markdown(self) -> str:
        """Summarise the changes as markdown: lists of keys, then a table of the changed cells.

        Values are escaped for markdown (``|``, ``*``, ``<`` ... get a backslash) and newlines in
        values become ``<br>``.
        """
        lines: list[str] = []
        for label, keys in (("Added", self.added), ("Updated", self.updated), ("Deleted", self.deleted)):
            if keys:
                lines.append(f"- {label} ({len(keys)}): " + ", ".join(_md(key) for key in keys))
        if self.ignored_columns:
            names = ", ".join(_md(name) for name in self.ignored_columns)
            lines.append(f"- Ignored columns (not in the table): {names}")
        if not self.changed:
            lines.insert(0, "No changes.")
        if self.cell_changes:
            lines += ["", "| Key | Column | Old | New |", "| --- | --- | --- | --- |"]
            lines += [
                f"| {_md(c.key)} | {_md(c.column)} | {_md(c.old)} | {_md(c.new)} |" for c in self.cell_changes
            ]
        return "\n".join(lines) + "\n"


_MD_SPECIAL_RE = re.compile(r"([\\`*_\[\]<>|&~])")


def _md(text: str) -> str:
    """Escape text for a markdown table cell or list item."""
    return _MD_SPECIAL_RE.sub(r"\\\1", text).replace("\n", "<br>")
