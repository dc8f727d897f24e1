"""Excel's limits are written down once (``atlasflow.formats.excel_limits``); every writer, reader and benchmark
takes them from there, so a change (or a monkeypatch in a test) cannot leave another copy behind."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Excel's own numbers: rows and columns of a sheet, characters of a cell, links of a sheet, a link's URL length.
LIMITS = re.compile(r"(?<![\w.])(1_?048_?576|16_?384|32_?767|65_?530|2_?079)(?![\w.])")
HOME = REPO_ROOT / "src" / "atlasflow" / "formats" / "excel_limits.py"


def test_excel_limits_are_defined_in_one_module() -> None:
    found = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for root in ("src", "bench")
        for path in sorted((REPO_ROOT / root).rglob("*.py"))
        if path != HOME
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if LIMITS.search(line.split("#", 1)[0])
    ]
    assert found == []


def test_the_limits_module_holds_each_of_them() -> None:
    from atlasflow.formats import excel_limits

    assert (
        excel_limits.MAX_ROWS_PER_SHEET,
        excel_limits.MAX_CELL_CHARS,
        excel_limits.MAX_LINKS_PER_SHEET,
        excel_limits.MAX_URL_CHARS,
        excel_limits.MAX_OUTLINE_LEVEL,
    ) == (1_048_576, 32_767, 65_530, 2079, 7)
