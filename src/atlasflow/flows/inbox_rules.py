"""What a job request from the inbox page may set: an allow-list per job, with types and bounds.

The inbox page is editable by many people; the service account that starts the runs can do more than
any of them. So a request sets only the parameters its job declares requestable here (the scope of the
work, within caps); credentials and storage (``*_block``), file paths, target pages and destructive
switches come from the deployment. An operator can let the page set a further parameter of one job by
listing it under ``allow`` in the inbox's job map; such a value is still checked by the deployment's
parameter schema and by the flow itself (paths stay inside the reports folder).

Pure: no Prefect, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

#: Caps on what one request may start.
MAX_ROOTS = 50
MAX_DEPTH = 10
MAX_FIELDS = 30
MAX_JQL = 2000
MAX_ROWS = 500
MAX_COLUMNS = 50
MAX_CELL = 2000

IssueKey = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,19}-[1-9][0-9]{0,9}$")]
ProjectKey = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,19}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=120)]
Permission = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z_]{1,59}$")]
Cell = Annotated[str | int | float | bool | None, AfterValidator(lambda v: _short(v))]
_PROJECT_CLAUSE = re.compile(r"\bproject\s*(=|in\b)", re.IGNORECASE)


def _bounded_jql(jql: str) -> str:
    if not _PROJECT_CLAUSE.search(jql):
        raise ValueError("JQL from the inbox must name its project(s) (project = KEY or project in (...))")
    return jql


BoundedJql = Annotated[str, StringConstraints(min_length=1, max_length=MAX_JQL), AfterValidator(_bounded_jql)]
TableRef = Annotated[int, Field(ge=0, le=100)] | Annotated[str, StringConstraints(min_length=1, max_length=200)]


def _short(value: str | int | float | bool | None) -> str | int | float | bool | None:
    if isinstance(value, str) and len(value) > MAX_CELL:
        raise ValueError(f"a cell longer than {MAX_CELL} characters")
    return value


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    #: Parameters passed even when the request leaves them out: caps the deployment must not lift.
    always: ClassVar[frozenset[str]] = frozenset()


class ExportScope(_Request):
    """The scope of an export: where it starts, what it shows, how deep it goes."""

    root_tickets: list[IssueKey] | None = Field(None, min_length=1, max_length=MAX_ROOTS)
    project_key: ProjectKey | None = None
    jql: BoundedJql | None = None
    fields: list[Name] | None = Field(None, max_length=MAX_FIELDS)
    max_depth: int = Field(MAX_DEPTH, ge=0, le=MAX_DEPTH)
    include_links: bool = False

    always: ClassVar[frozenset[str]] = frozenset({"max_depth"})


class ExportRequest(ExportScope):
    compare_to: Literal["previous", "none"] = "previous"


class TableSyncRequest(_Request):
    """Rows given in the request itself, upserted into the deployment's page; never deleting, optionally dry."""

    table: TableRef = 0
    key_column: Name
    rows: list[dict[Name, Cell]] = Field(min_length=1, max_length=MAX_ROWS)
    columns: list[Name] | None = Field(None, max_length=MAX_COLUMNS)
    dry_run: Literal[True] | None = None


class ReadTableRequest(_Request):
    table: TableRef = 0


class PermissionsRequest(_Request):
    project_key: ProjectKey
    permissions: list[Permission] = Field(min_length=1, max_length=20)


class PipelineRequest(ExportScope):
    key_column: Name = "Key"
    columns: list[Name] | None = Field(None, max_length=MAX_COLUMNS)


class NothingRequestable(_Request):
    """A job the page may start but not configure."""


#: Job type → what a request may set. A job type not listed here may be started but set nothing.
RULES: dict[str, type[_Request]] = {
    "jira_export": ExportRequest,
    "confluence_table_sync": TableSyncRequest,
    "read_confluence_table": ReadTableRequest,
    "report_results": NothingRequestable,
    "jira_permissions_check": PermissionsRequest,
    "pipeline": PipelineRequest,
}

_WHY = {
    "block": "credentials and storage (*_block) come from the deployment",
    "path": "file paths come from the deployment",
    "page": "the page to write or read comes from the deployment (the service account may reach pages the "
    "requester may not)",
    "switch": "destructive switches come from the deployment",
    "channel": "the channel to post to comes from the deployment",
}
_KIND = {
    "output_dir": "path",
    "compare_to": "path",
    "source": "path",
    "sheet": "path",
    "encoding": "path",
    "formulas": "path",
    "cwd": "path",
    "page_id": "page",
    "report_page_id": "page",
    "confluence_page_id": "page",
    "attach_to_page": "page",
    "post_to_channel": "channel",
    "delete_missing": "switch",
    "dry_run": "switch",
}


class RequestRefused(ValueError):
    """Parameters the page may not set, or values outside their bounds; the message says which and why."""


def requestable(job: str, parameters: Mapping[str, Any], allow: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The parameters of a request that may be passed to the job's deployment.

    Args:
        job: The job type (a key of the inbox job map).
        parameters: What the request row asks for.
        allow: Further parameters the operator lets the page set for this job (passed through as given).

    Returns:
        The validated parameters, only those the request gave (the deployment supplies the rest).

    Raises:
        RequestRefused: Naming each parameter refused and why, or the first values out of bounds.
    """
    rules = RULES.get(job, NothingRequestable)
    passed = {k: v for k, v in parameters.items() if k in allow}
    checked = {k: v for k, v in parameters.items() if k not in allow}
    refused = [k for k in checked if k not in rules.model_fields]
    if refused:
        raise RequestRefused("; ".join(f"{k} cannot be set from the inbox: {_why(k)}" for k in sorted(refused)))
    try:
        model = rules.model_validate(checked)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'parameters'}: {e['msg']}" for e in exc.errors()[:3]]
        raise RequestRefused("; ".join(problems)) from None
    return {**model.model_dump(mode="json", include=set(checked) | rules.always), **passed}


def _why(name: str) -> str:
    kind = "block" if name.endswith("_block") else _KIND.get(name)
    reason = _WHY[kind] if kind else "not a parameter this job takes from a request"
    return f"{reason}; an operator can allow it in the inbox job map"
