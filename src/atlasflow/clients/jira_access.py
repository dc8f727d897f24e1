"""What another Jira account may see: the questions the job inbox asks before it starts a run for someone.

``GET /rest/api/{3|2}/user/permission/search`` answers, for one project, the users who hold a set of
permissions there; asked with one account (Cloud: ``accountId``, matched exactly; Data Center: ``username``,
matched as a prefix, so the answer is searched for that very name) it says whether that account may browse
the project. Jira answers it only to an account with the global permission *Administer Jira* (Cloud also
lets a project's administrators ask about their project); otherwise it refuses (403) and the question
cannot be answered. Cloud's ``POST /rest/api/3/permissions/check`` (``accountId``, ``projectPermissions``)
needs the same permission and takes project ids, not keys; the search serves both deployments alike.

Functions over a :class:`~atlasflow.clients.jira.JiraClient`; every failure is an
:class:`~atlasflow.clients.http.ApiError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from atlasflow.clients.jira import JiraClient, quote_jql
from atlasflow.errors import ApiError

BROWSE = "BROWSE_PROJECTS"
#: Users asked for per page of the permission search (Jira's maximum).
PAGE_SIZE = 1000
#: Pages read at most while looking for one Data Center username among the users its prefix matches.
MAX_PAGES = 5


def may_browse(client: JiraClient, account: str, project: str) -> bool:
    """Whether ``account`` (Cloud: account id; Data Center: username) may browse ``project`` (a key).

    Raises:
        ApiError: Jira refused the question (the service account lacks *Administer Jira*: 403), does
            not know the project or hides it from the service account (404), answered something else than
            a list of users, or listed more users for a Data Center username than :data:`MAX_PAGES` pages.
    """
    cloud = client.deployment == "cloud"
    path = f"{client.rest}/user/permission/search"
    params: dict[str, Any] = {
        ("accountId" if cloud else "username"): account,
        "permissions": BROWSE,
        "projectKey": project,
        "maxResults": PAGE_SIZE,
    }
    field = "accountId" if cloud else "name"
    for page in range(MAX_PAGES):
        users = client.api.get_json(path, {**params, "startAt": page * PAGE_SIZE})
        if not isinstance(users, list):
            raise ApiError("Jira", "GET", path, 200, "the answer is not a list of users")
        if any(isinstance(user, dict) and user.get(field) == account for user in users):
            return True
        if cloud or len(users) < PAGE_SIZE:
            return False
    raise ApiError("Jira", "GET", path, 200, f"more than {MAX_PAGES * PAGE_SIZE} users match {account!r}")


def projects_of(client: JiraClient, keys: Sequence[str]) -> set[str]:
    """The projects the issues ``keys`` are in now (a moved issue answers to its old key, from its new project).

    Raises:
        ApiError: The search failed (Jira refuses a key that does not exist or is hidden with 400).
    """
    if not keys:
        return set()
    jql = f"key in ({', '.join(quote_jql(k) for k in keys)})"
    return {str(issue["fields"]["project"]["key"]) for issue in client.search(jql, ["project"])}
