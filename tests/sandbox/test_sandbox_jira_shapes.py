"""Sandbox Jira responses have the structure of real ones: recursive key sets and JSON types of the
samples in ``tests/samples`` (values ignored).

Every sample key must exist in the sandbox's answer with a compatible type, except the documented
omissions below (fields the sandbox does not model, and oddities of the OpenAPI examples). ``null`` is
compatible with anything (a field may be empty); list elements are compared by the union of their keys.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import requests

from atlasflow.sandbox.app import Sandbox

DEMO = ("demo@example.com", "sandbox-token")

UNMODELLED_FIELDS = {
    # Issue fields the sandbox does not model at all.
    "fields.aggregateprogress",
    "fields.aggregatetimeestimate",
    "fields.aggregatetimeoriginalestimate",
    "fields.aggregatetimespent",
    "fields.attachment",
    "fields.comment",
    "fields.components",
    "fields.creator",
    "fields.duedate",
    "fields.environment",
    "fields.fixVersions",
    "fields.issuerestriction",
    "fields.lastViewed",
    "fields.progress",
    "fields.resolution",
    "fields.resolutiondate",
    "fields.security",
    "fields.statuscategorychangedate",
    "fields.timeestimate",
    "fields.timeoriginalestimate",
    "fields.timespent",
    "fields.timetracking",
    "fields.versions",
    "fields.votes",
    "fields.watcher",
    "fields.watches",
    "fields.worklog",
    "fields.workratio",
    "fields.project.projectCategory",  # projects here have no category (Jira omits it then)
}
SPEC_EXAMPLE_ODDITIES = {
    "fields.sub-tasks",  # the OpenAPI example's typo for "subtasks" (see SOURCES.md)
    "fields.updated",  # the example has the number 1; real Jira sends a timestamp string
    "fields.description",  # a string in the search example; v3 sends an Atlassian Document
    "fields.project.insight",  # only with expand=insight
    "fields.project.style",
}


def shape(value: Any) -> Any:
    """The structure of a JSON value: dicts by key, lists as one merged element, scalars as type names."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        merged: Any = None
        for item in value:
            merged = _merge(merged, shape(item))
        return [merged] if value else []
    return None if value is None else type(value).__name__


def _merge(left: Any, right: Any) -> Any:
    if isinstance(left, dict) and isinstance(right, dict):
        return {key: _merge(left.get(key), right.get(key)) for key in left.keys() | right.keys()}
    return left if left is not None else right


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Paths where ``actual`` lacks a key of ``expected`` or has another type."""
    if expected is None or actual is None:
        return []
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = []
        for key, value in expected.items():
            where = f"{path}.{key}" if path else key
            found += differences(value, actual[key], where) if key in actual else [f"{where} (missing)"]
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        return differences(expected[0], actual[0], f"{path}[]") if expected and actual else []
    if expected == actual or (expected, actual) in (("int", "float"), ("float", "int")):
        return []
    return [f"{path} ({actual} instead of {expected})"]


def unexplained(expected: Any, actual: Any, allowed: set[str], prefix: str = "") -> list[str]:
    """:func:`differences` of two payloads, minus those under an ``allowed`` path."""
    found = differences(shape(expected), shape(actual), prefix)
    return [d for d in found if not any(d == a or d.startswith((f"{a} ", f"{a}.", f"{a}[")) for a in allowed)]


def load(samples: Path, name: str) -> Any:
    return json.loads((samples / name).read_text(encoding="utf-8"))


def get(sb: Sandbox, path: str, **params: Any) -> requests.Response:
    return requests.get(sb.url + path, params=params, auth=DEMO, timeout=10)


def test_cloud_search_jql_page(cloud_sandbox: Sandbox, samples: Path) -> None:
    sample = load(samples, "jira-cloud-v3/search_jql_GET_200.json")
    fields = "description,project,issuelinks,updated"
    last = get(
        cloud_sandbox, "/rest/api/3/search/jql", jql="key = DEMO-2", fields=fields
    ).json()  # linked both ways
    first = get(
        cloud_sandbox, "/rest/api/3/search/jql", jql="project = DEMO", fields=fields, maxResults=5
    ).json()

    assert set(last) == set(sample) == {"isLast", "issues"}  # nextPageToken absent on the last page
    assert set(first) == {"isLast", "issues", "nextPageToken"}
    assert set(last["issues"][0]) == set(sample["issues"][0])
    assert (
        unexplained(sample["issues"][0], last["issues"][0], UNMODELLED_FIELDS | SPEC_EXAMPLE_ODDITIES) == []
    )
    # The search example's description is text; the v3 issue example shows what v3 really sends.
    issue_sample = load(samples, "jira-cloud-v3/issue_GET_200.json")
    description = last["issues"][0]["fields"]["description"]
    assert differences(shape(issue_sample["fields"]["description"]), shape(description)) == []


def test_cloud_issue_and_count(cloud_sandbox: Sandbox, samples: Path) -> None:
    sample = load(samples, "jira-cloud-v3/issue_GET_200.json")
    issue = get(cloud_sandbox, "/rest/api/3/issue/DEMO-2").json()
    assert set(sample) <= set(issue)
    allowed = UNMODELLED_FIELDS | SPEC_EXAMPLE_ODDITIES - {"fields.description"}
    assert unexplained(sample, issue, allowed) == []

    count_sample = load(samples, "jira-cloud-v3/search_approximate-count_POST_200.json")
    response = requests.post(
        cloud_sandbox.url + "/rest/api/3/search/approximate-count",
        json={"jql": "project = OPS"},
        auth=DEMO,
        timeout=10,
    )
    assert shape(response.json()) == shape(count_sample)


def test_v2_issue_like_the_library_fixture(sandbox: Sandbox, samples: Path) -> None:
    """atlassian-python-api's FOO-123 fixture is a Cloud v2 issue (Cloud users with accountId)."""
    sample = load(samples, "jira-v2/atlassian-python-api_issue_FOO-123_GET.json")
    issue = get(sandbox, "/rest/api/2/issue/DEMO-1").json()
    allowed = set(UNMODELLED_FIELDS)
    if sandbox.mode == "datacenter":
        allowed |= {"fields.reporter", "fields.issuetype.hierarchyLevel"}  # DC users by name; no levels
    assert set(issue) == set(sample)
    assert unexplained(sample, issue, allowed) == []
    assert isinstance(issue["fields"]["description"], str)


def test_dc_search_like_the_epic_link_page(dc_sandbox: Sandbox, samples: Path) -> None:
    sample = load(samples, "jira-dc-mock-jira820/search_epic_link_page1.json")
    page = get(
        dc_sandbox,
        "/rest/api/2/search",
        jql='"Epic Link" = DEMO-1 ORDER BY key',  # DEMO-2, DEMO-4, DEMO-7: sub-tasks, links both ways
        maxResults=3,
        fields="summary,issuetype,status,assignee,priority,customfield_10830,subtasks,issuelinks",
    ).json()
    assert set(page) == set(sample)
    assert (page["maxResults"], page["total"]) == (3, 8)
    # The mock's Epic Link field is customfield_10008; this site's is customfield_10830.
    renamed = json.loads(json.dumps(sample).replace("customfield_10008", "customfield_10830"))
    merged = {**page, "issues": [_merge_issues(page["issues"])]}
    assert unexplained(renamed, merged, set()) == []


def _merge_issues(issues: list[dict[str, Any]]) -> dict[str, Any]:
    """One issue holding every field any of ``issues`` has (an assignee here, links there)."""
    merged: dict[str, Any] = dict(issues[0])
    merged["fields"] = {}
    for issue in issues:
        merged["fields"].update({k: v for k, v in issue["fields"].items() if v not in (None, [])})
    return merged


def test_dc_issue_with_subtasks_links_and_parent(dc_sandbox: Sandbox, samples: Path) -> None:
    story_sample = load(samples, "jira-dc-mock-jira820/issue_JIRA820-10.json")
    story = get(dc_sandbox, "/rest/api/2/issue/DEMO-2").json()  # has a sub-task and links both ways
    renamed = json.loads(json.dumps(story_sample).replace("customfield_10008", "customfield_10830"))
    assert unexplained(renamed, story, set()) == []
    kinds = {("outwardIssue" in link, "inwardIssue" in link) for link in story["fields"]["issuelinks"]}
    assert kinds == {(True, False), (False, True)}

    subtask_sample = load(samples, "jira-dc-mock-jira820/subtask_JIRA820-11_with_parent.json")
    subtask = get(dc_sandbox, "/rest/api/2/issue/DEMO-3").json()
    assert unexplained(subtask_sample, subtask, set()) == []


def test_dc_agile_epic_issues(dc_sandbox: Sandbox, samples: Path) -> None:
    sample = load(samples, "jira-v2/atlassian-python-api_agile_epic_BAR-22_issue_GET.json")
    page = get(dc_sandbox, "/rest/agile/1.0/epic/DEMO-1/issue").json()
    assert set(page) == set(sample)
    assert set(page["issues"][0]) == set(sample["issues"][0])
    # The fixture's ``epic`` is the key as a string; Jira's agile API documents an epic object.
    allowed = UNMODELLED_FIELDS | {"fields.epic", "fields.sprint", "fields.flagged", "fields.reporter"}
    allowed |= {f"fields.{key}" for key in sample["issues"][0]["fields"] if key.startswith("customfield_")}
    allowed |= {"fields.assignee", "fields.issuetype.hierarchyLevel"}  # the fixture's users are Cloud users
    assert unexplained(sample["issues"][0], page["issues"][0], allowed) == []


def test_error_bodies(sandbox: Sandbox, samples: Path) -> None:
    seen = load(samples, "jira-errors/error_bodies_seen_in_issue_threads.json")
    not_found = get(sandbox, "/rest/api/2/issue/DEMO-99999")
    assert not_found.status_code == seen["jira_issue_404"]["status"] == 404
    assert not_found.json() == seen["jira_issue_404"]["body"]

    spec = load(samples, "jira-errors/jira_cloud_spec_error_examples.json")
    bad_jql = get(
        sandbox, "/rest/api/2/search" if sandbox.mode == "datacenter" else "/rest/api/3/search/jql", jql="("
    )
    assert bad_jql.status_code == 400
    assert shape(bad_jql.json()) == shape(spec["400"]["body"])


def test_removed_search_body(cloud_sandbox: Sandbox, samples: Path) -> None:
    quoted = load(samples, "jira-errors/error_bodies_seen_in_issue_threads.json")[
        "jira_cloud_410_removed_search"
    ]
    message = re.search(r'\["(.*)"\]', quoted["body_text_as_quoted"])
    assert message is not None
    response = get(cloud_sandbox, "/rest/api/3/search", jql="project = DEMO")
    assert response.status_code == quoted["status"] == 410
    assert response.json() == {"errorMessages": [message.group(1)], "errors": {}}
