"""What every sandbox Jira site has: statuses, issue types, priorities, link types, options, sprints,
versions, and the field definitions of each mode.

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
comments, worklogs and attachments. Stories of the demo site carry them (see :mod:`atlasflow.sandbox.jira.seed`).
"""

from __future__ import annotations

from typing import Any

from atlasflow.sandbox.core import Mode
from atlasflow.sandbox.jira.model import FieldDef, IssueType, LinkType, Priority, Sprint, Status

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


def build_fields(mode: Mode) -> tuple[FieldDef, ...]:
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
            schema=custom_schema(fid, kind, ctype),
            clause_names=(f"cf[{fid.split('_')[1]}]", name),
        )
        for fid, name, kind, ctype in _CUSTOM_FIELDS[mode]
    ]
    return (*system, key_field, *custom)


def custom_schema(fid: str, kind: str, ctype: str) -> dict[str, Any]:
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
