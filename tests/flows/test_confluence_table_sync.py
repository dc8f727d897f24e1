"""Table sync and table read flows against the sandbox's Confluence, Cloud and Data Center."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from atlasflow.flows.confluence_table_sync import confluence_table_sync, read_confluence_table
from atlasflow.formats.confluence_tables import read_table
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.confluence import (
    BROKEN_PAGE_ID,
    COLLEAGUE_EDIT,
    EXPORT_SUMMARY_ID,
    NO_TABLES_ID,
    TEAM_ROSTER_ID,
)
from atlasflow.sandbox.core import Faults

NASTY = ["<script>alert(1)</script>", "a & b &amp; c", "]]> end", "\"double\" 'single'", "Ünïcödé ✓ 日本 🎉"]


def puts(sb: Sandbox) -> int:
    return len([e for e in sb.state.log.entries if e.method == "PUT"])


def body(sb: Sandbox, page_id: str) -> str:
    return sb.confluence.page(page_id).body  # type: ignore[union-attr]


def changed_region(old: str, new: str) -> tuple[str, str]:
    """The differing middle of two strings (after the common prefix and suffix)."""
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end = 0
    while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
        end += 1
    return old[start : len(old) - end], new[start : len(new) - end]


def test_update_touches_only_the_changed_cell(site: Sandbox) -> None:
    before = body(site, EXPORT_SUMMARY_ID)
    first = read_table(before, "Exported tickets").rows[0]
    key = first["Key"]
    result = confluence_table_sync(
        page_id=EXPORT_SUMMARY_ID,
        table="Exported tickets",
        key_column="Key",
        rows=[{"Key": key, "Summary": "Renamed by atlasflow"}],
    )
    after = body(site, EXPORT_SUMMARY_ID)
    assert result["updated"] == 1 and result["added"] == 0 and result["written"]
    old, new = changed_region(before, after)
    assert "Renamed by atlasflow" in new
    for structural in ("<table", "</table>", "<tr", "ac:structured-macro", "<th"):
        assert structural not in old and structural not in new
    assert read_table(after, "Exported tickets").rows[1:] == read_table(before, "Exported tickets").rows[1:]


def test_nothing_changed_means_no_write(site: Sandbox) -> None:
    rows = [dict(r) for r in read_table(body(site, TEAM_ROSTER_ID), 0).rows]
    result = confluence_table_sync(page_id=TEAM_ROSTER_ID, table=0, key_column="Key", rows=rows)
    assert not result["written"] and result["updated"] == result["added"] == 0
    assert puts(site) == 0
    assert len(site.confluence.history(TEAM_ROSTER_ID)) == 1


def test_dry_run_writes_nothing(site: Sandbox) -> None:
    before = body(site, TEAM_ROSTER_ID)
    result = confluence_table_sync(
        page_id=TEAM_ROSTER_ID,
        table="0",
        key_column="Key",
        rows=[{"Key": "ZED", "Name": "Zed"}],
        dry_run=True,
    )
    assert result["added"] == 1 and not result["written"]
    assert puts(site) == 0 and body(site, TEAM_ROSTER_ID) == before


def test_concurrent_edit_loses_neither_edit(site: Sandbox) -> None:
    site.state.faults = Faults(concurrent_edits=1)
    result = confluence_table_sync(
        page_id=TEAM_ROSTER_ID, table=0, key_column="Key", rows=[{"Key": "DAN", "Name": "Dan", "Role": "QA"}]
    )
    after = body(site, TEAM_ROSTER_ID)
    assert result["written"] and result["added"] == 1
    assert "Edited concurrently by Colleague" in after, "the colleague's edit was lost"
    assert COLLEAGUE_EDIT.split("(")[0] in after
    assert "DAN" in {r["Key"] for r in read_table(after, 0).rows}
    assert [e.status for e in site.state.log.entries if e.method == "PUT"] == [409, 200]


def test_untrusted_values_survive_as_text(site: Sandbox) -> None:
    rows = [{"Key": f"X{i}", "Name": text, "Role": text} for i, text in enumerate(NASTY)]
    confluence_table_sync(page_id=TEAM_ROSTER_ID, table=0, key_column="Key", rows=rows)
    after = body(site, TEAM_ROSTER_ID)
    assert "<script>" not in after
    read_back = {r["Key"]: r for r in read_confluence_table(page_id=TEAM_ROSTER_ID, table=0)}
    for i, text in enumerate(NASTY):
        assert read_back[f"X{i}"]["Name"] == text


def test_rows_from_a_csv_source_and_delete_missing(cloud_site: Sandbox, tmp_path: Path) -> None:
    source = tmp_path / "roster.csv"
    with source.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["Key", "Name", "Role", "Team"])
        writer.writeheader()
        writer.writerow({"Key": "ALI", "Name": "Ali", "Role": "Lead", "Team": "Platform"})
    result = confluence_table_sync(
        page_id=TEAM_ROSTER_ID, table=0, key_column="Key", source=str(source), delete_missing=True
    )
    assert result["deleted"] == 2
    assert [r["Key"] for r in read_table(body(cloud_site, TEAM_ROSTER_ID), 0).rows] == ["ALI"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"page_id": "999999", "table": 0, "key_column": "Key"}, "No content found"),
        ({"page_id": NO_TABLES_ID, "table": 0, "key_column": "Key"}, "table"),
        ({"page_id": TEAM_ROSTER_ID, "table": "Nope", "key_column": "Key"}, "Nope"),
        ({"page_id": TEAM_ROSTER_ID, "table": 0, "key_column": "Badge"}, "Badge"),
        ({"page_id": BROKEN_PAGE_ID, "table": 0, "key_column": "Key"}, "line"),
    ],
)
def test_bad_input_is_a_clear_error_and_the_page_is_untouched(
    site: Sandbox, kwargs: dict[str, Any], message: str
) -> None:
    state = confluence_table_sync(**kwargs, rows=[{"Key": "ALI", "Name": "x"}], return_state=True)
    assert state.is_failed()
    assert message.lower() in (state.message or "").lower()
    assert puts(site) == 0


def test_duplicate_keys_in_the_input_are_refused(site: Sandbox) -> None:
    state = confluence_table_sync(
        page_id=TEAM_ROSTER_ID,
        table=0,
        key_column="Key",
        rows=[{"Key": "ALI"}, {"Key": "ALI"}],
        return_state=True,
    )
    assert state.is_failed() and "ALI" in (state.message or "")
    assert puts(site) == 0


def test_read_table_flow_returns_rows(site: Sandbox) -> None:
    rows = read_confluence_table(page_id=TEAM_ROSTER_ID, table=0)
    assert [r["Key"] for r in rows] == ["ALI", "BOB", "CAR"]
