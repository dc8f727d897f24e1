"""Jira REST stand-in: the routes the product calls, answering in Jira Cloud or Data Center shapes.

Cloud (``state.mode == "cloud"``), under ``/rest/api/2`` and ``/rest/api/3``:
    ``GET|POST search/jql`` (cursor paging: ``nextPageToken``/``isLast``, no ``total``; without
    ``fields`` the issues carry only ``id``), ``POST search/approximate-count``, ``GET|POST search``
    answers 410 (removed), ``issue/bulkfetch`` (POST: up to 100 issues by id or key, 1000 when every
    field is named, at most 100 of them, none multi-valued and no heavy ``expand``; ascending id order;
    unknown or hidden issues left out), ``issue`` (POST), ``issue/{key}`` (GET/PUT/DELETE), ``mypermissions``
    (``permissions`` required), ``myself``, ``field``. v3 renders ``description`` as an Atlassian
    Document, v2 as a string.
Data Center (``"datacenter"``), under ``/rest/api/2`` and ``/rest/api/latest`` only (``/rest/api/3``
is 404): ``GET|POST search`` (``startAt``/``total``; ``validateQuery``; ``startAt + maxResults`` past the
search window of 10,000 answers 500 "Search limit exceeded", as Jira with OpenSearch does), and the same issue,
permission, myself and field resources.
Both: ``GET /rest/agile/1.0/epic/{key}/issue`` (the epic's children: Epic Link in DC, ``parent`` in
Cloud; ``startAt``/``maxResults``/``total``).

Page sizes are capped by :class:`~sandbox.jira_data.JiraSettings` (default 50, cap 100; Cloud id-only
pages up to 5000). Cloud page tokens are opaque (base64 of the offset and a hash of the JQL); a token
replayed with another JQL is refused with 400.

Issue JSON follows the samples (``id``, ``key``, absolute ``self``, ``fields``); Data Center issue types
carry no ``hierarchyLevel`` (Cloud's do), users are ``name``/``key`` on DC and ``accountId`` on Cloud.
Links to issues the caller cannot browse are left out of ``issuelinks``.

``fields`` takes ids, ``*all``, ``*navigable`` (the same here: every sandbox field is navigable) and
``-id`` exclusions; unknown ids are ignored, as Jira does. ``expand`` understands ``names`` and
``schema``; other expansions are ignored. Issue payloads are rendered once per fields selection and
cached until the site changes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from atlasflow.sandbox.core import Account, SandboxState, jira_error
from atlasflow.sandbox.jira_data import (
    COMPONENTS,
    DATE_RE,
    EPIC_LINK_FIELD,
    EPIC_NAME_FIELD,
    ISSUE_FIELD_IDS,
    PLATFORM_OPTIONS,
    REGION_OPTIONS,
    RESOLUTIONS,
    SECURITY_LEVELS,
    SPRINTS,
    TEAM_OPTIONS,
    VERSIONS,
    FieldDef,
    Issue,
    JiraSite,
    Link,
    Sprint,
    check_summary,
)
from atlasflow.sandbox.jira_permissions import permission_routes
from atlasflow.sandbox.jql import JqlError, SearchResult, parse, search

__all__ = ["JiraSite", "jira_routes"]

JSON_TYPE = "application/json;charset=UTF-8"
NOT_FOUND = "Issue does not exist or you do not have permission to see it."
REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
UNBOUNDED = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
CANNOT_SET = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."
NOT_ADF = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"
PERMISSIONS: dict[str, tuple[str, str, str]] = {
    "BROWSE_PROJECTS": ("10", "Browse Projects", "Ability to browse projects and the issues within them."),
    "CREATE_ISSUES": ("11", "Create Issues", "Ability to create issues."),
    "EDIT_ISSUES": ("12", "Edit Issues", "Ability to edit issues."),
    "ASSIGN_ISSUES": ("13", "Assign Issues", "Ability to assign issues to other people."),
    "ADD_COMMENTS": ("15", "Add Comments", "Ability to comment on issues."),
    "DELETE_ISSUES": ("16", "Delete Issues", "Ability to delete issues."),
    "TRANSITION_ISSUES": ("46", "Transition Issues", "Ability to transition issues."),
}
_EDITABLE_SYSTEM = frozenset({"summary", "description", "priority", "assignee", "labels"})
#: Issues per ``issue/bulkfetch`` request; up to ``JiraSettings.bulk_fetch_max_efficient`` (1000) when the
#: request is "shaped so that it can be served efficiently" (fields named explicitly, at most 100 of them,
#: none multi-valued, no heavy expansion), as the Cloud reference documents it.
BULK_FETCH_MAX = 100
BULK_FETCH_MAX_FIELDS = 100
_HEAVY_EXPAND = frozenset(
    {"changelog", "editmeta", "operations", "renderedFields", "transitions", "versionedRepresentations"}
)
_MULTI_VALUED = frozenset({"comment", "worklog", "attachment"})
WINDOW_EXCEEDED = (
    "Search limit exceeded. We couldn't complete your search because it requests {:,} results which exceeded "
    "the search platform limit of {:,}. Try refining your query or contact your Jira administrator. "
    "Repeating the same search may not work."
)
_SEARCH_CACHE_SIZE = 32


class _BadRequest(Exception):
    """Answer 400 (or ``status``) with these Jira ``errorMessages`` and per-field ``errors``."""

    def __init__(self, *messages: str, status: int = 400, errors: dict[str, str] | None = None) -> None:
        super().__init__(*messages)
        self.messages = messages
        self.status = status
        self.errors = errors


def _json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _respond(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=JSON_TYPE)


def _int_param(params: dict[str, Any], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise _BadRequest(f"The value '{raw}' is not valid for the parameter '{name}'.") from None


def _list_param(raw: Any) -> list[str]:
    """``"a,b"``, ``["a", "b"]`` or ``None`` -> ``["a", "b"]``."""
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else str(raw).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def adf_document(text: str | None) -> dict[str, Any] | None:
    """Plain text as an Atlassian Document: paragraphs split on blank lines, hard breaks on newlines,
    a block whose lines all start with ``* `` as a bullet list."""
    if text is None:
        return None
    blocks = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        if all(line.startswith("* ") for line in lines):
            items = [{"type": "listItem", "content": [_adf_paragraph([line[2:]])]} for line in lines]
            blocks.append({"type": "bulletList", "content": items})
        else:
            blocks.append(_adf_paragraph(lines))
    return {"type": "doc", "version": 1, "content": blocks}


def _adf_paragraph(lines: list[str]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for n, line in enumerate(lines):
        if n:
            content.append({"type": "hardBreak"})
        if line:
            content.append({"type": "text", "text": line})
    return {"type": "paragraph", "content": content}


def adf_text(node: Any) -> str:
    """The plain text of an Atlassian Document (inverse of :func:`adf_document` for its output)."""
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    if kind == "text":
        return str(node.get("text", ""))
    if kind == "hardBreak":
        return "\n"
    if kind == "bulletList":
        return "\n".join("* " + adf_text(item) for item in node.get("content", []))
    separator = "\n\n" if kind == "doc" else ""
    return separator.join(adf_text(child) for child in node.get("content", []))


@dataclass(frozen=True, slots=True)
class _Ctx:
    """What an issue payload depends on besides the issue: where it is read from and by whom."""

    base: str
    api: str  # "2" or "3"
    visible: frozenset[str]
    agile: bool = False


class _JiraApi:
    def __init__(self, site: JiraSite, state: SandboxState) -> None:
        self.site = site
        self.state = state
        self.cloud = state.mode == "cloud"
        self.field_ids = (*ISSUE_FIELD_IDS, *(f.id for f in site.fields if f.custom))
        self._rendered: dict[tuple[str, tuple[str, ...], _Ctx], bytes] = {}
        self._rendered_generation = -1
        self._searches: OrderedDict[tuple[str, str, bool], tuple[int, SearchResult]] = OrderedDict()
        self._stale: bytes | None = None  # the answer a search repeats under ``Faults.endless_pages``

    # ------------------------------------------------------------------------------------ routes

    def routes(self) -> list[Route]:
        versions = ("2", "3") if self.cloud else ("2", "latest")
        routes = []
        for version in versions:
            base = f"/rest/api/{version}"
            api = "3" if version == "3" else "2"
            if self.cloud:
                routes.append(
                    Route(f"{base}/issue/bulkfetch", self._bind(self.bulk_fetch, api), methods=["POST"])
                )
            routes += [
                Route(f"{base}/issue", self._bind(self.create_issue, api), methods=["POST"]),
                Route(f"{base}/issue/{{key}}", self._bind(self.issue, api), methods=["GET", "PUT", "DELETE"]),
                Route(f"{base}/mypermissions", self._bind(self.my_permissions, api), methods=["GET"]),
                Route(f"{base}/myself", self._bind(self.myself, api), methods=["GET"]),
                Route(f"{base}/field", self._bind(self.list_fields, api), methods=["GET"]),
            ]
            if self.cloud:
                routes += [
                    Route(f"{base}/search/jql", self._bind(self.search_jql, api), methods=["GET", "POST"]),
                    Route(f"{base}/search/approximate-count", self._bind(self.count, api), methods=["POST"]),
                    Route(f"{base}/search", self._bind(self.removed, api), methods=["GET", "POST"]),
                ]
            else:
                routes.append(
                    Route(f"{base}/search", self._bind(self.search_dc, api), methods=["GET", "POST"])
                )
        routes.append(
            Route("/rest/agile/1.0/epic/{key}/issue", self._bind(self.epic_issues, "2"), methods=["GET"])
        )
        return routes

    def _bind(
        self, handler: Callable[[Request, str], Awaitable[Response]], api: str
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request, api)
            except _BadRequest as error:
                return jira_error(error.status, *error.messages, errors=error.errors)
            except JqlError as error:
                return jira_error(400, *error.messages)

        return endpoint

    # ---------------------------------------------------------------------------------- helpers

    async def _params(self, request: Request) -> dict[str, Any]:
        if request.method == "GET":
            params: dict[str, Any] = dict(request.query_params)
            for name in ("fields", "expand"):
                if len(request.query_params.getlist(name)) > 1:
                    params[name] = ",".join(request.query_params.getlist(name))
            return params
        return await self._body(request)

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise _BadRequest("Unexpected character in the request body: it is not valid JSON.") from None
        if not isinstance(body, dict):
            raise _BadRequest("The request body must be a JSON object.")
        return body

    def _ctx(self, request: Request, api: str, account: Account, agile: bool = False) -> _Ctx:
        return _Ctx(str(request.base_url).rstrip("/"), api, self.site.browsable(account), agile)

    def _selection(self, raw: Any, default: str) -> tuple[str, ...]:
        tokens = _list_param(raw) or [default]
        chosen: set[str] = set()
        removed: set[str] = set()
        for token in tokens:
            if token.startswith("-"):
                removed.add(token[1:])
            elif token in ("*all", "*navigable"):
                chosen.update(self.field_ids)
            else:
                chosen.add(token)
        return tuple(f for f in self.field_ids if f in chosen and f not in removed)

    def _visible_issue(self, key: str, account: Account) -> Issue:
        issue = self.site.find_issue(key)
        if issue is None or issue.project not in self.site.browsable(account):
            raise _BadRequest(NOT_FOUND, status=404)
        return issue

    def _run(self, jql: str, account: Account, *, strict: bool = True) -> SearchResult:
        site = self.site
        with site.lock:
            cache_key = (jql, account.username, strict)
            hit = self._searches.get(cache_key)
            if hit is not None and hit[0] == site.generation:
                self._searches.move_to_end(cache_key)
                return hit[1]
            query = parse(jql, site.mode)
            if self.cloud and query.where is None:
                raise _BadRequest(UNBOUNDED)
            result = search(site, query, account, strict=strict)
            self._searches[cache_key] = (site.generation, result)
            if len(self._searches) > _SEARCH_CACHE_SIZE:
                self._searches.popitem(last=False)
            return result

    def _extras(self, expand: Any, selection: tuple[str, ...]) -> bytes:
        """``"names"``/``"schema"`` members for an ``expand``, as JSON members with a leading comma."""
        wanted = set(_list_param(expand))
        out = b""
        fields = [self.site.field(fid) for fid in selection]
        if "names" in wanted:
            out += b',"names":' + _json({f.id: f.name for f in fields if f})
        if "schema" in wanted:
            out += b',"schema":' + _json({f.id: f.schema for f in fields if f and f.schema})
        return out

    # -------------------------------------------------------------------------------- rendering

    def _rendered_issue(self, issue: Issue, selection: tuple[str, ...], ctx: _Ctx) -> bytes:
        site = self.site
        if (
            self._rendered_generation != site.generation
            or len(self._rendered) >= site.settings.render_cache_size
        ):
            self._rendered.clear()
            self._rendered_generation = site.generation
        cache_key = (issue.key, selection, ctx)
        body = self._rendered.get(cache_key)
        if body is None:
            body = self._rendered[cache_key] = _json(self._issue_json(issue, selection, ctx))
        return body

    def _issue_json(self, issue: Issue, selection: tuple[str, ...], ctx: _Ctx) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for fid in selection:
            if fid != "parent" or issue.parent:
                fields[fid] = self._field_value(issue, fid, ctx)
        resource = "agile/1.0" if ctx.agile else f"api/{ctx.api}"
        if ctx.agile:
            fields["epic"] = self._agile_epic(issue, ctx)
        return {
            "expand": ISSUE_EXPAND,
            "id": str(issue.id),
            "self": f"{ctx.base}/rest/{resource}/issue/{issue.id}",
            "key": issue.key,
            "fields": fields,
        }

    def _field_value(self, issue: Issue, fid: str, ctx: _Ctx) -> Any:
        site = self.site
        if fid in ("summary", "created", "updated"):
            return getattr(issue, fid)
        if fid == "labels":
            return list(issue.labels)
        if fid == "issuetype":
            return self._type_json(issue, ctx)
        if fid == "status":
            return self._status_json(issue, ctx)
        if fid == "priority":
            return self._priority_json(issue.priority, ctx)
        if fid in ("assignee", "reporter"):
            username = getattr(issue, fid)
            return self._user_json(username, ctx) if username else None
        if fid == "project":
            return self._project_json(issue.project, ctx)
        if fid == "description":
            return adf_document(issue.description) if ctx.api == "3" else issue.description
        if fid == "parent":
            return self._ref_json(site.issues[issue.parent], ctx) if issue.parent else None
        if fid == "subtasks":
            return [self._ref_json(sub, ctx) for sub in site.subtasks_of(issue.key)]
        if fid == "issuelinks":
            links = sorted(site.links_of.get(issue.key, ()), key=lambda link: link.id)
            return [self._link_json(link, issue, ctx) for link in links if self._other_visible(link, issue, ctx)]
        if fid in _OTHER_SYSTEM_FIELDS:
            return self._detail_json(issue, fid, ctx)
        return self._custom_json(issue, site.field_by_id[fid], ctx)

    # ------------------------------------------------------------------ the other system fields

    def _detail_json(self, issue: Issue, fid: str, ctx: _Ctx) -> Any:
        """Versions, components, time tracking, comments … as Cloud (v2/v3) or Data Center send them."""
        details = issue.details
        api = f"{ctx.base}/rest/api/{ctx.api}"
        if fid in _TIME_FIELDS:
            return self._time_value(issue, fid)
        if fid == "creator":
            return self._user_json(issue.reporter, ctx) if issue.reporter else None
        if fid == "statusCategory":
            status = self.site.status(issue)
            return {
                "self": f"{api}/statuscategory/{status.category_id}",
                "id": status.category_id,
                "key": status.category_key,
                "colorName": status.color,
                "name": status.category_name,
            }
        if fid == "resolutiondate":
            return issue.updated if details.get("resolution") else None
        if fid == "votes":
            return {"self": f"{api}/issue/{issue.key}/votes", "votes": details.get("votes", 0), "hasVoted": False}
        if fid == "watches":
            count = details.get("watches", 0)
            return {"self": f"{api}/issue/{issue.key}/watchers", "watchCount": count, "isWatching": False}
        if fid == "comment":
            comments = [self._comment_json(issue, n, entry, ctx) for n, entry in enumerate(details.get("comment", []))]
            return {
                "comments": comments,
                "self": f"{api}/issue/{issue.id}/comment",
                "maxResults": len(comments),
                "total": len(comments),
                "startAt": 0,
            }
        if fid == "worklog":
            logs = [self._worklog_json(issue, n, entry, ctx) for n, entry in enumerate(details.get("worklog", []))]
            return {"startAt": 0, "maxResults": 20, "total": len(logs), "worklogs": logs[:20]}
        if fid == "attachment":
            return [
                self._attachment_json(issue, n, entry, ctx) for n, entry in enumerate(details.get("attachment", []))
            ]
        return _DETAIL_RENDERERS[fid](details.get(fid), api, ctx.api)

    def _rich(self, text: str | None, ctx: _Ctx) -> Any:
        return adf_document(text) if ctx.api == "3" else text

    def _comment_json(self, issue: Issue, n: int, entry: tuple[str, str, str], ctx: _Ctx) -> dict[str, Any]:
        author, body, created = entry
        cid = str(20000 + issue.id * 10 + n)
        out = {
            "self": f"{ctx.base}/rest/api/{ctx.api}/issue/{issue.id}/comment/{cid}",
            "id": cid,
            "author": self._user_json(author, ctx),
            "body": self._rich(body, ctx),
            "updateAuthor": self._user_json(author, ctx),
            "created": created,
            "updated": created,
        }
        if self.cloud:
            out["jsdPublic"] = True
        return out

    def _worklog_json(self, issue: Issue, n: int, entry: tuple[str, str, int, str], ctx: _Ctx) -> dict[str, Any]:
        author, started, seconds, comment = entry
        wid = str(30000 + issue.id * 10 + n)
        return {
            "self": f"{ctx.base}/rest/api/{ctx.api}/issue/{issue.id}/worklog/{wid}",
            "author": self._user_json(author, ctx),
            "updateAuthor": self._user_json(author, ctx),
            "comment": self._rich(comment, ctx),
            "created": started,
            "updated": started,
            "started": started,
            "timeSpent": _duration(seconds),
            "timeSpentSeconds": seconds,
            "id": wid,
            "issueId": str(issue.id),
        }

    def _attachment_json(
        self, issue: Issue, n: int, entry: tuple[str, int, str, str, str], ctx: _Ctx
    ) -> dict[str, Any]:
        filename, size, mime, author, created = entry
        aid = str(40000 + issue.id * 10 + n)
        return {
            "self": f"{ctx.base}/rest/api/{ctx.api}/attachment/{aid}",
            "id": aid,
            "filename": filename,
            "author": self._user_json(author, ctx),
            "created": created,
            "size": size,
            "mimeType": mime,
            "content": f"{ctx.base}/secure/attachment/{aid}/{quote(filename)}",
        }

    def _time_value(self, issue: Issue, fid: str) -> Any:
        original, remaining, spent = issue.details.get("timetracking") or (None, None, None)
        if fid == "timetracking":
            out: dict[str, Any] = {}
            for name, seconds in (
                ("originalEstimate", original),
                ("remainingEstimate", remaining),
                ("timeSpent", spent),
            ):
                if seconds is not None:
                    out[name] = _duration(seconds)
                    out[name + "Seconds"] = seconds
            return out
        if fid == "timeoriginalestimate":
            return original
        if fid == "timeestimate":
            return remaining
        if fid in ("timespent", "aggregatetimespent"):
            return spent
        if fid == "workratio":
            return round(100 * spent / original) if original and spent is not None else -1
        total = (spent or 0) + (remaining or 0)
        percent = {"percent": round(100 * (spent or 0) / total)} if total else {}
        return {"progress": spent or 0, "total": total, **percent}

    def _custom_json(self, issue: Issue, fdef: FieldDef, ctx: _Ctx) -> Any:
        if fdef.id == EPIC_LINK_FIELD:
            return issue.epic
        value = issue.custom.get(fdef.id)
        if value is None:
            return None
        kind = fdef.kind
        option = f"{ctx.base}/rest/api/{ctx.api}/customFieldOption"
        if kind == "option":
            return {"self": f"{option}/{TEAM_OPTIONS[value]}", "value": value, "id": TEAM_OPTIONS[value]}
        if kind == "multioption":
            return [{"self": f"{option}/{PLATFORM_OPTIONS[v]}", "value": v, "id": PLATFORM_OPTIONS[v]} for v in value]
        if kind == "cascading":
            parent, child = value
            parent_id, children = REGION_OPTIONS[parent]
            out: dict[str, Any] = {"self": f"{option}/{parent_id}", "value": parent, "id": parent_id}
            if child is not None:
                out["child"] = {"self": f"{option}/{children[child]}", "value": child, "id": children[child]}
            return out
        if kind == "sprint":
            sprints = [next(sp for sp in SPRINTS if sp.id == i) for i in value]
            return [_sprint_json(sp) if self.cloud else _greenhopper_sprint(sp) for sp in sprints]
        if kind == "users":
            return [self._user_json(name, ctx) for name in value]
        if kind == "user":
            return self._user_json(value, ctx)
        if kind == "group":
            out = {"name": value, "self": f"{ctx.base}/rest/api/{ctx.api}/group?groupname={quote(value)}"}
            if self.cloud:
                out["groupId"] = hashlib.sha1(value.encode()).hexdigest()[:8] + "-0000-4000-8000-000000000000"
            return out
        if kind == "textarea":
            return self._rich(value, ctx)
        return value

    def _type_json(self, issue: Issue, ctx: _Ctx) -> dict[str, Any]:
        itype = self.site.issue_type(issue)
        icon = "subtask" if itype.subtask else itype.name.lower()
        out = {
            "self": f"{ctx.base}/rest/api/{ctx.api}/issuetype/{itype.id}",
            "id": itype.id,
            "description": itype.description,
            "iconUrl": f"{ctx.base}/secure/viewavatar?avatarId=10300&avatarType=issuetype&type={icon}",
            "name": itype.name,
            "subtask": itype.subtask,
            "avatarId": 10300,
        }
        if self.cloud:
            out["hierarchyLevel"] = itype.hierarchy_level
        return out

    def _status_json(self, issue: Issue, ctx: _Ctx) -> dict[str, Any]:
        status = self.site.status(issue)
        icon = {"new": "open", "indeterminate": "inprogress", "done": "closed"}[status.category_key]
        return {
            "self": f"{ctx.base}/rest/api/{ctx.api}/status/{status.id}",
            "description": "",
            "iconUrl": f"{ctx.base}/images/icons/statuses/{icon}.png",
            "name": status.name,
            "id": status.id,
            "statusCategory": {
                "self": f"{ctx.base}/rest/api/{ctx.api}/statuscategory/{status.category_id}",
                "id": status.category_id,
                "key": status.category_key,
                "colorName": status.color,
                "name": status.category_name,
            },
        }

    def _priority_json(self, name: str | None, ctx: _Ctx) -> dict[str, Any] | None:
        priority = self.site.find_priority(name) if name else None
        if priority is None:
            return None
        return {
            "self": f"{ctx.base}/rest/api/{ctx.api}/priority/{priority.id}",
            "iconUrl": f"{ctx.base}/images/icons/priorities/{priority.name.lower()}.svg",
            "name": priority.name,
            "id": priority.id,
        }

    def _user_json(self, username: str, ctx: _Ctx) -> dict[str, Any]:
        user = self.site.find_user(username)
        assert user is not None, username
        avatar = f"{ctx.base}/secure/useravatar?ownerId={quote(user.key)}&avatarId=10122"
        avatars = {size: f"{avatar}&size={size}" for size in ("48x48", "24x24", "16x16", "32x32")}
        if self.cloud:
            return {
                "self": f"{ctx.base}/rest/api/{ctx.api}/user?accountId={user.account_id}",
                "accountId": user.account_id,
                "emailAddress": user.email,
                "avatarUrls": avatars,
                "displayName": user.display_name,
                "active": user.active,
                "timeZone": "UTC",
                "accountType": "atlassian",
            }
        return {
            "self": f"{ctx.base}/rest/api/2/user?username={quote(user.name)}",
            "name": user.name,
            "key": user.key,
            "emailAddress": user.email,
            "avatarUrls": avatars,
            "displayName": user.display_name,
            "active": user.active,
            "timeZone": "UTC",
        }

    def _project_json(self, key: str, ctx: _Ctx) -> dict[str, Any]:
        project = self.site.projects[key]
        avatar = f"{ctx.base}/secure/projectavatar?pid={project.id}&avatarId=10324"
        return {
            "self": f"{ctx.base}/rest/api/{ctx.api}/project/{project.id}",
            "id": project.id,
            "key": project.key,
            "name": project.name,
            "projectTypeKey": "software",
            "simplified": False,
            "avatarUrls": {size: f"{avatar}&size={size}" for size in ("48x48", "24x24", "16x16", "32x32")},
        }

    def _ref_json(self, issue: Issue, ctx: _Ctx) -> dict[str, Any]:
        """An issue as ``parent``, ``subtasks`` and ``issuelinks`` show it."""
        return {
            "id": str(issue.id),
            "key": issue.key,
            "self": f"{ctx.base}/rest/api/{ctx.api}/issue/{issue.id}",
            "fields": {
                "summary": issue.summary,
                "status": self._status_json(issue, ctx),
                "priority": self._priority_json(issue.priority, ctx),
                "issuetype": self._type_json(issue, ctx),
            },
        }

    def _other_visible(self, link: Link, issue: Issue, ctx: _Ctx) -> bool:
        other = link.target if link.source == issue.key else link.source
        return self.site.issues[other].project in ctx.visible

    def _link_json(self, link: Link, issue: Issue, ctx: _Ctx) -> dict[str, Any]:
        outward = link.source == issue.key
        other = self.site.issues[link.target if outward else link.source]
        ltype = link.type
        return {
            "id": str(link.id),
            "self": f"{ctx.base}/rest/api/{ctx.api}/issueLink/{link.id}",
            "type": {
                "id": ltype.id,
                "name": ltype.name,
                "inward": ltype.inward,
                "outward": ltype.outward,
                "self": f"{ctx.base}/rest/api/{ctx.api}/issueLinkType/{ltype.id}",
            },
            "outwardIssue" if outward else "inwardIssue": self._ref_json(other, ctx),
        }

    def _agile_epic(self, issue: Issue, ctx: _Ctx) -> dict[str, Any] | None:
        epic_key = issue.epic if not self.cloud else issue.parent
        epic = self.site.issues.get(epic_key) if epic_key else None
        if epic is None or epic.type != "Epic":
            return None
        return {
            "id": epic.id,
            "key": epic.key,
            "self": f"{ctx.base}/rest/agile/1.0/epic/{epic.id}",
            "name": epic.custom.get(EPIC_NAME_FIELD, epic.summary),
            "summary": epic.summary,
            "color": {"key": "color_1"},
            "done": epic.status == "Done",
        }

    # ---------------------------------------------------------------------------------- search

    async def search_jql(self, request: Request, api: str) -> Response:
        params = await self._params(request)
        account = self.state.account(request)
        jql = str(params.get("jql") or "")
        ids_only = not _list_param(params.get("fields"))
        selection = () if ids_only else self._selection(params.get("fields"), "*all")
        settings = self.site.settings
        cap = settings.max_results_ids_only if not selection else settings.max_results
        size = min(max(1, _int_param(params, "maxResults", settings.default_max_results)), cap)
        token = params.get("nextPageToken")
        offset = _token_offset(str(token), jql) if token else 0
        endless = self.state.faults.endless_pages
        with self.site.lock:
            found = self._run(jql, account).issues
            page = found[offset : offset + size]
            if endless and not page:
                page = found[-size:]
            ctx = self._ctx(request, api, account)
            if ids_only and endless == "fresh" and offset >= len(found):
                first = max((i.id for i in self.site.issues.values()), default=0) + 1 + offset - len(found)
                parts = [_json({"id": str(n)}) for n in range(first, first + size)]
            elif ids_only:
                parts = [_json({"id": str(issue.id)}) for issue in page]
            else:
                parts = [self._rendered_issue(issue, selection, ctx) for issue in page]
        is_last = not endless and offset + size >= len(found)
        body = b'{"issues":[' + b",".join(parts) + b"]"
        if not is_last:
            body += b',"nextPageToken":' + _json(_page_token(offset + size, jql))
        body += (
            b',"isLast":' + (b"true" if is_last else b"false") + self._extras(params.get("expand"), selection)
        )
        return _respond(body + b"}")

    async def count(self, request: Request, api: str) -> Response:
        body = await self._body(request)
        result = self._run(str(body.get("jql") or ""), self.state.account(request))
        return _respond(_json({"count": self.state.faults.approximate_count or len(result.issues)}))

    async def removed(self, request: Request, api: str) -> Response:
        return jira_error(410, REMOVED)

    async def search_dc(self, request: Request, api: str) -> Response:
        if self.state.faults.endless_pages != "repeat":
            self._stale = None
        elif self._stale is not None:
            return _respond(self._stale)
        response = await self._search_dc(request, api)
        if self.state.faults.endless_pages == "repeat" and response.status_code == 200:
            self._stale = bytes(response.body)
        return response

    async def _search_dc(self, request: Request, api: str) -> Response:
        params = await self._params(request)
        account = self.state.account(request)
        validate = str(params.get("validateQuery", "strict")).lower()
        strict = validate in ("strict", "true")
        settings = self.site.settings
        start = max(0, _int_param(params, "startAt", 0))
        requested = _int_param(params, "maxResults", settings.default_max_results)
        size = settings.default_max_results if requested < 0 else min(requested, settings.max_results)
        selection = self._selection(params.get("fields"), "*navigable")
        if size > 0 and start + size > settings.max_result_window:
            return _server_error(WINDOW_EXCEEDED.format(start + size, settings.max_result_window))
        with self.site.lock:
            result = self._run(str(params.get("jql") or ""), account, strict=strict)
            ctx = self._ctx(request, api, account)
            parts = [
                self._rendered_issue(issue, selection, ctx) for issue in result.issues[start : start + size]
            ]
        total = self.state.faults.approximate_count or len(result.issues)
        head = {"expand": "schema,names", "startAt": start, "maxResults": size, "total": total}
        body = _json(head)[:-1] + b',"issues":[' + b",".join(parts) + b"]"
        if result.warnings and validate == "warn":
            body += b',"warningMessages":' + _json(result.warnings)
        return _respond(body + self._extras(params.get("expand"), selection) + b"}")

    async def epic_issues(self, request: Request, api: str) -> Response:
        params = dict(request.query_params)
        account = self.state.account(request)
        settings = self.site.settings
        start = max(0, _int_param(params, "startAt", 0))
        size = min(
            max(0, _int_param(params, "maxResults", settings.default_max_results)), settings.max_results
        )
        selection = self._selection(params.get("fields"), "*navigable")
        with self.site.lock:
            epic = self._visible_issue(request.path_params["key"], account)
            if epic.type != "Epic":
                raise _BadRequest(f"Issue {epic.key} is not an epic.")
            children = self.site.epic_children if not self.cloud else self.site.children
            kids = [self.site.issues[k] for k in children.get(epic.key, ())]
            kids = sorted((i for i in kids if not self.site.issue_type(i).subtask), key=lambda i: i.number)
            if params.get("jql"):
                allowed = {i.key for i in self._run(params["jql"], account).issues}
                kids = [i for i in kids if i.key in allowed]
            ctx = self._ctx(request, api, account, agile=True)
            parts = [self._rendered_issue(issue, selection, ctx) for issue in kids[start : start + size]]
        head = {"expand": "schema,names", "startAt": start, "maxResults": size, "total": len(kids)}
        return _respond(_json(head)[:-1] + b',"issues":[' + b",".join(parts) + b"]}")

    # ---------------------------------------------------------------------------------- issues

    async def bulk_fetch(self, request: Request, api: str) -> Response:
        """``POST issue/bulkfetch``: issues by id or key, in ascending id order; unknown or invisible ones
        are left out (not errors)."""
        body = await self._body(request)
        wanted = body.get("issueIdsOrKeys")
        if not isinstance(wanted, list) or not wanted:
            raise _BadRequest("issueIdsOrKeys: at least one issue ID or key is required.")
        tokens = _list_param(body.get("fields")) or ["*navigable"]
        selection = self._selection(tokens, "*navigable")
        efficient = self._efficient(tokens, body.get("expand"))
        limit = self.site.settings.bulk_fetch_max_efficient if efficient else BULK_FETCH_MAX
        if len(wanted) > limit:
            raise _BadRequest(
                f"You can request at most {limit} issues at a time; this request has {len(wanted)}. Up to "
                f"{self.site.settings.bulk_fetch_max_efficient} are allowed when fields names at most "
                f"{BULK_FETCH_MAX_FIELDS} single-valued fields and expand asks for no changelog, editmeta, operations, "
                "renderedFields, transitions or versionedRepresentations."
            )
        account = self.state.account(request)
        with self.site.lock:
            visible = self.site.browsable(account)
            found: dict[int, Issue] = {}
            for ident in wanted:
                issue = self.site.find_issue(str(ident))
                if issue is not None and issue.project in visible:
                    found[issue.id] = issue
            ctx = self._ctx(request, api, account)
            parts = [self._rendered_issue(found[i], selection, ctx) for i in sorted(found)]
        return _respond(b'{"issues":[' + b",".join(parts) + b'],"issueErrors":[]}')

    def _efficient(self, tokens: list[str], expand: Any) -> bool:
        """Whether a bulk fetch may ask for up to ``settings.bulk_fetch_max_efficient`` issues."""
        named = [t for t in tokens if not t.startswith("-")]
        if not named or len(named) > BULK_FETCH_MAX_FIELDS or {"*all", "*navigable"} & set(named):
            return False
        if _HEAVY_EXPAND & set(_list_param(expand)):
            return False
        for name in named:
            fdef = self.site.field_by_id.get(name)
            if name in _MULTI_VALUED or (fdef and (fdef.schema or {}).get("type") == "array"):
                return False
        return True

    async def issue(self, request: Request, api: str) -> Response:
        account = self.state.account(request)
        key = request.path_params["key"]
        if request.method == "GET":
            params = dict(request.query_params)
            if len(request.query_params.getlist("fields")) > 1:
                params["fields"] = ",".join(request.query_params.getlist("fields"))
            selection = self._selection(params.get("fields"), "*all")
            with self.site.lock:
                issue = self._visible_issue(key, account)
                rendered = self._rendered_issue(issue, selection, self._ctx(request, api, account))
            return _respond(rendered[:-1] + self._extras(params.get("expand"), selection) + b"}")
        if request.method == "PUT":
            body = await self._body(request)
            with self.site.lock:
                issue = self._visible_issue(key, account)
                if not self.site.has_permission(account, issue.project, "EDIT_ISSUES"):
                    raise _BadRequest(
                        "You do not have permission to edit issues in this project.", status=403
                    )
                self._edit(issue, body, api)
            return Response(status_code=204)
        with self.site.lock:
            issue = self._visible_issue(key, account)
            if not self.site.has_permission(account, issue.project, "DELETE_ISSUES"):
                raise _BadRequest("You do not have permission to delete issues in this project.", status=403)
            if (
                self.site.subtasks_of(issue.key)
                and request.query_params.get("deleteSubtasks", "").lower() != "true"
            ):
                raise _BadRequest(
                    f"The issue '{issue.key}' has subtasks. You must specify the 'deleteSubtasks' parameter "
                    "to delete this issue."
                )
            self.site.delete_issue(issue.key)
        return Response(status_code=204)

    def _edit(self, issue: Issue, body: dict[str, Any], api: str) -> None:
        """Apply a PUT body (``fields`` and ``update`` operations) or raise 400 with Jira's errors."""
        fields = dict(body.get("fields") or {})
        errors: dict[str, str] = {}
        for name, operations in (body.get("update") or {}).items():
            for operation in operations if isinstance(operations, list) else [operations]:
                if not isinstance(operation, dict) or len(operation) != 1:
                    errors[name] = f"Field '{name}': each operation needs exactly one of set, add, remove."
                    continue
                ((verb, value),) = operation.items()
                if verb == "set":
                    fields[name] = value
                elif name == "labels" and verb in ("add", "remove"):
                    labels = list(fields.get("labels", issue.labels))
                    fields["labels"] = (
                        [*labels, value] if verb == "add" else [x for x in labels if x != value]
                    )
                else:
                    errors[name] = f"Field '{name}' does not support the operation '{verb}'."
        move = self.cloud and "parent" in fields
        parent = fields.pop("parent") if move else None
        new_parent = self._issue_ref(parent, "parent", errors) if parent is not None else None
        changes = self._field_changes(fields, api, errors)
        if errors:
            raise _BadRequest(errors=errors)
        try:
            if move:
                self.site.move_issue(issue.key, new_parent)
            if changes:
                self.site.update_issue(issue.key, **changes)
        except ValueError as error:
            raise _BadRequest(str(error)) from None

    def _issue_ref(self, value: Any, name: str, errors: dict[str, str]) -> str | None:
        ident = (
            str(value.get("key") or value.get("id") or "") if isinstance(value, dict) else str(value or "")
        )
        found = self.site.find_issue(ident) if ident else None
        if found is None:
            errors[name] = f"Could not find issue by id or key '{ident}'."
            return None
        return found.key

    def _field_changes(self, fields: dict[str, Any], api: str, errors: dict[str, str]) -> dict[str, Any]:
        """Wire ``fields`` -> :meth:`JiraSite.update_issue` arguments; problems go to ``errors``."""
        changes: dict[str, Any] = {}
        for name, value in fields.items():
            fdef = self.site.field_by_id.get(name)
            if fdef is None or not (fdef.custom or name in _EDITABLE_SYSTEM):
                errors[name] = CANNOT_SET.format(name)
                continue
            try:
                changes[name] = self._field_change(fdef, value, api)
            except ValueError as error:
                errors[name] = str(error)
        return changes

    def _field_change(self, fdef: FieldDef, value: Any, api: str) -> Any:
        site, name = self.site, fdef.id
        if name == "summary":
            return check_summary(value)
        if name == "description":
            if (
                api == "3"
                and value is not None
                and not (isinstance(value, dict) and value.get("type") == "doc")
            ):
                raise ValueError(NOT_ADF)
            return adf_text(value) if isinstance(value, dict) else value
        if name == "labels":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("Operation value must be an array of strings.")
            spaced = next((v for v in value if " " in v), None)
            if spaced is not None:
                raise ValueError(f"The label '{spaced}' contains spaces which is invalid.")
            return value
        if name == "priority":
            ident = value.get("name") or value.get("id") if isinstance(value, dict) else None
            if value is not None and (ident is None or site.find_priority(str(ident)) is None):
                raise ValueError("The priority selected is invalid.")
            return ident
        if name == "assignee":
            return self._assignee(value)
        return self._custom_change(fdef, value, api)

    def _assignee(self, value: Any) -> str | None:
        ident = (
            (value.get("accountId") if self.cloud else value.get("name")) if isinstance(value, dict) else None
        )
        if ident is None:
            return None
        user = self.site.find_user(str(ident))
        if user is None or (self.cloud and user.account_id != ident):
            raise ValueError(
                "Specified user does not exist or you do not have required permissions"
                if self.cloud
                else f"User '{ident}' does not exist."
            )
        return user.name

    def _custom_change(self, fdef: FieldDef, value: Any, api: str) -> Any:
        if value is None:
            return None
        kind = fdef.kind
        if kind == "textarea":
            if api == "3" and not (isinstance(value, dict) and value.get("type") == "doc"):
                raise ValueError(NOT_ADF)
            return adf_text(value) if isinstance(value, dict) else str(value)
        if kind == "sprint":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("Number value expected as the Sprint id.")
            return self._neutral(fdef, value)
        if kind == "multioption":
            if not isinstance(value, list):
                raise ValueError("Operation value must be an array of options.")
            return self._neutral(fdef, [_option_value(v, PLATFORM_OPTIONS) for v in value])
        if kind == "cascading":
            parent = _option_value(value, {k: v[0] for k, v in REGION_OPTIONS.items()})
            child = value.get("child") if isinstance(value, dict) else None
            children = REGION_OPTIONS.get(str(parent), ("", {}))[1]
            return self._neutral(fdef, [parent, _option_value(child, children) if child else None])
        if kind in ("user", "users"):
            refs = value if isinstance(value, list) else [value]
            names = [self._user_ref(ref) for ref in refs]
            return self._neutral(fdef, names if kind == "users" else names[0])
        if kind == "group":
            return self._neutral(fdef, value.get("name") if isinstance(value, dict) else value)
        if fdef.kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError("Operation value must be a number")
            return value
        if fdef.kind == "option":
            option = value.get("value") if isinstance(value, dict) else None
            by_id = {v: k for k, v in TEAM_OPTIONS.items()}
            option = option or (by_id.get(str(value.get("id"))) if isinstance(value, dict) else None)
            if option not in TEAM_OPTIONS:
                raise ValueError(f"Option value '{value}' is not valid")
            return option
        if fdef.kind == "epiclink":
            epic = self.site.find_issue(str(value))
            if epic is None or epic.type != "Epic":
                raise ValueError(f"Issue '{value}' is not an epic.")
            return epic.key
        if fdef.kind == "date" and not (isinstance(value, str) and DATE_RE.match(value)):
            raise ValueError(f"Error parsing date string: {value}")
        return str(value)

    def _neutral(self, fdef: FieldDef, value: Any) -> Any:
        return self.site.custom_value(fdef, value)

    def _user_ref(self, ref: Any) -> str:
        """A user picker value (``{"accountId": …}`` on Cloud, ``{"name": …}`` on Data Center) as a username."""
        ident = (ref.get("accountId") if self.cloud else ref.get("name")) if isinstance(ref, dict) else None
        user = self.site.find_user(str(ident)) if ident else None
        if user is None or (self.cloud and user.account_id != ident):
            raise ValueError(f"User '{ident}' does not exist.")
        return user.name

    async def create_issue(self, request: Request, api: str) -> Response:
        account = self.state.account(request)
        fields = dict((await self._body(request)).get("fields") or {})
        errors: dict[str, str] = {}
        site = self.site
        with site.lock:
            project_ref = fields.pop("project", None) or {}
            project = site.find_project(str(project_ref.get("key") or project_ref.get("id") or ""))
            if project is None or project.key not in site.browsable(account):
                errors["project"] = "valid project is required"
            elif not site.has_permission(account, project.key, "CREATE_ISSUES"):
                raise _BadRequest("You do not have permission to create issues in this project.", status=403)
            type_ref = fields.pop("issuetype", None) or {}
            itype = site.find_issue_type(str(type_ref.get("name") or type_ref.get("id") or ""))
            if itype is None:
                errors["issuetype"] = "valid issue type is required"
            parent_ref = fields.pop("parent", None)
            parent = self._issue_ref(parent_ref, "parent", errors) if parent_ref is not None else None
            if itype is not None and itype.subtask and parent_ref is None:
                errors["issuetype"] = "Issue type is a sub-task but parent issue key or id not specified."
            if "summary" not in fields:
                errors["summary"] = "You must specify a summary of the issue."
            changes = self._field_changes(fields, api, errors)
            if errors or project is None or itype is None:
                raise _BadRequest(errors=errors)
            summary, epic = changes.pop("summary"), changes.pop(EPIC_LINK_FIELD, None)
            changes["reporter"] = site.user_for(account).name
            try:
                key = site.create_issue(project.key, itype.name, summary, parent=parent, epic=epic, **changes)
            except ValueError as error:
                raise _BadRequest(str(error)) from None
            created = site.issues[key]
        base = str(request.base_url).rstrip("/")
        return _respond(
            _json({"id": str(created.id), "key": key, "self": f"{base}/rest/api/{api}/issue/{created.id}"}),
            201,
        )

    # ---------------------------------------------------------------------------- the rest

    async def my_permissions(self, request: Request, api: str) -> Response:
        account = self.state.account(request)
        params = request.query_params
        wanted = _list_param(params.get("permissions"))
        if not wanted:
            if self.cloud:
                raise _BadRequest("The 'permissions' query parameter is required.")
            wanted = list(PERMISSIONS)
        unknown = [key for key in wanted if key not in PERMISSIONS]
        if unknown:
            raise _BadRequest(*(f"Unrecognized permission key: '{key}'." for key in unknown))
        project = self._permission_context(params, account)
        out = {}
        for key in wanted:
            pid, name, description = PERMISSIONS[key]
            have = self.site.has_permission(account, project, key) if project else key in account.permissions
            out[key] = {
                "id": pid,
                "key": key,
                "name": name,
                "type": "PROJECT",
                "description": description,
                "havePermission": have,
            }
        return _respond(_json({"permissions": out}))

    def _permission_context(self, params: Any, account: Account) -> str | None:
        """The project a mypermissions request asks about, or ``None`` for the global context."""
        site = self.site
        with site.lock:
            for name in ("issueKey", "issueId"):
                if params.get(name):
                    return self._visible_issue(params[name], account).project
            for name, label in (("projectKey", "key"), ("projectId", "id")):
                if params.get(name):
                    project = site.find_project(params[name])
                    if project is None or project.key not in site.browsable(account):
                        raise _BadRequest(
                            f"No project could be found with {label} '{params[name]}'.", status=404
                        )
                    return project.key
        return None

    async def myself(self, request: Request, api: str) -> Response:
        account = self.state.account(request)
        user = self.site.user_for(account)
        ctx = self._ctx(request, api, account)
        body = self._user_json(user.name, ctx)
        body.update(
            {"locale": "en_US", "groups": {"size": 1, "items": []}, "expand": "groups,applicationRoles"}
        )
        return _respond(_json(body))

    async def list_fields(self, request: Request, api: str) -> Response:
        out = []
        for fdef in self.site.fields:
            entry: dict[str, Any] = {
                "id": fdef.id,
                "key": fdef.id,
                "name": fdef.name,
                "custom": fdef.custom,
                "orderable": fdef.orderable,
                "navigable": fdef.navigable,
                "searchable": fdef.searchable,
                "clauseNames": list(fdef.clause_names),
            }
            if fdef.custom and self.cloud:
                entry["untranslatedName"] = fdef.name
            if fdef.schema is not None:
                entry["schema"] = fdef.schema
            out.append(entry)
        return _respond(_json(out))


def _server_error(message: str) -> Response:
    """Jira Data Center's answer to an unhandled server-side failure (status 500)."""
    referral = uuid.uuid4()
    body = {
        "message": message,
        "status-code": 500,
        "stack-trace": f"Please contact your admin passing attached Log's referral number: {referral}",
    }
    return _respond(_json(body), 500)


def _option_value(ref: Any, options: dict[str, str]) -> str:
    """An option as a write sends it (``{"value": …}`` or ``{"id": …}``) as its value."""
    if isinstance(ref, dict):
        if ref.get("value") in options:
            return str(ref["value"])
        by_id = {v: k for k, v in options.items()}
        if str(ref.get("id")) in by_id:
            return by_id[str(ref.get("id"))]
    raise ValueError(f"Option value '{ref}' is not valid")


def _duration(seconds: int) -> str:
    """Seconds as Jira writes estimates: ``1w 2d 3h 30m`` (8-hour days, 5-day weeks)."""
    parts, rest = [], seconds
    for size, unit in ((5 * 8 * 3600, "w"), (8 * 3600, "d"), (3600, "h"), (60, "m")):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0m"


def _sprint_json(sprint: Sprint) -> dict[str, Any]:
    """A sprint as Cloud's sprint field holds it."""
    out: dict[str, Any] = {"id": sprint.id, "name": sprint.name, "state": sprint.state, "boardId": sprint.board}
    out["goal"] = sprint.goal
    if sprint.start:
        out["startDate"], out["endDate"] = sprint.start, sprint.end
    if sprint.state == "closed":
        out["completeDate"] = sprint.end
    return out


def _greenhopper_sprint(sprint: Sprint) -> str:
    """A sprint as Data Center's REST API writes it: the ``toString()`` of its Java object."""
    digest = hashlib.sha1(sprint.name.encode()).hexdigest()[:8]
    complete = sprint.end if sprint.state == "closed" else "<null>"
    return (
        f"com.atlassian.greenhopper.service.sprint.Sprint@{digest}[id={sprint.id},rapidViewId={sprint.board},"
        f"state={sprint.state.upper()},name={sprint.name},startDate={sprint.start or '<null>'},"
        f"endDate={sprint.end or '<null>'},completeDate={complete},activatedDate={sprint.start or '<null>'},"
        f"sequence={sprint.id},goal={sprint.goal},autoStartStop=false,synced=false]"
    )


def _versions_json(names: list[str] | None, api: str, version: str) -> list[dict[str, Any]]:
    out = []
    for vid, name, released, release_date in VERSIONS:
        if name in (names or []):
            entry: dict[str, Any] = {
                "self": f"{api}/version/{vid}",
                "id": vid,
                "description": "",
                "name": name,
                "archived": False,
                "released": released,
            }
            if release_date:
                entry["releaseDate"] = release_date
            out.append(entry)
    return out


def _named_json(table: dict[str, tuple[str, str]], resource: str) -> Callable[[Any, str, str], Any]:
    def render(name: Any, api: str, version: str) -> Any:
        if name is None:
            return None
        ident, description = table[name]
        return {"self": f"{api}/{resource}/{ident}", "id": ident, "description": description, "name": name}

    return render


_DETAIL_RENDERERS: dict[str, Callable[[Any, str, str], Any]] = {
    "fixVersions": _versions_json,
    "versions": _versions_json,
    "components": lambda names, api, v: [
        {"self": f"{api}/component/{COMPONENTS[n]}", "id": COMPONENTS[n], "name": n} for n in names or []
    ],
    "duedate": lambda value, api, v: value,
    "resolution": _named_json(RESOLUTIONS, "resolution"),
    "security": _named_json(SECURITY_LEVELS, "securitylevel"),
    "environment": lambda text, api, v: adf_document(text) if v == "3" else text,
}
_TIME_FIELDS = frozenset(
    {"timetracking", "timeoriginalestimate", "timeestimate", "timespent", "aggregatetimespent", "progress"}
    | {"workratio"}
)
_OTHER_SYSTEM_FIELDS = frozenset(
    {*_DETAIL_RENDERERS, *_TIME_FIELDS, "creator", "statusCategory", "resolutiondate", "votes", "watches"}
    | {"comment", "worklog", "attachment"}
)


def _page_token(offset: int, jql: str) -> str:
    digest = hashlib.sha256(jql.encode()).hexdigest()[:16]
    return base64.urlsafe_b64encode(f"o={offset};q={digest}".encode()).decode().rstrip("=")


def _token_offset(token: str, jql: str) -> int:
    """The offset a page token stands for; 400 if it is malformed or was issued for another query."""
    try:
        decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        offset_part, digest_part = decoded.split(";")
        offset = int(offset_part.removeprefix("o="))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _BadRequest("Invalid format of nextPageToken") from None
    if digest_part != f"q={hashlib.sha256(jql.encode()).hexdigest()[:16]}":
        raise _BadRequest("The nextPageToken does not match the JQL query it was issued for.")
    return offset


def jira_routes(site: JiraSite, state: SandboxState) -> list[Route]:
    """The Jira routes for ``site``, in the shape of ``state.mode`` (which must be the site's mode)."""
    if site.mode != state.mode:
        raise ValueError(f"a {site.mode} JiraSite cannot serve a {state.mode} sandbox")
    return [*_JiraApi(site, state).routes(), *permission_routes(site, state)]
