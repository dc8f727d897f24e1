"""Jira search paging: one small object per strategy, and the planner that picks one from the first page.

The shape is that of dlt's ``rest_client`` paginators: each strategy holds its own state, reads each page it
gets (what comes next, and whether the server's answer is possible at all) and asks for the next; the planner
(:func:`plan`) looks at the first page of a search, as dlt's paginator detection looks at the first response,
and returns the strategy for the rest, or ``None`` when the first page was all.

Strategies:

- :class:`CloudBulkFetch` (Cloud, more than a page): the ids by :class:`CloudIdRanges`, the issues not on the
  first page by ``issue/bulkfetch`` batches, fetched while the ids are still being read.
- :class:`CloudIdRanges` (Cloud ids): the lowest ids, then the span cut into ranges paged at once, each range
  a ``nextPageToken`` chain (:class:`IdChain`) bounded by :class:`IdPlan`.
- :class:`DcOffsets` (Data Center inside the search window): ``startAt`` pages in parallel, in order.
- :class:`DcKeyset` (Data Center beyond the search window): ``id > last ORDER BY id``, window after window.

Every strategy is bounded by what the server itself said and stops with one line (:meth:`SearchTransport.endless`).
The HTTP requests are the client's (:class:`SearchTransport`, which :class:`atlasflow.clients.jira.JiraClient` is).
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from atlasflow.clients.ratelimit import critical_path
from atlasflow.errors import ApiError

Page = dict[str, Any]
Issue = dict[str, Any]
#: Decodes the body of a page of issues (search or bulk fetch) into what the caller keeps of it.
PageDecoder = Callable[[bytes], Page]
T = TypeVar("T")

#: Cloud ``search/jql`` page size when only ids are asked for (the documented maximum).
ID_PAGE_SIZE = 5000
#: The share of a page a range of a split Cloud id search is sized to fill on average: room for ids that
#: are not spread evenly.
RANGE_FILL = 0.8
#: Data Center: the furthest ``startAt + maxResults`` a search reaches (Jira with OpenSearch answers 500
#: "search platform limit of 10,000" past it; ``jira.search.platform.max.result.window``).
DC_RESULT_WINDOW = 10_000
_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)


class SearchTransport(Protocol):
    """The requests the strategies send (each takes a slot of the client's rate limit)."""

    parallelism: int

    def cloud_page(
        self, jql: str, fields: Sequence[str], token: str | None, size: int, decoder: PageDecoder | None = None
    ) -> Page: ...

    def dc_page(
        self, jql: str, fields: Sequence[str], start: int, size: int, decoder: PageDecoder | None = None
    ) -> Page: ...

    def bulk_fetch(
        self, ids: Sequence[str], fields: Sequence[str], *, retry: bool = True, decoder: PageDecoder | None = None
    ) -> list[Issue]: ...

    def bulk_fetch_size(self, fields: Sequence[str]) -> int: ...

    def count(self, jql: str) -> int: ...

    def fetch_pool(self) -> ThreadPoolExecutor: ...

    def pipelined(self, calls: Iterable[Callable[[], list[Issue]]]) -> Iterator[list[Issue]]: ...

    def endless(self, jql: str, problem: str) -> ApiError: ...


class Strategy(Protocol):
    """How the rest of a search is paged, once its first page is read."""

    def pages(self) -> Iterator[list[Issue]]:
        """Pages of issues not yet read (each issue once)."""
        ...


def plan(
    transport: SearchTransport,
    deployment: Literal["cloud", "datacenter"],
    jql: str,
    fields: Sequence[str],
    decoder: PageDecoder | None,
    first: Page,
) -> Strategy | None:
    """The strategy for what follows ``first``, the search's first page asked for with its fields; ``None``
    when that page was all (Cloud: ``isLast`` or no token; Data Center: ``total`` reached)."""
    issues: list[Issue] = first.get("issues", [])
    seen = {str(issue["id"]) for issue in issues}
    if deployment == "cloud":
        if first.get("isLast", True) or not first.get("nextPageToken"):
            return None
        return CloudBulkFetch(transport, jql, fields, decoder, seen)
    total = int(first.get("total", len(issues)))
    size = int(first.get("maxResults") or len(issues) or 1)
    if not issues or total <= len(issues):
        return None
    if total <= DC_RESULT_WINDOW:
        return DcOffsets(transport, jql, fields, decoder, seen, len(issues), total, size)
    return DcKeyset(transport, jql, fields, decoder, seen, total, size)


def run_on_critical_path(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)`` on the critical path (:func:`atlasflow.clients.ratelimit.critical_path`): every bulk
    fetch waits on the ids and what plans them."""
    with critical_path():
        return call(*args)


@dataclass
class CloudBulkFetch:
    """Cloud: the issues not on the first page, by ``issue/bulkfetch`` batches of the ids
    :class:`CloudIdRanges` reads, fetched in parallel while the ids still come."""

    transport: SearchTransport
    jql: str
    fields: Sequence[str]
    decoder: PageDecoder | None
    seen: set[str]

    def pages(self) -> Iterator[list[Issue]]:
        t = self.transport
        size = t.fetch_pool().submit(run_on_critical_path, t.bulk_fetch_size, self.fields)  # while the ids are planned
        batches = (
            functools.partial(t.bulk_fetch, batch, self.fields, decoder=self.decoder) for batch in self._new_ids(size)
        )
        yield from t.pipelined(batches)

    def _new_ids(self, size: Future[int]) -> Iterator[list[str]]:
        """Batches of ``size`` ids matching the search that are not in :attr:`seen` (which they are added to)."""
        batch: list[str] = []
        for ids in CloudIdRanges(self.transport, jql_condition(self.jql)).ids():
            for issue_id in ids:
                if issue_id not in self.seen:
                    self.seen.add(issue_id)
                    batch.append(issue_id)
                    if len(batch) == size.result():
                        yield batch
                        batch = []
        if batch:
            yield batch


@dataclass
class CloudIdRanges:
    """Every id matching ``condition``, by pages in the order they arrive (an id may come twice).

    One ``nextPageToken`` chain would make the wait grow with the scope (a page of :data:`ID_PAGE_SIZE` ids
    after the other). Instead, when the lowest ids (which also show the page size the site grants) are not
    all, the highest id and the approximate count are asked for at once; the span between is cut into ranges
    expected to fit a page each, and the ranges are paged in parallel. The first range is open below and the
    last open above, so every id falls in exactly one range whatever the site's order or count says: those
    only decide how even the ranges are, and a range that holds more than a page goes on by its own token
    (ordered by id).

    Bounded by what the server said (see :class:`IdPlan`, :class:`IdChain`): a count beyond the span's width
    is taken as the width, and a token chain stops with an error when a page repeats ids already read, holds
    ids its range excludes or more than the range can hold, or when the pages of all ranges outnumber what
    the span can fill.
    """

    transport: SearchTransport
    condition: str

    def ids(self) -> Iterator[list[str]]:
        """The id pages.

        Raises:
            ApiError: Naming ``search/jql`` and what the server got wrong.
        """
        t, condition = self.transport, self.condition
        pool = ThreadPoolExecutor(max_workers=t.parallelism, thread_name_prefix="jira-ids")
        try:
            first = run_on_critical_path(t.cloud_page, ordered(condition, "id ASC"), (), None, ID_PAGE_SIZE)
            low_ids = [int(issue["id"]) for issue in first.get("issues", [])]
            if first.get("isLast", True) or not first.get("nextPageToken") or not low_ids:
                yield [str(i) for i in low_ids]
                return
            highest = pool.submit(run_on_critical_path, t.cloud_page, ordered(condition, "id DESC"), (), None, 1)
            count = pool.submit(run_on_critical_path, t.count, condition)
            yield [str(i) for i in low_ids]  # fetched while the ranges are planned
            top = [int(issue["id"]) for issue in highest.result().get("issues", [])]
            id_plan = IdPlan((min(low_ids), max(top or low_ids) + 1), count.result(), len(low_ids))
            pending = {
                pool.submit(run_on_critical_path, t.cloud_page, chain.query, (), None, ID_PAGE_SIZE): chain
                for chain in id_plan.chains(condition)
            }
            pages = 0
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    chain = pending.pop(future)
                    page = future.result()
                    pages += 1
                    problem = chain.take([int(issue["id"]) for issue in page.get("issues", [])])
                    problem = problem or id_plan.exceeded(pages)
                    if problem:
                        raise t.endless(chain.query, problem)
                    yield [str(issue["id"]) for issue in page.get("issues", [])]
                    token = page.get("nextPageToken")
                    if not page.get("isLast", True) and token:
                        next_page = pool.submit(
                            run_on_critical_path, t.cloud_page, chain.query, (), token, ID_PAGE_SIZE
                        )
                        pending[next_page] = chain
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class DcOffsets:
    """Data Center inside the search window: ``startAt`` pages from ``start`` up to ``total``, in parallel, in
    order; a page that brings only issues already read stops the search."""

    transport: SearchTransport
    jql: str
    fields: Sequence[str]
    decoder: PageDecoder | None
    seen: set[str]
    start: int
    total: int
    size: int

    def pages(self) -> Iterator[list[Issue]]:
        window = dc_window(self.transport, self.jql, self.fields, self.start, self.total, self.size, self.decoder)
        for start, page in zip(itertools.count(self.start, self.size), window):
            fresh = [issue for issue in page if str(issue["id"]) not in self.seen]
            if page and not fresh:
                raise self.transport.endless(self.jql, f"the page at startAt={start} repeats issues already read")
            self.seen.update(str(issue["id"]) for issue in fresh)
            yield fresh


@dataclass
class DcKeyset:
    """Data Center beyond the search window: ``(jql) AND id > last ORDER BY id``, one window after the other.

    Bounded by what the server said: each page must bring an id above every id read before (the query orders
    by id), and the windows are at most those the first ``total`` needs and one more (issues created
    meanwhile); a window that starts empty ends the search, whatever the total says.
    """

    transport: SearchTransport
    jql: str
    fields: Sequence[str]
    decoder: PageDecoder | None
    seen: set[str]
    total: int
    size: int
    last: int | None = field(default=None, init=False)

    def pages(self) -> Iterator[list[Issue]]:
        """The pages.

        Raises:
            ApiError: When a page repeats what was read, or the windows outnumber that bound.
        """
        t, size = self.transport, self.size
        condition = jql_condition(self.jql)
        after: int | None = None
        windows = math.ceil(self.total / DC_RESULT_WINDOW) + 1
        for _ in range(windows):
            clauses = [f"({condition})" if condition else "", f"id > {after}" if after is not None else ""]
            query = " AND ".join(c for c in clauses if c) + " ORDER BY id ASC"
            with critical_path():  # the next window's pages wait on this one
                first = t.dc_page(query, self.fields, 0, size, self.decoder)
            head: list[Issue] = first.get("issues", [])
            if not head:  # nothing past ``after``, whatever the total says
                return
            window_total = int(first.get("total", len(head)))
            rest = dc_window(t, query, self.fields, len(head), window_total, size, self.decoder)
            for start, page in zip(itertools.count(0, size), itertools.chain([head], rest)):
                if page:
                    highest = max(int(issue["id"]) for issue in page)
                    if self.last is not None and highest <= self.last:
                        raise t.endless(query, f"the page at startAt={start} repeats ids already read")
                    self.last = highest
                fresh = [issue for issue in page if str(issue["id"]) not in self.seen]
                self.seen.update(str(issue["id"]) for issue in fresh)
                yield fresh
            if window_total <= DC_RESULT_WINDOW:
                return
            after = self.last
        raise t.endless(self.jql, f"{windows:,} windows of ids did not reach the end of a total of {self.total:,}")


def dc_window(
    transport: SearchTransport,
    jql: str,
    fields: Sequence[str],
    start: int,
    total: int,
    size: int,
    decoder: PageDecoder | None,
) -> Iterator[list[Issue]]:
    """Data Center pages from ``start`` up to ``total`` or the end of the search window, in parallel, in order."""
    end = min(total, DC_RESULT_WINDOW)
    calls = (
        functools.partial(_dc_issues, transport, jql, fields, s, min(size, end - s), decoder)
        for s in range(start, end, size)
    )
    yield from transport.pipelined(calls)


def _dc_issues(
    transport: SearchTransport, jql: str, fields: Sequence[str], start: int, size: int, decoder: PageDecoder | None
) -> list[Issue]:
    issues: list[Issue] = transport.dc_page(jql, fields, start, size, decoder).get("issues", [])
    return issues


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


def ordered(condition: str, order: str) -> str:
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
            chains.append(IdChain(ordered(id_range_query(condition, start, end), "id ASC"), start, end, capacity))
        return chains

    def exceeded(self, pages: int) -> str | None:
        """What is wrong when ``pages`` id pages were read, else ``None``."""
        if pages <= self.max_pages:
            return None
        return (
            f"{pages:,} pages of ids for ids {self.span[0]:,} to {self.span[1] - 1:,} "
            f"(approximate count {self.count:,}): at most {self.max_pages:,} can hold them"
        )
