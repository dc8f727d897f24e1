"""Jira REST client: search with the right paging for Cloud and Data Center, fields, issues, permissions.

Cloud searches go to ``/rest/api/3/search/jql`` (``nextPageToken`` cursor, no total); Data Center to
``/rest/api/2/search`` (``startAt``/``total``, with the page size the server actually grants read back).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

from atlasflow.clients.http import ApiClient, AtlassianError

Deployment = Literal["cloud", "datacenter"]
T = TypeVar("T")

#: JQL longer than this goes in a POST body rather than the query string.
MAX_GET_JQL = 1500
#: Page size asked for; servers grant at most their own cap and we read back what came.
REQUESTED_PAGE_SIZE = 1000


class JiraClient:
    """Talks to one Jira site.

    Args:
        api: An authenticated :class:`ApiClient` for the site.
        deployment: ``cloud`` or ``datacenter``.
        parallelism: Concurrent requests for independent pages or queries.
    """

    def __init__(self, api: ApiClient, deployment: Deployment, *, parallelism: int = 4) -> None:
        self.api = api
        self.deployment = deployment
        self.parallelism = parallelism
        self._fields: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()

    @property
    def rest(self) -> str:
        return "/rest/api/3" if self.deployment == "cloud" else "/rest/api/2"

    @property
    def requests_made(self) -> int:
        return self.api.requests_made

    def close(self) -> None:
        self.api.close()

    # --- search -------------------------------------------------------------------------------------

    def search(self, jql: str, fields: Sequence[str]) -> Iterator[dict[str, Any]]:
        """Every issue matching ``jql``, page by page, with the given fields."""
        for page in self.search_pages(jql, fields):
            yield from page

    def search_pages(self, jql: str, fields: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
        """Pages of issues; Data Center pages after the first are fetched in parallel."""
        if self.deployment == "cloud":
            yield from self._cloud_pages(jql, fields)
        else:
            yield from self._dc_pages(jql, fields)

    def search_many(self, queries: Sequence[str], fields: Sequence[str]) -> list[dict[str, Any]]:
        """All issues of several independent queries, run in parallel; results in query order."""
        if len(queries) <= 1:
            return [issue for q in queries for issue in self.search(q, fields)]
        with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
            results = list(pool.map(lambda q: list(self.search(q, fields)), queries))
        return [issue for chunk in results for issue in chunk]

    def _cloud_pages(self, jql: str, fields: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
        path = f"{self.rest}/search/jql"
        token: str | None = None
        while True:
            body: dict[str, Any] = {"jql": jql, "maxResults": REQUESTED_PAGE_SIZE, "fields": list(fields)}
            if token:
                body["nextPageToken"] = token
            if len(jql) > MAX_GET_JQL:
                page = self.api.post_json(path, body, idempotent=True)
            else:
                params = {**body, "fields": ",".join(fields)}
                page = self.api.get_json(path, params)
            yield page.get("issues", [])
            token = page.get("nextPageToken")
            if page.get("isLast", True) or not token:
                return

    def _dc_page(self, jql: str, fields: Sequence[str], start: int, size: int) -> dict[str, Any]:
        body = {"jql": jql, "startAt": start, "maxResults": size, "fields": list(fields)}
        if len(jql) > MAX_GET_JQL:
            result: dict[str, Any] = self.api.post_json(f"{self.rest}/search", body, idempotent=True)
        else:
            result = self.api.get_json(f"{self.rest}/search", {**body, "fields": ",".join(fields)})
        return result

    def _dc_pages(self, jql: str, fields: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
        first = self._dc_page(jql, fields, 0, REQUESTED_PAGE_SIZE)
        issues = first.get("issues", [])
        yield issues
        total = int(first.get("total", len(issues)))
        size = int(first.get("maxResults") or len(issues) or 1)
        starts = range(len(issues), total, size)
        if not issues or not starts:
            return
        with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
            for page in pool.map(lambda s: self._dc_page(jql, fields, s, size), starts):
                yield page.get("issues", [])

    def count(self, jql: str) -> int:
        """How many issues match (Cloud: the approximate count; Data Center: the search total)."""
        if self.deployment == "cloud":
            body = self.api.post_json(f"{self.rest}/search/approximate-count", {"jql": jql}, idempotent=True)
            return int(body["count"])
        return int(self._dc_page(jql, ["key"], 0, 0).get("total", 0))

    # --- fields -------------------------------------------------------------------------------------

    def fields(self) -> list[dict[str, Any]]:
        """The site's fields (system and custom), fetched once."""
        with self._lock:
            if self._fields is None:
                self._fields = list(self.api.get_json(f"{self.rest}/field"))
            return self._fields

    def resolve_fields(self, names_or_ids: Iterable[str]) -> dict[str, str]:
        """Map each requested field (by id, key or display name, case-insensitive) to its id.

        Raises:
            AtlassianError: Naming every field the site does not know.
        """
        wanted_fields = list(names_or_ids)
        if not wanted_fields:
            return {}
        by_id = {f["id"]: f for f in self.fields()}
        by_name: dict[str, dict[str, Any]] = {}
        for f in self.fields():
            by_name.setdefault(str(f.get("name", "")).casefold(), f)
        resolved: dict[str, str] = {}
        unknown: list[str] = []
        for wanted in wanted_fields:
            match = by_id.get(wanted) or by_name.get(wanted.casefold())
            if match is None:
                unknown.append(wanted)
            else:
                resolved[wanted] = match["id"]
        if unknown:
            known = ", ".join(sorted(str(f.get("name")) for f in self.fields() if f.get("custom")))
            raise AtlassianError(
                "Jira",
                "GET",
                f"{self.rest}/field",
                None,
                f"unknown field(s) {unknown}; custom fields on this site: {known}",
            )
        return resolved

    def field_schema(self, field_id: str) -> dict[str, Any]:
        return next((f.get("schema") or {} for f in self.fields() if f["id"] == field_id), {})

    def epic_link_field(self) -> str | None:
        """The id of the "Epic Link" custom field (Data Center; differs per site), if the site has one."""
        for f in self.fields():
            if f.get("custom") and str(f.get("name", "")).casefold() == "epic link":
                return str(f["id"])
        return None

    # --- issues -------------------------------------------------------------------------------------

    def issue(self, key: str, fields: Sequence[str] = ()) -> dict[str, Any]:
        params = {"fields": ",".join(fields)} if fields else None
        result: dict[str, Any] = self.api.get_json(f"{self.rest}/issue/{key}", params)
        return result

    def update_issue(self, key: str, fields: dict[str, Any], *, notify_users: bool = True) -> None:
        params = {"notifyUsers": str(notify_users).lower()}
        self.api.request("PUT", f"{self.rest}/issue/{key}", params=params, json={"fields": fields})

    def delete_issue(self, key: str, *, delete_subtasks: bool = False) -> None:
        params = {"deleteSubtasks": str(delete_subtasks).lower()}
        self.api.request("DELETE", f"{self.rest}/issue/{key}", params=params)

    def my_permissions(self, project_key: str, permissions: Sequence[str]) -> dict[str, bool]:
        """Which of ``permissions`` the authenticated account has in the project."""
        params = {"projectKey": project_key, "permissions": ",".join(permissions)}
        body = self.api.get_json(f"{self.rest}/mypermissions", params)
        granted = body.get("permissions", {})
        return {p: bool(granted.get(p, {}).get("havePermission")) for p in permissions}

    def myself(self) -> dict[str, Any]:
        result: dict[str, Any] = self.api.get_json(f"{self.rest}/myself")
        return result


def quote_jql(value: str) -> str:
    """A JQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def chunks(items: Sequence[T], size: int) -> list[list[T]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
