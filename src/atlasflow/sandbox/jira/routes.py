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

Page sizes are capped by :class:`~atlasflow.sandbox.jira.model.JiraSettings` (default 50, cap 100; Cloud id-only
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
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from atlasflow.sandbox.core import Account, SandboxState, jira_error
from atlasflow.sandbox.jira.catalog import (
    EPIC_LINK_FIELD,
    ISSUE_FIELD_IDS,
)
from atlasflow.sandbox.jira.edits import IssueEditor
from atlasflow.sandbox.jira.http import BadRequest, int_param, list_param, respond, server_error, to_json
from atlasflow.sandbox.jira.jql import JqlError, SearchResult, parse, search
from atlasflow.sandbox.jira.model import Issue
from atlasflow.sandbox.jira.permissions import permission_routes
from atlasflow.sandbox.jira.render import Ctx, IssueRenderer
from atlasflow.sandbox.jira.site import JiraSite

NOT_FOUND = "Issue does not exist or you do not have permission to see it."
REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
UNBOUNDED = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
PERMISSIONS: dict[str, tuple[str, str, str]] = {
    "BROWSE_PROJECTS": ("10", "Browse Projects", "Ability to browse projects and the issues within them."),
    "CREATE_ISSUES": ("11", "Create Issues", "Ability to create issues."),
    "EDIT_ISSUES": ("12", "Edit Issues", "Ability to edit issues."),
    "ASSIGN_ISSUES": ("13", "Assign Issues", "Ability to assign issues to other people."),
    "ADD_COMMENTS": ("15", "Add Comments", "Ability to comment on issues."),
    "DELETE_ISSUES": ("16", "Delete Issues", "Ability to delete issues."),
    "TRANSITION_ISSUES": ("46", "Transition Issues", "Ability to transition issues."),
}
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


class _JiraApi:
    def __init__(self, site: JiraSite, state: SandboxState) -> None:
        self.site = site
        self.state = state
        self.cloud = state.mode == "cloud"
        self.field_ids = (*ISSUE_FIELD_IDS, *(f.id for f in site.fields if f.custom))
        self.render = IssueRenderer(site)
        self.edits = IssueEditor(site)
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
            except BadRequest as error:
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
            raise BadRequest("Unexpected character in the request body: it is not valid JSON.") from None
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object.")
        return body

    def _ctx(self, request: Request, api: str, account: Account, agile: bool = False) -> Ctx:
        return Ctx(str(request.base_url).rstrip("/"), api, self.site.browsable(account), agile)

    def _selection(self, raw: Any, default: str) -> tuple[str, ...]:
        tokens = list_param(raw) or [default]
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
            raise BadRequest(NOT_FOUND, status=404)
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
                raise BadRequest(UNBOUNDED)
            result = search(site, query, account, strict=strict)
            self._searches[cache_key] = (site.generation, result)
            if len(self._searches) > _SEARCH_CACHE_SIZE:
                self._searches.popitem(last=False)
            return result

    # ---------------------------------------------------------------------------------- search

    async def search_jql(self, request: Request, api: str) -> Response:
        params = await self._params(request)
        account = self.state.account(request)
        jql = str(params.get("jql") or "")
        ids_only = not list_param(params.get("fields"))
        selection = () if ids_only else self._selection(params.get("fields"), "*all")
        settings = self.site.settings
        cap = settings.max_results_ids_only if not selection else settings.max_results
        size = min(max(1, int_param(params, "maxResults", settings.default_max_results)), cap)
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
                parts = [to_json({"id": str(n)}) for n in range(first, first + size)]
            elif ids_only:
                parts = [to_json({"id": str(issue.id)}) for issue in page]
            else:
                parts = [self.render.issue_bytes(issue, selection, ctx) for issue in page]
        is_last = not endless and offset + size >= len(found)
        body = b'{"issues":[' + b",".join(parts) + b"]"
        if not is_last:
            body += b',"nextPageToken":' + to_json(_page_token(offset + size, jql))
        body += (
            b',"isLast":' + (b"true" if is_last else b"false") + self.render.extras(params.get("expand"), selection)
        )
        return respond(body + b"}")

    async def count(self, request: Request, api: str) -> Response:
        body = await self._body(request)
        result = self._run(str(body.get("jql") or ""), self.state.account(request))
        return respond(to_json({"count": self.state.faults.approximate_count or len(result.issues)}))

    async def removed(self, request: Request, api: str) -> Response:
        return jira_error(410, REMOVED)

    async def search_dc(self, request: Request, api: str) -> Response:
        if self.state.faults.endless_pages != "repeat":
            self._stale = None
        elif self._stale is not None:
            return respond(self._stale)
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
        start = max(0, int_param(params, "startAt", 0))
        requested = int_param(params, "maxResults", settings.default_max_results)
        size = settings.default_max_results if requested < 0 else min(requested, settings.max_results)
        selection = self._selection(params.get("fields"), "*navigable")
        if size > 0 and start + size > settings.max_result_window:
            return server_error(WINDOW_EXCEEDED.format(start + size, settings.max_result_window))
        with self.site.lock:
            result = self._run(str(params.get("jql") or ""), account, strict=strict)
            ctx = self._ctx(request, api, account)
            parts = [
                self.render.issue_bytes(issue, selection, ctx) for issue in result.issues[start : start + size]
            ]
        total = self.state.faults.approximate_count or len(result.issues)
        head = {"expand": "schema,names", "startAt": start, "maxResults": size, "total": total}
        body = to_json(head)[:-1] + b',"issues":[' + b",".join(parts) + b"]"
        if result.warnings and validate == "warn":
            body += b',"warningMessages":' + to_json(result.warnings)
        return respond(body + self.render.extras(params.get("expand"), selection) + b"}")

    async def epic_issues(self, request: Request, api: str) -> Response:
        params = dict(request.query_params)
        account = self.state.account(request)
        settings = self.site.settings
        start = max(0, int_param(params, "startAt", 0))
        size = min(
            max(0, int_param(params, "maxResults", settings.default_max_results)), settings.max_results
        )
        selection = self._selection(params.get("fields"), "*navigable")
        with self.site.lock:
            epic = self._visible_issue(request.path_params["key"], account)
            if epic.type != "Epic":
                raise BadRequest(f"Issue {epic.key} is not an epic.")
            children = self.site.epic_children if not self.cloud else self.site.children
            kids = [self.site.issues[k] for k in children.get(epic.key, ())]
            kids = sorted((i for i in kids if not self.site.issue_type(i).subtask), key=lambda i: i.number)
            if params.get("jql"):
                allowed = {i.key for i in self._run(params["jql"], account).issues}
                kids = [i for i in kids if i.key in allowed]
            ctx = self._ctx(request, api, account, agile=True)
            parts = [self.render.issue_bytes(issue, selection, ctx) for issue in kids[start : start + size]]
        head = {"expand": "schema,names", "startAt": start, "maxResults": size, "total": len(kids)}
        return respond(to_json(head)[:-1] + b',"issues":[' + b",".join(parts) + b"]}")

    # ---------------------------------------------------------------------------------- issues

    async def bulk_fetch(self, request: Request, api: str) -> Response:
        """``POST issue/bulkfetch``: issues by id or key, in ascending id order; unknown or invisible ones
        are left out (not errors)."""
        body = await self._body(request)
        wanted = body.get("issueIdsOrKeys")
        if not isinstance(wanted, list) or not wanted:
            raise BadRequest("issueIdsOrKeys: at least one issue ID or key is required.")
        tokens = list_param(body.get("fields")) or ["*navigable"]
        selection = self._selection(tokens, "*navigable")
        efficient = self._efficient(tokens, body.get("expand"))
        limit = self.site.settings.bulk_fetch_max_efficient if efficient else BULK_FETCH_MAX
        if len(wanted) > limit:
            raise BadRequest(
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
            parts = [self.render.issue_bytes(found[i], selection, ctx) for i in sorted(found)]
        return respond(b'{"issues":[' + b",".join(parts) + b'],"issueErrors":[]}')

    def _efficient(self, tokens: list[str], expand: Any) -> bool:
        """Whether a bulk fetch may ask for up to ``settings.bulk_fetch_max_efficient`` issues."""
        named = [t for t in tokens if not t.startswith("-")]
        if not named or len(named) > BULK_FETCH_MAX_FIELDS or {"*all", "*navigable"} & set(named):
            return False
        if _HEAVY_EXPAND & set(list_param(expand)):
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
                rendered = self.render.issue_bytes(issue, selection, self._ctx(request, api, account))
            return respond(rendered[:-1] + self.render.extras(params.get("expand"), selection) + b"}")
        if request.method == "PUT":
            body = await self._body(request)
            with self.site.lock:
                issue = self._visible_issue(key, account)
                if not self.site.has_permission(account, issue.project, "EDIT_ISSUES"):
                    raise BadRequest(
                        "You do not have permission to edit issues in this project.", status=403
                    )
                self.edits.apply(issue, body, api)
            return Response(status_code=204)
        with self.site.lock:
            issue = self._visible_issue(key, account)
            if not self.site.has_permission(account, issue.project, "DELETE_ISSUES"):
                raise BadRequest("You do not have permission to delete issues in this project.", status=403)
            if (
                self.site.subtasks_of(issue.key)
                and request.query_params.get("deleteSubtasks", "").lower() != "true"
            ):
                raise BadRequest(
                    f"The issue '{issue.key}' has subtasks. You must specify the 'deleteSubtasks' parameter "
                    "to delete this issue."
                )
            self.site.delete_issue(issue.key)
        return Response(status_code=204)

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
                raise BadRequest("You do not have permission to create issues in this project.", status=403)
            type_ref = fields.pop("issuetype", None) or {}
            itype = site.find_issue_type(str(type_ref.get("name") or type_ref.get("id") or ""))
            if itype is None:
                errors["issuetype"] = "valid issue type is required"
            parent_ref = fields.pop("parent", None)
            parent = self.edits.issue_ref(parent_ref, "parent", errors) if parent_ref is not None else None
            if itype is not None and itype.subtask and parent_ref is None:
                errors["issuetype"] = "Issue type is a sub-task but parent issue key or id not specified."
            if "summary" not in fields:
                errors["summary"] = "You must specify a summary of the issue."
            changes = self.edits.field_changes(fields, api, errors)
            if errors or project is None or itype is None:
                raise BadRequest(errors=errors)
            summary, epic = changes.pop("summary"), changes.pop(EPIC_LINK_FIELD, None)
            changes["reporter"] = site.user_for(account).name
            try:
                key = site.create_issue(project.key, itype.name, summary, parent=parent, epic=epic, **changes)
            except ValueError as error:
                raise BadRequest(str(error)) from None
            created = site.issues[key]
        base = str(request.base_url).rstrip("/")
        return respond(
            to_json({"id": str(created.id), "key": key, "self": f"{base}/rest/api/{api}/issue/{created.id}"}),
            201,
        )

    # ---------------------------------------------------------------------------- the rest

    async def my_permissions(self, request: Request, api: str) -> Response:
        account = self.state.account(request)
        params = request.query_params
        wanted = list_param(params.get("permissions"))
        if not wanted:
            if self.cloud:
                raise BadRequest("The 'permissions' query parameter is required.")
            wanted = list(PERMISSIONS)
        unknown = [key for key in wanted if key not in PERMISSIONS]
        if unknown:
            raise BadRequest(*(f"Unrecognized permission key: '{key}'." for key in unknown))
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
        return respond(to_json({"permissions": out}))

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
                        raise BadRequest(
                            f"No project could be found with {label} '{params[name]}'.", status=404
                        )
                    return project.key
        return None

    async def myself(self, request: Request, api: str) -> Response:
        account = self.state.account(request)
        user = self.site.user_for(account)
        ctx = self._ctx(request, api, account)
        body = self.render.user_json(user.name, ctx)
        body.update(
            {"locale": "en_US", "groups": {"size": 1, "items": []}, "expand": "groups,applicationRoles"}
        )
        return respond(to_json(body))

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
        return respond(to_json(out))


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
        raise BadRequest("Invalid format of nextPageToken") from None
    if digest_part != f"q={hashlib.sha256(jql.encode()).hexdigest()[:16]}":
        raise BadRequest("The nextPageToken does not match the JQL query it was issued for.")
    return offset


def jira_routes(site: JiraSite, state: SandboxState) -> list[Route]:
    """The Jira routes for ``site``, in the shape of ``state.mode`` (which must be the site's mode)."""
    if site.mode != state.mode:
        raise ValueError(f"a {site.mode} JiraSite cannot serve a {state.mode} sandbox")
    return [*_JiraApi(site, state).routes(), *permission_routes(site, state)]
