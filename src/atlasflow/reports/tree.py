"""Stage "fetch": walk issue hierarchies one level per search: roots, then the children of a whole level at once.

Cloud links epics, stories and sub-tasks through ``parent``. Data Center links sub-tasks through ``parent``
and epic children through the "Epic Link" custom field. Optional issue links add linked issues as
children. Every issue is visited once, whatever cycles the links form.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from atlasflow.clients.gcpause import gc_paused
from atlasflow.clients.jira import JiraClient, chunks, quote_jql
from atlasflow.clients.jira_paging import jql_condition
from atlasflow.errors import ConfigurationError
from atlasflow.formats.changes import natural_key
from atlasflow.formats.jira_values import renderer
from atlasflow.reports.pages import PageReader
from atlasflow.reports.rows import ExportRows, name_of

BASE_FIELDS = (
    "summary",
    "issuetype",
    "status",
    "priority",
    "assignee",
    "created",
    "updated",
    "parent",
    "subtasks",
)
#: Keys per ``parent in (...)`` / ``key in (...)`` clause (long JQL goes in a POST body).
KEYS_PER_QUERY = 500
#: Levels walked below the roots at most when no ``max_depth`` is given.
MAX_LEVELS = 50


@dataclass(slots=True)
class Node:
    """An issue as reached by the walk."""

    issue: dict[str, Any]
    parent: str | None = None
    root: str | None = None
    level: int = 0
    relation: str | None = None

    @property
    def key(self) -> str:
        return str(self.issue["key"])


class TreeWalker:
    """Fetches levels of a hierarchy with as few searches as the API allows.

    Args:
        client: The Jira client.
        extra_fields: Extra columns: title as asked (name or id) → field id.
        include_links: Follow issue links as well as the hierarchy.
        levels_below: Whether levels below the first will be asked for (:meth:`children`); without, the
            fields only that needs (``subtasks``, ``issuelinks``) are not fetched, so Cloud can serve the
            issues by bulk fetches of 1000 instead of 100 (a project's search already holds every level).
        within_projects: When given, every search the walker sends (roots, children, linked issues) is
            ``project in (...) AND (<query>)``: no issue of another project is read, whatever the
            hierarchy or links lead to.
    """

    def __init__(
        self,
        client: JiraClient,
        extra_fields: dict[str, str],
        *,
        include_links: bool = False,
        levels_below: bool = True,
        within_projects: Sequence[str] = (),
    ) -> None:
        self.client = client
        self.within = f"project in ({', '.join(quote_jql(p) for p in within_projects)})" if within_projects else ""
        self.extra_fields = extra_fields
        self.include_links = include_links and levels_below
        self.epic_link = client.epic_link_field() if client.deployment == "datacenter" else None
        base = BASE_FIELDS if levels_below else tuple(f for f in BASE_FIELDS if f != "subtasks")
        wanted = [*base, *extra_fields.values()]
        if self.epic_link:
            wanted.append(self.epic_link)
        if self.include_links:
            wanted.append("issuelinks")
        self.fields = list(dict.fromkeys(wanted))
        self.renderers = {fid: renderer(client.field_schema(fid)) for fid in extra_fields.values()}
        #: The rows of what the walk reached (stage "rows"), rendering the extra columns as fetched.
        self.rows = ExportRows(extra_fields, self.renderers)
        self.read_page = PageReader(self.fields, whole=set(extra_fields.values()))

    def fetch_keys(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        """Issues by key (Jira answers 400 naming any key that does not exist)."""
        queries = [f"key in ({', '.join(quote_jql(k) for k in chunk)})" for chunk in chunks(keys, KEYS_PER_QUERY)]
        return self.client.search_many([self.bounded(q) for q in queries], self.fields, self.read_page)

    def bounded(self, jql: str) -> str:
        """``jql`` within the walker's projects, its ``ORDER BY`` kept (unchanged without them)."""
        if not self.within:
            return jql
        condition = jql_condition(jql.strip())
        order = jql.strip()[len(condition) :].strip()
        bounded = f"{self.within} AND ({condition})" if condition else self.within
        return f"{bounded} {order}" if order else bounded

    def fetch_jql(self, jql: str) -> Iterator[dict[str, Any]]:
        """The issues matching ``jql``, as their pages arrive."""
        return self.client.search(self.bounded(jql), self.fields, self.read_page)

    def parent_key(self, issue: dict[str, Any]) -> str | None:
        """The hierarchy parent of an issue: ``parent``, else (Data Center) its Epic Link."""
        fields = issue.get("fields", {})
        parent = fields.get("parent")
        if parent:
            return str(parent["key"])
        if self.epic_link and fields.get(self.epic_link):
            return str(fields[self.epic_link])
        return None

    def _hierarchy_queries(self, frontier: Sequence[Node]) -> list[str]:
        queries = []
        for chunk in chunks(list(frontier), KEYS_PER_QUERY):
            clause = f"parent in ({_key_list(chunk)})"
            epics = [n for n in chunk if name_of(n.issue.get("fields", {}).get("issuetype")) == "Epic"]
            if self.epic_link and epics:
                clause = f"{clause} OR cf[{self.epic_link.removeprefix('customfield_')}] in ({_key_list(epics)})"
            queries.append(clause)
        return queries

    def children(self, frontier: Sequence[Node], seen: set[str]) -> list[Node]:
        """The next level: every unseen issue below or linked from ``frontier``; marks them seen."""
        by_key = {n.key: n for n in frontier}
        found: dict[str, Node] = {}
        parents = [n for n in frontier if may_have_children(n.issue)]
        queries = [self.bounded(q) for q in self._hierarchy_queries(parents)]
        for issue in self.client.search_many(queries, self.fields, self.read_page):
            parent = self.parent_key(issue)
            key = str(issue["key"])
            if parent in by_key and key not in seen and key not in found:
                found[key] = self._child(issue, by_key[parent], relation_of(issue, by_key[parent].issue))
        if self.include_links:
            targets: dict[str, tuple[Node, str]] = {}
            for node in frontier:
                for other, relation in links_of(node.issue):
                    if other not in seen and other not in found:
                        targets.setdefault(other, (node, relation))
            for issue in self.fetch_keys(sorted(targets, key=natural_key)) if targets else []:
                node, relation = targets[str(issue["key"])]
                found.setdefault(str(issue["key"]), self._child(issue, node, relation))
        seen.update(found)
        return sorted(found.values(), key=lambda n: natural_key(n.key))

    @staticmethod
    def _child(issue: dict[str, Any], parent: Node, relation: str) -> Node:
        return Node(
            issue,
            parent=parent.key,
            root=parent.root or parent.key,
            level=parent.level + 1,
            relation=relation,
        )

    def forest(self, issues: Iterable[dict[str, Any]]) -> list[Node]:
        """Arrange a flat search result as trees: issues whose parent is not in the result are roots.

        Issues are placed as they come, under a parent already placed (and what waited for them with
        them), so a search streamed page by page is mostly arranged when its last page arrives. The rest
        (parents that never came, cycles) is placed at the end, each issue once: from it up to the first
        ancestor already placed (or a root: no parent in the result, or a parent that closes a cycle),
        then down that path.
        """
        with gc_paused():  # the nodes hold no cycles; a streamed search pauses collection as well
            return self._forest(issues)

    def _forest(self, issues: Iterable[dict[str, Any]]) -> list[Node]:
        by_key: dict[str, dict[str, Any]] = {}
        nodes: dict[str, Node] = {}
        waiting: dict[str, list[str]] = {}  # parent key -> children that came before it
        order: dict[str, tuple[tuple[Any, ...], str]] = {}
        for issue in issues:
            key = str(issue["key"])
            by_key[key] = issue
            order[key] = natural_key(key)
            parent = self.parent_key(issue)
            if parent is None or parent in nodes:
                self._place(key, nodes[parent] if parent else None, by_key, nodes, waiting)
            else:
                waiting.setdefault(parent, []).append(key)
        for key in by_key:
            if key in nodes:
                continue
            path: list[str] = []
            on_path: set[str] = set()
            climbing: str | None = key
            while climbing is not None and climbing not in nodes:
                path.append(climbing)
                on_path.add(climbing)
                parent = self.parent_key(by_key[climbing])
                climbing = parent if parent in by_key and parent not in on_path else None
            top = nodes[climbing] if climbing is not None else None
            for placed in reversed(path):
                issue = by_key[placed]
                top = Node(issue) if top is None else self._child(issue, top, relation_of(issue, top.issue))
                nodes[placed] = top
        return [node for _, node in sorted(nodes.items(), key=lambda item: (item[1].level, order[item[0]]))]

    def _place(
        self,
        key: str,
        parent: Node | None,
        by_key: dict[str, dict[str, Any]],
        nodes: dict[str, Node],
        waiting: dict[str, list[str]],
    ) -> None:
        """Place ``key`` under ``parent`` (a root without), then whatever was waiting for it, and so on."""
        stack: list[tuple[str, Node | None]] = [(key, parent)]
        while stack:
            key, parent = stack.pop()
            if key in nodes:
                continue
            issue = by_key[key]
            node = Node(issue) if parent is None else self._child(issue, parent, relation_of(issue, parent.issue))
            nodes[key] = node
            stack.extend((child, node) for child in waiting.pop(key, ()))


def walk_levels(
    roots: Sequence[Node],
    max_depth: int | None,
    next_level: Callable[[list[Node], set[str]], list[Node]],
    reached: Callable[[int, list[Node], int], None],
) -> list[Node]:
    """The roots and every level below them down to ``max_depth``: ``next_level(frontier, seen)`` finds the
    next level (e.g. :meth:`TreeWalker.children`, or a task that calls it), ``reached(level, issues, total)``
    is told of each.

    Without ``max_depth`` the walk stops at :data:`MAX_LEVELS`: a server answering new issues level after level
    (or a chain of links that long) fails with one line instead of walking on.

    Raises:
        ConfigurationError: Issues were still found :data:`MAX_LEVELS` levels below the roots, without ``max_depth``.
    """
    nodes = list(roots)
    seen = {n.key for n in nodes}
    frontier = nodes
    level = 0
    while frontier and (max_depth is None or level < max_depth):
        if max_depth is None and level == MAX_LEVELS:
            raise ConfigurationError(
                f"Jira still answered issues {MAX_LEVELS} levels below the roots (Jira hierarchies have a few "
                "levels; a chain of links or a server that never ends?): the walk was stopped; set max_depth"
            )
        level += 1
        frontier = next_level(frontier, seen)
        nodes.extend(frontier)
        reached(level, frontier, len(nodes))
    return nodes


def may_have_children(issue: dict[str, Any]) -> bool:
    """Whether a hierarchy search can find children of ``issue``.

    Sub-task children are listed on their parent (``subtasks``); only epics and the levels above them
    (``hierarchyLevel`` >= 1 on Cloud) have children that no field lists. Everything else is a leaf,
    which spares a search per level of leaves.
    """
    fields = issue.get("fields", {})
    issue_type = fields.get("issuetype") or {}
    if fields.get("subtasks"):
        return True
    return issue_type.get("name") == "Epic" or int(issue_type.get("hierarchyLevel") or 0) >= 1


def relation_of(child: dict[str, Any], parent: dict[str, Any]) -> str:
    """``sub-task``, ``epic child`` or ``child``."""
    child_type = child.get("fields", {}).get("issuetype") or {}
    if child_type.get("subtask"):
        return "sub-task"
    if name_of(parent.get("fields", {}).get("issuetype")) == "Epic":
        return "epic child"
    return "child"


def links_of(issue: dict[str, Any]) -> list[tuple[str, str]]:
    """(linked key, relation as Jira words it from this issue's side) for each issue link."""
    result = []
    for link in issue.get("fields", {}).get("issuelinks") or []:
        link_type = link.get("type", {})
        if "outwardIssue" in link:
            result.append((str(link["outwardIssue"]["key"]), str(link_type.get("outward", link_type.get("name")))))
        elif "inwardIssue" in link:
            result.append((str(link["inwardIssue"]["key"]), str(link_type.get("inward", link_type.get("name")))))
    return result


def _key_list(nodes: Sequence[Node]) -> str:
    return ", ".join(quote_jql(n.key) for n in nodes)
