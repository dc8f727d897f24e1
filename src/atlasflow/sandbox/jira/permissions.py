"""Jira's check of another user's permissions: ``GET user/permission/search``.

Cloud, under ``/rest/api/2`` and ``/rest/api/3``: ``accountId`` (matched exactly) or ``query`` (a prefix of
the display name or e-mail address). Data Center, under ``/rest/api/2`` and ``/rest/api/latest``:
``username`` (a prefix of the username, display name or e-mail address, as Data Center's user search
matches it; callers compare the ``name`` of what comes back). Both: ``permissions`` (required, comma-separated
keys), ``projectKey`` or ``issueKey``, ``startAt``/``maxResults`` (default 50, at most 1000). The answer is a
list of the users who hold every permission there; a user without them is simply not listed.

The caller needs the global permission *Administer Jira* (``ADMINISTER`` in the sandbox account's
permissions), else 403; as Atlassian documents, Cloud also lets a project's administrators ask about that
project (not modelled: no sandbox account administers a project). An unknown project, or one the caller
cannot browse, is 404.

A user's own permissions: those of the sandbox account with that username, else ``BROWSE_PROJECTS`` for an
active user (the default grant to every Jira user), nothing for an inactive one; a project with ``browsers``
lets only those browse it, as for accounts (:meth:`JiraSite.browsable`).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from atlasflow.sandbox.core import ALL_PERMISSIONS, Account, SandboxState, jira_error
from atlasflow.sandbox.jira.model import User
from atlasflow.sandbox.jira.site import JiraSite

#: The global permission a caller needs to ask about other users.
ADMINISTER = "ADMINISTER"
MAX_RESULTS = 1000
NOT_ALLOWED = "You do not have the permission to see the permissions of other users."


def permission_routes(site: JiraSite, state: SandboxState) -> list[Route]:
    """``user/permission/search`` under every REST version of ``state.mode``."""
    cloud = state.mode == "cloud"

    async def search(request: Request) -> Response:
        caller = state.account(request)
        params = request.query_params
        wanted = [p.strip() for p in params.get("permissions", "").split(",") if p.strip()]
        if not wanted:
            return jira_error(400, "The 'permissions' query parameter is required.")
        unknown = [p for p in wanted if p not in ALL_PERMISSIONS]
        if unknown:
            return jira_error(400, *(f"Unrecognized permission key: '{p}'." for p in unknown))
        if ADMINISTER not in caller.permissions:
            return jira_error(403, NOT_ALLOWED)
        project = _project(site, caller, params.get("projectKey"), params.get("issueKey"))
        if isinstance(project, Response):
            return project
        candidates = _candidates(site, params, cloud)
        if isinstance(candidates, Response):
            return candidates
        start = max(int(params.get("startAt", 0) or 0), 0)
        size = min(max(int(params.get("maxResults", 50) or 50), 1), MAX_RESULTS)
        holders = [u for u in candidates if all(_holds(site, state, u, project, p) for p in wanted)]
        base = str(request.base_url).rstrip("/")
        return JSONResponse([_user_json(u, base, cloud) for u in holders[start : start + size]])

    versions = ("2", "3") if cloud else ("2", "latest")
    return [Route(f"/rest/api/{v}/user/permission/search", search, methods=["GET"]) for v in versions]


def _project(site: JiraSite, caller: Account, key: str | None, issue_key: str | None) -> str | Response:
    """The project the question is about, or the error Jira answers."""
    if issue_key:
        issue = site.find_issue(issue_key)
        if issue is None or issue.project not in site.browsable(caller):
            return jira_error(404, "Issue does not exist or you do not have permission to see it.")
        return issue.project
    if not key:
        return jira_error(400, "A project key or issue key must be given.")
    project = site.find_project(key)
    if project is None or project.key not in site.browsable(caller):
        return jira_error(404, f"No project could be found with key '{key}'.")
    return project.key


def _candidates(site: JiraSite, params: Any, cloud: bool) -> list[User] | Response:
    """The users the query names: Cloud by exact ``accountId`` or a ``query`` prefix, DC by ``username``."""
    with site.lock:
        users = list(site.users.values())
    if cloud and params.get("accountId"):
        return [u for u in users if u.account_id == params["accountId"]]
    text = (params.get("query") if cloud else params.get("username")) or ""
    if not text:
        needed = "One of 'accountId' or 'query' must be specified." if cloud else "The username must be given."
        return jira_error(400, needed)
    folded = text.casefold()

    def matches(user: User) -> bool:
        names = (user.display_name, user.email) if cloud else (user.name, user.display_name, user.email)
        return any(name.casefold().startswith(folded) for name in names)

    return [u for u in users if matches(u)]


def _holds(site: JiraSite, state: SandboxState, user: User, project: str, permission: str) -> bool:
    """Whether ``user`` holds ``permission`` in ``project``."""
    account = next((a for a in state.accounts if a.username == user.name), None)
    granted = account.permissions if account else frozenset({"BROWSE_PROJECTS"} if user.active else ())
    return site.has_permission(Account(user.name, "", user.display_name, granted), project, permission)


def _user_json(user: User, base: str, cloud: bool) -> dict[str, Any]:
    avatars = {size: f"{base}/secure/useravatar?size={size}&ownerId={user.key}" for size in ("48x48", "24x24")}
    if cloud:
        return {
            "self": f"{base}/rest/api/3/user?accountId={user.account_id}",
            "accountId": user.account_id,
            "accountType": "atlassian",
            "avatarUrls": avatars,
            "displayName": user.display_name,
            "active": user.active,
            "timeZone": "Europe/Berlin",
        }
    return {
        "self": f"{base}/rest/api/2/user?username={user.name}",
        "key": user.key,
        "name": user.name,
        "emailAddress": user.email,
        "avatarUrls": avatars,
        "displayName": user.display_name,
        "active": user.active,
        "timeZone": "Europe/Berlin",
    }
