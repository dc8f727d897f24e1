"""A real spreadsheet program opens the workbook and shows what Jira holds: LibreOffice, headless.

LibreOffice loads the export, then saves it again as .xlsx (read back with openpyxl: types, links,
outline levels) and as one CSV per sheet (the text it displays). Runs where ``soffice`` is on PATH
(``.ci/run`` installs Debian's ``libreoffice-calc-nogui`` before ``make test``); skipped elsewhere, saying so:
``make test`` installs nothing.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
from test_excel_fidelity import WHEN, row  # the same issue rows as the other fidelity tests

from atlasflow.formats.jira_values import Link
from atlasflow.formats.records import ExportRow
from atlasflow.reports.sheets import write_export_workbook

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
pytestmark = pytest.mark.skipif(
    SOFFICE is None,
    reason="LibreOffice (soffice) is not on PATH: the round trip runs where it is installed "
    "(.ci/run installs libreoffice-calc-nogui; Debian: apt-get install libreoffice-calc-nogui)",
)

TEXTS = {
    "Escape": "_x0041_ and a_x263A_b",
    "Formula": '=HYPERLINK("https://evil.example","click")',
    "Plus": "+1",
    "Minus": "-2",
    "At": "@SUM(A1:A9)",
    "Unicode": "Grüße, 漢字, emoji 🙂, RTL שלום",
    "Markup": '<script>alert(1)</script> & ]]> "quoted"',
    "Spaces": "  padded  ",
    "Lines": "first line\nsecond line\n• bullet",
}
EXTRA = (*TEXTS, "Old", "Due", "Points", "Spec")


def issue(key: str, level: int, parent: str | None) -> ExportRow:
    extra = {
        "Old": date(1850, 1, 2),
        "Due": date(2026, 3, 1),
        "Points": 3.5,
        "Spec": Link("the spec", "https://example.com/spec"),
    }
    return row(key, level, parent, **TEXTS, **extra)


def soffice(*args: str, profile: Path) -> None:
    assert SOFFICE is not None
    env = {**os.environ, "HOME": str(profile)}
    subprocess.run(
        [SOFFICE, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore", *args],
        check=True,
        capture_output=True,
        timeout=240,
        env=env,
    )


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Our workbook as LibreOffice saves it again (.xlsx), and the folder of its per-sheet CSVs."""
    base = tmp_path_factory.mktemp("libreoffice")
    source = base / "export.xlsx"
    rows = [issue("E-1", 0, None), issue("S-2", 1, "E-1"), issue("T-3", 2, "S-2"), issue("S-4", 1, "E-1")]
    write_export_workbook(
        source,
        rows,
        extra_columns=EXTRA,
        query="project = E",
        generated_at=WHEN,
        browse_url="https://acme.atlassian.net/browse/",
        hierarchy=True,
    )
    profile = base / "profile"
    xlsx_dir, csv_dir = base / "xlsx", base / "csv"
    soffice("--convert-to", "xlsx:Calc MS Excel 2007 XML", "--outdir", str(xlsx_dir), str(source), profile=profile)
    # 44 = comma, 34 = double quote, 76 = UTF-8; the 12th token -1 writes every sheet to its own file
    csv_filter = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"
    soffice("--convert-to", csv_filter, "--outdir", str(csv_dir), str(source), profile=profile)
    return xlsx_dir / "export.xlsx", csv_dir


def shown(csv_dir: Path, sheet: str) -> list[dict[str, str]]:
    with (csv_dir / f"export-{sheet}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_libreoffice_shows_every_text_as_written_and_evaluates_nothing(converted: tuple[Path, Path]) -> None:
    _, csv_dir = converted
    for sheet in ("Root Issues", "Child Issues", "Hierarchy"):
        rows = shown(csv_dir, sheet)
        assert rows, sheet
        for line in rows:
            assert {column: line[column] for column in TEXTS} == TEXTS, (sheet, line["Key"])
            assert (line["Old"], line["Due"], line["Points"]) == ("1850-01-02", "2026-03-01", "3.5")
            assert line["Spec"] == "the spec"


def test_libreoffice_keeps_types_links_and_outline(converted: tuple[Path, Path]) -> None:
    saved, _ = converted
    book = openpyxl.load_workbook(saved)
    assert book.sheetnames == ["Root Issues", "Child Issues", "Hierarchy", "Summary"]
    sheet = book["Child Issues"]
    header = [cell.value for cell in sheet[1]]
    cells = {title: sheet.cell(2, header.index(title) + 1) for title in EXTRA}
    # LibreOffice writes shared strings, which openpyxl decodes (_x005F_x0041_ -> _x0041_) itself
    assert {t: cells[t].value for t in TEXTS} == TEXTS
    for title in ("Formula", "Plus", "Minus", "At"):  # text cells, not formulas or numbers
        assert cells[title].data_type == "s", title  # (LibreOffice 7.4 does not write quotePrefix back)
    assert (cells["Old"].value, cells["Old"].data_type) == ("1850-01-02", "s")
    assert cells["Due"].is_date and cells["Due"].value == datetime(2026, 3, 1)
    assert cells["Points"].value == 3.5
    assert cells["Spec"].hyperlink.target == "https://example.com/spec"
    key = sheet.cell(2, 1)
    assert key.hyperlink.target == "https://acme.atlassian.net/browse/S-2"
    folded = book["Hierarchy"]
    keys = [folded.cell(r, 1).value for r in range(2, folded.max_row + 1)]
    assert keys == ["E-1", "S-2", "T-3", "S-4"]
    assert [folded.row_dimensions[r].outline_level for r in range(2, 6)] == [0, 1, 2, 1]
