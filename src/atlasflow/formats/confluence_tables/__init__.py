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

Modules: ``tokens`` (the tokenizer), ``text`` (cell text), ``grid`` (table structure and reading), ``merge``
(merging and rendering), ``model`` (the results), ``errors`` (``TableError`` and its subclasses).
"""

from atlasflow.formats.confluence_tables.errors import (
    DuplicateKeys,
    KeyColumnMissing,
    MalformedStorage,
    MergedCells,
    TableError,
    TableNotFound,
)
from atlasflow.formats.confluence_tables.grid import list_tables, read_table
from atlasflow.formats.confluence_tables.merge import merge_rows, render_table
from atlasflow.formats.confluence_tables.model import CellChange, MergeResult, Table, TableInfo

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
