"""Table structure: the tables of a body, their headings, and the grid of cells by row and column
(colspan/rowspan resolved); :func:`read_table` and :func:`list_tables` read through it."""

from __future__ import annotations

from dataclasses import dataclass, field

from atlasflow.formats.confluence_tables.errors import TableError, TableNotFound
from atlasflow.formats.confluence_tables.model import Table, TableInfo
from atlasflow.formats.confluence_tables.text import MACROS, SKIPPED, element_text
from atlasflow.formats.confluence_tables.tokens import CELLS, EMPTY, END, HEADINGS, SECTIONS, START, Doc


@dataclass(slots=True)
class Cell:
    tok: int
    row: int
    colspan: int
    rowspan: int

    @property
    def merged(self) -> bool:
        return self.colspan > 1 or self.rowspan > 1


@dataclass
class TableGrid:
    """One table: its row tokens and the grid of cells by row and column (``None`` = no cell)."""

    doc: Doc
    index: int
    tok: int
    rows: list[int]
    grid: list[list[Cell | None]]
    has_merged_cells: bool
    _texts: dict[int, str] = field(default_factory=dict)

    def text(self, cell: Cell | None) -> str:
        if cell is None:
            return ""
        text = self._texts.get(cell.tok)
        if text is None:
            text = self._texts[cell.tok] = element_text(self.doc, cell.tok)
        return text

    @property
    def heading(self) -> str | None:
        return _heading(self.doc, self.tok)

    @property
    def header(self) -> list[str]:
        names = [self.text(cell) for cell in self.grid[0]] if self.grid else []
        return _unique_names(names)

    @property
    def label(self) -> str:
        heading = self.heading
        return f"table {self.index}" + (f" ({heading!r})" if heading else "")

    def row_texts(self, r: int, width: int) -> list[str]:
        cells = self.grid[r]
        return [self.text(cells[c]) if c < len(cells) else "" for c in range(width)]


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    result: list[str] = []
    for number, raw in enumerate(names, start=1):
        name = " ".join(raw.split()) or f"Column {number}"
        count = seen.get(name, 0) + 1
        seen[name] = count
        result.append(name if count == 1 else f"{name} ({count})")
    return result


def _span(attrs: dict[str, str], name: str) -> int:
    value = attrs.get(name, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else 1


def _build_table(doc: Doc, index: int, tok: int) -> TableGrid:
    rows: list[int] = []
    for child in doc.children(tok):
        if doc.name[child] == "tr":
            rows.append(child)
        elif doc.name[child] in SECTIONS:
            rows.extend(r for r in doc.children(child) if doc.name[r] == "tr")
    grid: list[list[Cell | None]] = []
    above: dict[int, tuple[Cell, int]] = {}  # column -> (cell from a row above, rows it still covers)
    merged = False
    for r, row in enumerate(rows):
        slots: list[Cell | None] = []
        below: dict[int, tuple[Cell, int]] = {}
        column = 0
        for tok_cell in doc.children(row):
            if doc.name[tok_cell] not in CELLS:
                continue
            while column in above:
                column += 1
            tag = doc.src[doc.start[tok_cell] : doc.end[tok_cell]]
            attrs = doc.attrs(tok_cell) if "span" in tag else {}
            cell = Cell(tok_cell, r, _span(attrs, "colspan"), _span(attrs, "rowspan"))
            merged = merged or cell.merged
            for c in range(column, column + cell.colspan):
                _place(slots, c, cell)
                if cell.rowspan > 1:
                    below[c] = (cell, cell.rowspan - 1)
            column += cell.colspan
        for c, (cell, left) in above.items():
            _place(slots, c, cell)
            if left > 1:
                below[c] = (cell, left - 1)
        above = below
        grid.append(slots)
    return TableGrid(doc, index, tok, rows, grid, merged)


def _place(slots: list[Cell | None], column: int, cell: Cell) -> None:
    """Put ``cell`` at ``column`` unless a cell is there already (overlapping spans: the first wins)."""
    if column >= len(slots):
        slots.extend([None] * (column + 1 - len(slots)))
    if slots[column] is None:
        slots[column] = cell


def _table_tokens(doc: Doc) -> list[int]:
    return [i for i, name in enumerate(doc.name) if name == "table" and doc.kind[i] != END]


def _heading(doc: Doc, tok: int) -> str | None:
    """The table's title: its nearest heading above, else the nearest paragraph text above."""
    labels = _labels(doc, tok)
    return labels[-1] if labels else None


def _labels(doc: Doc, tok: int) -> list[str]:
    """Texts a table can be selected by: the nearest paragraph or heading above it, then the nearest real
    heading (``h1``-``h6`` or a body macro's title), so a paragraph added between a heading and its table
    does not make the table lose its name.
    """
    found: list[str] = []
    k = tok - 1
    while k >= 0:
        kind, name = doc.kind[k], doc.name[k]
        if name == "table" and kind in (END, EMPTY):
            break
        if kind == START and name in CELLS:
            break
        if kind == END:
            opened = doc.match[k]
            if name in HEADINGS or name == "ac:parameter":
                text = _heading_text(doc, opened)
                if text and (not found or name != "p"):
                    found.append(text)
                    if name != "p":
                        break
                k = opened
            elif name in SKIPPED:
                k = opened
        k -= 1
    return found


def _heading_text(doc: Doc, opened: int) -> str:
    if doc.name[opened] == "ac:parameter":
        if doc.attrs(opened).get("ac:name") != "title":
            return ""
        parents = (i for i in range(opened - 1, -1, -1) if doc.kind[i] == START and doc.match[i] > opened)
        macro = next(parents, -1)
        if (
            macro < 0
            or doc.name[macro] not in MACROS
            or not any(doc.name[c] == "ac:rich-text-body" for c in doc.children(macro))
        ):
            return ""
    return " ".join(element_text(doc, opened).split())


def parse(storage: str) -> tuple[Doc, list[int]]:
    if not isinstance(storage, str):
        raise TypeError(f"storage must be a str, not {type(storage).__name__}")
    doc = Doc(storage)
    return doc, _table_tokens(doc)


def select(doc: Doc, tables: list[int], table: int | str) -> TableGrid:
    if isinstance(table, str):
        wanted = " ".join(table.split()).casefold()
        found = [
            i for i, tok in enumerate(tables) if wanted in (label.casefold() for label in _labels(doc, tok))
        ]
        if len(found) > 1:
            raise TableError(
                f"{len(found)} tables have the heading {table!r} (tables {', '.join(map(str, found))}); "
                "select one by index"
            )
        if found:
            return _build_table(doc, found[0], tables[found[0]])
    elif 0 <= table < len(tables):
        return _build_table(doc, table, tables[table])
    wanted_text = f"with the heading {table!r}" if isinstance(table, str) else f"number {table}"
    if not tables:
        raise TableNotFound(f"no table {wanted_text}: the page has no tables")
    existing = "; ".join(
        f"{i}: {heading!r}" if (heading := _heading(doc, tok)) else f"{i}: (no heading)"
        for i, tok in enumerate(tables)
    )
    raise TableNotFound(f"no table {wanted_text}; the page has {len(tables)} table(s): {existing}")


# --------------------------------------------------------------------------------------------------
# Public reading API


def list_tables(storage: str) -> list[TableInfo]:
    """List the tables of a page body, nested ones included, in document order.

    Raises:
        MalformedStorage: The body is not well-formed storage format.
    """
    doc, tables = parse(storage)
    infos = []
    for index, tok in enumerate(tables):
        t = _build_table(doc, index, tok)
        infos.append(TableInfo(index, t.heading, t.header, max(len(t.rows) - 1, 0), t.has_merged_cells))
    return infos


def read_table(storage: str, table: int | str) -> Table:
    """Read one table of a page body as text.

    Args:
        storage: The page body (``body.storage.value``).
        table: Index among all tables in document order (nested ones included), or the text of the
            heading or paragraph just above it (case-insensitive, whitespace-normalised).

    Raises:
        TableNotFound: No table has that index or heading (the message lists the tables).
        TableError: Several tables have that heading.
        MalformedStorage: The body is not well-formed storage format.
    """
    doc, tables = parse(storage)
    t = select(doc, tables, table)
    header = t.header
    rows = [dict(zip(header, t.row_texts(r, len(header)), strict=True)) for r in range(1, len(t.rows))]
    return Table(t.index, t.heading, header, rows, t.has_merged_cells)
