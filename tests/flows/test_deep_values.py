"""Hostile inputs of flows over real HTTP: deeply nested Jira values in an export (one cell shows the text
flattened, the export goes on) and a table-sync source past its limits (refused, the page untouched).

A rich-text value 600 levels deep (Cloud: an Atlassian Document of nested quotes; Data Center: an app's
custom field holding nested JSON) once failed the whole export with ``RecursionError``; a 5 KB workbook
claiming a million rows by 16,384 columns, the table sync with ``MemoryError``.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from helpers import running_site, sheet_rows

from atlasflow.flows.confluence_table_sync import confluence_table_sync
from atlasflow.flows.jira_export import jira_export
from atlasflow.formats.jira_values import MAX_DEPTH, render
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.confluence import TEAM_ROSTER_ID
from atlasflow.sandbox.jira import JiraSite

DEPTH = 600
TEXTAREA = "com.atlassian.jira.plugin.system.customfieldtypes:textarea"
DEEP_KEY, CALM_KEY = "DEMO-3", "DEMO-4"


def deep_adf(depth: int) -> dict[str, Any]:
    """An Atlassian Document whose text lies ``depth`` JSON levels down (quotes inside quotes)."""
    node: dict[str, Any] = {"type": "paragraph", "content": [{"type": "text", "text": "at the bottom"}]}
    for _ in range((depth - 4) // 2):
        node = {"type": "blockquote", "content": [node]}
    return {"type": "doc", "version": 1, "content": [node]}


def deep_json(depth: int) -> dict[str, Any]:
    """Nested JSON ``depth`` levels deep, as an app's custom field might hold it."""
    value: dict[str, Any] = {"note": "at the bottom"}
    for n in range(depth - 1):
        value = {"level": n, "inner": value}
    return value


def json_depth(value: Any) -> int:
    """Nesting depth of a JSON value, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack += [(child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)]
    return deepest


@pytest.mark.parametrize("mode", ["cloud", "datacenter"])
def test_a_600_deep_value_is_one_placeholder_cell_and_the_export_goes_on(mode: str, tmp_path: Path) -> None:
    cloud = mode == "cloud"
    jira = JiraSite.demo(mode)  # type: ignore[arg-type]
    # the custom type tells the export what the field holds
    deep_field = jira.add_custom_field("Deep Notes", "string", TEXTAREA if cloud else "com.example.app:json")
    value = deep_adf(DEPTH) if cloud else deep_json(DEPTH)
    assert json_depth(value) >= DEPTH > MAX_DEPTH
    # stored as it is (the sandbox's own setter would keep a "string" field's text): served as stored
    jira.issues[DEEP_KEY].custom[deep_field.id] = value
    jira.issues[CALM_KEY].custom[deep_field.id] = deep_adf(12) if cloud else deep_json(12)

    with running_site(mode, Sandbox(mode=mode, jira=jira)):  # type: ignore[arg-type]
        result = jira_export(
            root_tickets=["DEMO-1"], fields=["Deep Notes", "Description"], output_dir=str(tmp_path), jira_block="jira"
        )

    rows = {r["Key"]: r for r in sheet_rows(result["path"], "Child Issues")}
    deep_cell = str(rows[DEEP_KEY]["Deep Notes"])
    assert "nested deeper than" in deep_cell and str(MAX_DEPTH) in deep_cell
    assert "at the bottom" in deep_cell  # the text is kept, flattened
    assert "at the bottom" in str(rows[CALM_KEY]["Deep Notes"])
    assert "nested deeper" not in str(rows[CALM_KEY]["Deep Notes"])
    assert rows[DEEP_KEY]["Summary"] == jira.issue(DEEP_KEY).summary
    assert rows[DEEP_KEY]["Description"] or rows[CALM_KEY]["Description"]
    assert len(rows) == result["issues"] - 1  # every other issue exported too


def nested(depth: int, wrap: Any) -> dict[str, Any]:
    """A document holding ``depth`` nodes built by ``wrap`` around one text node."""
    node: dict[str, Any] = {"type": "text", "text": "at the bottom"}
    for _ in range(depth):
        node = wrap(node)
    return {"type": "doc", "version": 1, "content": [node]}


def cell(node: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tableCell", "content": [node]}


WRAPS = {
    "lists": lambda n: {"type": "bulletList", "content": [{"type": "listItem", "content": [n]}]},
    "tables": lambda n: {"type": "table", "content": [{"type": "tableRow", "content": [cell(n)]}]},
    "inline": lambda n: {"type": "placeholder", "content": [n]},
    "expands": lambda n: {"type": "nestedExpand", "attrs": {"title": "more"}, "content": [n]},
}


@pytest.mark.parametrize("shape", sorted(WRAPS))
def test_every_shape_of_deep_document_is_flattened_not_a_recursion_error(shape: str) -> None:
    value = nested(1000, WRAPS[shape])
    for cell in (render(value, {"type": "string", "custom": TEXTAREA}), render({"body": [value]})):
        assert isinstance(cell, str) and "nested deeper than" in cell and "at the bottom" in cell
    shallow = render(nested(5, WRAPS[shape]), {"system": "description", "type": "string"})
    assert "at the bottom" in str(shallow) and "nested deeper" not in str(shallow)


def test_deep_plain_json_and_cascading_children_are_bounded() -> None:
    assert "note: at the bottom" in str(render(deep_json(1500)))
    assert "note: at the bottom" in str(render([deep_json(1500)], {"type": "array", "items": "json"}))
    option: dict[str, Any] = {"value": "leaf"}
    for n in range(5000):
        option = {"value": f"v{n}", "child": option}
    names = str(render(option, {"type": "option-with-child"})).split(" / ")
    assert names[:2] == ["v4999", "v4998"] and len(names) == MAX_DEPTH


def claims_a_million_rows(path: Path) -> Path:
    """A workbook of a few KB whose sheet claims A1:XFD1048576, with a cell in its last row and column."""
    book = openpyxl.Workbook()
    book.active.append(["Key", "Name"])
    book.active.append(["ALI", "Ali"])
    source = io.BytesIO()
    book.save(source)
    sheet = "xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            data = old.read(info.filename)
            if info.filename == sheet:
                xml = re.sub(r'<dimension ref="[^"]*"/>', '<dimension ref="A1:XFD1048576"/>', data.decode())
                last = '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'
                data = xml.replace("</sheetData>", last + "</sheetData>").encode()
            new.writestr(info.filename, data)
    return path


def test_a_source_past_its_limits_fails_the_sync_in_one_line_and_leaves_the_page_alone(
    cloud_site: Sandbox, tmp_path: Path
) -> None:
    confluence = cloud_site.confluence
    assert confluence is not None
    before = confluence.page(TEAM_ROSTER_ID).body
    source = claims_a_million_rows(tmp_path / "roster.xlsx")
    state = confluence_table_sync(
        page_id=TEAM_ROSTER_ID, table=0, key_column="Key", source=str(source), return_state=True
    )
    assert state.is_failed()
    assert "source roster.xlsx, sheet 'Sheet': more than 20,000 rows" in (state.message or "")
    assert "\n" not in (state.message or "")
    assert confluence.page(TEAM_ROSTER_ID).body == before
    assert not [e for e in cloud_site.state.log.entries if e.method == "PUT"]
