"""Excel's limits (Microsoft's "Excel specifications and limits"), defined once for every writer and reader."""

from __future__ import annotations

MAX_ROWS_PER_SHEET = 1_048_576
"""Rows of a worksheet, header included."""

MAX_CELL_CHARS = 32_767
"""Length of a cell's text, in UTF-16 code units."""

MAX_LINKS_PER_SHEET = 65_530
"""Hyperlinks Excel keeps per worksheet."""

MAX_URL_CHARS = 2079
"""Length of a hyperlink's URL; Excel ignores longer ones."""

MAX_OUTLINE_LEVEL = 7
"""Levels Excel groups rows by."""
