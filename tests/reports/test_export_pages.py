"""Pages of issues read against a schema of what the export keeps: the same rows, links and walk as from
the whole JSON, shared values, and a clear error for a page that is not one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from atlasflow.clients.http import ApiClient
from atlasflow.clients.jira import JiraClient
from atlasflow.errors import ApiError
from atlasflow.reports.pages import PageReader
from atlasflow.reports.tree import BASE_FIELDS, Node, TreeWalker, links_of, may_have_children
from atlasflow.sandbox.app import Sandbox

EXTRA = ["Description", "Fix versions", "Story Points", "Sprint", "Reviewers", "Status"]


def client_for(sb: Sandbox) -> JiraClient:
    api = ApiClient("Jira", sb.jira_url, auth=("demo@example.com", "sandbox-token"))
    return JiraClient(api, sb.mode)


def what_the_export_reads(walker: TreeWalker, issue: dict[str, Any]) -> tuple[Any, ...]:
    """Everything the walk and the workbook take from one issue."""
    node = Node(issue, parent="X-1", root="X-1", level=1, relation="child")
    return walker.rows.row(node), walker.parent_key(issue), may_have_children(issue), links_of(issue)


def test_kept_pages_give_the_rows_and_walk_of_the_whole_json(sandbox: Sandbox) -> None:
    with client_for(sandbox) as client:
        walker = TreeWalker(client, client.resolve_fields(EXTRA), include_links=True)
        whole = {i["key"]: i for i in client.search("project = DEMO", walker.fields)}
        kept = {i["key"]: i for i in client.search("project = DEMO", walker.fields, walker.read_page)}
    assert kept.keys() == whole.keys() and len(kept) == 292
    for key, issue in whole.items():
        assert what_the_export_reads(walker, kept[key]) == what_the_export_reads(walker, issue), key
    assert sum(bool(links_of(i)) for i in kept.values()) >= 5
    assert any(walker.parent_key(i) for i in kept.values())
    # Extra columns are kept as Jira sent them (the renderers read the whole value), even a base field.
    assert kept["DEMO-1"]["fields"]["status"] == whole["DEMO-1"]["fields"]["status"]


def test_repeated_values_are_shared_and_the_rest_is_left_out(cloud_sandbox: Sandbox) -> None:
    with client_for(cloud_sandbox) as client:
        walker = TreeWalker(client, {})
        issues = list(client.search("project = DEMO", walker.fields, walker.read_page))
    statuses = {id(i["fields"]["status"]) for i in issues}
    assert len(statuses) == len({i["fields"]["status"]["name"] for i in issues}) > 1
    story = next(i for i in issues if i["key"] == "DEMO-2")
    assert set(story["fields"]) == set(BASE_FIELDS)
    assert set(story["fields"]["issuetype"]) == {"name", "subtask", "hierarchyLevel"}
    assert story["fields"]["parent"] == {"key": "DEMO-1"}
    assert all(set(sub) == {"key"} for sub in story["fields"]["subtasks"])


@pytest.mark.parametrize(
    "sample",
    [
        "jira-cloud-v3/search_jql_GET_200.json",
        "jira-cloud-v3/issue_bulkfetch_POST_200.json",
        "jira-dc-mock-jira820/search_epic_link_page1.json",
    ],
)
def test_recorded_pages_read_as_their_whole_json(samples: Path, sample: str) -> None:
    body = (samples / sample).read_bytes()
    walker = TreeWalker(JiraClient(ApiClient("Jira", "http://127.0.0.1:9"), "cloud"), {}, include_links=True)
    whole = orjson.loads(body)
    kept = PageReader(walker.fields)(body)
    assert [i["key"] for i in kept["issues"]] == [i["key"] for i in whole["issues"]] != []
    for mine, theirs in zip(kept["issues"], whole["issues"], strict=True):
        assert what_the_export_reads(walker, mine) == what_the_export_reads(walker, theirs)
    assert {k: kept[k] for k in ("isLast", "total", "startAt", "maxResults") if k in kept} == {
        k: whole[k] for k in ("isLast", "total", "startAt", "maxResults") if k in whole
    }


def test_a_page_that_is_not_one_is_a_clear_error(cloud_sandbox: Sandbox) -> None:
    reader = PageReader(["summary", "status"])
    wrong = json.dumps({"issues": [{"id": "1", "key": "A-1", "fields": {"status": "Done"}}]}).encode()
    with pytest.raises(ValueError, match=r"\$\.issues\[0\]\.fields\.status"):
        reader(wrong)
    with client_for(cloud_sandbox) as client:
        response = client.api.request("GET", "/rest/api/3/field")  # a list of fields, not a page
        with pytest.raises(ApiError) as caught:
            client.api.decode(response, reader)
    message = str(caught.value)
    assert "GET /rest/api/3/field" in message and "Expected `object`, got `array`" in message, message
    assert "\n" not in message
