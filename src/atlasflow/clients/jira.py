"""Jira REST client: search with the right paging for Cloud and Data Center, fields, issues, permissions.

Cloud searches go to ``/rest/api/3/search/jql`` (``nextPageToken`` cursor, no total) and large results
are fetched by id with ``/rest/api/3/issue/bulkfetch``; Data Center to ``/rest/api/2/search``
(``startAt``/``total``, with the page size the server actually grants read back, never past the search
window of 10,000 results). No search runs longer than what the server itself said allows: a page that
repeats, ids outside what was asked, or more pages than the ids can fill stop it with an error.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal, TypeVar

from atlasflow.clients.gcpause import gc_paused
from atlasflow.clients.http import ApiClient
from atlasflow.clients.jira_paging import Page, PageDecoder, plan
from atlasflow.errors import ApiError

Deployment = Literal["cloud", "datacenter"]
T = TypeVar("T")

#: JQL longer than this goes in a POST body rather than the query string.
MAX_GET_JQL = 1500
#: Page size asked for; servers grant at most their own cap and we read back what came.
REQUESTED_PAGE_SIZE = 1000
#: Issues per Cloud ``issue/bulkfetch``; up to the larger number when every field is named, at most
#: :data:`BULK_FETCH_MAX_FIELDS` of them, and none is multi-valued.
BULK_FETCH_SIZE = 100
BULK_FETCH_SIZE_EFFICIENT = 1000
BULK_FETCH_MAX_FIELDS = 100
MULTI_VALUED = frozenset({"comment", "worklog", "attachment"})


class JiraClient:
    """Talks to one Jira site.

    Args:
        api: An authenticated :class:`ApiClient` for the site.
        deployment: ``cloud`` or ``datacenter``.
        parallelism: Concurrent requests for independent pages or queries.
    """

    def __init__(self, api: ApiClient, deployment: Deployment, *, parallelism: int = 8) -> None:
        self.api = api
        self.deployment = deployment
        self.parallelism = parallelism
        self._fields: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._bulk_large = True

    @property
    def rest(self) -> str:
        return "/rest/api/3" if self.deployment == "cloud" else "/rest/api/2"

    @property
    def requests_made(self) -> int:
        return self.api.requests_made

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.api.close()

    def __enter__(self) -> JiraClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- search -------------------------------------------------------------------------------------

    def search(self, jql: str, fields: Sequence[str], decoder: PageDecoder | None = None) -> Iterator[dict[str, Any]]:
        """Every issue matching ``jql`` once, with the given fields (see :meth:`search_pages`)."""
        for page in self.search_pages(jql, fields, decoder):
            yield from page

    def search_pages(
        self, jql: str, fields: Sequence[str], decoder: PageDecoder | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of issues, each issue once; the order of issues across pages is not the JQL's order.

        The rest of the search after the first page is paged as :func:`atlasflow.clients.jira_paging.plan`
        decides from that page.

        The first page is asked for with its fields: a small result is one request. A larger one is
        fetched in parallel, as many requests at once as :attr:`parallelism` allows (each takes a slot
        of the client's rate limit): on Cloud, the ids in pages of 5,000, by id ranges paged at once when
        they are more than a page (:class:`~atlasflow.clients.jira_paging.CloudIdRanges`), while the issues already
        known are fetched by ``issue/bulkfetch``; on Data Center, ``startAt`` pages inside the search
        window and keyset ranges (``id > last``) beyond it.

        Args:
            jql: The query.
            fields: Field ids to fetch.
            decoder: Decodes each page of issues with fields, in the thread that fetched it (e.g. keeping
                only what the caller reads, see :class:`atlasflow.reports.pages.PageReader`); issues
                must keep ``id``. By default the whole JSON.

        Raises:
            ApiError: Besides failed requests, a server that does not end the search: every paging
                loop is bounded by what the server itself said (the span of ids, a count, a total, the
                pages and ids already read) and stops with one line naming the endpoint.
        """
        if self.deployment == "cloud":
            first = self.cloud_page(jql, fields, None, REQUESTED_PAGE_SIZE, decoder)
        else:
            first = self.dc_page(jql, fields, 0, REQUESTED_PAGE_SIZE, decoder)
        yield first.get("issues", [])
        strategy = plan(self, self.deployment, jql, fields, decoder, first)
        if strategy is not None:
            with gc_paused():
                yield from strategy.pages()

    def search_many(
        self, queries: Sequence[str], fields: Sequence[str], decoder: PageDecoder | None = None
    ) -> list[dict[str, Any]]:
        """All issues of several independent queries, run in parallel; results in query order."""
        if len(queries) <= 1:
            return [issue for q in queries for issue in self.search(q, fields, decoder)]
        with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
            results = list(pool.map(lambda q: list(self.search(q, fields, decoder)), queries))
        return [issue for chunk in results for issue in chunk]

    def cloud_page(
        self, jql: str, fields: Sequence[str], token: str | None, size: int, decoder: PageDecoder | None = None
    ) -> Page:
        path = f"{self.rest}/search/jql"
        body: dict[str, Any] = {"jql": jql, "maxResults": size}
        if fields:
            body["fields"] = list(fields)
        if token:
            body["nextPageToken"] = token
        if len(jql) > MAX_GET_JQL:
            result: Page = self.api.post_json(path, body, idempotent=True, decoder=decoder)
        else:
            params = {**body, "fields": ",".join(fields)} if fields else body
            result = self.api.get_json(path, params, decoder=decoder)
        return result

    def endless(self, jql: str, problem: str) -> ApiError:
        """The one-line error that stops a search whose server does not end it."""
        method = "POST" if len(jql) > MAX_GET_JQL else "GET"
        endpoint = "search/jql" if self.deployment == "cloud" else "search"
        return ApiError("Jira", method, f"{self.rest}/{endpoint}", None, f"{problem}; the search was stopped")

    def bulk_fetch(
        self, ids: Sequence[str], fields: Sequence[str], *, retry: bool = True, decoder: PageDecoder | None = None
    ) -> list[dict[str, Any]]:
        """Issues by id or key (Cloud ``issue/bulkfetch``); ids Jira could not serve are asked for once more.

        Issues that do not exist or are not visible are left out, as Jira does. A batch of more than 100
        that the site refuses (400) is asked for again by 100, and so are later batches of this client.

        Raises:
            ApiError: When Jira still reports issue errors on the second try.
        """
        path = f"{self.rest}/issue/bulkfetch"
        try:
            body = {"issueIdsOrKeys": list(ids), "fields": list(fields)}
            result = self.api.post_json(path, body, idempotent=True, decoder=decoder)
        except ApiError as error:
            if error.status != 400 or len(ids) <= BULK_FETCH_SIZE:
                raise
            self._bulk_large = False  # this site serves fewer at a time than documented: ask for 100 from now on
            return [
                issue
                for chunk in chunks(ids, BULK_FETCH_SIZE)
                for issue in self.bulk_fetch(chunk, fields, retry=retry, decoder=decoder)
            ]
        issues: list[dict[str, Any]] = list(result.get("issues") or [])
        errors = result.get("issueErrors") or []
        if errors and retry:
            issues += self.bulk_fetch([str(e.get("id")) for e in errors], fields, retry=False, decoder=decoder)
        elif errors:
            detail = "; ".join(f"{e.get('id')}: {e.get('errorMessage', '?')}" for e in errors[:5])
            raise ApiError("Jira", "POST", path, None, f"{len(errors)} issue(s) not served: {detail}")
        return issues

    def bulk_fetch_size(self, fields: Sequence[str]) -> int:
        """1000 when the request can be served "efficiently" (named single-valued fields, at most 100), else 100."""
        if not self._bulk_large or not fields or len(fields) > BULK_FETCH_MAX_FIELDS:
            return BULK_FETCH_SIZE
        schemas = {f["id"]: f.get("schema") or {} for f in self.fields()}
        for field_id in fields:
            if field_id.startswith(("*", "-")) or field_id in MULTI_VALUED:
                return BULK_FETCH_SIZE
            if schemas.get(field_id, {}).get("type") == "array":
                return BULK_FETCH_SIZE
        return BULK_FETCH_SIZE_EFFICIENT

    def pipelined(self, calls: Iterable[Callable[[], list[dict[str, Any]]]]) -> Iterator[list[dict[str, Any]]]:
        """Run ``calls`` on the fetch pool (each decodes its page there); results in call order.

        Drawing the next call (an id page) never waits for earlier results: finished ones are handed
        on between draws, the rest once every call is submitted. So the chain of id pages runs at the
        network's pace while the pool fetches, and what waits is decoded pages the caller keeps anyway.
        """
        pool = self.fetch_pool()
        pending: deque[Future[list[dict[str, Any]]]] = deque()
        try:
            for call in calls:
                pending.append(pool.submit(call))
                while pending and pending[0].done():
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

    def fetch_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="jira-fetch")
            return self._pool

    def dc_page(
        self, jql: str, fields: Sequence[str], start: int, size: int, decoder: PageDecoder | None = None
    ) -> Page:
        body = {"jql": jql, "startAt": start, "maxResults": size, "fields": list(fields)}
        if len(jql) > MAX_GET_JQL:
            result: Page = self.api.post_json(f"{self.rest}/search", body, idempotent=True, decoder=decoder)
        else:
            result = self.api.get_json(f"{self.rest}/search", {**body, "fields": ",".join(fields)}, decoder=decoder)
        return result

    def count(self, jql: str) -> int:
        """How many issues match (Cloud: the approximate count; Data Center: the search total)."""
        if self.deployment == "cloud":
            body = self.api.post_json(f"{self.rest}/search/approximate-count", {"jql": jql}, idempotent=True)
            return int(body["count"])
        return int(self.dc_page(jql, ["key"], 0, 0).get("total", 0))

    # --- fields -------------------------------------------------------------------------------------

    def fields(self) -> list[dict[str, Any]]:
        """The site's fields (system and custom), fetched once."""
        with self._lock:
            if self._fields is None:
                self._fields = list(self.api.get_json(f"{self.rest}/field"))
            return self._fields

    def resolve_fields(self, names_or_ids: Iterable[str]) -> dict[str, str]:
        """Map each requested field to its id, the way Jira's own UI finds fields.

        Ids (``fixVersions``, ``customfield_10016``) are taken as given; otherwise a field matches by
        display name (system fields too: "Fix versions", "Due date", "Comment"; case-insensitive, and
        Data Center's "Fix Version/s" spelling is the same as Cloud's "Fix versions"), then by JQL clause
        name (``fixVersion``, ``cf[10016]``).

        Raises:
            ApiError: Naming every field the site does not know, and every name two or more
                fields share (with their ids, so the caller can pick one).
        """
        wanted_fields = list(dict.fromkeys(names_or_ids))
        if not wanted_fields:
            return {}
        catalogue = self.fields()
        resolved: dict[str, str] = {}
        unknown: list[str] = []
        ambiguous: list[str] = []
        for wanted in wanted_fields:
            matches = field_matches(catalogue, wanted)
            if len(matches) == 1:
                resolved[wanted] = str(matches[0]["id"])
            elif not matches:
                unknown.append(wanted)
            else:
                ids = ", ".join(f"{f['id']} ({_field_kind(f)})" for f in matches)
                ambiguous.append(f"{wanted!r} names {len(matches)} fields: {ids}; ask for one by id")
        if unknown or ambiguous:
            problems = list(ambiguous)
            if unknown:
                known = ", ".join(sorted(str(f.get("name")) for f in catalogue if f.get("custom")))
                names = ", ".join(f'"{name}"' for name in unknown)
                problems.append(f"unknown field(s) {names}; custom fields on this site: {known}")
            raise ApiError("Jira", "GET", f"{self.rest}/field", None, "; ".join(problems))
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


def field_matches(catalogue: Sequence[dict[str, Any]], wanted: str) -> list[dict[str, Any]]:
    """The fields of ``catalogue`` that ``wanted`` names: by id or key, else by name, else by clause name.

    Each step that finds anything decides; more than one field means the name is ambiguous.
    """
    text = wanted.strip()
    steps: list[Callable[[dict[str, Any]], bool]] = [
        lambda f: text in (f.get("id"), f.get("key")),
        lambda f: text.casefold() in (str(f.get("id")).casefold(), str(f.get("key")).casefold()),
        lambda f: text.casefold() in (str(f.get("name", "")).casefold(), str(f.get("untranslatedName", "")).casefold()),
        lambda f: _loose(text) in (_loose(str(f.get("name", ""))), _loose(str(f.get("untranslatedName", "")))),
        lambda f: text.casefold() in (str(c).casefold() for c in f.get("clauseNames") or []),
    ]
    for step in steps:
        found = list({str(f["id"]): f for f in catalogue if step(f)}.values())
        if found:
            return found
    return []


def _loose(name: str) -> str:
    """A field name with Jira's spelling differences removed: "Fix Version/s" and "Fix versions" agree."""
    return re.sub(r"[\s_-]+", "", name.casefold().replace("/s", "s"))


def _field_kind(field: dict[str, Any]) -> str:
    schema = field.get("schema") or {}
    kind = str(schema.get("custom") or schema.get("type") or "field").rsplit(":", 1)[-1]
    return f"{field.get('name')}, {kind}"


def quote_jql(value: str) -> str:
    """A JQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def chunks(items: Sequence[T], size: int) -> list[list[T]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
