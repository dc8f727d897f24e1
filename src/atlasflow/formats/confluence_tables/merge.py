"""Writing: :func:`merge_rows` splices upserts into the original body (only changed cells and rows), and
:func:`render_table` renders a new table."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from atlasflow.formats.confluence_tables.errors import DuplicateKeys, KeyColumnMissing, MergedCells, TableError
from atlasflow.formats.confluence_tables.grid import Cell, TableGrid, parse, select
from atlasflow.formats.confluence_tables.model import CellChange, MergeResult
from atlasflow.formats.confluence_tables.text import clean_line, value_text
from atlasflow.formats.confluence_tables.tokens import ATTR_RE, EMPTY, START, Doc

# --------------------------------------------------------------------------------------------------
# Merging

_DROPPED_ON_COPY = frozenset(("colspan", "rowspan", "id", "ac:local-id", "local-id"))


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _cell_content(text: str) -> str:
    """Storage-format content of a cell holding ``text`` (already normalised)."""
    if not text:
        return "<p />"
    return "<p>" + "<br/>".join(_escape(line) for line in text.split("\n")) + "</p>"


def _copied_tag(doc: Doc, tok: int) -> str:
    """Start tag of element ``tok`` without ids and spans, never self-closing."""
    name_end = doc.start[tok] + 1 + len(doc.name[tok])
    attrs = doc.src[name_end : doc.end[tok] - 1]
    kept = [m.group() for m in ATTR_RE.finditer(attrs) if m.group(1).lower() not in _DROPPED_ON_COPY]
    return doc.src[doc.start[tok] : name_end] + "".join(f" {a}" for a in kept) + ">"


def _quoted(items: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(repr(item) for item in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _duplicates(keys: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    duplicates: dict[str, None] = {}
    for key in keys:
        if key in seen:
            duplicates[key] = None
        seen.add(key)
    return list(duplicates)


@dataclass
class _Input:
    key: str
    values: dict[int, str]  # column index -> normalised text


def _prepare_input(
    t: TableGrid,
    header: list[str],
    key_column: str,
    rows: Sequence[Mapping[str, object]],
    columns: Sequence[str] | None,
) -> tuple[list[_Input], list[str]]:
    if key_column not in header:
        raise KeyColumnMissing(
            f"{t.label} has no column {key_column!r}; its columns are: {_quoted(header, 50) or '(none)'}"
        )
    position = {name: c for c, name in enumerate(header)}
    ignored = list(dict.fromkeys(name for row in rows for name in row if name not in position))
    if columns is None:
        written = {position[name] for row in rows for name in row if name in position}
    else:
        unknown = [name for name in columns if name not in position]
        if unknown:
            raise TableError(
                f"{t.label} has no column(s) {_quoted(unknown)}; its columns are: {_quoted(header, 50)}"
            )
        written = {position[name] for name in columns}
    key_at = position[key_column]
    written.add(key_at)
    inputs = []
    for number, row in enumerate(rows, start=1):
        key = value_text(row.get(key_column))
        if not key:
            raise TableError(f"input row {number} has no value for the key column {key_column!r}")
        values = {c: value_text(row[header[c]]) for c in sorted(written) if header[c] in row}
        inputs.append(_Input(key, values))
    duplicates = _duplicates([i.key for i in inputs])
    if duplicates:
        raise DuplicateKeys(
            f"duplicate keys in the input rows for {t.label}, column {key_column!r}: {_quoted(duplicates)}"
        )
    return inputs, ignored


def _table_keys(t: TableGrid, key_at: int, key_column: str) -> dict[str, int]:
    """Row number by key, for the rows after the header whose key cell is not empty."""
    keys: dict[str, int] = {}
    duplicates: list[str] = []
    for r in range(1, len(t.grid)):
        cell = t.grid[r][key_at] if key_at < len(t.grid[r]) else None
        if cell is not None and cell.rowspan > 1:
            raise MergedCells(f"{t.label}: a cell of the key column {key_column!r} spans several rows")
        key = t.text(cell)
        if key in keys:
            duplicates.append(key)
        elif key:
            keys[key] = r
    if duplicates:
        unique = list(dict.fromkeys(duplicates))
        raise DuplicateKeys(f"duplicate keys in {t.label}, column {key_column!r}: {_quoted(unique)}")
    return keys


def _spans_rows(cells: list[Cell | None]) -> bool:
    return any(cell is not None and cell.rowspan > 1 for cell in cells)


class _Splicer:
    """Collects (start, end, replacement) edits of the source and applies them in one pass."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.edits: list[tuple[int, int, str]] = []

    def replace(self, start: int, end: int, text: str) -> None:
        self.edits.append((start, end, text))

    def result(self) -> str:
        if not self.edits:
            return self.src
        pieces: list[str] = []
        pos = 0
        for start, end, text in sorted(self.edits, key=lambda edit: (edit[0], edit[1])):
            if start < pos:
                raise AssertionError("overlapping edits")  # a bug, not a property of the input
            pieces += (self.src[pos:start], text)
            pos = end
        pieces.append(self.src[pos:])
        return "".join(pieces)


def _update_row(
    t: TableGrid,
    r: int,
    item: _Input,
    header: list[str],
    splicer: _Splicer,
) -> list[CellChange]:
    doc, cells = t.doc, t.grid[r]
    changes: list[CellChange] = []
    appended: dict[int, str] = {}
    for c, new in item.values.items():
        cell = cells[c] if c < len(cells) else None
        old = t.text(cell)
        if old == new:
            continue
        changes.append(CellChange(item.key, header[c], old, new))
        if cell is None:
            if _spans_rows(cells) or c < len(cells):
                raise MergedCells(
                    f"{t.label}: row {item.key!r} has no cell for column {header[c]!r} next to a cell that "
                    "spans several rows"
                )
            appended[c] = new
        elif cell.merged:
            raise MergedCells(
                f"{t.label}: the cell of row {item.key!r}, column {header[c]!r} is merged "
                f"(colspan={cell.colspan}, rowspan={cell.rowspan})"
            )
        elif doc.kind[cell.tok] == EMPTY:
            tag = doc.src[doc.start[cell.tok] : doc.end[cell.tok]]
            splicer.replace(
                doc.start[cell.tok],
                doc.end[cell.tok],
                f"{tag[:-2].rstrip()}>{_cell_content(new)}</{doc.name[cell.tok]}>",
            )
        else:
            splicer.replace(*doc.inner(cell.tok), _cell_content(new))
    if appended:
        missing = range(len(cells), max(appended) + 1)
        end_tag = doc.start[doc.match[t.rows[r]]]
        splicer.replace(
            end_tag, end_tag, "".join(f"<td>{_cell_content(appended.get(c, ''))}</td>" for c in missing)
        )
    return changes


def _cell_tag(doc: Doc, cell: Cell | None, row: int) -> tuple[str, str]:
    """Start tag and name for a new cell below ``cell`` (a plain ``<td>`` unless it is a simple cell)."""
    if cell is None or cell.row != row or cell.merged:
        return "<td>", "td"
    return _copied_tag(doc, cell.tok), doc.name[cell.tok]


def _new_rows(t: TableGrid, width: int, items: list[_Input]) -> str:
    """Rows for ``items``, shaped like the last data row (its tags without ids and spans)."""
    doc, last = t.doc, len(t.rows) - 1
    if last > 0:
        tr_tag = _copied_tag(doc, t.rows[last])
        cells = t.grid[last]
        tags = [_cell_tag(doc, cells[c] if c < len(cells) else None, last) for c in range(width)]
    else:
        tr_tag = "<tr>"
        tags = [("<td>", "td")] * width
    rows = []
    for item in items:
        cells_html = (
            f"{tag}{_cell_content(item.values.get(c, ''))}</{name}>" for c, (tag, name) in enumerate(tags)
        )
        rows.append(tr_tag + "".join(cells_html) + "</tr>")
    return "".join(rows)


def _insert_at(t: TableGrid) -> int:
    """Offset where new rows go: after the last data row, else before ``</tbody>``, else after the header."""
    doc = t.doc
    body = [c for c in doc.children(t.tok) if doc.name[c] == "tbody" and doc.kind[c] == START]
    if len(t.rows) > 1 or not body:
        return doc.end[doc.match[t.rows[-1]]]
    return doc.start[doc.match[body[-1]]]


def merge_rows(
    storage: str,
    table: int | str,
    key_column: str,
    rows: Sequence[Mapping[str, object]],
    *,
    columns: Sequence[str] | None = None,
    delete_missing: bool = False,
) -> MergeResult:
    """Upsert rows into a table by key, changing only the cells whose text differs.

    Existing rows are matched on the text of their ``key_column`` cell (rows with an empty key cell are
    left alone: never matched, updated, counted as duplicates or deleted). A changed cell keeps its start
    tag and gets ``<p>text</p>`` as content (newlines as ``<br/>``); its previous formatting goes. New
    rows are appended after the last row, their cells copying the tags of the last row's cells (without
    ids and spans). Every other byte of the page stays as it was.

    Args:
        storage: The page body (``body.storage.value``).
        table: Index or heading of the table, as for :func:`read_table`.
        key_column: Header of the column that identifies rows.
        rows: Input rows by column name. Values become text: ``None`` (and NaN/NaT) ``""``, dates and
            times ISO 8601, anything else ``str()``; whitespace is normalised as on reading. A column
            absent from a row leaves that cell as it is (or empty in a new row). Columns not in the
            header are ignored and listed in ``MergeResult.ignored_columns``.
        columns: The only columns to write (the key column is always used); default: every input column
            that is in the header.
        delete_missing: Also delete the rows whose key is not in the input.

    Raises:
        TableNotFound: No table has that index or heading.
        KeyColumnMissing: ``key_column`` is not in the header.
        DuplicateKeys: A key occurs twice in the table or in the input.
        MergedCells: A cell to change, or a row to delete, spans several columns or rows.
        MalformedStorage: The body is not well-formed storage format.
        TableError: An input row has no key, ``columns`` names a column not in the header, or several
            tables have that heading.
    """
    doc, tables = parse(storage)
    t = select(doc, tables, table)
    header = t.header
    inputs, ignored = _prepare_input(t, header, key_column, rows, columns)
    existing = _table_keys(t, header.index(key_column), key_column)
    wanted = {item.key: item for item in inputs}
    splicer = _Splicer(storage)
    updated: list[str] = []
    deleted: list[str] = []
    changes: list[CellChange] = []
    for key, r in existing.items():
        item = wanted.get(key)
        if item is not None:
            row_changes = _update_row(t, r, item, header, splicer)
            if row_changes:
                updated.append(key)
                changes += row_changes
        elif delete_missing:
            if _spans_rows(t.grid[r]):
                raise MergedCells(
                    f"{t.label}: row {key!r} cannot be deleted: a cell in it spans several rows"
                )
            tr = t.rows[r]
            splicer.replace(doc.start[tr], doc.end[doc.match[tr]], "")
            deleted.append(key)
    added = [item for item in inputs if item.key not in existing]
    if added:
        at = _insert_at(t)
        splicer.replace(at, at, _new_rows(t, len(header), added))
    return MergeResult(splicer.result(), [item.key for item in added], updated, deleted, changes, ignored)


# --------------------------------------------------------------------------------------------------
# Rendering


def render_table(
    header: Sequence[str], rows: Sequence[Mapping[str, object]], heading: str | None = None
) -> str:
    """Render a new storage-format table (with an ``<h2>`` heading above it if given).

    Values become text as in :func:`merge_rows` and are escaped; a value missing from a row gives an
    empty cell. Reading the result back gives the header and the values in their normalised form.

    Raises:
        TableError: The header is empty or holds the same name twice.
    """
    names = [value_text(name) for name in header]
    if not names:
        raise TableError("render_table needs at least one column")
    duplicates = _duplicates(names)
    if duplicates:
        raise TableError(f"render_table: duplicate column names {_quoted(duplicates)}")
    parts = []
    if heading is not None:
        parts.append(f"<h2>{_escape(clean_line(heading))}</h2>")
    parts.append("<table><tbody><tr>")
    parts += [f"<th>{_cell_content(name)}</th>" for name in names]
    parts.append("</tr>")
    for row in rows:
        parts.append("<tr>")
        parts += [f"<td>{_cell_content(value_text(row.get(name)))}</td>" for name in header]
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)
