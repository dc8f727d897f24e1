"""Confluence storage-format (XHTML) tables as data, and row upserts that change only what changed.

The page body is scanned once by a small tokenizer that records the exact character span of every tag,
text run and CDATA section. Reading works on those tokens; writing splices replacements into the
original string, so every byte outside the cells and rows that changed stays as it was (attributes,
macros, CDATA, entities and whitespace included). Nothing is re-serialised.

Conventions:

* Tables are numbered from 0 in document order of their start tags, nested tables included (a table
  inside a cell comes right after the table that holds it, before that table's later siblings).
* A table is selected by the text of the nearest non-empty paragraph or ``h1``-``h6`` above it, or by the
  nearest ``h1``-``h6`` above it (its heading, shown in listings) when a paragraph stands between, or
  the ``title`` parameter of the macro (e.g. an expand) whose body holds it, looked up within the same
  table cell for nested tables. Another table in between means the table has no heading.
* The first row of a table is its header, whether it holds ``<th>`` or ``<td>`` cells. Empty header
  texts become ``Column <n>`` (1-based) and repeated ones get `` (2)``, `` (3)``... appended.
* Cell text: ``<br/>`` and block boundaries (``<p>``, ``<li>``, ...) give newlines, entities are
  decoded, whitespace (Unicode whitespace and ``&nbsp;`` included) is collapsed within each line and
  leading/trailing blank lines are dropped. Links give their text (or the page title, file name or
  ``@user`` they point to), a macro gives its body text or else its ``title``/``key`` parameter (a status
  lozenge gives its title, a Jira macro its issue key), an emoticon its ``:shortname:``, ``<time>`` its
  date. A cell spanning several columns or rows (colspan/rowspan) gives its text in each of them.
* Values written are compared and stored in that same normalised text form, so a read after a merge
  returns them exactly; characters XML cannot hold (most C0 controls) are dropped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as dt_time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CellChange",
    "DuplicateKeys",
    "KeyColumnMissing",
    "MalformedStorage",
    "MergeResult",
    "MergedCells",
    "Table",
    "TableError",
    "TableInfo",
    "TableNotFound",
    "list_tables",
    "merge_rows",
    "read_table",
    "render_table",
]


class TableError(ValueError):
    """Base class of every error raised by this module."""


class TableNotFound(TableError):
    """No table matches the requested index or heading."""


class KeyColumnMissing(TableError):
    """The key column is not in the table header."""


class DuplicateKeys(TableError):
    """A key occurs more than once in the table or in the input rows."""


class MalformedStorage(TableError):
    """The storage-format document could not be parsed reliably."""


class MergedCells(TableError):
    """A merge must touch a cell or row that spans several columns or rows."""


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

    def to_dataframe(self) -> pd.DataFrame:
        """Return the rows as a DataFrame of strings with the header as columns."""
        import pandas as pd

        return pd.DataFrame(
            [[row[name] for name in self.header] for row in self.rows], columns=self.header, dtype=object
        )


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


# --------------------------------------------------------------------------------------------------
# Tokenizer

_TEXT, _START, _END, _EMPTY, _CDATA = range(5)

_TOKEN_RE = re.compile(
    r"""<(?:
        !--.*?-->                                   # comment
      | !\[CDATA\[.*?\]\]>                          # CDATA section
      | \?.*?\?>                                    # processing instruction
      | ![A-Za-z][^<>]*+>                           # declaration
      | /([A-Za-z][^\s/<>"']*+)\s*+>               # end tag: group 1 = name
      | ([A-Za-z][^\s/<>"']*+)                      # start or empty tag: group 2 = name ...
        [^<>"']*+(?:(?:"[^"]*+"|'[^']*+')[^<>"']*+)*+>   # ... then attributes
    )""",
    re.S | re.X,
)
_ATTR_RE = re.compile(r"""([^\s=/<>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'<>=`]+)))?""")
_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)
_SECTIONS = frozenset(("thead", "tbody", "tfoot"))
_CELLS = frozenset(("td", "th"))
_HEADINGS = frozenset(("p", "h1", "h2", "h3", "h4", "h5", "h6"))
_REQUIRED_PARENTS = {
    "td": frozenset(("tr",)),
    "th": frozenset(("tr",)),
    "tr": frozenset(("table", *_SECTIONS)),
    **{name: frozenset(("table",)) for name in _SECTIONS},
}


class _Doc:
    """Tokens of a storage-format document, as parallel lists indexed by token number.

    ``match[i]`` links a start tag to its end tag and back (an empty element matches itself);
    ``start``/``end`` are character offsets into ``src``.
    """

    __slots__ = ("end", "kind", "match", "name", "src", "start")

    def __init__(self, src: str) -> None:
        self.src = src
        self.match: list[int] = []
        tokens = self._tokenize()
        self.kind: Sequence[int] = [t[0] for t in tokens]
        self.start: Sequence[int] = [t[1] for t in tokens]
        self.end: Sequence[int] = [t[2] for t in tokens]
        self.name: Sequence[str] = [t[3] for t in tokens]

    def _tokenize(self) -> list[tuple[int, int, int, str]]:
        """Return (kind, start, end, name) per token and fill ``match``."""
        src, match = self.src, self.match
        tokens: list[tuple[int, int, int, str]] = []
        stack: list[int] = []
        pos = 0
        for m in _TOKEN_RE.finditer(src):
            a, b = m.span()
            if a > pos:
                if src.find("<", pos, a) != -1:
                    raise self._stray(pos, a)
                match.append(len(tokens))
                tokens.append((_TEXT, pos, a, ""))
            pos = b
            end_name, start_name = m.group(1, 2)
            if end_name is not None:
                name = end_name.lower()
                if name in _VOID:
                    continue
                if not stack:
                    raise self.error(a, f"</{name}> without a matching start tag")
                opened = stack.pop()
                if tokens[opened][3] != name:
                    where = self.where(tokens[opened][1])
                    raise self.error(a, f"</{name}> closes <{tokens[opened][3]}> opened at {where}")
                match[opened] = len(tokens)
                match.append(opened)
                tokens.append((_END, a, b, name))
            elif start_name is not None:
                name = start_name.lower()
                required = _REQUIRED_PARENTS.get(name)
                if required is not None:
                    self._check_parent(name, required, tokens[stack[-1]][3] if stack else "", a)
                match.append(len(tokens))
                if src[b - 2] == "/" or name in _VOID:
                    tokens.append((_EMPTY, a, b, name))
                else:
                    stack.append(len(tokens))
                    tokens.append((_START, a, b, name))
            elif src.startswith("<![CDATA[", a):
                match.append(len(tokens))
                tokens.append((_CDATA, a, b, ""))
        if pos < len(src):
            if src.find("<", pos) != -1:
                raise self._stray(pos, len(src))
            match.append(len(tokens))
            tokens.append((_TEXT, pos, len(src), ""))
        if stack:
            opened = stack[-1]
            where = self.where(tokens[opened][1])
            raise self.error(len(src), f"<{tokens[opened][3]}> opened at {where} is never closed")
        return tokens

    def _stray(self, start: int, end: int) -> MalformedStorage:
        stray = self.src.find("<", start, end)
        return self.error(
            stray,
            f"'<' that does not start a valid tag, comment or CDATA section: {self.excerpt(stray)!r}",
        )

    def _check_parent(self, name: str, required: frozenset[str], parent: str, offset: int) -> None:
        if parent not in required:
            where = f"inside <{parent}>" if parent else "at the top level"
            raise self.error(offset, f"<{name}> {where}; it must be inside {_or_tags(required)}")

    def where(self, offset: int) -> str:
        line = self.src.count("\n", 0, offset) + 1
        column = offset - (self.src.rfind("\n", 0, offset) + 1) + 1
        return f"line {line}, column {column}"

    def excerpt(self, offset: int) -> str:
        return self.src[max(0, offset - 20) : offset + 20]

    def error(self, offset: int, message: str) -> MalformedStorage:
        return MalformedStorage(f"malformed storage format at {self.where(offset)}: {message}")

    def attrs(self, i: int) -> dict[str, str]:
        """Attributes of the start or empty tag ``i``, values decoded."""
        tag = self.src[self.start[i] + 1 + len(self.name[i]) : self.end[i] - 1]
        return {
            m.group(1).lower(): html.unescape(m.group(2) or m.group(3) or m.group(4) or "")
            for m in _ATTR_RE.finditer(tag)
        }

    def children(self, i: int) -> Iterator[int]:
        """Token numbers of the child elements of element ``i``."""
        k = i + 1
        stop = self.match[i]
        while k < stop:
            if self.kind[k] in (_START, _EMPTY):
                yield k
                k = self.match[k] + 1
            else:
                k += 1

    def inner(self, i: int) -> tuple[int, int]:
        """Character span of the content of element ``i`` (empty for an empty element)."""
        return self.end[i], (self.start[self.match[i]] if self.match[i] != i else self.end[i])


def _or_tags(names: frozenset[str]) -> str:
    return " or ".join(f"<{name}>" for name in sorted(names))


# --------------------------------------------------------------------------------------------------
# Text

_BLOCKS = frozenset(
    [
        "p",
        "div",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "li",
        "ul",
        "ol",
        "pre",
        "blockquote",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "tr",
        "td",
        "th",
        "caption",
        "dl",
        "dt",
        "dd",
        "hr",
        "section",
        "ac:task-list",
        "ac:task",
        "ac:task-body",
        "ac:layout",
        "ac:layout-section",
        "ac:layout-cell",
        "ac:adf-content",
    ]
)
_SKIPPED = frozenset(
    [
        "ac:parameter",
        "ac:placeholder",
        "ac:task-id",
        "ac:task-uuid",
        "ac:task-status",
        "ac:adf-attribute",
        "ac:adf-fallback",
        "ac:image",
    ]
)
_MACROS = frozenset(("ac:structured-macro", "ac:macro"))
_LINK_TARGET_ATTRS = (
    "ri:content-title",
    "ri:filename",
    "ri:value",
    "ri:space-key",
    "ri:username",
    "ri:userkey",
    "ri:account-id",
)
_INVALID_XML_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class _Lines:
    """Collects text with hard line breaks (``<br/>``) and soft ones (block boundaries).

    A soft break ends the current line only if it holds something other than whitespace.
    """

    __slots__ = ("current", "lines")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.current: list[str] = []

    def text(self, text: str) -> None:
        self.current.append(text)

    def hard(self) -> None:
        self.lines.append("".join(self.current))
        self.current = []

    def soft(self) -> None:
        if self.current:
            line = "".join(self.current)
            if not line.isspace():
                self.lines.append(line)
            self.current = []

    def result(self) -> str:
        self.soft()
        return _clean_lines(self.lines)


def _clean_line(line: str) -> str:
    if _INVALID_XML_RE.search(line):
        line = _INVALID_XML_RE.sub("", line)
    return " ".join(line.split())


def _clean_lines(lines: list[str]) -> str:
    if len(lines) == 1:
        return _clean_line(lines[0])
    cleaned = [_clean_line(line) for line in lines]
    first = next((i for i, line in enumerate(cleaned) if line), len(cleaned))
    last = next((i for i in range(len(cleaned) - 1, -1, -1) if cleaned[i]), -1)
    return "\n".join(cleaned[first : last + 1])


def _normalise(text: str) -> str:
    """Text in the form reads return: whitespace collapsed per line, no blank lines at either end."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _clean_lines(text.split("\n"))


def _value_text(value: object) -> str:
    """Text form of an input value: None and NaN/NaT give ``""``, dates ISO 8601, others ``str``."""
    if value is None or (isinstance(value, float | datetime) and value != value):
        return ""
    if isinstance(value, datetime | date | dt_time):
        return _normalise(value.isoformat())
    return _normalise(value if isinstance(value, str) else str(value))


def _element_text(doc: _Doc, i: int) -> str:
    """Normalised text of the content of element ``i``."""
    out = _Lines()
    _walk(doc, i + 1, doc.match[i], out)
    return out.result()


def _walk(doc: _Doc, k: int, stop: int, out: _Lines) -> None:
    """Append the text of tokens ``k`` up to ``stop`` (exclusive) to ``out``."""
    src, kinds, names, match = doc.src, doc.kind, doc.name, doc.match
    while k < stop:
        kind = kinds[k]
        if kind == _TEXT:
            out.text(html.unescape(src[doc.start[k] : doc.end[k]]))
        elif kind == _CDATA:
            first, *rest = src[doc.start[k] + 9 : doc.end[k] - 3].split("\n")
            out.text(first)
            for line in rest:
                out.hard()
                out.text(line)
        elif kind == _END:
            if names[k] in _BLOCKS:
                out.soft()
        else:
            name = names[k]
            if name == "br":
                out.hard()
            elif name in _MACROS:
                _macro_text(doc, k, out)
            elif name == "ac:link":
                _link_text(doc, k, out)
            elif name == "ac:emoticon":
                attrs = doc.attrs(k)
                out.text(attrs.get("ac:emoji-shortname") or f":{attrs.get('ac:name', '')}:")
            elif name == "time":
                out.text(doc.attrs(k).get("datetime", ""))
            elif name not in _SKIPPED:
                if name in _BLOCKS:
                    out.soft()
                if kind == _START:
                    k += 1
                    continue
            k = match[k]
        k += 1


def _macro_text(doc: _Doc, k: int, out: _Lines) -> None:
    params: dict[str, str] = {}
    for child in doc.children(k):
        name = doc.name[child]
        if name in ("ac:rich-text-body", "ac:plain-text-body"):
            out.soft()
            _walk(doc, child + 1, doc.match[child], out)
            out.soft()
            return
        if name == "ac:parameter":
            params[doc.attrs(child).get("ac:name", "")] = _element_text(doc, child)
    out.text(params.get("title") or params.get("key") or "")


def _link_text(doc: _Doc, k: int, out: _Lines) -> None:
    targets: list[int] = []
    for child in doc.children(k):
        name = doc.name[child]
        if name in ("ac:link-body", "ac:plain-text-link-body"):
            _walk(doc, child + 1, doc.match[child], out)
            return
        if name.startswith("ri:"):
            targets.append(child)
    for target in targets:
        attrs = doc.attrs(target)
        for attr in _LINK_TARGET_ATTRS:
            if attrs.get(attr):
                out.text(("@" if doc.name[target] == "ri:user" else "") + attrs[attr])
                return
    anchor = doc.attrs(k).get("ac:anchor")
    if anchor:
        out.text(f"#{anchor}")


# --------------------------------------------------------------------------------------------------
# Table structure


@dataclass(slots=True)
class _Cell:
    tok: int
    row: int
    colspan: int
    rowspan: int

    @property
    def merged(self) -> bool:
        return self.colspan > 1 or self.rowspan > 1


@dataclass
class _Table:
    """One table: its row tokens and the grid of cells by row and column (``None`` = no cell)."""

    doc: _Doc
    index: int
    tok: int
    rows: list[int]
    grid: list[list[_Cell | None]]
    has_merged_cells: bool
    _texts: dict[int, str] = field(default_factory=dict)

    def text(self, cell: _Cell | None) -> str:
        if cell is None:
            return ""
        text = self._texts.get(cell.tok)
        if text is None:
            text = self._texts[cell.tok] = _element_text(self.doc, cell.tok)
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


def _build_table(doc: _Doc, index: int, tok: int) -> _Table:
    rows: list[int] = []
    for child in doc.children(tok):
        if doc.name[child] == "tr":
            rows.append(child)
        elif doc.name[child] in _SECTIONS:
            rows.extend(r for r in doc.children(child) if doc.name[r] == "tr")
    grid: list[list[_Cell | None]] = []
    above: dict[int, tuple[_Cell, int]] = {}  # column -> (cell from a row above, rows it still covers)
    merged = False
    for r, row in enumerate(rows):
        slots: list[_Cell | None] = []
        below: dict[int, tuple[_Cell, int]] = {}
        column = 0
        for tok_cell in doc.children(row):
            if doc.name[tok_cell] not in _CELLS:
                continue
            while column in above:
                column += 1
            tag = doc.src[doc.start[tok_cell] : doc.end[tok_cell]]
            attrs = doc.attrs(tok_cell) if "span" in tag else {}
            cell = _Cell(tok_cell, r, _span(attrs, "colspan"), _span(attrs, "rowspan"))
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
    return _Table(doc, index, tok, rows, grid, merged)


def _place(slots: list[_Cell | None], column: int, cell: _Cell) -> None:
    """Put ``cell`` at ``column`` unless a cell is there already (overlapping spans: the first wins)."""
    if column >= len(slots):
        slots.extend([None] * (column + 1 - len(slots)))
    if slots[column] is None:
        slots[column] = cell


def _table_tokens(doc: _Doc) -> list[int]:
    return [i for i, name in enumerate(doc.name) if name == "table" and doc.kind[i] != _END]


def _heading(doc: _Doc, tok: int) -> str | None:
    """The table's title: its nearest heading above, else the nearest paragraph text above."""
    labels = _labels(doc, tok)
    return labels[-1] if labels else None


def _labels(doc: _Doc, tok: int) -> list[str]:
    """Texts a table can be selected by: the nearest paragraph or heading above it, then the nearest real
    heading (``h1``-``h6`` or a body macro's title), so a paragraph added between a heading and its table
    does not make the table lose its name.
    """
    found: list[str] = []
    k = tok - 1
    while k >= 0:
        kind, name = doc.kind[k], doc.name[k]
        if name == "table" and kind in (_END, _EMPTY):
            break
        if kind == _START and name in _CELLS:
            break
        if kind == _END:
            opened = doc.match[k]
            if name in _HEADINGS or name == "ac:parameter":
                text = _heading_text(doc, opened)
                if text and (not found or name != "p"):
                    found.append(text)
                    if name != "p":
                        break
                k = opened
            elif name in _SKIPPED:
                k = opened
        k -= 1
    return found


def _heading_text(doc: _Doc, opened: int) -> str:
    if doc.name[opened] == "ac:parameter":
        if doc.attrs(opened).get("ac:name") != "title":
            return ""
        parents = (i for i in range(opened - 1, -1, -1) if doc.kind[i] == _START and doc.match[i] > opened)
        macro = next(parents, -1)
        if (
            macro < 0
            or doc.name[macro] not in _MACROS
            or not any(doc.name[c] == "ac:rich-text-body" for c in doc.children(macro))
        ):
            return ""
    return " ".join(_element_text(doc, opened).split())


def _parse(storage: str) -> tuple[_Doc, list[int]]:
    if not isinstance(storage, str):
        raise TypeError(f"storage must be a str, not {type(storage).__name__}")
    doc = _Doc(storage)
    return doc, _table_tokens(doc)


def _select(doc: _Doc, tables: list[int], table: int | str) -> _Table:
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
    doc, tables = _parse(storage)
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
    doc, tables = _parse(storage)
    t = _select(doc, tables, table)
    header = t.header
    rows = [dict(zip(header, t.row_texts(r, len(header)), strict=True)) for r in range(1, len(t.rows))]
    return Table(t.index, t.heading, header, rows, t.has_merged_cells)


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


def _copied_tag(doc: _Doc, tok: int) -> str:
    """Start tag of element ``tok`` without ids and spans, never self-closing."""
    name_end = doc.start[tok] + 1 + len(doc.name[tok])
    attrs = doc.src[name_end : doc.end[tok] - 1]
    kept = [m.group() for m in _ATTR_RE.finditer(attrs) if m.group(1).lower() not in _DROPPED_ON_COPY]
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
    t: _Table,
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
        key = _value_text(row.get(key_column))
        if not key:
            raise TableError(f"input row {number} has no value for the key column {key_column!r}")
        values = {c: _value_text(row[header[c]]) for c in sorted(written) if header[c] in row}
        inputs.append(_Input(key, values))
    duplicates = _duplicates([i.key for i in inputs])
    if duplicates:
        raise DuplicateKeys(
            f"duplicate keys in the input rows for {t.label}, column {key_column!r}: {_quoted(duplicates)}"
        )
    return inputs, ignored


def _table_keys(t: _Table, key_at: int, key_column: str) -> dict[str, int]:
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


def _spans_rows(cells: list[_Cell | None]) -> bool:
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
    t: _Table,
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
        elif doc.kind[cell.tok] == _EMPTY:
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


def _cell_tag(doc: _Doc, cell: _Cell | None, row: int) -> tuple[str, str]:
    """Start tag and name for a new cell below ``cell`` (a plain ``<td>`` unless it is a simple cell)."""
    if cell is None or cell.row != row or cell.merged:
        return "<td>", "td"
    return _copied_tag(doc, cell.tok), doc.name[cell.tok]


def _new_rows(t: _Table, width: int, items: list[_Input]) -> str:
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


def _insert_at(t: _Table) -> int:
    """Offset where new rows go: after the last data row, else before ``</tbody>``, else after the header."""
    doc = t.doc
    body = [c for c in doc.children(t.tok) if doc.name[c] == "tbody" and doc.kind[c] == _START]
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
    doc, tables = _parse(storage)
    t = _select(doc, tables, table)
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
    names = [_value_text(name) for name in header]
    if not names:
        raise TableError("render_table needs at least one column")
    duplicates = _duplicates(names)
    if duplicates:
        raise TableError(f"render_table: duplicate column names {_quoted(duplicates)}")
    parts = []
    if heading is not None:
        parts.append(f"<h2>{_escape(_clean_line(heading))}</h2>")
    parts.append("<table><tbody><tr>")
    parts += [f"<th>{_cell_content(name)}</th>" for name in names]
    parts.append("</tr>")
    for row in rows:
        parts.append("<tr>")
        parts += [f"<td>{_cell_content(_value_text(row.get(name)))}</td>" for name in header]
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


_MD_SPECIAL_RE = re.compile(r"([\\`*_\[\]<>|&~])")


def _md(text: str) -> str:
    """Escape text for a markdown table cell or list item."""
    return _MD_SPECIAL_RE.sub(r"\\\1", text).replace("\n", "<br>")
