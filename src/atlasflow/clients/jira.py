"""Jira REST client: search with the right paging for Cloud and Data Center, fields, issues, permissions.

Cloud searches go to ``/rest/api/3/search/jql`` (``nextPageToken`` cursor, no total) and large results
are fetched by id with ``/rest/api/3/issue/bulkfetch``; Data Center to ``/rest/api/2/search``
(``startAt``/``total``, with the page size the server actually grants read back, never past the search
window of 10,000 results). No search runs longer than what the server itself said allows: a page that
repeats, ids outside what was asked, or more pages than the ids can fill stop it with an error.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from atlasflow.clients.gcpause import gc_paused
from atlasflow.clients.http import ApiClient, AtlassianError
from atlasflow.clients.ratelimit import critical_path

Deployment = Literal["cloud", "datacenter"]
Page = dict[str, Any]
#: Decodes the body of a page of issues (search or bulk fetch) into what the caller keeps of it.
PageDecoder = Callable[[bytes], Page]
T = TypeVar("T")

#: JQL longer than this goes in a POST body rather than the query string.
MAX_GET_JQL = 1500
#: Page size asked for; servers grant at most their own cap and we read back what came.
REQUESTED_PAGE_SIZE = 1000
#: Cloud ``search/jql`` page size when only ids are asked for (the documented maximum).
ID_PAGE_SIZE = 5000
#: The share of a page a range of a split Cloud id search is sized to fill on average: room for ids that
#: are not spread evenly.
RANGE_FILL = 0.8
#: Issues per Cloud ``issue/bulkfetch``; up to the larger number when every field is named, at most
#: :data:`BULK_FETCH_MAX_FIELDS` of them, and none is multi-valued.
BULK_FETCH_SIZE = 100
BULK_FETCH_SIZE_EFFICIENT = 1000
BULK_FETCH_MAX_FIELDS = 100
MULTI_VALUED = frozenset({"comment", "worklog", "attachment"})
#: Data Center: the furthest ``startAt + maxResults`` a search reaches (Jira with OpenSearch answers 500
#: "search platform limit of 10,000" past it; ``jira.search.platform.max.result.window``).
DC_RESULT_WINDOW = 10_000
_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)


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

    def search(
        self, jql: str, fields: Sequence[str], decoder: PageDecoder | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every issue matching ``jql`` once, with the given fields (see :meth:`search_pages`)."""
        for page in self.search_pages(jql, fields, decoder):
            yield from page

    def search_pages(
        self, jql: str, fields: Sequence[str], decoder: PageDecoder | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of issues, each issue once; the order of issues across pages is not the JQL's order.

        The first page is asked for with its fields: a small result is one request. A larger one is
        fetched in parallel, as many requests at once as :attr:`parallelism` allows (each takes a slot
        of the client's rate limit): on Cloud, the ids in pages of :data:`ID_PAGE_SIZE`, by id ranges
        paged at once when they are more than a page (see :meth:`_id_pages`), while the issues already
        known are fetched by ``issue/bulkfetch``; on Data Center, ``startAt`` pages inside the search
        window and keyset ranges (``id > last``) beyond it.

        Args:
            jql: The query.
            fields: Field ids to fetch.
            decoder: Decodes each page of issues with fields, in the thread that fetched it (e.g. keeping
                only what the caller reads, see :class:`atlasflow.reports.pages.PageReader`); issues
                must keep ``id``. By default the whole JSON.

        Raises:
            AtlassianError: Besides failed requests, a server that does not end the search: every paging
                loop is bounded by what the server itself said (the span of ids, a count, a total, the
                pages and ids already read) and stops with one line naming the endpoint.
        """
        if self.deployment == "cloud":
            yield from self._cloud_pages(jql, fields, decoder)
        else:
            yield from self._dc_pages(jql, fields, decoder)

    def search_many(
        self, queries: Sequence[str], fields: Sequence[str], decoder: PageDecoder | None = None
    ) -> list[dict[str, Any]]:
        """All issues of several independent queries, run in parallel; results in query order."""
        if len(queries) <= 1:
            return [issue for q in queries for issue in self.search(q, fields, decoder)]
        with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
            results = list(pool.map(lambda q: list(self.search(q, fields, decoder)), queries))
        return [issue for chunk in results for issue in chunk]

    def _cloud_page(
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

    def _cloud_pages(
        self, jql: str, fields: Sequence[str], decoder: PageDecoder | None
    ) -> Iterator[list[dict[str, Any]]]:
        first = self._cloud_page(jql, fields, None, REQUESTED_PAGE_SIZE, decoder)
        issues: list[dict[str, Any]] = first.get("issues", [])
        yield issues
        if first.get("isLast", True) or not first.get("nextPageToken"):
            return
        seen = {str(issue["id"]) for issue in issues}
        size = self._fetch_pool().submit(_first, self._bulk_fetch_size, fields)  # while the ids are planned
        batches = (
            functools.partial(self.bulk_fetch, batch, fields, decoder=decoder)
            for batch in self._new_ids(jql, seen, size)
        )
        with gc_paused():
            yield from self._pipelined(batches)

    def _new_ids(self, jql: str, seen: set[str], size: Future[int]) -> Iterator[list[str]]:
        """Batches of ``size`` ids matching ``jql`` that are not in ``seen`` (which they are added to)."""
        batch: list[str] = []
        for ids in self._id_pages(jql_condition(jql)):
            for issue_id in ids:
                if issue_id not in seen:
                    seen.add(issue_id)
                    batch.append(issue_id)
                    if len(batch) == size.result():
                        yield batch
                        batch = []
        if batch:
            yield batch

    def _id_pages(self, condition: str) -> Iterator[list[str]]:
        """Every id matching ``condition``, by pages in the order they arrive (an id may come twice).

        One ``nextPageToken`` chain would make the wait grow with the scope (a page of
        :data:`ID_PAGE_SIZE` ids after the other). Instead, when the lowest ids (which also show the page
        size the site grants) are not all, the highest id and the approximate count are asked for at once;
        the span between is cut into ranges expected to fit a page each, and the ranges are paged in
        parallel. The first range is open below and the last open above, so every id falls in exactly one range
        whatever the site's order or count says: those only decide how even the ranges are, and a range
        that holds more than a page goes on by its own token (ordered by id).

        Bounded by what the server said (see :class:`IdPlan`, :class:`IdChain`): a count beyond the span's
        width is taken as the width, and a token chain stops with an error when a page repeats ids already
        read, holds ids its range excludes or more than the range can hold, or when the pages of all ranges
        outnumber what the span can fill.

        Raises:
            AtlassianError: Naming ``search/jql`` and what the server got wrong.
        """
        pool = ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="jira-ids")
        try:
            first = _first(self._cloud_page, _ordered(condition, "id ASC"), (), None, ID_PAGE_SIZE)
            low_ids = [int(issue["id"]) for issue in first.get("issues", [])]
            if first.get("isLast", True) or not first.get("nextPageToken") or not low_ids:
                yield [str(i) for i in low_ids]
                return
            highest = pool.submit(_first, self._cloud_page, _ordered(condition, "id DESC"), (), None, 1)
            count = pool.submit(_first, self.count, condition)
            yield [str(i) for i in low_ids]  # fetched while the ranges are planned
            top = [int(issue["id"]) for issue in highest.result().get("issues", [])]
            plan = IdPlan((min(low_ids), max(top or low_ids) + 1), count.result(), len(low_ids))
            pending = {
                pool.submit(_first, self._cloud_page, chain.query, (), None, ID_PAGE_SIZE): chain
                for chain in plan.chains(condition)
            }
            pages = 0
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    chain = pending.pop(future)
                    page = future.result()
                    pages += 1
                    problem = chain.take([int(issue["id"]) for issue in page.get("issues", [])])
                    problem = problem or plan.exceeded(pages)
                    if problem:
                        raise self._endless(chain.query, problem)
                    yield [str(issue["id"]) for issue in page.get("issues", [])]
                    token = page.get("nextPageToken")
                    if not page.get("isLast", True) and token:
                        next_page = pool.submit(_first, self._cloud_page, chain.query, (), token, ID_PAGE_SIZE)
                        pending[next_page] = chain
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _endless(self, jql: str, problem: str) -> AtlassianError:
        """The one-line error that stops a search whose server does not end it."""
        method = "POST" if len(jql) > MAX_GET_JQL else "GET"
        endpoint = "search/jql" if self.deployment == "cloud" else "search"
        return AtlassianError("Jira", method, f"{self.rest}/{endpoint}", None, f"{problem}; the search was stopped")

    def bulk_fetch(
        self, ids: Sequence[str], fields: Sequence[str], *, retry: bool = True, decoder: PageDecoder | None = None
    ) -> list[dict[str, Any]]:
        """Issues by id or key (Cloud ``issue/bulkfetch``); ids Jira could not serve are asked for once more.

        Issues that do not exist or are not visible are left out, as Jira does. A batch of more than 100
        that the site refuses (400) is asked for again by 100, and so are later batches of this client.

        Raises:
            AtlassianError: When Jira still reports issue errors on the second try.
        """
        path = f"{self.rest}/issue/bulkfetch"
        try:
            body = {"issueIdsOrKeys": list(ids), "fields": list(fields)}
            result = self.api.post_json(path, body, idempotent=True, decoder=decoder)
        except AtlassianError as error:
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
            raise AtlassianError("Jira", "POST", path, None, f"{len(errors)} issue(s) not served: {detail}")
        return issues

    def _bulk_fetch_size(self, fields: Sequence[str]) -> int:
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

    def _pipelined(self, calls: Iterable[Callable[[], list[dict[str, Any]]]]) -> Iterator[list[dict[str, Any]]]:
        """Run ``calls`` on the fetch pool (each decodes its page there); results in call order.

        Drawing the next call (an id page) never waits for earlier results: finished ones are handed
        on between draws, the rest once every call is submitted. So the chain of id pages runs at the
        network's pace while the pool fetches, and what waits is decoded pages the caller keeps anyway.
        """
        pool = self._fetch_pool()
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

    def _fetch_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="jira-fetch")
            return self._pool

    def _dc_page(
        self, jql: str, fields: Sequence[str], start: int, size: int, decoder: PageDecoder | None = None
    ) -> Page:
        body = {"jql": jql, "startAt": start, "maxResults": size, "fields": list(fields)}
        if len(jql) > MAX_GET_JQL:
            result: Page = self.api.post_json(f"{self.rest}/search", body, idempotent=True, decoder=decoder)
        else:
            result = self.api.get_json(f"{self.rest}/search", {**body, "fields": ",".join(fields)}, decoder=decoder)
        return result

    def _dc_issues(
        self, jql: str, fields: Sequence[str], start: int, size: int, decoder: PageDecoder | None
    ) -> list[dict[str, Any]]:
        issues: list[dict[str, Any]] = self._dc_page(jql, fields, start, size, decoder).get("issues", [])
        return issues

    def _dc_pages(
        self, jql: str, fields: Sequence[str], decoder: PageDecoder | None
    ) -> Iterator[list[dict[str, Any]]]:
        first = self._dc_page(jql, fields, 0, REQUESTED_PAGE_SIZE, decoder)
        issues: list[dict[str, Any]] = first.get("issues", [])
        yield issues
        total = int(first.get("total", len(issues)))
        size = int(first.get("maxResults") or len(issues) or 1)
        if not issues or total <= len(issues):
            return
        seen = {str(i["id"]) for i in issues}
        with gc_paused():
            if total <= DC_RESULT_WINDOW:
                for start, page in zip(
                    itertools.count(len(issues), size), self._dc_window(jql, fields, len(issues), total, size, decoder)
                ):
                    fresh = [issue for issue in page if str(issue["id"]) not in seen]
                    if page and not fresh:
                        raise self._endless(jql, f"the page at startAt={start} repeats issues already read")
                    seen.update(str(issue["id"]) for issue in fresh)
                    yield fresh
            else:
                yield from self._dc_keyset(jql, fields, size, seen, total, decoder)

    def _dc_window(
        self, jql: str, fields: Sequence[str], start: int, total: int, size: int, decoder: PageDecoder | None
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages from ``start`` up to ``total`` or the end of the search window, in parallel, in order."""
        end = min(total, DC_RESULT_WINDOW)
        calls = (
            functools.partial(self._dc_issues, jql, fields, s, min(size, end - s), decoder)
            for s in range(start, end, size)
        )
        yield from self._pipelined(calls)

    def _dc_keyset(
        self, jql: str, fields: Sequence[str], size: int, seen: set[str], total: int, decoder: PageDecoder | None
    ) -> Iterator[list[dict[str, Any]]]:
        """Beyond the search window: ``(jql) AND id > last ORDER BY id``, one window after the other.

        Bounded by what the server said: each page must bring an id above every id read before (the
        query orders by id), and the windows are at most those the first ``total`` needs and one more
        (issues created meanwhile); a window that starts empty ends the search, whatever the total says.

        Raises:
            AtlassianError: When a page repeats what was read, or the windows outnumber that bound.
        """
        condition = jql_condition(jql)
        after: int | None = None
        last: int | None = None
        windows = math.ceil(total / DC_RESULT_WINDOW) + 1
        for _ in range(windows):
            clauses = [f"({condition})" if condition else "", f"id > {after}" if after is not None else ""]
            query = " AND ".join(c for c in clauses if c) + " ORDER BY id ASC"
            with critical_path():  # the next window's pages wait on this one
                first = self._dc_page(query, fields, 0, size, decoder)
            head: list[dict[str, Any]] = first.get("issues", [])
            if not head:  # nothing past ``after``, whatever the total says
                return
            window_total = int(first.get("total", len(head)))
            pages = itertools.chain([head], self._dc_window(query, fields, len(head), window_total, size, decoder))
            for start, page in zip(itertools.count(0, size), pages):
                if page:
                    highest = max(int(issue["id"]) for issue in page)
                    if last is not None and highest <= last:
                        raise self._endless(query, f"the page at startAt={start} repeats ids already read")
                    last = highest
                fresh = [issue for issue in page if str(issue["id"]) not in seen]
                seen.update(str(issue["id"]) for issue in fresh)
                yield fresh
            if window_total <= DC_RESULT_WINDOW:
                return
            after = last
        raise self._endless(jql, f"{windows:,} windows of ids did not reach the end of a total of {total:,}")

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
        """Map each requested field to its id, the way Jira's own UI finds fields.

        Ids (``fixVersions``, ``customfield_10016``) are taken as given; otherwise a field matches by
        display name (system fields too: "Fix versions", "Due date", "Comment"; case-insensitive, and
        Data Center's "Fix Version/s" spelling is the same as Cloud's "Fix versions"), then by JQL clause
        name (``fixVersion``, ``cf[10016]``).

        Raises:
            AtlassianError: Naming every field the site does not know, and every name two or more
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
            raise AtlassianError("Jira", "GET", f"{self.rest}/field", None, "; ".join(problems))
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
        lambda f: text.casefold()
        in (str(f.get("name", "")).casefold(), str(f.get("untranslatedName", "")).casefold()),
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


def jql_condition(jql: str) -> str:
    """The condition of a JQL query: what comes before a top-level ``ORDER BY`` (quoted text skipped)."""
    masked: list[str] = []
    quote: str | None = None
    escaped = False
    for char in jql:
        if quote:
            masked.append("_")
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        else:
            masked.append(char)
            if char in "\"'":
                quote = char
    match = _ORDER_BY.search("".join(masked))
    return (jql[: match.start()] if match else jql).strip()


def _first(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)`` on the critical path: every bulk fetch waits on the ids and what plans them."""
    with critical_path():
        return call(*args)


def _ordered(condition: str, order: str) -> str:
    return f"{condition} ORDER BY {order}" if condition else f"ORDER BY {order}"


def id_range_edges(span: tuple[int, int], ranges: int) -> list[tuple[int | None, int | None]]:
    """``ranges`` (start, end) id ranges, even over ``span`` (lowest, past the highest); the first is open
    below (``None``) and the last open above, so together they hold every id."""
    low, high = span
    ranges = max(1, min(ranges, high - low))
    bounds = [low + (high - low) * n // ranges for n in range(1, ranges)]
    return list(zip([None, *bounds], [*bounds, None], strict=True))


def id_range_query(condition: str, start: int | None, end: int | None) -> str:
    """``condition`` restricted to ``start <= id < end`` (either end open when ``None``)."""
    clauses = [f"({condition})" if condition else ""]
    clauses += [f"id >= {start}" if start is not None else "", f"id < {end}" if end is not None else ""]
    return " AND ".join(c for c in clauses if c) or condition


def id_range_queries(condition: str, span: tuple[int, int], ranges: int) -> list[str]:
    """``condition`` cut into ``ranges`` queries by id (see :func:`id_range_edges`): together they match
    what ``condition`` matches, each issue once."""
    return [id_range_query(condition, start, end) for start, end in id_range_edges(span, ranges)]


@dataclass
class IdChain:
    """The ``nextPageToken`` chain of one id range, ordered by id, and what its pages may hold.

    Attributes:
        query: The range's query (``ORDER BY id ASC``).
        start: The lowest id the range asks for (``None``: open below).
        end: Past the highest id it asks for (``None``: open above).
        capacity: How many distinct ids it can hold: ids are distinct integers, so its width within the
            span; an open end adds a page (issues created, or moved into scope, while the search runs).
        read: Distinct ids read so far, each above the ones before.
        highest: The highest id read so far.
        pages: Pages read so far.
    """

    query: str
    start: int | None
    end: int | None
    capacity: int
    read: int = 0
    highest: int | None = None
    pages: int = 0

    def take(self, ids: list[int]) -> str | None:
        """Account for a page of ``ids``; what makes the server's answer impossible, else ``None``.

        A page may repeat ids at its edge (eventual consistency), never hold only ids at or below the
        highest already read, nor ids outside the range, nor more distinct ids than the range holds.
        """
        self.pages += 1
        low, high = self.start, self.end
        outside = [i for i in ids if (low is not None and i < low) or (high is not None and i >= high)]
        if outside:
            return f"page {self.pages} of a range of ids holds id {outside[0]}, which the range excludes"
        new = [i for i in ids if self.highest is None or i > self.highest]
        if ids and not new:
            return f"page {self.pages} of a range of ids repeats ids already read (its nextPageToken never ends)"
        self.read += len(set(new))
        self.highest = max(new, default=self.highest)
        if self.read > self.capacity:
            return f"a range of ids gave {self.read:,} ids, more than the {self.capacity:,} it can hold"
        return None


@dataclass(frozen=True)
class IdPlan:
    """Id ranges planned from what Jira said: the span of ids (lowest, past the highest), the approximate
    count and the page size it grants.

    The count is approximate and may be wrong: ids are distinct integers, so no more than the span's width
    match; a count beyond that is taken as the width. The ranges are sized to fill :data:`RANGE_FILL` of a
    page each, and the id pages of all ranges together are bounded by what the span can hold.
    """

    span: tuple[int, int]
    count: int
    page: int

    @property
    def width(self) -> int:
        return self.span[1] - self.span[0]

    @property
    def ranges(self) -> int:
        return max(1, math.ceil(min(self.count, self.width) / (self.page * RANGE_FILL)))

    @property
    def max_pages(self) -> int:
        """Id pages a search may take: twice one per range and one per page the span's ids fill (pages
        may come shorter than granted), with a page more at each open end."""
        return 2 * (self.ranges + math.ceil((self.width + 2 * self.page) / self.page))

    def chains(self, condition: str) -> list[IdChain]:
        low, high = self.span
        chains = []
        for start, end in id_range_edges(self.span, self.ranges):
            width = (high if end is None else end) - (low if start is None else start)
            capacity = width + self.page * ((start is None) + (end is None))
            chains.append(IdChain(_ordered(id_range_query(condition, start, end), "id ASC"), start, end, capacity))
        return chains

    def exceeded(self, pages: int) -> str | None:
        """What is wrong when ``pages`` id pages were read, else ``None``."""
        if pages <= self.max_pages:
            return None
        return (
            f"{pages:,} pages of ids for ids {self.span[0]:,} to {self.span[1] - 1:,} "
            f"(approximate count {self.count:,}): at most {self.max_pages:,} can hold them"
        )


def chunks(items: Sequence[T], size: int) -> list[list[T]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
