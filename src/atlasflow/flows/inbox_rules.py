"""What a job request from the inbox page may set: an allow-list per job, with types and bounds.

The inbox page is editable by many people; the service account that starts the runs can do more than
any of them. So a request sets only the parameters its job declares requestable here (the scope of the
work, within caps); credentials and storage (``*_block``), file paths, target pages and destructive
switches come from the deployment. An operator can let the page set a further parameter of one job by
listing it under ``allow`` in the inbox's job map; such a value is still checked by the deployment's
parameter schema and by the flow itself (paths stay inside the reports folder).

The Jira scope of a request is composed here, never taken as written. A row names its projects with
``project_key`` and/or ``projects``, or (with neither) by its ``root_tickets``' keys; root tickets must lie in
the named projects. A row's ``jql`` only narrows: the export gets ``project in ("A", "B") AND (<jql>)``, and
JQL is refused unless it names its projects this way. The JQL is tokenized (strings, parentheses, words)
enough to refuse what could reach out of the parentheses or change the export's order: ``ORDER BY``,
unbalanced parentheses or quotes, backslashes outside quotes, and functions other than the date functions
(:data:`JQL_FUNCTIONS`; an operator may allow more per job). :class:`Scope` tells the inbox what to check
before a run starts: the requester's access to every project, the roots' projects, the issue count.
Following issue links (``include_links``) leads out of the named projects, so a request may turn it on only
where the operator allows it, and even then the export gets ``within_projects``: every search it sends, below
the roots and along links too, stays inside the named projects.

Pure: no Prefect, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from atlasflow.errors import ConfigurationError

#: Caps on what one request may start.
MAX_ROOTS = 50
MAX_DEPTH = 10
MAX_FIELDS = 30
MAX_JQL = 2000
MAX_ROWS = 500
MAX_COLUMNS = 50
MAX_CELL = 2000
MAX_PROJECTS = 10

IssueKey = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,19}-[1-9][0-9]{0,9}$")]
ProjectKey = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,19}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=120)]
Permission = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z_]{1,59}$")]
Cell = Annotated[str | int | float | bool | None, AfterValidator(lambda v: _short(v))]
BoundedJql = Annotated[str, StringConstraints(min_length=1, max_length=MAX_JQL)]
TableRef = Annotated[int, Field(ge=0, le=100)] | Annotated[str, StringConstraints(min_length=1, max_length=200)]


def _short(value: str | int | float | bool | None) -> str | int | float | bool | None:
    if isinstance(value, str) and len(value) > MAX_CELL:
        raise ValueError(f"a cell longer than {MAX_CELL} characters")
    return value


#: JQL functions a request may call: the date functions, which mean the same whoever runs the search. The
#: others answer as the service account (``currentUser()``, ``issueHistory()``, ``watchedIssues()``) or
#: follow links and hierarchies into projects the row does not name (``linkedIssues()``, ``childIssuesOf()``):
#: an operator may allow them per job (``InboxJob.jql_functions``), lower-case.
JQL_FUNCTIONS = frozenset(
    f"{edge}of{unit}" for edge in ("start", "end") for unit in ("day", "week", "month", "year")
) | frozenset({"now"})
#: JQL words that may stand before a parenthesis without being a function call.
_JQL_KEYWORDS = frozenset(
    {"and", "or", "not", "in", "was", "is", "during", "before", "after", "on", "by", "from", "to", "changed"}
)
_JQL_TOKEN = re.compile(
    r"""\s+|(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<quote>["'])|(?P<punct>[(),])"""
    r"""|(?P<op>!=|!~|>=|<=|[=~<>])|(?P<backslash>\\)|(?P<word>[^\s"'(),=!~<>\\]+)|(?P<other>.)"""
)


@dataclass(frozen=True)
class JqlToken:
    """A JQL token: ``string`` (quoted, quotes kept), ``punct`` (``(``, ``)``, ``,``), ``op`` or ``word``."""

    kind: str
    text: str


def jql_tokens(jql: str) -> Iterator[JqlToken]:
    """The tokens of ``jql``, whitespace left out.

    Raises:
        ValueError: An unterminated quoted string, a backslash outside quotes (Jira reads ``a\\"`` as a
            word where a simple reader sees a quote: refused rather than guessed), or a control character.
    """
    for match in _JQL_TOKEN.finditer(jql):
        kind = match.lastgroup
        if kind is None:
            continue
        if kind == "quote":
            raise ValueError("unbalanced quotes in the JQL")
        if kind == "backslash":
            raise ValueError("a backslash outside quotes in the JQL")
        if kind == "other" or (kind == "word" and not match.group().isprintable()):
            raise ValueError("a control character in the JQL")
        yield JqlToken(kind, match.group())


def check_jql(jql: str, functions: frozenset[str] = frozenset()) -> str:
    """``jql`` if it can only narrow a scope put before it as ``<scope> AND (<jql>)``.

    Args:
        jql: A row's JQL.
        functions: Functions allowed beyond :data:`JQL_FUNCTIONS` (lower-case names).

    Raises:
        ValueError: ``ORDER BY`` (the export orders), parentheses that close more than they open or stay
            open, unbalanced quotes, a backslash outside quotes, or a function not allowed (named).
    """
    tokens = list(jql_tokens(jql))
    if not tokens:
        raise ValueError("the JQL is empty")
    depth = 0
    for token, following in zip(tokens, [*tokens[1:], JqlToken("end", "")], strict=True):
        depth += {"(": 1, ")": -1}.get(token.text, 0) if token.kind == "punct" else 0
        if depth < 0:
            raise ValueError("unbalanced parentheses in the JQL (a ')' closes more than was opened)")
        if token.kind != "word":
            continue
        word = token.text.lower()
        if word == "order" and following.kind == "word" and following.text.lower() == "by":
            raise ValueError("ORDER BY is not allowed in JQL from the inbox (the export orders its rows)")
        if following.text == "(" and word not in _JQL_KEYWORDS and word not in JQL_FUNCTIONS | functions:
            raise ValueError(
                f"the JQL function {token.text}() is not allowed from the inbox (allowed: "
                f"{', '.join(sorted(JQL_FUNCTIONS | functions))}); an operator can allow it in the inbox job map"
            )
    if depth:
        raise ValueError("unbalanced parentheses in the JQL (a '(' is not closed)")
    return jql


def scoped_jql(projects: tuple[str, ...], jql: str | None = None) -> str:
    """``project in ("A", "B") AND (<jql>)``: the projects bound the result whatever ``jql`` says."""
    clause = f"project in ({', '.join(f'{chr(34)}{key}{chr(34)}' for key in projects)})"
    return f"{clause} AND ({jql})" if jql else clause


@dataclass(frozen=True)
class Scope:
    """What a request reads in Jira, for the checks made before its run starts.

    Attributes:
        projects: Every project the request may read: the requester must be able to browse each.
        roots: Root tickets: each must be in ``projects`` as Jira sees it now (a moved issue keeps its old key).
        count_jql: JQL whose count bounds the issues the run reads (for root tickets: their projects, an upper
            bound, as their trees are not known before the run); ``None`` when it reads no issues.
    """

    projects: tuple[str, ...] = ()
    roots: tuple[str, ...] = ()
    count_jql: str | None = None


@dataclass(frozen=True)
class Admitted:
    """A request as it may start: the parameters passed to the deployment and its Jira scope."""

    parameters: dict[str, Any]
    scope: Scope


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    #: Parameters passed even when the request leaves them out: caps the deployment must not lift.
    always: ClassVar[frozenset[str]] = frozenset()
    #: Parameters a request may turn on only where the operator allows them (``allow`` in the job map).
    guarded: ClassVar[frozenset[str]] = frozenset()

    def passed(self, given: set[str]) -> dict[str, Any]:
        """The parameters for the deployment: those the request gave, and :attr:`always`."""
        return self.model_dump(mode="json", include=given | self.always)

    def scope(self) -> Scope:
        return Scope()


def _key_project(key: str) -> str:
    return key.rsplit("-", 1)[0]


class ExportScope(_Request):
    """The scope of an export: where it starts, what it shows, how deep it goes.

    Projects are named by ``project_key`` and/or ``projects`` (or, with neither, by the root tickets' keys);
    ``jql`` needs them named and only narrows them; root tickets must be in them.
    """

    root_tickets: list[IssueKey] | None = Field(None, min_length=1, max_length=MAX_ROOTS)
    project_key: ProjectKey | None = None
    projects: list[ProjectKey] | None = Field(None, min_length=1, max_length=MAX_PROJECTS)
    jql: BoundedJql | None = None
    fields: list[Name] | None = Field(None, max_length=MAX_FIELDS)
    max_depth: int = Field(MAX_DEPTH, ge=0, le=MAX_DEPTH)
    include_links: bool = False

    always: ClassVar[frozenset[str]] = frozenset({"max_depth"})
    guarded: ClassVar[frozenset[str]] = frozenset({"include_links"})

    @field_validator("jql")
    @classmethod
    def _narrowing(cls, jql: str | None, info: ValidationInfo) -> str | None:
        functions = (info.context or {}).get("functions", frozenset())
        return None if jql is None else check_jql(jql, functions)

    @model_validator(mode="after")
    def _named(self) -> Self:
        named = self.named_projects()
        if self.root_tickets and self.jql:
            raise ValueError("give root_tickets or jql, not both")
        if self.jql and not (self.project_key or self.projects):
            raise ValueError("JQL from the inbox must name its project(s) in project_key or projects")
        outside = [k for k in self.root_tickets or [] if _key_project(k) not in named]
        if outside:
            raise ValueError(f"root ticket {outside[0]} is not in the named project(s) {', '.join(named)}")
        return self

    def named_projects(self) -> tuple[str, ...]:
        """The projects the request names (``project_key``, ``projects``, else the roots' keys), in order."""
        named = [*([self.project_key] if self.project_key else []), *(self.projects or [])]
        return tuple(dict.fromkeys(named or [_key_project(k) for k in self.root_tickets or []]))

    def passed(self, given: set[str]) -> dict[str, Any]:
        """The export's parameters with the scope composed: roots, one ``project_key``, or scoped ``jql``."""
        projects = self.named_projects()
        others = {
            **super().passed(given - {"root_tickets", "project_key", "projects", "jql"}),
            **({"within_projects": list(projects)} if projects else {}),
        }
        if self.root_tickets:
            return {"root_tickets": list(self.root_tickets), **others}
        if self.jql or len(projects) > 1:
            return {"jql": scoped_jql(projects, self.jql), **others}
        return {"project_key": projects[0], **others} if projects else others

    def scope(self) -> Scope:
        projects = self.named_projects()
        count = scoped_jql(projects, self.jql) if projects else None
        return Scope(projects, tuple(self.root_tickets or ()), count)


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

    def scope(self) -> Scope:
        return Scope((self.project_key,))


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
    "reach": "issue links lead out of the named projects (the export follows them as the service account)",
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
    "include_links": "reach",
}


class RequestRefused(ConfigurationError):
    """Parameters the page may not set, or values outside their bounds; the message says which and why."""


def admit(
    job: str,
    parameters: Mapping[str, Any],
    allow: frozenset[str] = frozenset(),
    functions: frozenset[str] = frozenset(),
) -> Admitted:
    """The parameters of a request that may be passed to the job's deployment, and its Jira scope.

    Args:
        job: The job type (a key of the inbox job map).
        parameters: What the request row asks for.
        allow: Further parameters the operator lets the page set for this job (passed through as given);
            a parameter the job's rules know is checked by them whatever ``allow`` says, and a guarded one
            (``include_links``) may be turned on only when listed here.
        functions: JQL functions allowed beyond :data:`JQL_FUNCTIONS` (lower-case names).

    Returns:
        The validated parameters, only those the request gave (the deployment supplies the rest), with the
        export scope composed (see the module docstring); and the :class:`Scope` to check before starting.

    Raises:
        RequestRefused: Naming each parameter refused and why, or the first values out of bounds.
    """
    rules = RULES.get(job, NothingRequestable)
    passed = {k: v for k, v in parameters.items() if k in allow and k not in rules.model_fields}
    checked = {k: v for k, v in parameters.items() if k not in passed}
    refused = [
        k for k in checked if k not in rules.model_fields or (k in rules.guarded and k not in allow and checked[k])
    ]
    if refused:
        raise RequestRefused("; ".join(f"{k} cannot be set from the inbox: {_why(k)}" for k in sorted(refused)))
    try:
        model = rules.model_validate(checked, context={"functions": frozenset(f.lower() for f in functions)})
    except ValidationError as exc:
        problems = [_problem(e["loc"], e["msg"]) for e in exc.errors()[:3]]
        raise RequestRefused("; ".join(problems)) from None
    return Admitted({**model.passed(set(checked)), **passed}, model.scope())


def requestable(job: str, parameters: Mapping[str, Any], allow: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The parameters of :func:`admit` (the scope composed), for callers that need no scope."""
    return admit(job, parameters, allow).parameters


def _problem(location: tuple[int | str, ...], message: str) -> str:
    return f"{'.'.join(str(p) for p in location) or 'parameters'}: {message.removeprefix('Value error, ')}"


def _why(name: str) -> str:
    kind = "block" if name.endswith("_block") else _KIND.get(name)
    reason = _WHY[kind] if kind else "not a parameter this job takes from a request"
    return f"{reason}; an operator can allow it in the inbox job map"
