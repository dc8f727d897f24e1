"""Large searches through the real client against the sandbox over HTTP: every issue once, in as few
dependent requests as the APIs allow (Cloud ids + ``issue/bulkfetch``; Data Center pages inside the
10,000-result window, keyset ranges past it)."""

from __future__ import annotations

import gc
import math
import time
from collections import Counter
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest

from atlasflow.clients.gcpause import gc_paused
from atlasflow.clients.http import ApiClient
from atlasflow.clients.jira import JiraClient
from atlasflow.clients.jira_paging import id_range_queries, jql_condition
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.core import Faults
from atlasflow.sandbox.jira import JiraSite

FIELDS = ["summary", "status", "issuetype", "parent"]


def client_for(sb: Sandbox) -> JiraClient:
    api = ApiClient("Jira", sb.jira_url, auth=("demo@example.com", "sandbox-token"))
    return JiraClient(api, sb.mode)


@pytest.fixture(scope="module")
def cloud_2500() -> Iterator[Sandbox]:
    site = JiraSite.generated("cloud", total=2500, depth=2)
    site.settings.max_results_ids_only = 1000  # three id pages without needing 15,000 issues
    with Sandbox(mode="cloud", jira=site) as sb:
        yield sb


@pytest.fixture(scope="module")
def dc_10500() -> Iterator[Sandbox]:
    with Sandbox(mode="datacenter", jira=JiraSite.generated("datacenter", total=10_500, depth=2)) as sb:
        yield sb


def clear_log(sb: Sandbox) -> None:
    """Empty the request log once the previous test's last answers are logged (the middleware logs after
    answering)."""
    time.sleep(0.3)
    sb.state.log.clear()


def requests_by_path(sb: Sandbox) -> Counter[str]:
    return Counter(f"{e.method} {e.path}" for e in sb.state.log.matching("/rest/"))


def test_cloud_large_search_is_id_ranges_in_parallel_then_bulkfetch_of_1000(cloud_2500: Sandbox) -> None:
    clear_log(cloud_2500)
    with client_for(cloud_2500) as client:
        issues = list(client.search("project = BIG ORDER BY key", FIELDS))
    keys = [issue["key"] for issue in issues]
    assert len(keys) == len(set(keys)) == 2500
    assert all(issue["fields"]["summary"] for issue in issues)
    counts = requests_by_path(cloud_2500)
    # a page with fields; the lowest ids (1000 a page here); then at once the highest id and the count;
    # then 2500 / (1000 x 0.8) = 4 id ranges at once, one page each; 2400 issues in batches of 1000
    assert counts["GET /rest/api/3/search/jql"] == 1 + 2 + 4
    assert counts["POST /rest/api/3/search/approximate-count"] == 1
    assert counts["POST /rest/api/3/issue/bulkfetch"] == 3
    assert counts["GET /rest/api/3/field"] == 1  # to know the fields are single-valued
    assert sum(counts.values()) == 12
    id_pages = [parse_qs(e.query) for e in cloud_2500.state.log.matching("/rest/api/3/search/jql")]
    assert not any("nextPageToken" in q for q in id_pages)  # no range needed a second page
    ranges = [q["jql"][0] for q in id_pages if " AND id " in q["jql"][0]]
    assert len(ranges) == 4 and all(r.startswith("(project = BIG) AND id ") for r in ranges)


def test_cloud_search_of_one_id_page_plans_no_ranges(cloud_2500: Sandbox) -> None:
    clear_log(cloud_2500)
    with client_for(cloud_2500) as client:
        keys = [issue["key"] for issue in client.search("project = BIG AND key <= BIG-800", FIELDS)]
    assert len(keys) == len(set(keys)) == 800
    counts = requests_by_path(cloud_2500)
    assert counts["GET /rest/api/3/search/jql"] == 2  # the page with fields, then every id in one page
    assert counts["POST /rest/api/3/search/approximate-count"] == 0


def test_cloud_id_range_holding_more_than_a_page_goes_on_by_its_token(cloud_2500: Sandbox) -> None:
    clear_log(cloud_2500)
    jql = "project = BIG AND (key <= BIG-1200 OR key = BIG-2500)"  # 1201 ids bunched at the low end
    with client_for(cloud_2500) as client:
        keys = [issue["key"] for issue in client.search(jql, FIELDS)]
    assert len(keys) == len(set(keys)) == 1201
    tokens = [e for e in cloud_2500.state.log.matching("/rest/api/3/search/jql") if "nextPageToken" in e.query]
    assert len(tokens) == 1  # the crowded range's second page (the lowest ids' own token is never followed)
    crowded = parse_qs(tokens[0].query)["jql"][0]
    assert " AND id < " in crowded and "id >=" not in crowded  # the lowest of the two ranges


@pytest.mark.parametrize(
    ("condition", "span", "ranges", "queries"),
    [
        ("project = X", (10, 20), 1, ["(project = X)"]),
        ("project = X", (10, 20), 2, ["(project = X) AND id < 15", "(project = X) AND id >= 15"]),
        (
            "a = 1 OR b = 2",
            (0, 9),
            3,
            ["(a = 1 OR b = 2) AND id < 3", "(a = 1 OR b = 2) AND id >= 3 AND id < 6", "(a = 1 OR b = 2) AND id >= 6"],
        ),
        ("project = X", (7, 9), 5, ["(project = X) AND id < 8", "(project = X) AND id >= 8"]),
    ],
)
def test_id_ranges_cover_the_condition_open_at_both_ends(
    condition: str, span: tuple[int, int], ranges: int, queries: list[str]
) -> None:
    assert id_range_queries(condition, span, ranges) == queries


def test_cloud_bulkfetch_of_multi_valued_fields_goes_by_100(cloud_2500: Sandbox) -> None:
    clear_log(cloud_2500)
    with client_for(cloud_2500) as client:
        issues = list(client.search("project = BIG", [*FIELDS, "subtasks"]))
    assert len({issue["id"] for issue in issues}) == len(issues) == 2500
    assert requests_by_path(cloud_2500)["POST /rest/api/3/issue/bulkfetch"] == math.ceil(2400 / 100)


def test_cloud_small_search_is_one_request(cloud_2500: Sandbox) -> None:
    clear_log(cloud_2500)
    with client_for(cloud_2500) as client:
        issues = list(client.search("key in (BIG-1, BIG-2, BIG-3)", FIELDS))
    assert sorted(issue["key"] for issue in issues) == ["BIG-1", "BIG-2", "BIG-3"]
    assert sum(requests_by_path(cloud_2500).values()) == 1


def test_cloud_large_search_survives_transient_faults(cloud_2500: Sandbox) -> None:
    cloud_2500.state.faults = Faults(rate_5xx=0.15, rate_429=0.1, retry_after=0, rate_drop=0.05, seed=3)
    try:
        api = ApiClient("Jira", cloud_2500.jira_url, auth=("demo@example.com", "sandbox-token"))
        with JiraClient(api, "cloud") as client:
            # by 100 (sub-tasks are multi-valued): 24 bulk fetches for the faults to hit
            keys = [issue["key"] for issue in client.search("project = BIG", [*FIELDS, "subtasks"])]
    finally:
        cloud_2500.state.faults = Faults()
    assert len(keys) == len(set(keys)) == 2500
    assert any(e.fault for e in cloud_2500.state.log.matching("/rest/api/3/issue/bulkfetch"))


def test_dc_search_past_the_window_gets_every_issue_once_without_touching_it(dc_10500: Sandbox) -> None:
    clear_log(dc_10500)
    with client_for(dc_10500) as client:
        issues = list(client.search('project = "BIG" ORDER BY key', FIELDS))
    keys = [issue["key"] for issue in issues]
    assert len(keys) == len(set(keys)) == 10_500
    searches = dc_10500.state.log.matching("/rest/api/2/search")
    assert all(e.status == 200 for e in searches)
    for entry in searches:
        query = parse_qs(entry.query)
        assert int(query["startAt"][0]) + int(query["maxResults"][0]) <= 10_000
    # 105 pages of 100 and the first page of the second window; the first page is asked twice at most
    assert len(searches) <= 105 + 2


def test_dc_search_inside_the_window_is_parallel_pages(dc_10500: Sandbox) -> None:
    clear_log(dc_10500)
    with client_for(dc_10500) as client:
        issues = list(client.search("project = BIG AND issuetype = Story", FIELDS))
    stories = sum(1 for i in dc_10500.jira.issues.values() if i.type == "Story")  # type: ignore[union-attr]
    assert len({issue["key"] for issue in issues}) == len(issues) == stories
    assert len(dc_10500.state.log.matching("/rest/api/2/search")) == math.ceil(stories / 100)


def test_dc_keyset_keeps_the_users_condition_whole(dc_10500: Sandbox) -> None:
    with client_for(dc_10500) as client:
        issues = list(client.search("issuetype = Epic OR project = BIG order by created DESC", ["summary"]))
    assert len({issue["key"] for issue in issues}) == len(issues) == 10_500


@pytest.mark.parametrize(
    ("jql", "condition"),
    [
        ("project = X ORDER BY key", "project = X"),
        ("project = X order  by key ASC, id", "project = X"),
        ('summary ~ "order by" AND project = X', 'summary ~ "order by" AND project = X'),
        ("summary ~ 'say \\' order by' ORDER BY id", "summary ~ 'say \\' order by'"),
        ("ORDER BY key", ""),
        ("reorder = 1", "reorder = 1"),
    ],
)
def test_jql_condition_drops_only_a_top_level_order_by(jql: str, condition: str) -> None:
    assert jql_condition(jql) == condition


def test_cloud_site_refusing_large_bulk_fetches_is_asked_by_100() -> None:
    site = JiraSite.generated("cloud", total=1500, depth=1)
    site.settings.bulk_fetch_max_efficient = 100  # the cap the issue tracker once documented for every request
    with Sandbox(mode="cloud", jira=site) as sb, client_for(sb) as client:
        keys = [issue["key"] for issue in client.search("project = BIG", FIELDS)]
        bulk = sb.state.log.matching("/rest/api/3/issue/bulkfetch")
    assert len(keys) == len(set(keys)) == 1500
    refused = [e for e in bulk if e.status == 400]
    assert refused and len(refused) <= client.parallelism  # only the batches already in flight
    assert sum(1 for e in bulk if e.status == 200) == math.ceil(1400 / 100)


def test_automatic_garbage_collection_waits_while_a_large_search_streams_in(cloud_2500: Sandbox) -> None:
    assert gc.isenabled()
    with client_for(cloud_2500) as client:
        pages = client.search_pages("project = BIG", FIELDS)
        next(pages)  # the first page, with fields: a small search ends here, collection untouched
        assert gc.isenabled()
        next(pages)
        assert not gc.isenabled()
        rest = sum(len(page) for page in pages)
        assert gc.isenabled() and rest > 0
        abandoned = client.search_pages("project = BIG", FIELDS)
        next(abandoned), next(abandoned)
        assert not gc.isenabled()
        abandoned.close()
    assert gc.isenabled()


def test_collection_resumes_when_the_last_of_concurrent_searches_ends_and_only_if_it_was_on() -> None:
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
