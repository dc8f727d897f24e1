"""The errors of :mod:`atlasflow.formats.confluence_tables`: ``TableError`` and its subclasses.

Every error the package raises for a page body or an input is one of these (``TypeError`` aside, for a body
that is not a ``str``)."""

from __future__ import annotations

from atlasflow.errors import AtlasflowError


class TableError(AtlasflowError, ValueError):
    """Base class of every error raised by this package."""


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
