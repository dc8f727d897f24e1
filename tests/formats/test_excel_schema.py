"""Every part of an export workbook is valid against the ECMA-376 schemas (checked offline by openxml-audit)."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from atlasflow.formats.changes import diff_snapshots, snapshot_of
from atlasflow.formats.jira_values import Link
from atlasflow.formats.records import ExportRow
from atlasflow.reports.sheets import write_export_workbook

audit = pytest.importorskip("openxml_audit")

STRUCTURAL = {"schema", "package", "relationship", "markup_compatibility"}
WHEN = datetime(2026, 1, 5, 10, 15, tzinfo=UTC)


def structural_errors(path: Path) -> list[str]:
    result = audit.OpenXmlValidator(max_errors=100).validate(str(path))
    return [str(e) for e in result.errors if e.error_type.value in STRUCTURAL]


def rows() -> list[ExportRow]:
    def one(key: str, level: int, parent: str | None, note: str) -> ExportRow:
        extra = {"Spec": Link("https://example.com/s?a=1&b=2", "https://example.com/s?a=1&b=2"), "Note": note}
        return ExportRow(key, f"summary {key} <&>", "Story", "Done", "High", "Alice", WHEN, WHEN, parent,
                         None if level == 0 else "E-1", level, None if level == 0 else "child", extra)  # fmt: skip

    return [one("E-1", 0, None, "=1+1"), one("S-2", 1, "E-1", "_x0041_ ok"), one("T-3", 2, "S-2", "x" * 40_000)]


def test_every_part_is_schema_valid(tmp_path: Path) -> None:
    old = {r.key: snapshot_of(r, ["Note"]) for r in rows()}
    new = {**old, "S-2": {**old["S-2"], "status": "To Do"}}
    path = tmp_path / "export.xlsx"
    write_export_workbook(
        path,
        rows(),
        extra_columns=("Spec", "Note"),
        query="project = DEMO",
        generated_at=WHEN,
        browse_url="https://acme.atlassian.net/browse/",
        changes=diff_snapshots(old, new),
        hierarchy=True,
    )
    assert structural_errors(path) == []

    # the check can fail: the same package with an element the schema does not allow
    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"<sheetData>", b"<sheetData><bogus/>")
            target.writestr(item, data)
    assert structural_errors(broken)
