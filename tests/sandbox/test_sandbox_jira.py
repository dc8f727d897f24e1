"""The Jira stand-in, driven over real HTTP with atlassian-python-api (and plain requests where the
library has no method), in Cloud and Data Center mode."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import pytest
import requests
from atlassian import Jira
from requests import HTTPError

from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.core import Faults, Mode
from atlasflow.sandbox.jira import JiraSite, iter_tree

DEMO = ("demo@example.com", "sandbox-token")
VIEWER = ("viewer@example.com", "viewer-token")
REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
NOT_FOUND = "Issue does not exist or you do not have permission to see it."
DEMO_1_STORIES = ["DEMO-2", "DEMO-4", "DEMO-7", "DEMO-11", "DEMO-16", "DEMO-18", "DEMO-21", "DEMO-25"]


def jira(sb: Sandbox, account: tuple[str, str] = DEMO) -> Jira:
    """A client the way product code builds one: Basic + API token on Cloud, a PAT on Data Center."""
    if sb.mode == "cloud":
        return Jira(sb.url, username=account[0], password=account[1], cloud=True)
    return Jira(sb.url, token=account[1])


def http_error(call: Callable[[], Any], status: int) -> dict[str, Any]:
    """Run ``call``, expect an HTTPError with ``status``, return the Jira error body."""
    with pytest.raises(HTTPError) as caught:
        call()
    assert caught.value.response is not None
    assert caught.value.response.status_code == status, caught.value.response.text
    body: dict[str, Any] = caught.value.response.json()
    return body


def logged(sb: Sandbox, path: str, at_least: int) -> list[str | None]:
    """Faults of the logged requests to ``path`` once ``at_least`` are in (the middleware logs after
    answering, so an entry can land just after the client has its response)."""
    deadline = time.monotonic() + 10
    while len(entries := sb.state.log.matching(path)) < at_least and time.monotonic() < deadline:
        time.sleep(0.01)
    return [entry.fault for entry in entries]


def site_of(sb: Sandbox) -> JiraSite:
    assert sb.jira is not None
    return sb.jira


def search_url(sb: Sandbox) -> str:
    return f"{sb.url}/rest/api/3/search/jql" if sb.mode == "cloud" else f"{sb.url}/rest/api/2/search"


def all_keys(sb: Sandbox, jql: str, account: tuple[str, str] = DEMO) -> list[str]:
    """Every key a search returns, paging the way each mode pages."""
    client, keys = jira(sb, account), []
    if sb.mode == "cloud":
        token = None
        while True:
            page = client.enhanced_jql(jql, fields="summary", nextPageToken=token, limit=100)
            keys += [issue["key"] for issue in page["issues"]]
            if page["isLast"]:
                return keys
            token = page["nextPageToken"]
    while True:
        page = client.jql(jql, fields="summary", start=len(keys), limit=100)
        keys += [issue["key"] for issue in page["issues"]]
        if len(keys) >= page["total"]:
            return keys


# ------------------------------------------------------------------------------------------ paging


def test_cloud_paging_follows_tokens_to_the_last_page(cloud_sandbox: Sandbox) -> None:
    client = jira(cloud_sandbox)
    pages, token = [], None
    while True:
        page = client.enhanced_jql("project = DEMO", fields="summary,status", nextPageToken=token, limit=37)
        pages.append(page)
        if page["isLast"]:
            break
        token = page["nextPageToken"]
    keys = [issue["key"] for page in pages for issue in page["issues"]]

    assert len(keys) == len(set(keys)) == 292
    assert set(keys) == set(site_of(cloud_sandbox).keys("DEMO"))
    assert client.approximate_issue_count("project = DEMO") == {"count": len(keys)}
    assert all("total" not in page for page in pages)
    assert all(not p["isLast"] and p["nextPageToken"] and len(p["issues"]) == 37 for p in pages[:-1])
    assert "nextPageToken" not in pages[-1]
    assert len(pages) == 8


def test_cloud_search_returns_ids_only_unless_fields_are_asked_for(cloud_sandbox: Sandbox) -> None:
    client = jira(cloud_sandbox)
    bare = client.enhanced_jql("project = DEMO", fields=None, limit=5000)
    assert bare["isLast"] is True and len(bare["issues"]) == 292  # id-only pages go up to 5000
    assert all(set(issue) == {"id"} for issue in bare["issues"])

    full = client.enhanced_jql("project = DEMO", fields="summary", limit=5000)
    assert len(full["issues"]) == 100 and full["isLast"] is False  # capped with fields
    assert set(full["issues"][0]["fields"]) == {"summary"}


def test_cloud_library_pager_collects_everything(cloud_sandbox: Sandbox) -> None:
    issues = jira(cloud_sandbox).enhanced_jql_get_list_of_tickets("project = OPS", fields="summary")
    assert sorted(issue["key"] for issue in issues) == sorted(f"OPS-{n}" for n in range(1, 21))


def test_cloud_page_token_is_bound_to_its_query(cloud_sandbox: Sandbox) -> None:
    client = jira(cloud_sandbox)
    token = client.enhanced_jql("project = DEMO", fields="summary", limit=10)["nextPageToken"]
    assert "DEMO" not in token and not token.isdigit()

    body = http_error(lambda: client.enhanced_jql("project = OPS", nextPageToken=token, limit=10), 400)
    assert body["errorMessages"] == ["The nextPageToken does not match the JQL query it was issued for."]
    body = http_error(lambda: client.enhanced_jql("project = OPS", nextPageToken="garbage!", limit=10), 400)
    assert body["errorMessages"] == ["Invalid format of nextPageToken"]


def test_cloud_post_search_takes_a_json_body(cloud_sandbox: Sandbox) -> None:
    response = requests.post(
        search_url(cloud_sandbox),
        json={"jql": "key in (DEMO-2, DEMO-3)", "fields": ["summary", "-status"], "expand": "names"},
        auth=DEMO,
        timeout=10,
    )
    assert response.status_code == 200
    body = response.json()
    assert sorted(issue["key"] for issue in body["issues"]) == ["DEMO-2", "DEMO-3"]
    assert body["names"] == {"summary": "Summary"}


def test_cloud_rejects_unbounded_queries(cloud_sandbox: Sandbox) -> None:
    body = http_error(lambda: jira(cloud_sandbox).enhanced_jql("ORDER BY key"), 400)
    assert body["errorMessages"] == [
        "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
    ]


def test_dc_paging_with_start_at_and_a_server_side_cap(dc_sandbox: Sandbox) -> None:
    client = jira(dc_sandbox)
    first = client.jql("project = DEMO ORDER BY key", fields="summary", limit=500)
    assert (first["startAt"], first["maxResults"], first["total"]) == (0, 100, 292)  # capped, read back

    site_of(dc_sandbox).settings.max_results = 40
    keys: list[str] = []
    while True:
        page = client.jql("project = DEMO ORDER BY key", fields="summary", start=len(keys), limit=500)
        assert page["maxResults"] == 40 and page["total"] == 292
        keys += [issue["key"] for issue in page["issues"]]
        if len(keys) >= page["total"]:
            break
    assert keys == site_of(dc_sandbox).keys("DEMO")
    count_only = client.jql("project = DEMO", limit=0)
    assert count_only["total"] == 292 and count_only["issues"] == []


def test_dc_library_pager_collects_everything(dc_sandbox: Sandbox) -> None:
    issues = jira(dc_sandbox).jql_get_list_of_tickets("project = DEMO", fields="summary")
    assert len(issues) == 292 == len({issue["key"] for issue in issues})


def test_order_by_key_is_natural(sandbox: Sandbox) -> None:
    keys = all_keys(sandbox, "project = DEMO AND issuetype = Epic ORDER BY key ASC")
    assert keys == ["DEMO-1", "DEMO-30", "DEMO-57", "DEMO-90", "DEMO-112", "DEMO-141", "DEMO-168", "DEMO-201"]
    assert all_keys(sandbox, "project = DEMO AND issuetype = Epic ORDER BY key DESC") == keys[::-1]


# --------------------------------------------------------------------------------- removed / absent


def test_removed_cloud_search_answers_410(cloud_sandbox: Sandbox) -> None:
    for version in ("2", "3"):
        for method in ("GET", "POST"):
            response = requests.request(
                method, f"{cloud_sandbox.url}/rest/api/{version}/search", auth=DEMO, timeout=10
            )
            assert response.status_code == 410
            assert response.json() == {"errorMessages": [REMOVED], "errors": {}}
    # A client that does not know it talks to Cloud still calls the removed endpoint.
    legacy = Jira(cloud_sandbox.url, username=DEMO[0], password=DEMO[1])
    assert http_error(lambda: legacy.jql("project = DEMO"), 410)["errorMessages"] == [REMOVED]


def test_dc_has_no_api_v3(dc_sandbox: Sandbox) -> None:
    for path in ("/rest/api/3/search/jql", "/rest/api/3/issue/DEMO-1", "/rest/api/2/search/jql"):
        assert requests.get(dc_sandbox.url + path, auth=DEMO, timeout=10).status_code == 404
    assert requests.get(dc_sandbox.url + "/rest/api/latest/issue/DEMO-1", auth=DEMO, timeout=10).ok


# ------------------------------------------------------------------------------------------- JQL


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("project = DEMO AND summary ~ login", "The operator '~' is not supported by the 'summary' field."),
        ("project = DEMO AND status WAS Done", "The operator 'was' is not supported by the 'status' field."),
        ("foo = bar", "Field 'foo' does not exist or you do not have permission to view it."),
        ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
        ("project = DEMO AND status = Bogus", "The value 'Bogus' does not exist for the field 'status'."),
        ("key in (DEMO-1, DEMO-99999)", "An issue with key 'DEMO-99999' does not exist for field 'key'."),
        ("project = DEMO AND issueFunction in linkedIssuesOf('x')", "Field 'issueFunction' does not"),
        ("project = DEMO AND assignee in membersOf(devs)", "Unable to find JQL function 'membersOf(devs)'."),
        ("project in DEMO", "Operator 'in' does not support the non-list value 'DEMO' for field 'project'."),
        ("project = DEMO ORDER BY nosuch", "Field 'nosuch' does not exist or you do not have permission"),
        ("project = DEMO AND (status = Done", "JQL Query: Expecting ')' before the end of the query."),
        ("project = DEMO status = Done", "JQL Query: Expecting either 'OR' or 'AND' but got 'status'."),
        ("project = DEMO AND assignee = a@b", "The character '@' is a reserved JQL character."),
        ('project = "DEMO', "The quoted string 'DEMO' has not been completed."),
        ("project = DEMO AND status = ", "Expecting either a value, list or function before the end"),
    ],
)
def test_unsupported_or_wrong_jql_is_a_400_with_jiras_wording(
    sandbox: Sandbox, jql: str, message: str
) -> None:
    response = requests.get(
        search_url(sandbox), params={"jql": jql, "fields": "summary"}, auth=DEMO, timeout=10
    )
    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == {}
    assert any(message in text for text in body["errorMessages"]), body


def test_syntax_errors_are_prefixed_per_mode_and_point_at_the_character(sandbox: Sandbox) -> None:
    response = requests.get(
        search_url(sandbox), params={"jql": "project = DEMO AND %"}, auth=DEMO, timeout=10
    )
    prefix = "Error in JQL Query:" if sandbox.mode == "cloud" else "Error in the JQL Query:"
    assert response.json()["errorMessages"] == [
        f"{prefix} The character '%' is a reserved JQL character. You must enclose it in a string or use "
        "the escape '\\u0025' instead. (line 1, character 20)"
    ]


def test_unknown_key_through_the_library(sandbox: Sandbox) -> None:
    client = jira(sandbox)
    search = client.enhanced_jql if sandbox.mode == "cloud" else client.jql
    body = http_error(lambda: search("key in (DEMO-1, DEMO-99999)"), 400)
    assert body == {
        "errorMessages": ["An issue with key 'DEMO-99999' does not exist for field 'key'."],
        "errors": {},
    }


def test_dc_validate_query_warn_turns_unknown_values_into_warnings(dc_sandbox: Sandbox) -> None:
    page = jira(dc_sandbox).jql("key in (DEMO-1, DEMO-99999)", fields="summary", validate_query="warn")
    assert [issue["key"] for issue in page["issues"]] == ["DEMO-1"]
    assert page["warningMessages"] == ["An issue with key 'DEMO-99999' does not exist for field 'key'."]


def test_boolean_logic_and_field_forms(sandbox: Sandbox) -> None:
    epic_children = "parent = DEMO-1" if sandbox.mode == "cloud" else '"Epic Link" = DEMO-1'
    stories = set(all_keys(sandbox, epic_children))
    assert stories == set(DEMO_1_STORIES)
    assert set(all_keys(sandbox, f"{epic_children} AND NOT key in (DEMO-2, DEMO-4)")) == stories - {
        "DEMO-2",
        "DEMO-4",
    }
    assert set(all_keys(sandbox, f"({epic_children} AND issuekey != DEMO-2) OR key = OPS-1")) == (
        stories - {"DEMO-2"}
    ) | {"OPS-1"}
    done = set(all_keys(sandbox, f"{epic_children} AND status = Done"))
    not_done = set(all_keys(sandbox, f"{epic_children} AND status not in (Done)"))
    assert done and not_done and done | not_done == stories and not done & not_done
    unassigned = set(all_keys(sandbox, "project = DEMO AND assignee is EMPTY"))
    assigned = set(all_keys(sandbox, "project = DEMO AND assignee is not EMPTY"))
    assert unassigned and len(unassigned | assigned) == 292
    assert all_keys(sandbox, "project = SECRET AND assignee = currentUser()") == ["SECRET-1"]
    assert set(all_keys(sandbox, 'project = OPS AND type = "Sub-task"')) == {
        "OPS-2",
        "OPS-3",
        "OPS-4",
        "OPS-9",
        "OPS-10",
        "OPS-15",
    }


# -------------------------------------------------------------------------------- faults and auth


def test_rate_limit_answers_429_with_retry_after(sandbox: Sandbox) -> None:
    sandbox.state.faults = Faults(rate_429=1.0, retry_after=7)
    response = requests.get(f"{sandbox.url}/rest/api/2/issue/DEMO-1", auth=DEMO, timeout=10)
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"

    sandbox.state.faults = Faults(rate_429=1.0, retry_after=0)
    body = http_error(lambda: jira(sandbox).get_issue("DEMO-2"), 429)
    assert body["errorMessages"] == ["Rate limit exceeded."]
    assert logged(sandbox, "/rest/api/2/issue/DEMO-2", 2) == ["429", "429"]  # the library retried once


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic ZGVtb0BleGFtcGxlLmNvbTp3cm9uZw=="},  # demo@example.com:wrong
        {},
    ],
    ids=["bearer", "basic", "none"],
)
def test_bad_credentials_answer_401(sandbox: Sandbox, headers: dict[str, str]) -> None:
    response = requests.get(f"{sandbox.url}/rest/api/2/myself", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json()["errorMessages"] == [
        "You are not authenticated. Authentication required to perform this operation."
    ]


def test_bad_token_through_the_library(sandbox: Sandbox) -> None:
    http_error(lambda: jira(sandbox, ("demo@example.com", "wrong")).myself(), 401)


def test_dropped_connection_breaks_the_response(sandbox: Sandbox) -> None:
    sandbox.state.faults = Faults(rate_drop=1.0)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(f"{sandbox.url}/rest/api/2/issue/DEMO-1", auth=DEMO, timeout=10)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        jira(sandbox).get_issue("DEMO-1")


# --------------------------------------------------------------------------------------- issues


def test_missing_or_hidden_issue_is_404(sandbox: Sandbox) -> None:
    expected = {"errorMessages": [NOT_FOUND], "errors": {}}
    assert http_error(lambda: jira(sandbox).get_issue("DEMO-99999"), 404) == expected
    assert http_error(lambda: jira(sandbox, VIEWER).get_issue("SECRET-1"), 404) == expected
    assert jira(sandbox).get_issue("SECRET-1")["key"] == "SECRET-1"
    assert jira(sandbox).issue_exists("DEMO-99999") is False


def test_get_issue_by_id_and_field_selection(sandbox: Sandbox) -> None:
    client = jira(sandbox)
    issue = client.get_issue("DEMO-2", fields="summary,status,customfield_99999")
    assert set(issue["fields"]) == {"summary", "status"}  # unknown ids are ignored, as Jira does
    by_id = client.get_issue(issue["id"], fields="*all,-description")
    assert by_id["key"] == "DEMO-2" and "description" not in by_id["fields"] and "labels" in by_id["fields"]
    assert issue["fields"]["summary"] == '=HYPERLINK("http://evil","x")'


def test_edit_issue(sandbox: Sandbox) -> None:
    client, cloud = jira(sandbox), sandbox.mode == "cloud"
    points = "customfield_10016" if cloud else "customfield_10106"
    before = client.get_issue("DEMO-16")["fields"]
    assignee = {"accountId": before["reporter"]["accountId"]} if cloud else {"name": "demo@example.com"}
    client.update_issue_field(
        "DEMO-16",
        {
            "summary": "Renamed ✓",
            "priority": {"name": "Highest"},
            "labels": ["one", "two"],
            points: 21,
            "assignee": assignee,
        },
        notify_users=False,
    )
    after = client.get_issue("DEMO-16")["fields"]
    assert after["summary"] == "Renamed ✓" and after["priority"]["name"] == "Highest"
    assert after["labels"] == ["one", "two"] and after[points] == 21
    assert after["assignee"]["displayName"] == "Demo Admin"
    assert after["updated"] > before["updated"]

    client.update_issue_field("DEMO-16", {"assignee": None})
    assert client.get_issue("DEMO-16", fields="assignee")["fields"]["assignee"] is None


def test_edit_errors_use_jiras_errors_map(sandbox: Sandbox) -> None:
    client = jira(sandbox)
    body = http_error(
        lambda: client.update_issue_field("DEMO-2", {"customfield_99999": 1, "status": "Done"}), 400
    )
    assert body == {
        "errorMessages": [],
        "errors": {
            "customfield_99999": "Field 'customfield_99999' cannot be set. "
            "It is not on the appropriate screen, or unknown.",
            "status": "Field 'status' cannot be set. It is not on the appropriate screen, or unknown.",
        },
    }
    body = http_error(lambda: client.update_issue_field("DEMO-2", {"summary": "x" * 256}), 400)
    assert body["errors"] == {"summary": "Summary must be less than 255 characters."}
    assert (
        client.get_issue("DEMO-2", fields="summary")["fields"]["summary"] == '=HYPERLINK("http://evil","x")'
    )


def test_cloud_v3_wants_an_atlassian_document_for_description(cloud_sandbox: Sandbox) -> None:
    url = f"{cloud_sandbox.url}/rest/api/3/issue/DEMO-2"
    bad = requests.put(url, json={"fields": {"description": "plain"}}, auth=DEMO, timeout=10)
    assert bad.status_code == 400
    assert bad.json()["errors"] == {
        "description": "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
    }
    doc = {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": "New text"}]}],
    }
    assert requests.put(url, json={"fields": {"description": doc}}, auth=DEMO, timeout=10).status_code == 204
    assert requests.get(url, auth=DEMO, timeout=10).json()["fields"]["description"] == doc
    v2 = requests.get(f"{cloud_sandbox.url}/rest/api/2/issue/DEMO-2", auth=DEMO, timeout=10).json()
    assert v2["fields"]["description"] == "New text"


def test_viewer_cannot_edit_or_delete(sandbox: Sandbox) -> None:
    viewer = jira(sandbox, VIEWER)
    body = http_error(lambda: viewer.update_issue_field("DEMO-2", {"summary": "mine now"}), 403)
    assert body["errorMessages"] == ["You do not have permission to edit issues in this project."]
    body = http_error(lambda: viewer.delete_issue("DEMO-3"), 403)
    assert body["errorMessages"] == ["You do not have permission to delete issues in this project."]
    assert jira(sandbox).get_issue("DEMO-2", fields="summary")["fields"]["summary"] != "mine now"


def test_delete_requires_delete_subtasks_when_there_are_some(sandbox: Sandbox) -> None:
    client = jira(sandbox)
    body = http_error(lambda: client.delete_issue("OPS-1", delete_subtasks=False), 400)
    assert body["errorMessages"] == [
        "The issue 'OPS-1' has subtasks. "
        "You must specify the 'deleteSubtasks' parameter to delete this issue."
    ]
    client.delete_issue("OPS-1", delete_subtasks=True)
    for key in ("OPS-1", "OPS-2", "OPS-3", "OPS-4"):
        assert client.issue_exists(key) is False
    client.delete_issue("OPS-5", delete_subtasks=False)  # no sub-tasks: no flag needed
    assert all_keys(sandbox, "project = OPS AND issuetype = Task").count("OPS-5") == 0


def test_create_issue_over_rest(sandbox: Sandbox) -> None:
    client = jira(sandbox)
    created = client.create_issue(
        fields={
            "project": {"key": "OPS"},
            "issuetype": {"name": "Sub-task"},
            "parent": {"key": "OPS-5"},
            "summary": "Created over REST",
            "labels": ["maintenance"],
        }
    )
    assert created["key"] == "OPS-21"
    assert [sub["key"] for sub in client.get_issue("OPS-5")["fields"]["subtasks"]] == ["OPS-21"]
    body = http_error(
        lambda: client.create_issue(fields={"project": {"key": "OPS"}, "issuetype": {"name": "Task"}}), 400
    )
    assert body["errors"] == {"summary": "You must specify a summary of the issue."}


def test_python_api_changes_show_over_http(sandbox: Sandbox) -> None:
    site, client = site_of(sandbox), jira(sandbox)
    site.update_issue("DEMO-3", status="Done", summary="Changed by a test", **{"Story Points": 3})
    fields = client.get_issue("DEMO-3")["fields"]
    assert fields["status"]["name"] == "Done" and fields["summary"] == "Changed by a test"
    assert fields[site.custom_field("Story Points").id] == 3

    site.move_issue("DEMO-3", "DEMO-4")
    assert set(all_keys(sandbox, "parent = DEMO-4")) == {"DEMO-3", "DEMO-5", "DEMO-6"}
    new = site.create_issue("DEMO", "Sub-task", "Fresh", parent="DEMO-4")
    assert new in all_keys(sandbox, "parent = DEMO-4")
    site.delete_issue(new)
    http_error(lambda: client.get_issue(new), 404)


# ---------------------------------------------------------------------------- permissions, fields


def test_my_permissions(sandbox: Sandbox) -> None:
    wanted = "BROWSE_PROJECTS,EDIT_ISSUES,DELETE_ISSUES"
    demo = jira(sandbox).get_permissions(wanted, project_key="DEMO")["permissions"]
    assert {key: p["havePermission"] for key, p in demo.items()} == dict.fromkeys(wanted.split(","), True)
    assert set(demo["EDIT_ISSUES"]) == {"id", "key", "name", "type", "description", "havePermission"}
    viewer = jira(sandbox, VIEWER).get_permissions(wanted, project_key="DEMO")["permissions"]
    assert {key: p["havePermission"] for key, p in viewer.items()} == {
        "BROWSE_PROJECTS": True,
        "EDIT_ISSUES": False,
        "DELETE_ISSUES": False,
    }
    body = http_error(lambda: jira(sandbox, VIEWER).get_permissions(wanted, project_key="SECRET"), 404)
    assert body["errorMessages"] == ["No project could be found with key 'SECRET'."]


def test_my_permissions_without_the_list(sandbox: Sandbox) -> None:
    response = requests.get(f"{sandbox.url}/rest/api/2/mypermissions", auth=DEMO, timeout=10)
    if sandbox.mode == "cloud":
        assert response.status_code == 400
        assert response.json()["errorMessages"] == ["The 'permissions' query parameter is required."]
    else:
        assert response.status_code == 200 and "BROWSE_PROJECTS" in response.json()["permissions"]


def test_myself(sandbox: Sandbox) -> None:
    me = jira(sandbox, VIEWER).myself()
    assert me["displayName"] == "Vera Viewer" and me["emailAddress"] == "viewer@example.com"
    assert ("accountId" in me) == (sandbox.mode == "cloud") and ("name" in me) == (
        sandbox.mode == "datacenter"
    )


def test_field_list(sandbox: Sandbox) -> None:
    fields = {f["name"]: f for f in jira(sandbox).get_all_fields()}
    assert {"Summary", "Status", "Story Points", "Team", "Sprint", "Target Date"} <= set(fields)
    if sandbox.mode == "datacenter":
        epic_link = fields["Epic Link"]
        assert epic_link["id"] == "customfield_10830" and epic_link["custom"] is True
        assert epic_link["clauseNames"] == ["cf[10830]", "Epic Link"]
        assert epic_link["schema"]["custom"] == "com.pyxis.greenhopper.jira:gh-epic-link"
    else:
        assert "Epic Link" not in fields and fields["Story Points"]["id"] == "customfield_10016"


# --------------------------------------------------------------------------------------- hierarchy


def test_hierarchy_of_the_demo_epic(sandbox: Sandbox) -> None:
    if sandbox.mode == "cloud":
        assert sorted(all_keys(sandbox, "parent = DEMO-1")) == sorted(DEMO_1_STORIES)
    else:
        assert all_keys(sandbox, "parent = DEMO-1") == []  # DC epics are not parents
        for form in ('"Epic Link" = DEMO-1', "cf[10830] = DEMO-1", "customfield_10830 in (DEMO-1)"):
            assert sorted(all_keys(sandbox, form)) == sorted(DEMO_1_STORIES)
        epic_page = jira(sandbox).epic_issues("DEMO-1")
        assert epic_page["total"] == 8 and {i["key"] for i in epic_page["issues"]} == set(DEMO_1_STORIES)
    subtasks = all_keys(sandbox, f"parent in ({', '.join(DEMO_1_STORIES)})")
    assert len(subtasks) == len(set(subtasks)) == 20
    story = jira(sandbox).get_issue("DEMO-4", fields="subtasks,parent,customfield_10830")["fields"]
    assert [sub["key"] for sub in story["subtasks"]] == ["DEMO-5", "DEMO-6"]
    if sandbox.mode == "cloud":
        assert story["parent"]["key"] == "DEMO-1" and "customfield_10830" not in story
    else:
        assert "parent" not in story and story["customfield_10830"] == "DEMO-1"
    subtask = jira(sandbox).get_issue("DEMO-5", fields="parent")["fields"]
    assert subtask["parent"]["key"] == "DEMO-4"
    assert set(subtask["parent"]["fields"]) == {"summary", "status", "priority", "issuetype"}


def test_links_form_a_cycle(sandbox: Sandbox) -> None:
    client, path, key = jira(sandbox), [], "DEMO-2"
    while key not in path:
        path.append(key)
        links = client.get_issue(key, fields="issuelinks")["fields"]["issuelinks"]
        key = next(
            link["outwardIssue"]["key"]
            for link in links
            if link["type"]["name"] == "Blocks" and "outwardIssue" in link
        )
    assert path == ["DEMO-2", "DEMO-4", "DEMO-7"] and key == "DEMO-2"


def test_links_to_hidden_issues_are_not_shown(sandbox: Sandbox) -> None:
    def linked(account: tuple[str, str]) -> set[str]:
        links = jira(sandbox, account).get_issue("DEMO-16", fields="issuelinks")["fields"]["issuelinks"]
        return {(link.get("outwardIssue") or link.get("inwardIssue"))["key"] for link in links}

    assert linked(DEMO) == {"DEMO-31", "SECRET-2"}
    assert linked(VIEWER) == {"DEMO-31"}


def test_viewer_cannot_search_a_hidden_project(sandbox: Sandbox) -> None:
    assert len(all_keys(sandbox, "project = SECRET")) == 5
    response = requests.get(search_url(sandbox), params={"jql": "project = SECRET"}, auth=VIEWER, timeout=10)
    assert response.status_code == 400
    assert response.json()["errorMessages"] == ["The value 'SECRET' does not exist for the field 'project'."]
    assert "SECRET-1" not in all_keys(sandbox, "project in (DEMO, OPS) OR key = DEMO-1", VIEWER)


# ------------------------------------------------------------------------------------ generated trees


@pytest.mark.parametrize("mode", ["cloud", "datacenter"])
def test_generated_tree_walks_level_by_level_over_http(mode: Mode) -> None:
    site = JiraSite.generated(mode, total=1500, depth=4)
    with Sandbox(mode=mode, jira=site) as sb:
        levels, seen = [["BIG-1"]], {"BIG-1"}
        while levels[-1]:
            chunk = ", ".join(levels[-1])
            jql = (
                f"parent in ({chunk})"
                if mode == "cloud"
                else f'parent in ({chunk}) OR "Epic Link" in ({chunk})'
            )
            found = [key for key in all_keys(sb, jql) if key not in seen]
            seen.update(found)
            levels.append(found)
    sizes = [len(level) for level in levels[:-1]]
    assert len(sizes) == 5 and sum(sizes) == len(site) == 1500
    assert sizes == [sum(1 for _, lvl in iter_tree(site, "BIG-1") if lvl == n) for n in range(5)]
    assert sizes[1] < sizes[2] < sizes[3] < sizes[4]


def test_generated_tree_shapes() -> None:
    default = JiraSite.generated("cloud")
    assert len(default) == 20000 and max(level for _, level in iter_tree(default, "BIG-1")) == 4
    full = JiraSite.generated("datacenter", total=1000, depth=3, fanout=3, project="T")
    assert len(full) == 1 + 3 + 9 + 27
    levels = dict(iter_tree(full, "T-1"))
    stories = [key for key, level in levels.items() if level == 1]
    assert all(full.issue(key).epic == "T-1" and full.issue(key).parent is None for key in stories)
    assert all(full.issue(key).parent for key, level in levels.items() if level >= 2)
    again = [JiraSite.generated("cloud", total=5000, seed=3).issue("BIG-77") for _ in range(2)]
    assert asdict(again[0]) == asdict(again[1])


def test_generated_tree_of_a_hundred_thousand_issues() -> None:
    site = JiraSite.generated("datacenter", total=100_000, depth=4)
    assert len(site) == 100_000
    assert sum(1 for _ in iter_tree(site, "BIG-1")) == 100_000
