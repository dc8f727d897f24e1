"""A flat search result arranged as trees, issue by issue as the pages come, whatever their order."""

from __future__ import annotations

import random
from typing import Any

from atlasflow.clients.http import ApiClient
from atlasflow.clients.jira import JiraClient
from atlasflow.reports.tree import Node, TreeWalker


def issue(key: str, parent: str | None = None, kind: str = "Task") -> dict[str, Any]:
    fields: dict[str, Any] = {"issuetype": {"name": kind, "subtask": kind == "Sub-task"}}
    if parent:
        fields["parent"] = {"key": parent}
    return {"id": key.split("-")[1], "key": key, "fields": fields}


def placed(nodes: list[Node]) -> list[tuple[str, str | None, str | None, int, str | None]]:
    return [(n.key, n.parent, n.root, n.level, n.relation) for n in nodes]


WALKER = TreeWalker(JiraClient(ApiClient("Jira", "http://127.0.0.1:9"), "cloud"), {})
ISSUES = [
    issue("P-1", kind="Epic"),
    issue("P-2", "P-1"),
    issue("P-3", "P-2", "Sub-task"),
    issue("P-10", "P-2"),
    issue("P-4", "X-9"),  # its parent is not in the result: a root
    issue("P-5", "P-4"),
    issue("P-6"),
]
EXPECTED = [
    ("P-1", None, None, 0, None),
    ("P-4", None, None, 0, None),
    ("P-6", None, None, 0, None),
    ("P-2", "P-1", "P-1", 1, "epic child"),
    ("P-5", "P-4", "P-4", 1, "child"),
    ("P-3", "P-2", "P-1", 2, "sub-task"),
    ("P-10", "P-2", "P-1", 2, "child"),
]


def test_trees_are_the_same_whatever_order_the_issues_come_in() -> None:
    assert placed(WALKER.forest(ISSUES)) == EXPECTED
    for seed in range(30):
        shuffled = random.Random(seed).sample(ISSUES, len(ISSUES))
        assert placed(WALKER.forest(iter(shuffled))) == EXPECTED, [i["key"] for i in shuffled]


def test_cycles_and_self_parents_place_each_issue_once_under_one_root() -> None:
    cycle = [issue("C-1", "C-3"), issue("C-2", "C-1"), issue("C-3", "C-2"), issue("C-4", "C-2"), issue("S-1", "S-1")]
    for seed in range(10):
        nodes = WALKER.forest(iter(random.Random(seed).sample(cycle, len(cycle))))
        assert sorted(n.key for n in nodes) == ["C-1", "C-2", "C-3", "C-4", "S-1"]
        roots = [n.key for n in nodes if n.parent is None]
        assert "S-1" in roots and len(roots) == 2  # the self-parent, and one issue of the cycle
        by_key = {n.key: n for n in nodes}
        assert by_key["C-4"].parent == "C-2" and by_key["C-4"].root in {"C-1", "C-2", "C-3"}
