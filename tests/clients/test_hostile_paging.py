"""Hostile or broken Jira servers over real HTTP (issue 27 item 6): every paging loop of the search stops by
what the server itself said (the id span, a count, a total, ids already seen) with a one-line error naming the
endpoint, after a handful of requests instead of running until the task's timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from atlasflow.clients.http import ApiClient
from atlasflow.clients.jira import JiraClient
from atlasflow.errors import ApiError
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.core import Faults
from atlasflow.sandbox.jira import JiraSite

FIELDS = ["summary", "status", "issuetype", "parent"]
#: How long a search may run before the test gives up on it (a guard against hanging, not a measure: the
#: bounded searches end in about a second).
HANG_GUARD_SECONDS = 30
PARALLELISM = 8  # the client's default


@pytest.fixture(scope="module")
def cloud_5001() -> Iterator[Sandbox]:
    with Sandbox(mode="cloud", jira=JiraSite.generated("cloud", total=5001, depth=2)) as sb:
        yield sb


@pytest.fixture(scope="module")
def dc_10500() -> Iterator[Sandbox]:
    with Sandbox(mode="datacenter", jira=JiraSite.generated("datacenter", total=10_500, depth=2)) as sb:
        yield sb


@pytest.fixture(scope="module")
def dc_1500() -> Iterator[Sandbox]:
    with Sandbox(mode="datacenter", jira=JiraSite.generated("datacenter", total=1500, depth=2)) as sb:
        yield sb


def faulted(sb: Sandbox, faults: Faults) -> None:
    """Start from an empty log (the previous test's last answers logged) with ``faults`` in force."""
    time.sleep(0.3)
    sb.state.faults = faults
    sb.state.log.clear()


def search_requests(sb: Sandbox) -> int:
    return len(sb.state.log.matching("/rest/"))


def searches(sb: Sandbox) -> int:
    return len(sb.state.log.matching("/rest/api/3/search/"))


def bounded(sb: Sandbox, call: Callable[[], Any]) -> Any:
    """``call()``'s result or exception; a search still running after the guard fails the test instead of
    hanging it (the thread is left to die with the sandbox)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except Exception as error:  # handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_SECONDS)
    if thread.is_alive():
        sb.state.faults = Faults(rate_5xx=1.0)  # let the abandoned search fail for good
        pytest.fail(f"the search was still running after {HANG_GUARD_SECONDS} s: {search_requests(sb)} requests")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def search_all(sb: Sandbox, jql: str) -> list[dict[str, Any]]:
    api = ApiClient("Jira", sb.jira_url, auth=("demo@example.com", "sandbox-token"))
    with JiraClient(api, sb.mode) as client:
        return list(client.search(jql, FIELDS))


def refused(sb: Sandbox, jql: str, faults: Faults) -> tuple[str, int]:
    """The one-line error a search under ``faults`` stops with, and the requests sent before it."""
    faulted(sb, faults)
    try:
        with pytest.raises(ApiError) as caught:
            bounded(sb, lambda: search_all(sb, jql))
    finally:
        sb.state.faults = Faults()
    time.sleep(0.3)  # the last answers are logged
    message = str(caught.value)
    assert "\n" not in message
    sent = search_requests(sb)
    print(f"requests sent to an endless server before the error: {sent} ({message})")
    return message, sent


def test_cloud_token_that_never_ends_and_repeats_issues_stops_at_the_first_repeat(cloud_5001: Sandbox) -> None:
    message, sent = refused(cloud_5001, "project = BIG", Faults(endless_pages="repeat"))
    assert "GET /rest/api/3/search/jql" in message
    assert "repeat" in message
    # the page with fields, the lowest ids, the highest id, the count, two ranges, one repeated page each;
    # bulk fetches of the issues already known run alongside
    assert sent <= 16


def test_cloud_token_that_never_ends_with_fresh_ids_stops_past_the_id_span(cloud_5001: Sandbox) -> None:
    message, sent = refused(cloud_5001, "project = BIG", Faults(endless_pages="fresh"))
    assert "GET /rest/api/3/search/jql" in message
    assert "which the range excludes" in message
    # the plan's four, two ranges, a page past the closed one, up to three past the open one (5,000 ids above
    # the highest fit the page it may grow by); bulk fetches of what was read, the field list, calls in flight
    assert searches(cloud_5001) <= 4 + 2 + 1 + 3
    assert sent <= 10 + 11 + 1 + PARALLELISM


def test_cloud_fresh_ids_in_one_open_range_stop_at_what_the_id_span_can_hold(cloud_5001: Sandbox) -> None:
    # a count of 1 plans one range, open at both ends: only its width (and a page at each end) bounds it
    message, sent = refused(cloud_5001, "project = BIG", Faults(endless_pages="fresh", approximate_count=1))
    assert "GET /rest/api/3/search/jql" in message
    assert "more than the 15,001 it can hold" in message  # 5,001 ids wide, a page of 5,000 at each end
    assert searches(cloud_5001) <= 4 + 5
    assert sent <= 9 + 16 + PARALLELISM


def test_cloud_absurd_approximate_count_plans_the_ranges_from_the_id_span(cloud_5001: Sandbox) -> None:
    faulted(cloud_5001, Faults(approximate_count=400_000_000))
    try:
        issues = bounded(cloud_5001, lambda: search_all(cloud_5001, "project = BIG"))
    finally:
        cloud_5001.state.faults = Faults()
    time.sleep(0.3)
    keys = [issue["key"] for issue in issues]
    assert len(keys) == len(set(keys)) == 5001
    ranges = [e for e in cloud_5001.state.log.matching("/rest/api/3/search/jql") if "+AND+id+" in e.query]
    assert len(ranges) == 2  # 5,001 ids between the lowest and the highest: two ranges of 0.8 of 5,000
    print(f"requests for 5,001 issues with an approximate count of 400,000,000: {search_requests(cloud_5001)}")
    assert search_requests(cloud_5001) <= 12


def test_cloud_absurd_count_and_a_token_that_never_ends(cloud_5001: Sandbox) -> None:
    message, sent = refused(cloud_5001, "project = BIG", Faults(endless_pages="fresh", approximate_count=400_000_000))
    assert "/rest/api/3/search/jql" in message
    assert searches(cloud_5001) <= 4 + 2 + 1 + 3  # as without the absurd count: two ranges
    assert sent <= 10 + 11 + 1 + PARALLELISM


def test_dc_page_that_repeats_forever_past_the_search_window_stops_at_the_first_repeat(dc_10500: Sandbox) -> None:
    message, sent = refused(dc_10500, "project = BIG ORDER BY id", Faults(endless_pages="repeat"))
    assert "GET /rest/api/2/search" in message
    assert "repeat" in message
    assert sent <= 2 + 2 * PARALLELISM  # the first page, the window's first, the window's pages already in flight


def test_dc_repeated_page_inside_the_search_window_is_refused_not_returned_twice(dc_1500: Sandbox) -> None:
    message, sent = refused(dc_1500, "project = BIG", Faults(endless_pages="repeat"))
    assert "GET /rest/api/2/search" in message
    assert sent <= 2 + 2 * PARALLELISM


def test_dc_absurd_total_ends_with_the_first_window_that_brings_nothing_new(dc_1500: Sandbox) -> None:
    faulted(dc_1500, Faults(approximate_count=400_000_000))  # every search's total
    try:
        issues = bounded(dc_1500, lambda: search_all(dc_1500, "project = BIG"))
    finally:
        dc_1500.state.faults = Faults()
    time.sleep(0.3)
    keys = [issue["key"] for issue in issues]
    assert len(keys) == len(set(keys)) == 1500
    # the first page; past the window by ids: a window of 100 pages, then one that is empty
    assert search_requests(dc_1500) == 1 + 100 + 1
