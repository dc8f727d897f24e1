"""The records of the sandbox Jira site (statuses, types, users, projects, fields, links, issues, sprints),
its server-side limits, and the formats Jira uses for times, summaries and keys."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SUMMARY_MAX = 255
"""Jira rejects summaries longer than this."""


@dataclass(frozen=True, slots=True)
class Status:
    id: str
    name: str
    category_id: int
    category_key: str
    category_name: str
    color: str


@dataclass(frozen=True, slots=True)
class IssueType:
    id: str
    name: str
    subtask: bool
    hierarchy_level: int
    description: str


@dataclass(frozen=True, slots=True)
class Priority:
    id: str
    name: str
    rank: int
    """Higher is more urgent (``ORDER BY priority DESC`` puts Highest first)."""


@dataclass(frozen=True, slots=True)
class User:
    """A Jira user. ``name`` is the Data Center username and the sandbox's internal id."""

    name: str
    key: str
    account_id: str
    display_name: str
    email: str
    active: bool = True


@dataclass(slots=True)
class Project:
    id: str
    key: str
    name: str
    browsers: frozenset[str] | None = None
    """Usernames allowed to browse the project; ``None`` lets every account with BROWSE_PROJECTS."""
    next_number: int = 1


@dataclass(frozen=True, slots=True)
class FieldDef:
    """A field as ``/rest/api/x/field`` lists it.

    Attributes:
        kind: How the sandbox stores and renders it: a system field id, or ``number``, ``option``,
            ``string``, ``date``, ``epiclink`` for custom fields.
    """

    id: str
    name: str
    custom: bool
    kind: str
    schema: dict[str, Any] | None
    clause_names: tuple[str, ...]
    orderable: bool = True
    navigable: bool = True
    searchable: bool = True


@dataclass(frozen=True, slots=True)
class LinkType:
    id: str
    name: str
    inward: str
    outward: str


@dataclass(frozen=True, slots=True)
class Link:
    """``source`` <outward> ``target``, e.g. DEMO-2 *blocks* DEMO-4."""

    id: int
    type: LinkType
    source: str
    target: str


@dataclass(slots=True, eq=False)
class Issue:
    """One issue record. Read it through :meth:`JiraSite.issue` (a copy); change it through the site.

    Attributes:
        type: Issue type name.
        assignee: Username (:attr:`User.name`) or ``None``.
        created: Jira timestamp, e.g. ``2026-01-05T10:15:30.000+0000``.
        parent: Key of the parent (see :mod:`atlasflow.sandbox.jira.site` for what uses it in which mode).
        epic: Data Center Epic Link (epic key); always ``None`` in Cloud.
        custom: Custom field values by field id, as stored (option fields store the option value).
    """

    id: int
    key: str
    project: str
    number: int
    type: str
    summary: str
    status: str
    priority: str | None
    assignee: str | None
    reporter: str | None
    created: str
    updated: str
    labels: list[str] = field(default_factory=list)
    description: str | None = None
    parent: str | None = None
    epic: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    """Values of the other system fields by field id, mode-neutral (the routes render them per API):
    ``fixVersions``/``versions``/``components`` names, ``duedate``, ``resolution`` name,
    ``environment`` text, ``security`` level name, ``timetracking`` (original, remaining, spent seconds),
    ``votes`` and ``watches`` counts, ``comment`` [(author, text, created)], ``worklog``
    [(author, started, seconds, text)], ``attachment`` [(filename, bytes, mime type, author, created)]."""


@dataclass
class JiraSettings:
    """Server-side limits of the site.

    Attributes:
        max_results: Page-size cap of Data Center ``/search``, the agile epic resource and Cloud
            ``/search/jql`` when fields are requested. A larger ``maxResults`` is silently capped; the
            response's ``maxResults`` (DC) shows the capped value.
        max_results_ids_only: Cap of Cloud ``/search/jql`` when only ids/keys are requested.
        default_max_results: Page size when the client sends no ``maxResults``.
        max_result_window: Data Center: results a ``/search`` can reach (``startAt + maxResults``); past
            it Jira with OpenSearch answers 500 "Search limit exceeded ... search platform limit of
            10,000" (``jira.search.platform.max.result.window``).
        bulk_fetch_max_efficient: Cloud ``issue/bulkfetch`` issues per request when the request is shaped
            to be served efficiently (else 100).
        render_cache_size: Rendered issue payloads kept (one per issue and fields selection); the
            cache is emptied when full and whenever the site changes. 30,000 covers a 20,000-issue
            export twice over and stays under ~100 MB.
    """

    max_results: int = 100
    max_results_ids_only: int = 5000
    default_max_results: int = 50
    max_result_window: int = 10_000
    bulk_fetch_max_efficient: int = 1000
    render_cache_size: int = 30_000


@dataclass(frozen=True, slots=True)
class Sprint:
    id: int
    name: str
    state: str
    """``closed``, ``active`` or ``future`` (Data Center writes them in capitals)."""
    board: int
    goal: str
    start: str | None
    end: str | None


_KEY_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)-(\d+)$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
BASE_TIME = datetime(2026, 1, 5, 10, 15, 30, tzinfo=UTC)


def jira_time(moment: datetime) -> str:
    """Format a datetime the way Jira does: ``2026-01-05T10:15:30.000+0000``."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}+0000"


def check_summary(value: Any) -> str:
    """``value`` if Jira would accept it as a summary; ``ValueError`` with Jira's reason otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("You must specify a summary of the issue.")
    if len(value) > SUMMARY_MAX:
        raise ValueError("Summary must be less than 255 characters.")
    if "\n" in value or "\r" in value:
        raise ValueError("The summary is invalid because it contains newline characters.")
    return value


def split_key(key: str) -> tuple[str, int] | None:
    """``"DEMO-12"`` -> ``("DEMO", 12)``; ``None`` if it does not look like an issue key."""
    match = _KEY_RE.match(key)
    return (match.group(1).upper(), int(match.group(2))) if match else None
