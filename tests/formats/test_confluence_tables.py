"""Tests of formats.confluence_tables on real sample bodies and hand-written storage-format pages."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from atlasflow.formats.confluence_tables import (
    CellChange,
    DuplicateKeys,
    KeyColumnMissing,
    MalformedStorage,
    MergedCells,
    TableError,
    TableInfo,
    TableNotFound,
    list_tables,
    merge_rows,
    read_table,
    render_table,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = REPO_ROOT / "tests" / "samples"


def _sample_body(relative: str) -> str:
    return json.loads((SAMPLES / relative).read_text(encoding="utf-8"))["body"]["storage"]["value"]


@pytest.fixture(scope="module")
def template() -> str:
    """Confluence Cloud template body with two tables (first without <th>, second with)."""
    return _sample_body("confluence/cloud_v1_template_GET_storage_with_tables.json")


@pytest.fixture(scope="module")
def tableless_bodies() -> list[str]:
    return [
        _sample_body("confluence/v1_content_GET_expand_body.storage_version.json"),
        _sample_body("jira-dc-mock-jira820/confluence_content_3119194426.json"),
    ]


# A realistic page: macros before the tables, a code macro whose CDATA holds <table> text, a table with
# colgroup/th/p/status/jira/user-link/time cells, a table in an expand macro (first row of <td>), a table
# in a layout cell with merged cells and a nested table.
ROW1 = (
    '<tr><td><p><a href="https://jira.example.com/browse/DEMO-1">DEMO-1</a></p></td>'
    "<td><p>Fix the importer&rsquo;s &amp; exporter&nbsp;bugs</p></td>"
    '<td><p><ac:structured-macro ac:name="status" ac:schema-version="1" ac:macro-id="s-1">'
    '<ac:parameter ac:name="colour">Green</ac:parameter><ac:parameter ac:name="title">Done</ac:parameter>'
    "</ac:structured-macro></p></td>"
    '<td><p><ac:link><ri:user ri:account-id="557058:abc" /></ac:link></p></td>'
    '<td><p><time datetime="2026-12-01" /></p></td></tr>'
)
ROW2 = (
    '<tr><td><p><ac:structured-macro ac:name="jira" ac:schema-version="1" ac:macro-id="j-2">'
    '<ac:parameter ac:name="server">System JIRA</ac:parameter>'
    '<ac:parameter ac:name="key">DEMO-2</ac:parameter></ac:structured-macro></p></td>'
    "<td><p>Two lines<br />second   line</p></td><td><p>In progress</p></td><td><p>Ann</p></td>"
    "<td><p /></td></tr>"
)
ROW3 = (
    "<tr><td><p>DEMO-3</p></td><td><p>First para</p><p>Second para</p></td><td><p>To do</p></td>"
    '<td><p><ac:link><ri:page ri:content-title="Team page" />'
    "<ac:plain-text-link-body><![CDATA[Team B]]></ac:plain-text-link-body></ac:link></p></td>"
    "<td><p>&nbsp;</p></td></tr>"
)
ISSUES = (
    '<table data-layout="default" ac:local-id="a1b2c3"><colgroup><col style="width: 120.0px;" />'
    '<col style="width: 300.0px;" /><col /><col /><col /></colgroup><tbody>'
    "<tr><th><p><strong>Key</strong></p></th><th><p><strong>Summary</strong></p></th><th><p>Status</p></th>"
    "<th><p>Owner</p></th><th><p>Due</p></th></tr>" + ROW1 + ROW2 + ROW3 + "</tbody></table>"
)
PAGE = (
    "<h1>Release 4.2</h1>"
    '<ac:structured-macro ac:name="info" ac:schema-version="1" ac:macro-id="i-1"><ac:rich-text-body>'
    "<p>Generated &mdash; do not edit&nbsp;by hand.</p></ac:rich-text-body></ac:structured-macro>"
    '<ac:structured-macro ac:name="code" ac:schema-version="1"><ac:parameter ac:name="language">xml'
    "</ac:parameter><ac:plain-text-body><![CDATA[<table><tr><th>Not</th></tr>"
    "<tr><td>a table</td></tr></table> & <b>]]></ac:plain-text-body></ac:structured-macro>"
    "<h2>Issues</h2>" + ISSUES + "<p>&nbsp;</p>"
    '<ac:structured-macro ac:name="expand" ac:schema-version="1" ac:macro-id="e-1">'
    '<ac:parameter ac:name="title">Sign-off</ac:parameter><ac:rich-text-body>'
    "<table><tbody><tr><td><p>Role</p></td><td><p>Name</p></td></tr>"
    "<tr><td><p>QA</p></td><td><p>Bo</p></td></tr></tbody></table>"
    "</ac:rich-text-body></ac:structured-macro>"
    '<ac:layout><ac:layout-section ac:type="two_equal"><ac:layout-cell><h3>Risks</h3></ac:layout-cell>'
    "<ac:layout-cell><table><tbody><tr><th>Risk</th><th>Level</th></tr>"
    '<tr><td>Outage</td><td colspan="1">High</td></tr>'
    '<tr><td colspan="2"><p>Mitigation steps</p><table><tbody><tr><th>Step</th></tr>'
    "<tr><td>Rollback</td></tr></tbody></table></td></tr></tbody></table></ac:layout-cell>"
    "</ac:layout-section></ac:layout>"
)

MERGED = (
    "<table><tbody><tr><th>Key</th><th>Area</th><th>Value</th></tr>"
    '<tr><td>A</td><td rowspan="2">Shared</td><td>1</td></tr>'
    "<tr><td>B</td><td>2</td></tr>"
    '<tr><td>C</td><td colspan="2">wide</td></tr>'
    "<tr><td>D</td><td>x</td><td>4</td></tr></tbody></table>"
)


def _simple(rows: str, header: str = "<tr><th>Key</th><th>Value</th></tr>") -> str:
    return f"<p>Data</p><table><tbody>{header}{rows}</tbody></table>"


# --------------------------------------------------------------------------------------------------
# Listing and reading


def test_list_tables_of_the_real_template(template: str) -> None:
    assert list_tables(template) == [
        TableInfo(0, "Team members", ["Team", "Column 2"], 5, False),
        TableInfo(1, ":blue_book:", ["Rsponsibility", "Member"], 6, False),
    ]


def test_read_real_template_tables_by_index_and_heading(template: str) -> None:
    first = read_table(template, "team   MEMBERS")
    assert first.index == 0
    assert [row["Team"] for row in first.rows] == ["Team members", "Lead", "EM", "PM", "Date"]
    second = read_table(template, 1)
    assert second.header == ["Rsponsibility", "Member"]
    assert second.rows[0] == {
        "Rsponsibility": "AMM report, burndown Chart, retro meeting",
        "Member": "(Everyone)",
    }
    assert second.rows[2] == {"Rsponsibility": "SRE Champion", "Member": "(All Devs)"}


def test_samples_without_tables(tableless_bodies: list[str]) -> None:
    for body in tableless_bodies:
        assert list_tables(body) == []
        with pytest.raises(TableNotFound, match="has no tables"):
            read_table(body, 0)
        with pytest.raises(TableNotFound, match="has no tables"):
            merge_rows(body, "Goals", "Key", [{"Key": "A"}])


def test_list_tables_finds_nested_tables_and_ignores_cdata() -> None:
    tables = list_tables(PAGE)
    assert [(t.index, t.heading, t.header, t.row_count) for t in tables] == [
        (0, "Issues", ["Key", "Summary", "Status", "Owner", "Due"], 3),
        (1, "Sign-off", ["Role", "Name"], 1),
        (2, "Risks", ["Risk", "Level"], 2),
        (3, "Mitigation steps", ["Step"], 1),
    ]
    assert [t.has_merged_cells for t in tables] == [False, False, True, False]


def test_cell_text_reduces_markup_macros_links_and_entities() -> None:
    table = read_table(PAGE, "Issues")
    assert table.heading == "Issues"
    assert table.rows == [
        {
            "Key": "DEMO-1",
            "Summary": "Fix the importer\u2019s & exporter bugs",
            "Status": "Done",
            "Owner": "@557058:abc",
            "Due": "2026-12-01",
        },
        {
            "Key": "DEMO-2",
            "Summary": "Two lines\nsecond line",
            "Status": "In progress",
            "Owner": "Ann",
            "Due": "",
        },
        {
            "Key": "DEMO-3",
            "Summary": "First para\nSecond para",
            "Status": "To do",
            "Owner": "Team B",
            "Due": "",
        },
    ]


def test_header_from_first_row_of_td_cells_in_an_expand() -> None:
    table = read_table(PAGE, "  sign-OFF ")
    assert (table.index, table.header, table.rows) == (1, ["Role", "Name"], [{"Role": "QA", "Name": "Bo"}])


def test_outer_cell_text_includes_nested_table_and_spans_repeat_text() -> None:
    risks = read_table(PAGE, 2)
    assert risks.has_merged_cells
    nested_text = "Mitigation steps\nStep\nRollback"
    assert risks.rows == [{"Risk": "Outage", "Level": "High"}, {"Risk": nested_text, "Level": nested_text}]
    assert read_table(PAGE, "mitigation steps").rows == [{"Step": "Rollback"}]


def test_rowspan_and_colspan_repeat_text_in_covered_cells() -> None:
    table = read_table(MERGED, 0)
    assert table.has_merged_cells
    assert table.rows == [
        {"Key": "A", "Area": "Shared", "Value": "1"},
        {"Key": "B", "Area": "Shared", "Value": "2"},
        {"Key": "C", "Area": "wide", "Value": "wide"},
        {"Key": "D", "Area": "x", "Value": "4"},
    ]


def test_empty_and_repeated_header_names_are_made_unique() -> None:
    page = "<table><tr><td>Name</td><td><p>&nbsp;</p></td><td>Name</td></tr><tr><td>a</td></tr></table>"
    table = read_table(page, 0)
    assert table.header == ["Name", "Column 2", "Name (2)"]
    assert table.rows == [{"Name": "a", "Column 2": "", "Name (2)": ""}]


def test_rows_as_text_keyed_by_header() -> None:
    table = read_table(PAGE, "Issues")
    assert table.header == ["Key", "Summary", "Status", "Owner", "Due"]
    assert len(table.rows) == 3 and all(list(row) == table.header for row in table.rows)
    assert table.rows[1]["Summary"] == "Two lines\nsecond line"
    assert [row["Status"] for row in table.rows] == ["Done", "In progress", "To do"]


def test_table_not_found_lists_existing_tables() -> None:
    with pytest.raises(TableNotFound) as error:
        read_table(PAGE, "Nope")
    message = str(error.value)
    assert "'Nope'" in message
    for listed in ("0: 'Issues'", "1: 'Sign-off'", "2: 'Risks'", "3: 'Mitigation steps'"):
        assert listed in message
    with pytest.raises(TableNotFound, match="number 4"):
        read_table(PAGE, 4)


def test_ambiguous_heading_is_an_error() -> None:
    page = "<h2>Same</h2><table><tr><td>a</td></tr></table><h2>Same</h2><table><tr><td>b</td></tr></table>"
    with pytest.raises(TableError, match="select one by index"):
        read_table(page, "same")
    assert read_table(page, 1).header == ["b"]


def test_table_right_after_another_table_has_no_heading() -> None:
    page = "<p>Only the first</p><table><tr><td>a</td></tr></table><table><tr><td>b</td></tr></table>"
    assert [t.heading for t in list_tables(page)] == ["Only the first", None]
    page = "<p>Title</p><table /><table><tbody /></table><table><tr><td>c</td></tr></table>"
    assert [t.heading for t in list_tables(page)] == ["Title", None, None]


# --------------------------------------------------------------------------------------------------
# Merging


def test_update_changes_only_the_changed_cell() -> None:
    result = merge_rows(PAGE, "Issues", "Key", [{"Key": "DEMO-3", "Status": "Done", "Owner": "Team B"}])
    assert result.storage == PAGE.replace("<td><p>To do</p></td>", "<td><p>Done</p></td>", 1)
    assert (result.added, result.updated, result.deleted) == ([], ["DEMO-3"], [])
    assert result.cell_changes == [CellChange("DEMO-3", "Status", "To do", "Done")]
    assert result.changed


def test_replacing_a_macro_cell_keeps_the_cell_tag_and_everything_around_it(template: str) -> None:
    result = merge_rows(template, 1, "Rsponsibility", [{"Rsponsibility": "SRE Champion", "Member": "Kim"}])
    old_cell = '<td><p><at:var at:name="sre_champion_name" />(All Devs)</p></td>'
    assert template.count(old_cell) == 1
    assert result.storage == template.replace(old_cell, "<td><p>Kim</p></td>")


def test_append_copies_the_last_row_cell_tags(template: str) -> None:
    result = merge_rows(template, "Team members", "Team", [{"Team": "QA", "Column 2": "Dana"}])
    last_row_end = template.index("</tr></tbody></table>") + len("</tr>")
    new_row = '<tr><td data-highlight-colour="#fffae6"><p>QA</p></td><td><p>Dana</p></td></tr>'
    assert result.storage == template[:last_row_end] + new_row + template[last_row_end:]
    assert result.added == ["QA"]
    assert read_table(result.storage, 0).rows[-1] == {"Team": "QA", "Column 2": "Dana"}


def test_append_after_the_last_data_row_with_missing_columns_empty() -> None:
    result = merge_rows(PAGE, 0, "Key", [{"Key": "DEMO-4", "Summary": "New & shiny"}])
    empty_cells = "<td><p /></td>" * 3
    new_row = f"<tr><td><p>DEMO-4</p></td><td><p>New &amp; shiny</p></td>{empty_cells}</tr>"
    assert result.storage == PAGE.replace(ROW3, ROW3 + new_row, 1)
    assert read_table(result.storage, 0).rows[-1] == {
        "Key": "DEMO-4",
        "Summary": "New & shiny",
        "Status": "",
        "Owner": "",
        "Due": "",
    }


def test_append_to_a_table_with_only_a_header() -> None:
    page = _simple("")
    result = merge_rows(page, "Data", "Key", [{"Key": "k1", "Value": 1}, {"Key": "k2", "Value": 2.5}])
    assert result.storage == _simple(
        "<tr><td><p>k1</p></td><td><p>1</p></td></tr><tr><td><p>k2</p></td><td><p>2.5</p></td></tr>"
    )
    assert result.added == ["k1", "k2"]


def test_delete_missing_removes_exactly_the_row() -> None:
    rows = read_table(PAGE, "Issues").rows
    kept = [rows[0], rows[2]]
    assert merge_rows(PAGE, "Issues", "Key", kept).storage == PAGE
    result = merge_rows(PAGE, "Issues", "Key", kept, delete_missing=True)
    assert result.storage == PAGE.replace(ROW2, "", 1)
    assert (result.added, result.updated, result.deleted) == ([], [], ["DEMO-2"])


def test_update_append_and_delete_together_leave_other_tables_untouched() -> None:
    result = merge_rows(
        PAGE,
        "Issues",
        "Key",
        [{"Key": "DEMO-1", "Status": "Reopened"}, {"Key": "DEMO-9", "Status": "New"}],
        columns=["Status"],
        delete_missing=True,
    )
    assert (result.added, result.updated, result.deleted) == (["DEMO-9"], ["DEMO-1"], ["DEMO-2", "DEMO-3"])
    table_start, table_end = PAGE.index(ISSUES), PAGE.index(ISSUES) + len(ISSUES)
    new_end = len(result.storage) - (len(PAGE) - table_end)
    assert result.storage[:table_start] == PAGE[:table_start]
    assert result.storage[new_end:] == PAGE[table_end:]
    assert [(r["Key"], r["Status"], r["Summary"]) for r in read_table(result.storage, "Issues").rows] == [
        ("DEMO-1", "Reopened", "Fix the importer\u2019s & exporter bugs"),
        ("DEMO-9", "New", ""),
    ]
    assert [read_table(result.storage, i) for i in (1, 2, 3)] == [read_table(PAGE, i) for i in (1, 2, 3)]


def test_columns_limits_what_is_written_and_absent_columns_stay() -> None:
    rows = [{"Key": "DEMO-2", "Summary": "changed", "Status": "Blocked"}, {"Key": "DEMO-3", "Owner": "Zed"}]
    result = merge_rows(PAGE, "Issues", "Key", rows, columns=["Status", "Owner"])
    assert [(c.key, c.column, c.new) for c in result.cell_changes] == [
        ("DEMO-2", "Status", "Blocked"),
        ("DEMO-3", "Owner", "Zed"),
    ]
    assert read_table(result.storage, 0).rows[1]["Summary"] == "Two lines\nsecond line"
    with pytest.raises(TableError, match="'Nope'"):
        merge_rows(PAGE, "Issues", "Key", rows, columns=["Status", "Nope"])


def test_input_columns_not_in_the_header_are_ignored_and_reported() -> None:
    result = merge_rows(
        PAGE, "Issues", "Key", [{"Key": "DEMO-1", "Status": "Done", "Extra": "x", "Other": 1}]
    )
    assert result.ignored_columns == ["Extra", "Other"]
    assert not result.changed
    assert result.storage == PAGE


def test_noop_merge_is_byte_identical(template: str) -> None:
    for page, index, key in ((PAGE, 0, "Key"), (PAGE, 1, "Role"), (template, 1, "Rsponsibility")):
        result = merge_rows(page, index, key, read_table(page, index).rows, delete_missing=True)
        assert not result.changed
        assert result.storage == page
        assert result.cell_changes == []
        assert result.diff_markdown() == "No changes.\n"


def test_values_become_text_before_comparing() -> None:
    rows: list[dict[str, object]] = [
        {"Key": "DEMO-1", "Due": date(2026, 12, 1)},
        {"Key": "DEMO-2", "Due": None, "Owner": "  Ann \n"},
    ]
    assert not merge_rows(PAGE, "Issues", "Key", rows).changed
    moment = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    result = merge_rows(PAGE, "Issues", "Key", [{"Key": "DEMO-3", "Due": moment, "Owner": 42}])
    assert read_table(result.storage, 0).rows[2]["Due"] == "2026-12-01T09:30:00+00:00"
    assert read_table(result.storage, 0).rows[2]["Owner"] == "42"


VALUES = [
    "<script>alert(1)</script>",
    "a & b",
    "]]>",
    "\"quotes\" 'single'",
    "Ünïcödé ✓ 日本",
    "x|y\nz &amp;",
]


def test_escaping_round_trip() -> None:
    rows = [{"Key": f"DEMO-{i}", "Summary": value} for i, value in enumerate(VALUES, start=1)]
    result = merge_rows(PAGE, "Issues", "Key", rows)
    assert "<script>" not in result.storage
    assert "]]>]]>" not in result.storage
    assert [row["Summary"] for row in read_table(result.storage, "Issues").rows] == VALUES
    again = merge_rows(result.storage, "Issues", "Key", rows)
    assert not again.changed
    assert again.storage == result.storage
    assert read_table(result.storage, "Sign-off") == read_table(PAGE, "Sign-off")


def test_keys_are_escaped_too() -> None:
    result = merge_rows(_simple(""), 0, "Key", [{"Key": '<b>"k"</b>', "Value": "v"}])
    assert read_table(result.storage, 0).rows == [{"Key": '<b>"k"</b>', "Value": "v"}]
    assert "<b>" not in result.storage


def test_merge_into_a_nested_table_keeps_the_outer_table_intact() -> None:
    result = merge_rows(PAGE, "Mitigation steps", "Step", [{"Step": "Rollback"}, {"Step": "Notify"}])
    assert result.storage == PAGE.replace(
        "<tr><td>Rollback</td></tr>", "<tr><td>Rollback</td></tr><tr><td><p>Notify</p></td></tr>", 1
    )
    assert list_tables(result.storage)[3].row_count == 2
    assert read_table(result.storage, "Risks").rows[1]["Risk"] == "Mitigation steps\nStep\nRollback\nNotify"


def test_merge_into_table_inside_expand() -> None:
    result = merge_rows(
        PAGE, "Sign-off", "Role", [{"Role": "QA", "Name": "Cy"}, {"Role": "PM", "Name": "Di"}]
    )
    assert result.storage == PAGE.replace(
        "<tr><td><p>QA</p></td><td><p>Bo</p></td></tr>",
        "<tr><td><p>QA</p></td><td><p>Cy</p></td></tr><tr><td><p>PM</p></td><td><p>Di</p></td></tr>",
        1,
    )


def test_self_closing_and_missing_cells_are_filled() -> None:
    page = _simple("<tr><td>a</td><td /></tr><tr><td>b</td></tr>")
    result = merge_rows(page, 0, "Key", [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    assert result.storage == _simple(
        "<tr><td>a</td><td><p>1</p></td></tr><tr><td>b</td><td><p>2</p></td></tr>"
    )


def test_rows_with_an_empty_key_are_left_alone() -> None:
    empty = "<tr><td><p /></td><td><p /></td></tr>"
    page = _simple("<tr><td>a</td><td>1</td></tr>" + empty + empty)
    result = merge_rows(page, 0, "Key", [{"Key": "b", "Value": "2"}], delete_missing=True)
    assert result.deleted == ["a"]
    assert result.storage == _simple(empty + empty + "<tr><td><p>b</p></td><td><p>2</p></td></tr>")


def test_large_table_merge_counts_and_round_trip() -> None:
    body = "".join(f"<tr><td><p>K-{i}</p></td><td><p>v{i}</p></td></tr>" for i in range(500))
    page = _simple(body)
    rows = [{"Key": f"K-{i}", "Value": f"v{i}" if i % 10 else "changed"} for i in range(505)]
    result = merge_rows(page, "Data", "Key", rows)
    assert (len(result.updated), len(result.added), len(result.cell_changes)) == (50, 5, 50)
    assert read_table(result.storage, 0).rows == [{"Key": r["Key"], "Value": r["Value"]} for r in rows]


# --------------------------------------------------------------------------------------------------
# Errors


def test_key_column_missing_names_the_columns() -> None:
    with pytest.raises(KeyColumnMissing) as error:
        merge_rows(PAGE, "Issues", "Issue key", [{"Issue key": "DEMO-1"}])
    for expected in ("'Issue key'", "'Key'", "'Summary'", "'Due'", "table 0 ('Issues')"):
        assert expected in str(error.value)


def test_duplicate_keys_in_the_table() -> None:
    page = _simple("<tr><td>a</td><td>1</td></tr><tr><td>b</td><td>2</td></tr><tr><td>a</td><td>3</td></tr>")
    with pytest.raises(DuplicateKeys, match=r"duplicate keys in table 0 \('Data'\), column 'Key': 'a'"):
        merge_rows(page, 0, "Key", [{"Key": "b", "Value": "9"}])


def test_duplicate_keys_in_the_input() -> None:
    with pytest.raises(DuplicateKeys, match=r"input rows.*'DEMO-1'"):
        merge_rows(PAGE, "Issues", "Key", [{"Key": "DEMO-1"}, {"Key": "DEMO-2"}, {"Key": "DEMO-1"}])


def test_input_row_without_key() -> None:
    with pytest.raises(TableError, match="input row 2 has no value for the key column 'Key'"):
        merge_rows(PAGE, "Issues", "Key", [{"Key": "DEMO-1"}, {"Key": None, "Status": "x"}])


@pytest.mark.parametrize(
    ("page", "message"),
    [
        ("<table><tbody><tr><td>a</tr></tbody></table>", "</tr> closes <td>"),
        ("<table><tbody><tr><td>a</td></tr></tbody>", "<table> opened at line 1, column 1 is never closed"),
        ("<p>x</p></table>", "</table> without a matching start tag"),
        ("<table><tr><td>a < b</td></tr></table>", "'<' that does not start a valid tag"),
        ("<table><tr><td><![CDATA[a</td></tr></table>", "'<' that does not start a valid tag"),
        ("<table><td>a</td></table>", "<td> inside <table>; it must be inside <tr>"),
        ("<p>ok</p>\n<table><tr><td>a</td></tr></table>\n<p>a <!-- open comment</p>", "line 3"),
        ('<table><tr><td title="x>a</td></tr></table>', "'<' that does not start a valid tag"),
    ],
)
def test_malformed_storage(page: str, message: str) -> None:
    for call in (
        lambda: list_tables(page),
        lambda: read_table(page, 0),
        lambda: merge_rows(page, 0, "a", []),
    ):
        with pytest.raises(MalformedStorage, match=re.escape(message)):
            call()


def test_merged_cells_block_only_the_cells_and_rows_they_affect() -> None:
    rows = read_table(MERGED, 0).rows
    ok = merge_rows(
        MERGED, 0, "Key", [{**rows[0], "Value": "10"}, {**rows[1], "Value": "20"}, {**rows[3], "Value": "40"}]
    )
    assert [(c.key, c.new) for c in ok.cell_changes] == [("A", "10"), ("B", "20"), ("D", "40")]
    deleted = merge_rows(MERGED, 0, "Key", rows[:2] + rows[3:], delete_missing=True)
    assert deleted.deleted == ["C"]
    assert deleted.storage == MERGED.replace('<tr><td>C</td><td colspan="2">wide</td></tr>', "")
    with pytest.raises(MergedCells, match=r"row 'B', column 'Area'.*rowspan=2"):
        merge_rows(MERGED, 0, "Key", [{"Key": "B", "Area": "Own"}])
    with pytest.raises(MergedCells, match=r"row 'C', column 'Value'.*colspan=2"):
        merge_rows(MERGED, 0, "Key", [{"Key": "C", "Value": "3"}])
    with pytest.raises(MergedCells, match="row 'A' cannot be deleted"):
        merge_rows(MERGED, 0, "Key", rows[1:], delete_missing=True)


def test_errors_are_value_errors_and_table_errors() -> None:
    for error in (TableNotFound, KeyColumnMissing, DuplicateKeys, MalformedStorage, MergedCells):
        assert issubclass(error, TableError)
    assert issubclass(TableError, ValueError)


# --------------------------------------------------------------------------------------------------
# Diff and rendering


def test_diff_markdown_escapes_values() -> None:
    result = merge_rows(
        PAGE,
        "Issues",
        "Key",
        [{"Key": "DEMO-1", "Summary": "a|b\nc <b>*x*</b>"}, {"Key": "NEW|1", "Summary": "n"}],
        delete_missing=True,
    )
    text = result.diff_markdown()
    assert "- Added (1): NEW\\|1" in text
    assert "- Updated (1): DEMO-1" in text
    assert "- Deleted (2): DEMO-2, DEMO-3" in text
    assert (
        "| DEMO-1 | Summary | Fix the importer\u2019s \\& exporter bugs | a\\|b<br>c \\<b\\>\\*x\\*\\</b\\> |"
        in text
    )
    table_lines = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table_lines) == 3
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 5 for line in table_lines)


def test_render_table_round_trip() -> None:
    header = ["Run", "State", "Started", "Note"]
    rows: list[dict[str, object]] = [
        {"Run": "r-1", "State": "COMPLETED", "Started": datetime(2026, 11, 28, 9, 45), "Note": VALUES[0]},
        {"Run": "r-2", "State": None, "Started": date(2026, 11, 29), "Note": "two\nlines & ]]>"},
        {"Run": 3, "Note": VALUES[4]},
    ]
    storage = render_table(header, rows, heading="Flow runs")
    assert "<script>" not in storage
    table = read_table(storage, "flow runs")
    assert table.header == header
    assert table.rows == [
        {"Run": "r-1", "State": "COMPLETED", "Started": "2026-11-28T09:45:00", "Note": VALUES[0]},
        {"Run": "r-2", "State": "", "Started": "2026-11-29", "Note": "two\nlines & ]]>"},
        {"Run": "3", "State": "", "Started": "", "Note": VALUES[4]},
    ]
    assert not merge_rows(storage, 0, "Run", table.rows).changed


def test_render_table_rejects_bad_headers() -> None:
    with pytest.raises(TableError, match="duplicate column names 'A'"):
        render_table(["A", "B", "A"], [])
    with pytest.raises(TableError, match="at least one column"):
        render_table([], [])


def test_a_paragraph_added_under_a_heading_keeps_the_table_selectable_by_both() -> None:
    page = "<h2>Exported tickets</h2><p>Edited by a colleague</p><table><tbody><tr><th>Key</th></tr></tbody></table>"
    assert read_table(page, "Exported tickets").index == 0
    assert read_table(page, "edited by a colleague").index == 0
    assert read_table(page, 0).heading == "Exported tickets"
