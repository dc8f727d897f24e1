"""Tests of formats.changes: snapshots, diffs, ordering and the one-line description."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from atlasflow.formats.changes import (
    ChangeReport,
    FieldChange,
    IssueChange,
    describe_changes,
    diff_snapshots,
    natural_key,
    snapshot_of,
)
from atlasflow.formats.records import ExportRow

EXTRA = ("Story Points", "Due", "Labels")


def _row(key: str, **fields: Any) -> ExportRow:
    defaults: dict[str, Any] = {"summary": f"Summary of {key}", "type": "Story", "status": "To Do"}
    return ExportRow(key=key, **(defaults | fields))


def _snapshot(*rows: ExportRow) -> dict[str, dict[str, Any]]:
    return {row.key: snapshot_of(row, EXTRA) for row in rows}


def _base_rows() -> list[ExportRow]:
    return [
        _row("DEMO-1", type="Epic", status="In Progress", assignee="Ada", extra={"Story Points": 13}),
        _row("DEMO-2", parent="DEMO-1", root="DEMO-1", level=1, relation="epic child", assignee="Bo"),
        _row("DEMO-3", parent="DEMO-1", root="DEMO-1", level=1, relation="epic child"),
        _row("DEMO-4", parent="DEMO-2", root="DEMO-1", level=2, relation="sub-task", type="Sub-task"),
        _row("DEMO-10", parent="DEMO-1", root="DEMO-1", level=1, relation="blocks", extra={"Labels": ["a"]}),
    ]


def test_snapshot_holds_the_fields_and_is_json_safe() -> None:
    due = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    row = _row(
        "DEMO-7",
        priority="High",
        assignee="Ada",
        parent="DEMO-1",
        root="DEMO-1",
        level=1,
        relation="sub-task",
        created=datetime(2024, 1, 1, tzinfo=UTC),
        extra={"Story Points": 5, "Due": due, "Labels": ("x", "y"), "Other": "not exported"},
    )

    snapshot = snapshot_of(row, EXTRA)

    assert snapshot == {
        "summary": "Summary of DEMO-7",
        "type": "Story",
        "status": "To Do",
        "priority": "High",
        "assignee": "Ada",
        "parent": "DEMO-1",
        "level": 1,
        "relation": "sub-task",
        "Story Points": 5,
        "Due": "2024-05-01T10:00:00+00:00",
        "Labels": ["x", "y"],
    }
    assert json.loads(json.dumps(snapshot)) == snapshot


def test_snapshot_normalises_instants_and_keeps_extra_titles_apart_from_base_fields() -> None:
    paris = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    row_a = _row("DEMO-1", extra={"Due": paris, "status": "custom", "When": date(2024, 5, 1)})
    row_b = _row("DEMO-1", extra={"Due": paris.astimezone(UTC), "status": "custom", "When": date(2024, 5, 1)})

    snapshot_a = snapshot_of(row_a, ("Due", "status", "When"))

    assert snapshot_a == snapshot_of(row_b, ("Due", "status", "When"))
    assert snapshot_a["status"] == "To Do"
    assert snapshot_a["extra: status"] == "custom"
    assert snapshot_a["When"] == "2024-05-01"


def test_identical_snapshots_have_no_changes() -> None:
    old = _snapshot(*_base_rows())
    new = json.loads(json.dumps(_snapshot(*_base_rows())))  # as reloaded from disk

    report = diff_snapshots(old, new)

    assert report.new == [] and report.gone == [] and report.changed == []
    assert report.field_counts == {}
    assert report.ordered() == []
    assert describe_changes(report) == "no changes"


def test_each_kind_of_change_is_reported() -> None:
    old_rows = _base_rows()
    new_rows = _base_rows()
    new_rows[0].status = "Done"  # DEMO-1 status change
    new_rows[1].assignee = "Chen"  # DEMO-2 reassignment
    new_rows[3].parent, new_rows[3].level = "DEMO-3", 2  # DEMO-4 moves under DEMO-3
    new_rows[4].summary = '=HYPERLINK("http://evil")'  # DEMO-10 summary edit
    del new_rows[2]  # DEMO-3 deleted
    new_rows.append(
        _row("DEMO-11", type="Sub-task", parent="DEMO-2", root="DEMO-1", level=2, relation="sub-task")
    )

    report = diff_snapshots(_snapshot(*old_rows), _snapshot(*new_rows))

    assert report.new == [IssueChange("DEMO-11", "new", "Summary of DEMO-11", [])]
    assert report.gone == [IssueChange("DEMO-3", "gone", "Summary of DEMO-3", [])]
    assert report.changed == [
        IssueChange("DEMO-1", "changed", "Summary of DEMO-1", [FieldChange("status", "In Progress", "Done")]),
        IssueChange("DEMO-2", "changed", "Summary of DEMO-2", [FieldChange("assignee", "Bo", "Chen")]),
        IssueChange("DEMO-4", "changed", "Summary of DEMO-4", [FieldChange("parent", "DEMO-2", "DEMO-3")]),
        IssueChange(
            "DEMO-10",
            "changed",
            '=HYPERLINK("http://evil")',
            [FieldChange("summary", "Summary of DEMO-10", '=HYPERLINK("http://evil")')],
        ),
    ]
    assert report.field_counts == {"status": 1, "assignee": 1, "parent": 1, "summary": 1}


def test_extra_column_changes_are_reported_but_added_columns_are_not() -> None:
    old = _snapshot(_row("DEMO-1", extra={"Story Points": 3, "Labels": ["a"]}))
    new = {
        "DEMO-1": {
            **snapshot_of(_row("DEMO-1", extra={"Story Points": 5, "Labels": ["a", "b"]}), EXTRA),
            "Team": "Atlas",  # a column added since the previous export
        }
    }

    report = diff_snapshots(old, new)

    assert [change.changes for change in report.changed] == [
        [FieldChange("Story Points", 3, 5), FieldChange("Labels", ["a"], ["a", "b"])]
    ]


def test_ordered_puts_biggest_movements_first_then_new_then_gone() -> None:
    old = _snapshot(
        *(_row(f"DEMO-{n}", assignee="Ada", priority="Low", parent="DEMO-100", level=1) for n in range(1, 8))
    )
    new = {key: dict(values) for key, values in old.items()}
    new["DEMO-2"]["assignee"] = "Bo"  # weight 1
    new["DEMO-10"] = snapshot_of(_row("DEMO-10"), EXTRA)  # new
    new["DEMO-9"] = snapshot_of(_row("DEMO-9"), EXTRA)  # new
    new["DEMO-3"]["status"] = "Done"  # weight 3
    new["DEMO-4"].update(assignee="Bo", priority="High")  # weight 2
    new["DEMO-5"].update(parent="DEMO-200", level=2)  # weight 6
    new["DEMO-7"]["status"] = "Done"  # weight 3, ties with DEMO-3
    del new["DEMO-6"]  # gone
    new["DEMO-1"]["summary"] = "edited"  # weight 1, ties with DEMO-2

    ordered = diff_snapshots(old, new).ordered()

    assert [(change.kind, change.key) for change in ordered] == [
        ("changed", "DEMO-5"),
        ("changed", "DEMO-3"),
        ("changed", "DEMO-7"),
        ("changed", "DEMO-4"),
        ("changed", "DEMO-1"),
        ("changed", "DEMO-2"),
        ("new", "DEMO-9"),
        ("new", "DEMO-10"),
        ("gone", "DEMO-6"),
    ]


def test_natural_key_orders_numbers_as_numbers() -> None:
    keys = ["DEMO-10", "ABC-3", "DEMO-2", "DEMO-1", "abc-20"]

    assert sorted(keys, key=natural_key) == ["ABC-3", "abc-20", "DEMO-1", "DEMO-2", "DEMO-10"]


def test_describe_changes_counts_kinds_and_fields() -> None:
    report = ChangeReport(
        new=[IssueChange("DEMO-9", "new", "")],
        gone=[IssueChange("DEMO-8", "gone", ""), IssueChange("DEMO-7", "gone", "")],
        changed=[IssueChange(f"DEMO-{n}", "changed", "") for n in range(1, 4)],
        field_counts={"assignee": 1, "status": 3, "parent": 1},
    )

    assert describe_changes(report) == "1 new, 2 gone, 3 changed: 3 status, 1 assignee, 1 parent"


def test_describe_changes_without_changed_issues() -> None:
    report = diff_snapshots({}, _snapshot(_row("DEMO-1"), _row("DEMO-2")))

    assert describe_changes(report) == "2 new, 0 gone, 0 changed"


def test_diff_of_many_issues_returns_every_change() -> None:
    old = {f"DEMO-{n}": {"summary": f"s{n}", "status": "To Do", "level": 1} for n in range(20_000)}
    new = {key: dict(values) for key, values in old.items()}
    for n in range(0, 20_000, 10):
        new[f"DEMO-{n}"]["status"] = "Done"

    report = diff_snapshots(old, new)

    assert len(report.changed) == 2_000
    assert report.field_counts == {"status": 2_000}
    assert describe_changes(report) == "0 new, 0 gone, 2000 changed: 2000 status"


def test_ordered_sorts_a_report_built_by_hand() -> None:
    status = [FieldChange("status", "To Do", "Done")]
    report = ChangeReport(
        new=[IssueChange("DEMO-10", "new", ""), IssueChange("DEMO-9", "new", "")],
        gone=[IssueChange("DEMO-20", "gone", ""), IssueChange("DEMO-3", "gone", "")],
        changed=[IssueChange("DEMO-12", "changed", "", status), IssueChange("DEMO-2", "changed", "", status)],
        field_counts={"status": 2},
    )

    assert [change.key for change in report.ordered()] == [
        "DEMO-2",
        "DEMO-12",
        "DEMO-9",
        "DEMO-10",
        "DEMO-3",
        "DEMO-20",
    ]
