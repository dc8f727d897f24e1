"""The Jira site behind the sandbox: projects, users, fields, issues and links, in memory.

A :class:`JiraSite` is built for one mode and keeps that mode's hierarchy rules:

* **cloud**: every child points to its parent through ``parent`` (epic -> story/task/bug -> sub-task).
* **datacenter**: sub-tasks point to their parent through ``parent`` (and are listed in the parent's
  ``subtasks``); stories, tasks and bugs point to their epic through the **Epic Link** custom field
  ``customfield_10830`` (value: the epic's key), never through ``parent``.

The sandbox also allows sub-tasks of sub-tasks (real Jira does not), so that generated trees can be
deeper than three levels; they use ``parent`` in both modes, so one traversal works everywhere: the
children of ``X`` are ``parent = X`` plus, in Data Center, ``"Epic Link" = X``.

Demo site (:meth:`JiraSite.demo`, same keys and summaries in both modes)
-----------------------------------------------------------------------
``DEMO`` (292 issues): eight epics ``DEMO-1``, ``DEMO-30``, ``DEMO-57``, ``DEMO-90``, ``DEMO-112``,
``DEMO-141``, ``DEMO-168``, ``DEMO-201``; each has 6-9 stories, each story 1-4 sub-tasks; then 70
issues outside any epic, ``DEMO-223`` .. ``DEMO-292``: 40 tasks (every fourth with two sub-tasks,
e.g. ``DEMO-223`` with ``DEMO-224``, ``DEMO-225``) and ten bugs ``DEMO-283`` .. ``DEMO-292``.

``DEMO-1`` is the root to use for flow tests (29 issues)::

    DEMO-1  Epic      "Checkout revamp 🛒"
      DEMO-2  Story   '=HYPERLINK("http://evil","x")'      blocks DEMO-4 (cycle, see below)
        DEMO-3  Sub-task '+1+1'
      DEMO-4  Story   '-2'                                   blocks DEMO-7
        DEMO-5  Sub-task '@SUM(A1)'
        DEMO-6  Sub-task '<script>alert(1)</script>'
      DEMO-7  Story   '<b>bold</b> & co'                     blocks DEMO-2
        DEMO-8 .. DEMO-10 Sub-tasks: '@channel please look', '@all hands: release checklist',
                                     '@here deploy now'
      DEMO-11 Story   'Ünïcödé café, naïve façade'
        DEMO-12 .. DEMO-15 Sub-tasks: '日本語の要約テキスト', 'Deploy 🚀 and celebrate 🎉',
                                     a 255-character summary (Jira's cap; its description is long),
                                     a summary with quotes, a backslash and semicolons
      DEMO-16, DEMO-18, DEMO-21, DEMO-25: four more stories, with 1, 2, 3 and 4 sub-tasks

Links: ``DEMO-2`` blocks ``DEMO-4`` blocks ``DEMO-7`` blocks ``DEMO-2`` (a cycle); ``DEMO-1`` relates
to ``DEMO-223``; ``DEMO-31`` (story of ``DEMO-30``) blocks ``DEMO-16``; ``DEMO-292`` duplicates
``DEMO-283``; ``DEMO-11`` relates to ``OPS-1``; ``DEMO-16`` blocks ``SECRET-2`` (hidden from the
viewer). Assignees: some unassigned, ``frank`` is inactive; priorities: some ``null``.

``OPS`` (20 issues, a maintenance-job target): tasks ``OPS-1`` (sub-tasks ``OPS-2`` .. ``OPS-4``),
``OPS-5`` .. ``OPS-7``, ``OPS-8`` (sub-tasks ``OPS-9``, ``OPS-10``), ``OPS-11`` .. ``OPS-13``,
``OPS-14`` (sub-task ``OPS-15``), ``OPS-16`` .. ``OPS-20``; all labelled ``maintenance``.
``EMPTY``: a project without issues.
``SECRET`` (5 issues: epic ``SECRET-1``, story ``SECRET-2``, its sub-task ``SECRET-3``, tasks
``SECRET-4``, ``SECRET-5``): only ``demo@example.com`` may browse it; for ``viewer@example.com`` it
does not exist.

Custom fields (id by mode; names are the same), with the schemas Jira sends for their types:

=============  ===================  ===================  ==========================================
name           cloud id             datacenter id        value
=============  ===================  ===================  ==========================================
Story Points   customfield_10016    customfield_10106    number (stories)
Team           customfield_10001    customfield_10500    option: Platform, Payments, Mobile
Sprint         customfield_10020    customfield_10104    gh-sprint: sprint objects (Cloud), Data
                                                         Center's ``…greenhopper…Sprint@…[…]`` strings
Target Date    customfield_10015    customfield_10600    date ``YYYY-MM-DD`` (epics)
Customer       customfield_10040    customfield_10700    short text
Release Notes  customfield_10041    customfield_10701    textarea: ADF on v3, wiki markup on v2
Platforms      customfield_10042    customfield_10702    multi-select options
Region         customfield_10043    customfield_10703    cascading select (``EMEA / Berlin``)
Reviewers      customfield_10044    customfield_10704    multi user picker
QA Owner       customfield_10045    customfield_10705    user picker
Owning Group   customfield_10046    customfield_10706    group picker
Spec URL       customfield_10047    customfield_10707    URL
Go-live        customfield_10048    customfield_10708    date-time
Epic Link      (none)               customfield_10830    epic key (datacenter only)
Epic Name      (none)               customfield_10831    string (datacenter epics)
=============  ===================  ===================  ==========================================

System fields are the ones every Jira lists in ``/rest/api/x/field``, named as each deployment names
them (Cloud "Fix versions", Data Center "Fix Version/s"): versions, components, due date, resolution,
environment (rich text), security level, time tracking and its seconds fields, votes, watchers,
comments, worklogs and attachments. Stories of the demo carry them (see :func:`_story_details`).
"""

from __future__ import annotations

import dataclasses
import random
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from atlasflow.sandbox.core import Account, Mode
from atlasflow.sandbox.identity import account_id

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
        parent: Key of the parent (see the module docstring for what uses it in which mode).
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


STATUSES: tuple[Status, ...] = (
    Status("10000", "To Do", 2, "new", "To Do", "blue-gray"),
    Status("3", "In Progress", 4, "indeterminate", "In Progress", "yellow"),
    Status("10001", "Done", 3, "done", "Done", "green"),
)
ISSUE_TYPES: tuple[IssueType, ...] = (
    IssueType("10000", "Epic", False, 1, "A big user story that needs to be broken down."),
    IssueType("10001", "Story", False, 0, "Functionality or a feature expressed as a user goal."),
    IssueType("10002", "Task", False, 0, "A small, distinct piece of work."),
    IssueType("10004", "Bug", False, 0, "A problem or error."),
    IssueType("10003", "Sub-task", True, -1, "A small piece of work that's part of a larger task."),
)
PRIORITIES: tuple[Priority, ...] = (
    Priority("1", "Highest", 5),
    Priority("2", "High", 4),
    Priority("3", "Medium", 3),
    Priority("4", "Low", 2),
    Priority("5", "Lowest", 1),
)
LINK_TYPES: tuple[LinkType, ...] = (
    LinkType("10000", "Blocks", "is blocked by", "blocks"),
    LinkType("10003", "Relates", "relates to", "relates to"),
    LinkType("10002", "Duplicate", "is duplicated by", "duplicates"),
)
TEAM_OPTIONS: dict[str, str] = {"Platform": "10100", "Payments": "10101", "Mobile": "10102"}

_CF_TYPES = "com.atlassian.jira.plugin.system.customfieldtypes"
SPRINT_TYPE = "com.pyxis.greenhopper.jira:gh-sprint"
#: Custom fields every mode has: (name, kind, custom type, cloud id, datacenter id).
_COMMON_CUSTOM: tuple[tuple[str, str, str, str, str], ...] = (
    ("Story Points", "number", f"{_CF_TYPES}:float", "customfield_10016", "customfield_10106"),
    ("Team", "option", f"{_CF_TYPES}:select", "customfield_10001", "customfield_10500"),
    ("Sprint", "sprint", SPRINT_TYPE, "customfield_10020", "customfield_10104"),
    ("Target Date", "date", f"{_CF_TYPES}:datepicker", "customfield_10015", "customfield_10600"),
    ("Customer", "string", f"{_CF_TYPES}:textfield", "customfield_10040", "customfield_10700"),
    ("Release Notes", "textarea", f"{_CF_TYPES}:textarea", "customfield_10041", "customfield_10701"),
    ("Platforms", "multioption", f"{_CF_TYPES}:multiselect", "customfield_10042", "customfield_10702"),
    ("Region", "cascading", f"{_CF_TYPES}:cascadingselect", "customfield_10043", "customfield_10703"),
    ("Reviewers", "users", f"{_CF_TYPES}:multiuserpicker", "customfield_10044", "customfield_10704"),
    ("QA Owner", "user", f"{_CF_TYPES}:userpicker", "customfield_10045", "customfield_10705"),
    ("Owning Group", "group", f"{_CF_TYPES}:grouppicker", "customfield_10046", "customfield_10706"),
    ("Spec URL", "url", f"{_CF_TYPES}:url", "customfield_10047", "customfield_10707"),
    ("Go-live", "datetime", f"{_CF_TYPES}:datetime", "customfield_10048", "customfield_10708"),
)
_CUSTOM_FIELDS: dict[Mode, tuple[tuple[str, str, str, str], ...]] = {
    # (id, name, kind, custom type)
    "cloud": tuple((cloud, name, kind, ctype) for name, kind, ctype, cloud, _ in _COMMON_CUSTOM),
    "datacenter": (
        ("customfield_10830", "Epic Link", "epiclink", "com.pyxis.greenhopper.jira:gh-epic-link"),
        ("customfield_10831", "Epic Name", "string", "com.pyxis.greenhopper.jira:gh-epic-label"),
        *((dc, name, kind, ctype) for name, kind, ctype, _, dc in _COMMON_CUSTOM),
    ),
}
#: ``schema.type`` (and ``schema.items``) Jira sends for each kind of custom field.
_SCHEMA_TYPES: dict[str, tuple[str, str | None]] = {
    "number": ("number", None),
    "option": ("option", None),
    "string": ("string", None),
    "textarea": ("string", None),
    "url": ("string", None),
    "date": ("date", None),
    "datetime": ("datetime", None),
    "epiclink": ("any", None),
    "sprint": ("array", "json"),
    "multioption": ("array", "option"),
    "cascading": ("option-with-child", None),
    "users": ("array", "user"),
    "user": ("user", None),
    "group": ("group", None),
}
PLATFORM_OPTIONS: dict[str, str] = {"iOS": "10200", "Android": "10201", "Web": "10202"}
REGION_OPTIONS: dict[str, tuple[str, dict[str, str]]] = {
    "EMEA": ("10300", {"Berlin": "10301", "Dublin": "10302"}),
    "Americas": ("10310", {"Austin": "10311", "São Paulo": "10312"}),
}
GROUPS: tuple[str, ...] = ("jira-software-users", "payments-devs", "mobile-devs")


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


SPRINTS: tuple[Sprint, ...] = (
    Sprint(12, "Sprint 12", "closed", 3, "", "2025-12-08T09:00:00.000Z", "2025-12-22T17:00:00.000Z"),
    Sprint(13, "Sprint 13", "closed", 3, "Checkout, search", "2025-12-22T09:00:00.000Z", "2026-01-05T17:00:00.000Z"),
    Sprint(14, "Sprint 14", "active", 3, "Ship checkout", "2026-01-05T09:00:00.000Z", "2026-01-19T17:00:00.000Z"),
    Sprint(15, "Sprint 15", "future", 3, "", None, None),
)
VERSIONS: tuple[tuple[str, str, bool, str | None], ...] = (
    ("10010", "1.0", True, "2025-11-30"),
    ("10011", "1.1", False, "2026-02-27"),
    ("10012", "2.0", False, None),
)
COMPONENTS: dict[str, str] = {"API": "10020", "Web app": "10021", "Payments": "10022"}
RESOLUTIONS: dict[str, tuple[str, str]] = {
    "Done": ("10000", "Work has been completed on this issue."),
    "Won't Do": ("10001", "This issue won't be actioned."),
}
SECURITY_LEVELS: dict[str, tuple[str, str]] = {"Staff only": ("10100", "Visible to employees")}

# (id, name, schema type, extra clause names, orderable, searchable); all are navigable.
_SYSTEM_FIELDS: tuple[tuple[str, str, str | None, tuple[str, ...], bool, bool], ...] = (
    ("summary", "Summary", "string", (), True, True),
    ("issuetype", "Issue Type", "issuetype", ("type",), True, True),
    ("status", "Status", "status", (), False, True),
    ("priority", "Priority", "priority", (), True, True),
    ("assignee", "Assignee", "user", (), True, True),
    ("reporter", "Reporter", "user", (), True, True),
    ("created", "Created", "datetime", ("createdDate",), False, True),
    ("updated", "Updated", "datetime", ("updatedDate",), False, True),
    ("project", "Project", "project", (), False, True),
    ("labels", "Labels", "array:string", (), True, True),
    ("description", "Description", "string", (), True, True),
    ("parent", "Parent", None, (), False, True),
    ("subtasks", "Sub-tasks", "array:issuelinks", (), False, True),
    ("issuelinks", "Linked Issues", "array:issuelinks", ("issueLink",), True, True),
    ("fixVersions", "Fix versions", "array:version", ("fixVersion",), True, True),
    ("versions", "Affects versions", "array:version", ("affectedVersion",), True, True),
    ("components", "Components", "array:component", ("component",), True, True),
    ("duedate", "Due date", "date", ("due",), True, True),
    ("resolution", "Resolution", "resolution", (), True, True),
    ("resolutiondate", "Resolved", "datetime", ("resolved",), False, True),
    ("environment", "Environment", "string", (), True, True),
    ("security", "Security Level", "securitylevel", ("level",), True, True),
    ("timetracking", "Time tracking", "timetracking", (), True, False),
    ("timeoriginalestimate", "Original estimate", "number", ("originalEstimate",), False, True),
    ("timeestimate", "Remaining Estimate", "number", ("remainingEstimate",), False, True),
    ("timespent", "Time Spent", "number", ("timeSpent",), False, True),
    ("aggregatetimespent", "Σ Time Spent", "number", (), False, False),
    ("progress", "Progress", "progress", (), False, False),
    ("workratio", "Work Ratio", "number", ("workRatio",), False, True),
    ("votes", "Votes", "votes", (), False, True),
    ("watches", "Watchers", "watches", ("watchers",), False, True),
    ("comment", "Comment", "comments-page", (), True, True),
    ("worklog", "Log Work", "array:worklog", (), True, False),
    ("attachment", "Attachment", "array:attachment", (), True, True),
    ("creator", "Creator", "user", (), False, True),
    ("statusCategory", "Status Category", "statusCategory", (), False, True),
)
#: Where Data Center names a system field differently from Cloud.
_DC_NAMES = {
    "fixVersions": "Fix Version/s",
    "versions": "Affects Version/s",
    "components": "Component/s",
    "duedate": "Due Date",
    "timetracking": "Time Tracking",
    "timeoriginalestimate": "Original Estimate",
}
ISSUE_FIELD_IDS = tuple(f[0] for f in _SYSTEM_FIELDS)
DETAIL_FIELDS = frozenset(
    {"fixVersions", "versions", "components", "duedate", "resolution", "environment", "security"}
    | {"timetracking", "votes", "watches", "comment", "worklog", "attachment"}
)
"""System fields kept in :attr:`Issue.details` (the seconds, progress and dates derive from them)."""
"""System fields present on every issue (``parent`` only when set)."""

EPIC_LINK_FIELD = "customfield_10830"
EPIC_NAME_FIELD = "customfield_10831"

_KEY_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)-(\d+)$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BASE_TIME = datetime(2026, 1, 5, 10, 15, 30, tzinfo=UTC)


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


def _build_fields(mode: Mode) -> tuple[FieldDef, ...]:
    system = [
        FieldDef(
            id=fid,
            name=_DC_NAMES.get(fid, name) if mode == "datacenter" else name,
            custom=False,
            kind=fid,
            schema=_system_schema(fid, stype),
            clause_names=(fid, *extra),
            orderable=orderable,
            searchable=searchable,
        )
        for fid, name, stype, extra, orderable, searchable in _SYSTEM_FIELDS
    ]
    key_field = FieldDef(
        "issuekey", "Key", False, "issuekey", None, ("id", "issue", "issuekey", "key"), orderable=False
    )
    custom = [
        FieldDef(
            id=fid,
            name=name,
            custom=True,
            kind=kind,
            schema=_custom_schema(fid, kind, ctype),
            clause_names=(f"cf[{fid.split('_')[1]}]", name),
        )
        for fid, name, kind, ctype in _CUSTOM_FIELDS[mode]
    ]
    return (*system, key_field, *custom)


def _custom_schema(fid: str, kind: str, ctype: str) -> dict[str, Any]:
    stype, items = _SCHEMA_TYPES[kind]
    schema: dict[str, Any] = {"type": stype}
    if items:
        schema["items"] = items
    return {**schema, "custom": ctype, "customId": int(fid.split("_")[1])}


def _system_schema(fid: str, stype: str | None) -> dict[str, Any] | None:
    if stype is None:
        return None
    if stype.startswith("array:"):
        return {"type": "array", "items": stype.split(":")[1], "system": fid}
    return {"type": stype, "system": fid}


def _account_id(name: str) -> str:
    return account_id(name)


class JiraSite:
    """An in-memory Jira site for one mode. Thread-safe: every public method takes :attr:`lock`.

    The indexes (:attr:`issues`, :attr:`by_project`, :attr:`children`, :attr:`epic_children`, ...)
    are read by the routes and the JQL evaluator while they hold :attr:`lock`; change the site only
    through its methods. :attr:`generation` grows with every change, so caches know when to drop.
    """

    def __init__(self, mode: Mode, settings: JiraSettings | None = None) -> None:
        self.mode: Mode = mode
        self.settings = settings or JiraSettings()
        self.lock = threading.RLock()
        self.generation = 0
        self.projects: dict[str, Project] = {}
        self.users: dict[str, User] = {}
        self.fields: tuple[FieldDef, ...] = _build_fields(mode)
        self.statuses = STATUSES
        self.issue_types = ISSUE_TYPES
        self.priorities = PRIORITIES
        self.link_types = LINK_TYPES
        self.issues: dict[str, Issue] = {}
        self.by_id: dict[str, str] = {}
        self.by_project: dict[str, set[str]] = {}
        self.children: dict[str, set[str]] = {}
        self.epic_children: dict[str, set[str]] = {}
        self.links: dict[int, Link] = {}
        self.links_of: dict[str, list[Link]] = {}
        self._next_issue_id = 10000
        self._next_link_id = 10100
        self.field_by_id = {f.id: f for f in self.fields}

    # ----------------------------------------------------------------------------------- lookups

    def field(self, ident: str) -> FieldDef | None:
        """A field by id, name or JQL clause name (``cf[10830]``), case-insensitive."""
        if ident in self.field_by_id:
            return self.field_by_id[ident]
        folded = ident.casefold()
        for f in self.fields:
            if folded in (f.id.casefold(), f.name.casefold()) or folded in (
                c.casefold() for c in f.clause_names
            ):
                return f
        return None

    def custom_field(self, name: str) -> FieldDef:
        """The custom field called ``name`` (e.g. ``"Story Points"``); ``KeyError`` if absent."""
        found = self.field(name)
        if found is None or not found.custom:
            raise KeyError(f"no custom field {name!r} on this {self.mode} site")
        return found

    def find_project(self, ident: str) -> Project | None:
        """A project by key, id or name, case-insensitive."""
        if ident.upper() in self.projects:
            return self.projects[ident.upper()]
        folded = ident.casefold()
        return next((p for p in self.projects.values() if folded in (p.id, p.name.casefold())), None)

    def find_user(self, ident: str) -> User | None:
        """A user by username, account id or e-mail address, case-insensitive."""
        folded = ident.casefold()
        if folded in self.users:
            return self.users[folded]
        return next(
            (u for u in self.users.values() if folded in (u.account_id.casefold(), u.email.casefold())),
            None,
        )

    def find_status(self, ident: str) -> Status | None:
        folded = ident.casefold()
        return next((s for s in self.statuses if folded in (s.id, s.name.casefold())), None)

    def find_issue_type(self, ident: str) -> IssueType | None:
        folded = ident.casefold()
        return next((t for t in self.issue_types if folded in (t.id, t.name.casefold())), None)

    def find_priority(self, ident: str) -> Priority | None:
        folded = ident.casefold()
        return next((p for p in self.priorities if folded in (p.id, p.name.casefold())), None)

    def find_issue(self, ident: str) -> Issue | None:
        """An issue by key (case-insensitive) or numeric id."""
        if ident.isdigit():
            key = self.by_id.get(ident)
            return self.issues.get(key) if key else None
        return self.issues.get(ident.upper())

    def issue_type(self, issue: Issue) -> IssueType:
        return next(t for t in self.issue_types if t.name == issue.type)

    def status(self, issue: Issue) -> Status:
        return next(s for s in self.statuses if s.name == issue.status)

    def user_for(self, account: Account) -> User:
        """The site user of an authenticated account (added on first sight)."""
        with self.lock:
            user = self.find_user(account.username)
            if user is None:
                user = self.add_user(account.username, account.display_name, email=account.username)
            return user

    def browsable(self, account: Account) -> frozenset[str]:
        """Keys of the projects ``account`` may browse."""
        with self.lock:
            if "BROWSE_PROJECTS" not in account.permissions:
                return frozenset()
            return frozenset(
                p.key for p in self.projects.values() if p.browsers is None or account.username in p.browsers
            )

    def has_permission(self, account: Account, project: str, permission: str) -> bool:
        """Whether ``account`` holds a project permission in ``project`` (browsing is required too)."""
        return permission in account.permissions and project in self.browsable(account)

    def subtasks_of(self, key: str) -> list[Issue]:
        """Sub-task children of ``key``, in natural key order."""
        with self.lock:
            kids = [self.issues[k] for k in self.children.get(key, ())]
            return sorted((i for i in kids if self.issue_type(i).subtask), key=lambda i: i.number)

    # --------------------------------------------------------------------------- public Python API

    def __len__(self) -> int:
        return len(self.issues)

    def keys(self, project: str | None = None) -> list[str]:
        """Issue keys (of one project, or all), in natural order (DEMO-2 before DEMO-10)."""
        with self.lock:
            keys = self.by_project.get(project.upper(), set()) if project else self.issues.keys()
            return sorted(keys, key=lambda k: (self.issues[k].project, self.issues[k].number))

    def issue(self, key: str) -> Issue:
        """A copy of the issue ``key`` (or numeric id); ``KeyError`` if there is none."""
        with self.lock:
            found = self.find_issue(key)
            if found is None:
                raise KeyError(key)
            return dataclasses.replace(
                found, labels=list(found.labels), custom=dict(found.custom), details=dict(found.details)
            )

    def add_project(self, key: str, name: str, *, browsers: frozenset[str] | None = None) -> Project:
        """Add a project; ``browsers`` restricts who may see it (usernames)."""
        with self.lock:
            project = Project(str(10000 + len(self.projects)), key.upper(), name, browsers)
            self.projects[project.key] = project
            self.by_project[project.key] = set()
            self.generation += 1
            return project

    def add_custom_field(self, name: str, kind: str, custom_type: str) -> FieldDef:
        """Add a custom field (e.g. a second "Team", as sites that use Advanced Roadmaps have)."""
        with self.lock:
            number = 10900 + sum(1 for f in self.fields if f.custom)
            fid = f"customfield_{number}"
            fdef = FieldDef(
                id=fid,
                name=name,
                custom=True,
                kind=kind,
                schema=_custom_schema(fid, kind, custom_type),
                clause_names=(f"cf[{number}]", name),
            )
            self.fields = (*self.fields, fdef)
            self.field_by_id[fid] = fdef
            self.generation += 1
            return fdef

    def add_user(self, name: str, display_name: str, *, email: str | None = None, active: bool = True) -> User:
        """Add a user; ``name`` is the Data Center username (Cloud gets a derived account id)."""
        with self.lock:
            user = User(
                name=name,
                key=f"JIRAUSER{10000 + len(self.users)}",
                account_id=_account_id(name),
                display_name=display_name,
                email=email or f"{name}@example.com",
                active=active,
            )
            self.users[name.casefold()] = user
            return user

    def create_issue(
        self,
        project: str,
        type: str,
        summary: str,
        parent: str | None = None,
        epic: str | None = None,
        **fields: Any,
    ) -> str:
        """Create an issue and return its key.

        Args:
            project: Project key.
            type: Issue type name: Epic, Story, Task, Bug or Sub-task.
            summary: At most 255 characters.
            parent: Parent key. Required for sub-tasks. In Cloud a story/task/bug may have an epic as
                parent; in Data Center only sub-tasks have a parent (use ``epic``).
            epic: Epic key. Data Center: the Epic Link. Cloud: the same as ``parent=epic``.
            **fields: ``status``, ``assignee`` (username, account id or e-mail), ``priority``,
                ``description``, ``labels``, ``created``, ``updated`` and custom fields by name or id.

        Raises:
            ValueError: For anything Jira would refuse (unknown project/type/user, bad hierarchy...).
        """
        with self.lock:
            proj = self.projects.get(project.upper())
            itype = self.find_issue_type(type)
            if proj is None or itype is None:
                raise ValueError(f"unknown project {project!r} or issue type {type!r}")
            if self.mode == "cloud" and epic is not None:
                if parent not in (None, epic):
                    raise ValueError("in Cloud an issue has one parent: pass parent or epic, not both")
                parent, epic = epic, None
            self._check_hierarchy(itype, parent, epic, proj.key)
            now = jira_time(datetime.now(UTC))
            issue = Issue(
                id=self._next_issue_id,
                key=f"{proj.key}-{proj.next_number}",
                project=proj.key,
                number=proj.next_number,
                type=itype.name,
                summary="",
                status=self.statuses[0].name,
                priority="Medium",
                assignee=None,
                reporter=None,
                created=fields.pop("created", now),
                updated=now,
                parent=parent,
                epic=epic,
            )
            self._apply(issue, {"summary": summary, **fields})
            self._add(issue)
            return issue.key

    def update_issue(self, key: str, **fields: Any) -> None:
        """Change fields of ``key`` and set ``updated`` to now (unless ``updated`` is given).

        Args:
            key: Issue key.
            **fields: ``summary``, ``status``, ``assignee`` (``None`` unassigns), ``priority``,
                ``description``, ``labels``, ``updated`` and custom fields by name or id (Data Center
                ``Epic Link``/``customfield_10830`` moves the issue to another epic).

        Raises:
            KeyError: Unknown issue. ValueError: Invalid value.
        """
        with self.lock:
            issue = self._existing(key)
            epic_field = self.field(EPIC_LINK_FIELD) if self.mode == "datacenter" else None
            changes = dict(fields)
            for name in list(changes):
                if epic_field is not None and self.field(name) is epic_field:
                    self._set_epic(issue, changes.pop(name))
            updated = changes.pop("updated", jira_time(datetime.now(UTC)))
            self._apply(issue, changes)
            issue.updated = updated
            self.generation += 1

    def move_issue(self, key: str, new_parent: str | None) -> None:
        """Re-parent ``key``: Cloud ``parent``; Data Center ``parent`` of a sub-task, else Epic Link.

        ``None`` detaches the issue (not possible for a sub-task).
        """
        with self.lock:
            issue = self._existing(key)
            itype = self.issue_type(issue)
            if self.mode == "datacenter" and not itype.subtask:
                self._set_epic(issue, new_parent)
            else:
                self._check_hierarchy(itype, new_parent, None, issue.project)
                if new_parent is not None and self._is_descendant(new_parent.upper(), issue.key):
                    raise ValueError(f"{new_parent} is below {issue.key}: that would make a loop")
                self._unindex_parent(issue)
                issue.parent = new_parent.upper() if new_parent else None
                if issue.parent:
                    self.children.setdefault(issue.parent, set()).add(issue.key)
            issue.updated = jira_time(datetime.now(UTC))
            self.generation += 1

    def delete_issue(self, key: str) -> list[str]:
        """Delete ``key`` with its sub-tasks (recursively); other children are detached.

        Returns:
            The deleted keys.
        """
        with self.lock:
            issue = self._existing(key)
            doomed = [issue.key]
            for sub in self.subtasks_of(issue.key):
                doomed.extend(self.delete_issue(sub.key))
            for child_key in list(self.children.get(issue.key, ())):
                self.issues[child_key].parent = None
            for child_key in list(self.epic_children.get(issue.key, ())):
                self.issues[child_key].epic = None
            self.children.pop(issue.key, None)
            self.epic_children.pop(issue.key, None)
            for link in self.links_of.pop(issue.key, []):
                self._remove_link(link)
            self._unindex_parent(issue)
            self.by_project[issue.project].discard(issue.key)
            del self.by_id[str(issue.id)]
            del self.issues[issue.key]
            self.generation += 1
            return doomed

    def link_issues(self, source: str, target: str, link_type: str = "Blocks") -> int:
        """Link two issues: ``source`` <outward> ``target`` (e.g. source *blocks* target); returns the id."""
        with self.lock:
            ltype = next((t for t in self.link_types if t.name.casefold() == link_type.casefold()), None)
            if ltype is None:
                raise ValueError(f"unknown link type {link_type!r}")
            src, dst = self._existing(source), self._existing(target)
            link = Link(self._next_link_id, ltype, src.key, dst.key)
            self._next_link_id += 1
            self.links[link.id] = link
            self.links_of.setdefault(src.key, []).append(link)
            self.links_of.setdefault(dst.key, []).append(link)
            self.generation += 1
            return link.id

    # ---------------------------------------------------------------------------------- internals

    def _existing(self, key: str) -> Issue:
        found = self.find_issue(key)
        if found is None:
            raise KeyError(key)
        return found

    def _check_hierarchy(self, itype: IssueType, parent: str | None, epic: str | None, project: str) -> None:
        if itype.subtask and parent is None:
            raise ValueError("a sub-task needs a parent")
        if parent is not None:
            target = self.find_issue(parent)
            if target is None:
                raise ValueError(f"parent {parent} does not exist")
            if itype.subtask and target.project != project:
                raise ValueError("sub-tasks must be created in the same project as the parent")
            if not itype.subtask:
                if self.mode == "datacenter":
                    raise ValueError("in Data Center only sub-tasks have a parent; use epic=")
                if itype.hierarchy_level >= 1 or self.issue_type(target).hierarchy_level != 1:
                    raise ValueError(f"a {itype.name} cannot have a {target.type} as parent")
        if epic is not None:
            if itype.subtask or itype.hierarchy_level >= 1:
                raise ValueError(f"a {itype.name} cannot have an Epic Link")
            self._epic(epic)

    def _epic(self, key: str) -> Issue:
        target = self.find_issue(key)
        if target is None or target.type != "Epic":
            raise ValueError(f"{key} is not an epic")
        return target

    def _set_epic(self, issue: Issue, epic: str | None) -> None:
        if epic is not None:
            self._check_hierarchy(self.issue_type(issue), None, epic, issue.project)
        if issue.epic:
            self.epic_children.get(issue.epic, set()).discard(issue.key)
        issue.epic = self._epic(epic).key if epic else None
        if issue.epic:
            self.epic_children.setdefault(issue.epic, set()).add(issue.key)

    def _is_descendant(self, candidate: str, ancestor: str) -> bool:
        seen: set[str] = set()
        current: str | None = candidate
        while current is not None and current not in seen:
            if current == ancestor:
                return True
            seen.add(current)
            found = self.issues.get(current)
            current = found.parent if found else None
        return False

    def _apply(self, issue: Issue, changes: dict[str, Any]) -> None:
        """Validate and set plain (non-hierarchy) fields."""
        for name, value in changes.items():
            if name == "summary":
                issue.summary = check_summary(value)
            elif name == "status":
                status = self.find_status(str(value))
                if status is None:
                    raise ValueError(f"unknown status {value!r}")
                issue.status = status.name
            elif name in ("priority", "assignee", "reporter"):
                setattr(issue, name, self._person_or_priority(name, value))
            elif name == "description":
                issue.description = None if value is None else str(value)
            elif name == "labels":
                issue.labels = [str(v) for v in value]
            elif name in ("created", "updated"):
                setattr(issue, name, str(value))
            else:
                self._apply_custom(issue, name, value)

    def _person_or_priority(self, name: str, value: Any) -> str | None:
        if value is None:
            return None
        if name == "priority":
            priority = self.find_priority(str(value))
            if priority is None:
                raise ValueError(f"unknown priority {value!r}")
            return priority.name
        user = self.find_user(str(value))
        if user is None:
            raise ValueError(f"unknown user {value!r}")
        return user.name

    def _apply_custom(self, issue: Issue, name: str, value: Any) -> None:
        if name in DETAIL_FIELDS:
            issue.details[name] = value
            return
        fdef = self.field(name)
        if fdef is None or not fdef.custom or fdef.kind == "epiclink":
            raise ValueError(f"field {name!r} cannot be set this way on this {self.mode} site")
        if value is None:
            issue.custom.pop(fdef.id, None)
            return
        issue.custom[fdef.id] = self.custom_value(fdef, value)

    def custom_value(self, fdef: FieldDef, value: Any) -> Any:
        """``value`` as stored for custom field ``fdef`` (mode-neutral); ``ValueError`` if Jira would refuse it.

        Sprints are sprint ids; multi-selects option values; cascading selects ``[parent, child]``;
        user pickers usernames; groups group names; date-times Jira timestamps.
        """
        kind = fdef.kind
        if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"{fdef.name} must be a number")
        if kind == "option" and value not in TEAM_OPTIONS:
            raise ValueError(f"{value!r} is not an option of {fdef.name}")
        if kind == "date" and not (isinstance(value, str) and DATE_RE.match(value)):
            raise ValueError(f"{fdef.name} must be a date YYYY-MM-DD")
        if kind == "sprint":
            ids = value if isinstance(value, list) else [value]
            if not all(isinstance(i, int) and any(sp.id == i for sp in SPRINTS) for i in ids):
                raise ValueError(f"Sprint with id {value!r} does not exist")
            return list(ids)
        if kind == "multioption":
            if not isinstance(value, list) or any(v not in PLATFORM_OPTIONS for v in value):
                raise ValueError(f"{value!r} are not options of {fdef.name}")
            return list(value)
        if kind == "cascading":
            parent, child = [*value, None][:2] if isinstance(value, list | tuple) else (value, None)
            if parent not in REGION_OPTIONS or (child is not None and child not in REGION_OPTIONS[parent][1]):
                raise ValueError(f"{value!r} is not an option of {fdef.name}")
            return [parent, child]
        if kind in ("user", "users"):
            names = value if isinstance(value, list) else [value]
            users = [self.find_user(str(n)) for n in names]
            if any(u is None for u in users):
                raise ValueError(f"unknown user in {value!r}")
            found = [u.name for u in users if u is not None]
            return found if kind == "users" else found[0]
        if kind == "group" and value not in GROUPS:
            raise ValueError(f"Group '{value}' does not exist.")
        if kind in ("string", "textarea", "url", "datetime", "group"):
            return str(value)
        return value

    def _add(self, issue: Issue) -> None:
        self.issues[issue.key] = issue
        self.by_id[str(issue.id)] = issue.key
        self.by_project[issue.project].add(issue.key)
        if issue.parent:
            self.children.setdefault(issue.parent, set()).add(issue.key)
        if issue.epic:
            self.epic_children.setdefault(issue.epic, set()).add(issue.key)
        self.projects[issue.project].next_number = issue.number + 1
        self._next_issue_id = issue.id + 1
        self.generation += 1

    def _unindex_parent(self, issue: Issue) -> None:
        if issue.parent:
            self.children.get(issue.parent, set()).discard(issue.key)

    def _remove_link(self, link: Link) -> None:
        del self.links[link.id]
        for end in (link.source, link.target):
            if link in self.links_of.get(end, ()):
                self.links_of[end].remove(link)

    # ------------------------------------------------------------------------------- constructors

    def _new_issue(self, project: str, itype: str, summary: str, index: int, **attrs: Any) -> Issue:
        """A demo/generated record with deterministic times, without validation (fast path)."""
        proj = self.projects[project]
        created = _BASE_TIME + timedelta(minutes=97 * index)
        issue = Issue(
            id=self._next_issue_id,
            key=f"{project}-{proj.next_number}",
            project=project,
            number=proj.next_number,
            type=itype,
            summary=summary,
            status=attrs.pop("status", STATUSES[index % 3].name),
            priority=attrs.pop("priority", PRIORITIES[(index * 7) % 5].name),
            assignee=attrs.pop("assignee", None),
            reporter=attrs.pop("reporter", "demo@example.com"),
            created=jira_time(created),
            updated=jira_time(created + timedelta(days=index % 9, hours=index % 5)),
            **attrs,
        )
        self._add(issue)
        return issue

    def _add_people(self) -> list[str]:
        """The accounts' users plus the demo team; returns the assignable usernames."""
        self.add_user("demo@example.com", "Demo Admin", email="demo@example.com")
        self.add_user("viewer@example.com", "Vera Viewer", email="viewer@example.com")
        team = [("alice", "Alice Anders"), ("bob", "Bob Brandt"), ("carol", "Carol Chen")]
        team += [("dave", "Dave Dubois"), ("erin", "Erin Eriksen")]
        for name, display in team:
            self.add_user(name, display)
        self.add_user("frank", "Frank Former", active=False)
        return [name for name, _ in team]

    def _custom_id(self, name: str) -> str:
        return self.custom_field(name).id

    @classmethod
    def demo(cls, mode: Mode) -> JiraSite:
        """The deterministic demo site described in the module docstring."""
        site = cls(mode)
        with site.lock:
            _DemoBuilder(site).build()
        return site

    @classmethod
    def generated(
        cls,
        mode: Mode,
        *,
        total: int = 20000,
        depth: int = 4,
        fanout: int | None = None,
        project: str = "BIG",
        seed: int = 0,
    ) -> JiraSite:
        """A site with one large deterministic tree rooted at ``<project>-1`` (an epic).

        Levels: 0 the root epic; 1 stories (Cloud: ``parent``; DC: Epic Link to the root); 2 and
        deeper: sub-tasks via ``parent`` (levels 3+ are sub-tasks of sub-tasks, a sandbox liberty).
        Children are spread round-robin over the level above, so sibling counts differ by at most one.

        Args:
            total: Issues in the tree. With ``fanout=None`` the level sizes grow geometrically so that
                exactly ``total`` issues fill ``depth`` levels below the root (the last level takes the
                remainder); with a ``fanout`` the tree is the full ``fanout``-ary tree, cut at ``total``.
            depth: Levels below the root.
            fanout: Children per issue, or ``None`` to derive it from ``total`` and ``depth``.
            project: Project key.
            seed: Seed for summaries, statuses and the few extra links.
        """
        if total < 1 or depth < 0:
            raise ValueError("total must be >= 1 and depth >= 0")
        site = cls(mode)
        with site.lock:
            _TreeBuilder(site, project, seed).build(_level_sizes(total, depth, fanout))
        return site


def _level_sizes(total: int, depth: int, fanout: int | None) -> list[int]:
    """Issues per level (level 0 = the root) summing to ``total`` (or less for a small full tree)."""
    if fanout is not None:
        sizes, left = [], total
        for level in range(depth + 1):
            size = min(fanout**level, left)
            if size == 0:
                break
            sizes.append(size)
            left -= size
        return sizes
    if depth == 0 or total <= depth + 1:
        return [1] * min(total, depth + 1)
    low, high = 1.0, float(total)
    for _ in range(100):  # bisection for the ratio r with 1 + r + ... + r^depth = total
        mid = (low + high) / 2
        low, high = (mid, high) if sum(mid**i for i in range(depth + 1)) < total else (low, mid)
    sizes = [max(1, round(low**level)) for level in range(depth)]
    while total - sum(sizes) < 1:  # rounding overshot: take from the widest level above
        sizes[sizes.index(max(sizes[1:]))] -= 1
    sizes.append(total - sum(sizes))
    return sizes


_WORDS = (
    "billing", "search", "login", "export", "cache", "invoice", "report", "sync", "upload", "queue",
    "profile", "audit", "metrics", "webhook", "schema", "import", "backup", "alerting", "quota", "badge",
)  # fmt: skip


class _TreeBuilder:
    """Builds :meth:`JiraSite.generated` trees."""

    def __init__(self, site: JiraSite, project: str, seed: int) -> None:
        self.site = site
        self.project = project.upper()
        self.rng = random.Random(seed)

    def build(self, sizes: list[int]) -> None:
        site = self.site
        people = site._add_people()
        site.add_project(self.project, f"{self.project.title()} generated tree")
        team_id, points_id = site._custom_id("Team"), site._custom_id("Story Points")
        teams = list(TEAM_OPTIONS)
        rng, index = self.rng, 0
        root = site._new_issue(self.project, "Epic", "Generated root epic", index, status="In Progress")
        if site.mode == "datacenter":
            root.custom[EPIC_NAME_FIELD] = root.summary
        previous, levels = [root.key], [[root.key]]
        for level, size in enumerate(sizes[1:], start=1):
            itype = "Story" if level == 1 else "Sub-task"
            current: list[str] = []
            for n in range(size):
                index += 1
                parent_key = previous[n % len(previous)]
                hierarchy = {"epic": parent_key} if level == 1 and site.mode == "datacenter" else {}
                issue = site._new_issue(
                    self.project,
                    itype,
                    f"L{level} {rng.choice(_WORDS)} {rng.choice(_WORDS)} #{n + 1}",
                    index,
                    status=STATUSES[rng.randrange(3)].name,
                    assignee=people[index % 6] if index % 6 < len(people) else None,
                    parent=None if hierarchy else parent_key,
                    **hierarchy,
                )
                if level == 1:
                    issue.custom[points_id] = (1, 2, 3, 5, 8)[index % 5]
                    issue.custom[team_id] = teams[index % 3]
                current.append(issue.key)
            levels.append(current)
            previous = current
        self._links(levels)

    def _links(self, levels: list[list[str]]) -> None:
        """A blocks-cycle among the first stories and a few random links across the tree."""
        site = self.site
        if len(levels) > 1 and len(levels[1]) >= 3:
            a, b, c = levels[1][:3]
            for source, target in ((a, b), (b, c), (c, a)):
                site.link_issues(source, target, "Blocks")
        everything = [key for level in levels for key in level]
        for _ in range(min(50, len(everything) // 500)):
            source, target = self.rng.sample(everything, 2)
            site.link_issues(source, target, self.rng.choice(("Blocks", "Relates")))


_SPECIAL_SUMMARIES = (
    '=HYPERLINK("http://evil","x")',
    "+1+1",
    "-2",
    "@SUM(A1)",
    "<script>alert(1)</script>",
    "<b>bold</b> & co",
    "@channel please look",
    "@all hands: release checklist",
    "@here deploy now",
    "Ünïcödé café, naïve façade",
    "日本語の要約テキスト",
    "Deploy 🚀 and celebrate 🎉",
    ("Very long summary " + "lorem ipsum dolor sit amet " * 12)[:SUMMARY_MAX],
    "Quote \"double\", 'single', back\\slash; semi;colon",
)
_EPICS = (
    ("Checkout revamp 🛒", 8),
    ("Search relevance", 7),
    ("Mobile onboarding", 9),
    ("Billing migration", 6),
    ("Reporting dashboards", 8),
    ("Accessibility audit", 7),
    ("Data retention", 9),
    ("Partner API v2", 6),
)
_OPS_TASKS = (
    ("Rotate TLS certificates", 3),
    ("Upgrade PostgreSQL to 16", 0),
    ("Clean up stale feature flags", 0),
    ("Archive old build artifacts", 0),
    ("Patch base images", 2),
    ("Review on-call runbooks", 0),
    ("Renew domain registrations", 0),
    ("Tune alert thresholds", 0),
    ("Reindex search cluster", 1),
    ("Prune unused IAM roles", 0),
    ("Verify backups restore", 0),
    ("Update dependency pins", 0),
    ("Cost report for Q1", 0),
    ("Decommission legacy VPN", 0),
)


class _DemoBuilder:
    """Builds :meth:`JiraSite.demo` (see the module docstring for the resulting keys)."""

    def __init__(self, site: JiraSite) -> None:
        self.site = site
        self.index = 0
        self.people: list[str] = []
        self.specials = list(_SPECIAL_SUMMARIES)

    def build(self) -> None:
        site = self.site
        self.people = site._add_people()
        site.add_project("DEMO", "Demo project")
        site.add_project("OPS", "Operations")
        site.add_project("EMPTY", "Empty project")
        site.add_project("SECRET", "Secret project", browsers=frozenset({"demo@example.com"}))
        for number, (summary, stories) in enumerate(_EPICS):
            self._epic(number, summary, stories)
        self._standalone()
        self._ops()
        self._secret()
        for source, target, kind in (
            ("DEMO-2", "DEMO-4", "Blocks"),
            ("DEMO-4", "DEMO-7", "Blocks"),
            ("DEMO-7", "DEMO-2", "Blocks"),
            ("DEMO-1", "DEMO-223", "Relates"),
            ("DEMO-31", "DEMO-16", "Blocks"),
            ("DEMO-292", "DEMO-283", "Duplicate"),
            ("DEMO-11", "OPS-1", "Relates"),
            ("DEMO-16", "SECRET-2", "Blocks"),
        ):
            site.link_issues(source, target, kind)

    def _next(self, project: str, itype: str, summary: str, **attrs: Any) -> Issue:
        self.index += 1
        i = self.index
        attrs.setdefault("assignee", None if i % 6 == 5 else ("frank" if i % 41 == 0 else self.people[i % 5]))
        if itype == "Sub-task" and i % 9 == 0:
            attrs.setdefault("priority", None)
        return self.site._new_issue(project, itype, summary, i, **attrs)

    def _special_or(self, default: str) -> str:
        return self.specials.pop(0) if self.specials else default

    def _epic(self, number: int, summary: str, stories: int) -> None:
        site = self.site
        epic = self._next("DEMO", "Epic", summary, status="In Progress", labels=["roadmap"])
        epic.custom[site._custom_id("Target Date")] = f"2026-{number + 2:02d}-28"
        epic.custom[site._custom_id("Team")] = list(TEAM_OPTIONS)[number % 3]
        epic.description = f"Epic {number + 1}: {summary}.\n\nGoal: ship it."
        if site.mode == "datacenter":
            epic.custom[EPIC_NAME_FIELD] = summary
        for j in range(stories):
            self._story(epic, number, j)

    def _story(self, epic: Issue, number: int, j: int) -> None:
        site = self.site
        in_first = number == 0
        summary = self._special_or(f"Story {j + 1}") if in_first else f"{epic.summary}: story {j + 1}"
        hierarchy = {"epic": epic.key} if site.mode == "datacenter" else {"parent": epic.key}
        story = self._next(
            "DEMO", "Story", summary, labels=[["backend"], ["frontend", "ux"], []][j % 3], **hierarchy
        )
        story.description = self._description(story.summary)
        story.custom[site._custom_id("Story Points")] = (1, 2, 3, 5, 8, 13)[j % 6]
        story.custom[site._custom_id("Team")] = list(TEAM_OPTIONS)[(number + j) % 3]
        story.custom[site._custom_id("Sprint")] = [
            sp.id for sp in SPRINTS[(number + j) % 3 : (number + j) % 3 + 1 + j % 2]
        ]
        _story_details(site, story, number, j, self.people)
        for k in range(1 + (number + j) % 4):
            default = f"{story.summary[:40]} / step {k + 1}" if not in_first else f"Step {k + 1}"
            self._subtask("DEMO", self._special_or(default) if in_first else default, story)

    @staticmethod
    def _description(summary: str) -> str:
        if len(summary) == SUMMARY_MAX:
            return "A very long description. " * 80
        return f"Details for: {summary}\n\nAcceptance criteria:\n- it works\n- it is tested"

    def _subtask(self, project: str, summary: str, parent: Issue) -> Issue:
        sub = self._next(project, "Sub-task", summary, parent=parent.key)
        if len(summary) == SUMMARY_MAX:
            sub.description = self._description(summary)
        return sub

    def _standalone(self) -> None:
        for t in range(50):
            is_bug = t >= 40
            summary = (
                f"Bug: {_WORDS[t % 20]} fails on retry" if is_bug else f"Task: tidy {_WORDS[t % 20]} module"
            )
            issue = self._next("DEMO", "Bug" if is_bug else "Task", summary)
            if not is_bug and t % 4 == 0:
                for k in range(2):
                    self._subtask("DEMO", f"{summary} / part {k + 1}", issue)

    def _ops(self) -> None:
        for summary, subtasks in _OPS_TASKS:
            task = self._next("OPS", "Task", summary, labels=["maintenance"])
            for k in range(subtasks):
                self._subtask("OPS", f"{summary}: step {k + 1}", task)

    def _secret(self) -> None:
        site = self.site
        epic = self._next("SECRET", "Epic", "Acquisition due diligence", assignee="demo@example.com")
        if site.mode == "datacenter":
            epic.custom[EPIC_NAME_FIELD] = epic.summary
        hierarchy = {"epic": epic.key} if site.mode == "datacenter" else {"parent": epic.key}
        story = self._next("SECRET", "Story", "Review target's contracts", **hierarchy)
        self._subtask("SECRET", "Summarise liabilities", story)
        self._next("SECRET", "Task", "Board memo draft")
        self._next("SECRET", "Task", "Legal sign-off")


def _story_details(site: JiraSite, story: Issue, number: int, j: int, people: list[str]) -> None:
    """Every other field type on a demo story, deterministic by its epic ``number`` and place ``j``."""
    n = number + j
    custom = story.custom
    custom[site._custom_id("Customer")] = ("ACME Corp", "Globex", "Initech")[n % 3]
    custom[site._custom_id("Platforms")] = [list(PLATFORM_OPTIONS)[k] for k in range(1 + n % 3)]
    region = list(REGION_OPTIONS)[n % 2]
    custom[site._custom_id("Region")] = [region, list(REGION_OPTIONS[region][1])[j % 2] if n % 4 else None]
    custom[site._custom_id("Reviewers")] = [people[n % 5], people[(n + 2) % 5]]
    custom[site._custom_id("QA Owner")] = people[(n + 1) % 5]
    custom[site._custom_id("Owning Group")] = GROUPS[n % 3]
    custom[site._custom_id("Spec URL")] = f"https://wiki.example.com/spec/{story.key}?v={n}"
    custom[site._custom_id("Go-live")] = jira_time(_BASE_TIME + timedelta(days=30 + n, hours=n % 8))
    custom[site._custom_id("Release Notes")] = f"Release note for {story.key}\n\n* faster\n* safer"
    created = _BASE_TIME + timedelta(days=n % 5)
    done = story.status == "Done"
    story.details.update(
        fixVersions=[VERSIONS[n % 3][1]] if n % 4 else [VERSIONS[0][1], VERSIONS[1][1]],
        versions=[VERSIONS[0][1]] if j % 3 == 0 else [],
        components=[list(COMPONENTS)[n % 3]],
        duedate=f"2026-{1 + n % 12:02d}-{10 + j:02d}",
        resolution="Done" if done else None,
        environment="Chrome 131 on macOS 15\nprod cluster eu-1" if j % 2 == 0 else None,
        security="Staff only" if n % 7 == 3 else None,
        timetracking=(8 * 3600 * (1 + j), 4 * 3600 * (j % 3), 3600 * (2 + n % 5)),
        votes=n % 4,
        watches=1 + n % 3,
        comment=[
            (people[n % 5], f"Looks good to me, see {story.key}.", jira_time(created + timedelta(hours=1))),
            (people[(n + 1) % 5], "Merged 🚀 — thanks!", jira_time(created + timedelta(hours=5))),
        ][: j % 3],
        worklog=[(people[n % 5], jira_time(created + timedelta(hours=2)), 3600 * (2 + n % 5), "pairing")],
        attachment=[("trace.log", 2048, "text/plain", people[n % 5], jira_time(created))] if j % 2 else [],
    )


def iter_tree(site: JiraSite, root: str) -> Iterator[tuple[str, int]]:
    """Yield ``(key, level)`` of ``root`` and everything below it (children, then epic children).

    A test helper: the same walk a product traversal makes through ``parent``/Epic Link searches.
    """
    with site.lock:
        level, frontier, seen = 0, [root.upper()], {root.upper()}
        while frontier:
            yield from ((key, level) for key in frontier)
            below: list[str] = []
            for key in frontier:
                kids = site.children.get(key, set()) | site.epic_children.get(key, set())
                below.extend(k for k in sorted(kids, key=lambda k: site.issues[k].number) if k not in seen)
            seen.update(below)
            frontier, level = below, level + 1
