"""The Jira stand-in at scale, over real HTTP: Cloud ``issue/bulkfetch`` and page caps, the Data Center
search window, and the id/key range clauses keyset paging uses."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.jira import JiraSite

DEMO = ("demo@example.com", "sandbox-token")
VIEWER = ("viewer@example.com", "viewer-token")


@pytest.fixture(scope="module")
def big_cloud() -> Iterator[Sandbox]:
    with Sandbox(mode="cloud", jira=JiraSite.generated("cloud", total=1200, depth=2)) as sb:
        yield sb


@pytest.fixture(scope="module")
def big_dc() -> Iterator[Sandbox]:
    with Sandbox(mode="datacenter", jira=JiraSite.generated("datacenter", total=10_200, depth=1)) as sb:
        yield sb


def http(sb: Sandbox, account: tuple[str, str] = DEMO) -> httpx.Client:
    return httpx.Client(base_url=sb.url, auth=account, timeout=30)


def ids_of(sb: Sandbox, jql: str) -> list[str]:
    with http(sb) as client:
        body = client.get("/rest/api/3/search/jql", params={"jql": jql, "maxResults": 5000}).json()
    assert body["isLast"]
    return [issue["id"] for issue in body["issues"]]


def bulk(sb: Sandbox, ids: list[str], **extra: object) -> httpx.Response:
    with http(sb) as client:
        return client.post("/rest/api/3/issue/bulkfetch", json={"issueIdsOrKeys": ids, **extra})


def test_cloud_search_caps_pages_at_100_with_fields_and_5000_ids_only(big_cloud: Sandbox) -> None:
    with http(big_cloud) as client:
        with_fields = client.get(
            "/rest/api/3/search/jql", params={"jql": "project = BIG", "maxResults": 5000, "fields": "summary"}
        ).json()
        ids_only = client.get("/rest/api/3/search/jql", params={"jql": "project = BIG", "maxResults": 5000}).json()
    assert len(with_fields["issues"]) == 100 and not with_fields["isLast"]
    assert len(ids_only["issues"]) == 1200 and ids_only["isLast"]
    assert ids_only["issues"][0] == {"id": ids_only["issues"][0]["id"]}  # nothing but the id


def test_bulkfetch_returns_issues_by_id_or_key_in_ascending_id_order(big_cloud: Sandbox) -> None:
    ids = ids_of(big_cloud, "project = BIG")[:5]
    response = bulk(big_cloud, [ids[3], "big-2", ids[0], "NOPE-1", "99999999"], fields=["summary", "status"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issueErrors"] == []
    got = [int(issue["id"]) for issue in body["issues"]]
    assert got == sorted(got) and len(got) == 3  # unknown keys and ids are left out, not errors
    assert "BIG-2" in {issue["key"] for issue in body["issues"]}
    assert set(body["issues"][0]["fields"]) == {"summary", "status"}


def test_bulkfetch_leaves_out_issues_the_caller_cannot_browse(cloud_sandbox: Sandbox) -> None:
    hidden = [k for k, i in cloud_sandbox.jira.issues.items() if i.project == "SECRET"]  # type: ignore[union-attr]
    assert hidden
    visible = bulk(cloud_sandbox, hidden[:3], fields=["summary"]).json()["issues"]
    with http(cloud_sandbox, VIEWER) as client:
        hidden_body = client.post(
            "/rest/api/3/issue/bulkfetch", json={"issueIdsOrKeys": hidden[:3], "fields": ["summary"]}
        ).json()
    assert len(visible) == 3 and hidden_body["issues"] == []


@pytest.mark.parametrize(
    ("fields", "allowed"),
    [
        (["summary", "status", "parent"], 1000),  # named, single-valued: "served efficiently"
        (["summary", "subtasks"], 100),  # a multi-valued field
        (["*all"], 100),
        (["-description"], 100),  # exclusions only
        (None, 100),  # the default field set
    ],
)
def test_bulkfetch_takes_100_issues_or_1000_when_shaped_efficiently(
    big_cloud: Sandbox, fields: list[str] | None, allowed: int
) -> None:
    ids = ids_of(big_cloud, "project = BIG")
    extra = {"fields": fields} if fields is not None else {}
    ok = bulk(big_cloud, ids[:allowed], **extra)
    assert ok.status_code == 200, ok.text
    assert len(ok.json()["issues"]) == allowed
    refused = bulk(big_cloud, ids[: allowed + 1], **extra)
    assert refused.status_code == 400
    assert f"at most {allowed} issues" in refused.json()["errorMessages"][0]


def test_bulkfetch_refuses_heavy_expansions_past_100(big_cloud: Sandbox) -> None:
    ids = ids_of(big_cloud, "project = BIG")
    assert bulk(big_cloud, ids[:101], fields=["summary"], expand=["changelog"]).status_code == 400


def test_bulkfetch_needs_ids_and_is_cloud_only(cloud_sandbox: Sandbox, dc_sandbox: Sandbox) -> None:
    assert bulk(cloud_sandbox, []).status_code == 400
    with http(dc_sandbox) as client:
        answer = client.post("/rest/api/2/issue/bulkfetch", json={"issueIdsOrKeys": ["DEMO-1"]})
    assert answer.status_code in (404, 405)


def test_dc_search_window_ends_at_10000_results(big_dc: Sandbox) -> None:
    with http(big_dc) as client:

        def page(start: int, size: int) -> httpx.Response:
            return client.get(
                "/rest/api/2/search",
                params={"jql": "project = BIG ORDER BY id", "startAt": start, "maxResults": size, "fields": "summary"},
            )

        last_inside = page(9900, 100)
        past = page(9950, 100)
        far = page(10_000, 50)
    assert last_inside.status_code == 200 and len(last_inside.json()["issues"]) == 100
    assert last_inside.json()["total"] == 10_200
    assert past.status_code == 500
    body = past.json()
    assert body["message"] == (
        "Search limit exceeded. We couldn't complete your search because it requests 10,050 results which "
        "exceeded the search platform limit of 10,000. Try refining your query or contact your Jira "
        "administrator. Repeating the same search may not work."
    )
    assert body["stack-trace"].startswith("Please contact your admin passing attached Log's referral number: ")
    assert far.status_code == 500 and "requests 10,050 results" in far.json()["message"]


def test_id_and_key_ranges_for_keyset_paging(big_dc: Sandbox) -> None:
    site = big_dc.jira
    assert site is not None
    ids = sorted(issue.id for issue in site.issues.values())
    pivot = ids[10_050]
    with http(big_dc) as client:

        def keys(jql: str) -> list[str]:
            body = client.get("/rest/api/2/search", params={"jql": jql, "maxResults": 100, "fields": "key"}).json()
            return [issue["key"] for issue in body["issues"]]

        above = client.get(
            "/rest/api/2/search", params={"jql": f"project = BIG AND id > {pivot} ORDER BY id", "maxResults": 0}
        ).json()
        first_above = keys(f"project = BIG AND id > {pivot} ORDER BY id ASC")[0]
        small = keys("key >= BIG-5 AND key < BIG-8 ORDER BY key")
    assert above["total"] == len(ids) - 10_051
    assert site.by_id[str(ids[10_051])] == first_above
    assert small == ["BIG-5", "BIG-6", "BIG-7"]
