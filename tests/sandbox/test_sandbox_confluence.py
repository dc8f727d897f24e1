"""The Confluence stand-in over real HTTP, in Cloud and Data Center mode, as a product would call it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import requests
from atlassian import Confluence
from atlassian.errors import ApiError
from requests import HTTPError

from atlasflow.sandbox.confluence import (
    BROKEN_PAGE_ID,
    EXPORT_SUMMARY_ID,
    HOME_PAGE_ID,
    JOB_INBOX_ID,
    JOB_RESULTS_ID,
    NO_TABLES_ID,
    RESTRICTED_PAGE_ID,
    TEAM_ROSTER_ID,
    ConfluenceSite,
)

if TYPE_CHECKING:
    from atlasflow.sandbox.app import Sandbox

DEMO = ("demo@example.com", "sandbox-token")
VIEWER = ("viewer@example.com", "viewer-token")


def site(sb: Sandbox) -> ConfluenceSite:
    assert sb.confluence is not None
    return sb.confluence


def content_url(sb: Sandbox, page_id: str) -> str:
    return f"{sb.confluence_url}/rest/api/content/{page_id}"


def client(sb: Sandbox, auth: tuple[str, str] = DEMO) -> Confluence:
    return Confluence(sb.confluence_url, username=auth[0], password=auth[1])


def put_payload(page_id: str, title: str, version: int, body: str) -> dict[str, Any]:
    """Exactly the JSON a v1 page update sends."""
    return {
        "id": page_id,
        "type": "page",
        "title": title,
        "version": {"number": version},
        "body": {"storage": {"value": body, "representation": "storage"}},
    }


def read(sb: Sandbox, page_id: str, auth: tuple[str, str] = DEMO) -> dict[str, Any]:
    response = requests.get(
        content_url(sb, page_id), params={"expand": "body.storage,version"}, auth=auth, timeout=30
    )
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def test_get_with_expand_returns_storage_and_version(sandbox: Sandbox) -> None:
    page = client(sandbox).get_page_by_id(EXPORT_SUMMARY_ID, expand="body.storage,version")

    assert page["id"] == EXPORT_SUMMARY_ID
    assert page["title"] == "Jira export summary"
    assert page["version"]["number"] == 1
    assert page["body"]["storage"]["representation"] == "storage"
    assert page["body"]["storage"]["value"] == site(sandbox).page(EXPORT_SUMMARY_ID).body
    assert "<th><p><strong>Key</strong></p></th>" in page["body"]["storage"]["value"]


def test_get_without_expand_has_no_body(sandbox: Sandbox) -> None:
    response = requests.get(content_url(sandbox, EXPORT_SUMMARY_ID), auth=DEMO, timeout=30)

    data = response.json()
    assert response.status_code == 200
    assert "body" not in data
    assert "body" in data["_expandable"]
    assert data["version"]["number"] == 1  # space, history and version are the default expansions
    assert data["space"]["key"] == "REP"


def test_put_with_the_next_version_writes_a_new_version(sandbox: Sandbox) -> None:
    response = requests.put(
        content_url(sandbox, TEAM_ROSTER_ID),
        json=put_payload(TEAM_ROSTER_ID, "Team roster", 2, "<p>rewritten</p>"),
        auth=DEMO,
        timeout=30,
    )

    assert response.status_code == 200
    assert response.json()["version"]["number"] == 2
    current = site(sandbox).page(TEAM_ROSTER_ID)
    assert (current.number, current.body, current.by) == (2, "<p>rewritten</p>", "Demo Admin")
    assert read(sandbox, TEAM_ROSTER_ID)["body"]["storage"]["value"] == "<p>rewritten</p>"


def test_put_with_a_stale_version_is_409(sandbox: Sandbox) -> None:
    stale = put_payload(TEAM_ROSTER_ID, "Team roster", 1, "<p>stale</p>")

    response = requests.put(content_url(sandbox, TEAM_ROSTER_ID), json=stale, auth=DEMO, timeout=30)
    with pytest.raises(HTTPError) as raised:
        client(sandbox).put(f"rest/api/content/{TEAM_ROSTER_ID}", data=stale)

    assert response.status_code == 409
    assert response.json()["message"] == "Version must be incremented on update. Current version is: 1"
    assert raised.value.response.status_code == 409
    assert site(sandbox).page(TEAM_ROSTER_ID).number == 1


def test_put_without_a_version_is_400(sandbox: Sandbox) -> None:
    payload = put_payload(TEAM_ROSTER_ID, "Team roster", 2, "<p>x</p>")
    del payload["version"]

    response = requests.put(content_url(sandbox, TEAM_ROSTER_ID), json=payload, auth=DEMO, timeout=30)

    assert response.status_code == 400
    assert response.json()["message"] == (
        "Must supply an incremented version when updating Content. No version supplied."
    )
    assert site(sandbox).page(TEAM_ROSTER_ID).number == 1


def test_unknown_page_is_404(sandbox: Sandbox) -> None:
    get = requests.get(content_url(sandbox, "999999"), auth=DEMO, timeout=30)
    put = requests.put(
        content_url(sandbox, "999999"), json=put_payload("999999", "x", 2, "<p />"), auth=DEMO, timeout=30
    )
    with pytest.raises(ApiError):
        client(sandbox).get_page_by_id("999999")

    assert (get.status_code, put.status_code) == (404, 404)
    assert get.json()["message"] == "No content found with id: ContentId{id=999999}"


def test_viewer_may_read_but_not_edit(sandbox: Sandbox) -> None:
    page = read(sandbox, TEAM_ROSTER_ID, auth=VIEWER)

    response = requests.put(
        content_url(sandbox, TEAM_ROSTER_ID),
        json=put_payload(TEAM_ROSTER_ID, "Team roster", page["version"]["number"] + 1, "<p>mine</p>"),
        auth=VIEWER,
        timeout=30,
    )

    assert response.status_code == 403
    assert response.json()["reason"] == "Forbidden"
    assert site(sandbox).page(TEAM_ROSTER_ID).number == 1


def test_restricted_page_is_404_for_whom_may_not_view_it(sandbox: Sandbox) -> None:
    as_viewer = requests.get(content_url(sandbox, RESTRICTED_PAGE_ID), auth=VIEWER, timeout=30)
    found_by_viewer = client(sandbox, VIEWER).get_page_by_title("REP", "Salary bands (restricted)")
    found_by_demo = client(sandbox).get_page_by_title("REP", "Salary bands (restricted)")

    assert as_viewer.status_code == 404
    assert found_by_viewer["results"] == []
    assert [p["id"] for p in found_by_demo["results"]] == [RESTRICTED_PAGE_ID]
    assert read(sandbox, RESTRICTED_PAGE_ID)["id"] == RESTRICTED_PAGE_ID


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic ZGVtb0BleGFtcGxlLmNvbTp3cm9uZw=="},  # demo@example.com:wrong
        {"Authorization": "Bearer not-a-token"},
        {},
    ],
    ids=["basic", "bearer", "none"],
)
def test_bad_credentials_are_401(sandbox: Sandbox, headers: dict[str, str]) -> None:
    response = requests.get(content_url(sandbox, TEAM_ROSTER_ID), headers=headers, timeout=30)

    assert response.status_code == 401
    assert response.json()["statusCode"] == 401


def test_bearer_token_is_accepted(sandbox: Sandbox) -> None:
    response = requests.get(
        content_url(sandbox, TEAM_ROSTER_ID), headers={"Authorization": "Bearer sandbox-token"}, timeout=30
    )

    assert response.status_code == 200


def test_concurrent_edit_fault_makes_the_next_write_409_and_keeps_the_colleagues_edit(
    sandbox: Sandbox,
) -> None:
    page = read(sandbox, JOB_RESULTS_ID)
    requests.post(
        f"{sandbox.url}/_sandbox/faults", json={"concurrent_edits": 1}, timeout=30
    ).raise_for_status()

    write = requests.put(
        content_url(sandbox, JOB_RESULTS_ID),
        json=put_payload(JOB_RESULTS_ID, "Job results", page["version"]["number"] + 1, "<p>ours</p>"),
        auth=DEMO,
        timeout=30,
    )
    after = read(sandbox, JOB_RESULTS_ID)

    assert write.status_code == 409
    assert write.json()["message"] == "Version must be incremented on update. Current version is: 2"
    assert after["version"]["number"] == 2
    assert after["version"]["by"]["displayName"] == "Colleague"
    original = page["body"]["storage"]["value"]
    table_at = original.index("<table")
    expected = (
        original[:table_at] + "<p>Edited concurrently by Colleague (version 2)</p>" + original[table_at:]
    )
    assert after["body"]["storage"]["value"] == expected


def test_concurrent_edit_fault_is_taken_once(sandbox: Sandbox) -> None:
    requests.post(
        f"{sandbox.url}/_sandbox/faults", json={"concurrent_edits": 1}, timeout=30
    ).raise_for_status()
    confluence = client(sandbox)

    with pytest.raises(HTTPError) as raised:
        confluence.update_page(NO_TABLES_ID, "No tables here", "<p>first try</p>")
    confluence.update_page(NO_TABLES_ID, "No tables here", "<p>second try</p>")

    assert raised.value.response.status_code == 409
    versions = site(sandbox).history(NO_TABLES_ID)
    assert [(v.number, v.by) for v in versions] == [(1, "Demo Admin"), (2, "Colleague"), (3, "Demo Admin")]
    assert versions[1].body.endswith(
        "<p>Edited concurrently by Colleague (version 2)</p>"
    )  # no table: at the end
    assert versions[2].body == "<p>second try</p>"


def test_paths_follow_the_mode(sandbox: Sandbox) -> None:
    cloud = requests.get(f"{sandbox.url}/wiki/rest/api/content/{HOME_PAGE_ID}", auth=DEMO, timeout=30)
    datacenter = requests.get(f"{sandbox.url}/rest/api/content/{HOME_PAGE_ID}", auth=DEMO, timeout=30)

    expected = (200, 404) if sandbox.mode == "cloud" else (404, 200)
    assert (cloud.status_code, datacenter.status_code) == expected


def test_a_ten_megabyte_page_round_trips(sandbox: Sandbox) -> None:
    row = "<tr><td><p>DEMO-{0}</p></td><td><p>Ticket {0} with a summary long enough</p></td></tr>"
    rows = "".join(row.format(n) for n in range(120_000))
    body = f"<table><tbody>{rows}</tbody></table>"
    assert len(body.encode()) > 10_000_000

    write = requests.put(
        content_url(sandbox, TEAM_ROSTER_ID),
        json=put_payload(TEAM_ROSTER_ID, "Team roster", 2, body),
        auth=DEMO,
        timeout=120,
    )
    page = read(sandbox, TEAM_ROSTER_ID)

    assert write.status_code == 200
    assert page["version"]["number"] == 2
    assert page["body"]["storage"]["value"] == body


def test_lookup_by_title(sandbox: Sandbox) -> None:
    confluence = client(sandbox)

    found = confluence.get_page_by_title("REP", "Team roster", expand="body.storage,version")

    assert [p["id"] for p in found["results"]] == [TEAM_ROSTER_ID]
    assert found["size"] == 1
    assert found["results"][0]["version"]["number"] == 1
    assert "<th><p><strong>Key</strong></p></th>" in found["results"][0]["body"]["storage"]["value"]
    assert confluence.get_page_id("REP", "No such page") is None
    assert site(sandbox).find("Team roster") == TEAM_ROSTER_ID


def test_demo_pages_sit_at_their_documented_ids(sandbox: Sandbox) -> None:
    demo = site(sandbox)
    titles = {
        HOME_PAGE_ID: "Reporting Home",
        EXPORT_SUMMARY_ID: "Jira export summary",
        JOB_RESULTS_ID: "Job results",
        JOB_INBOX_ID: "Job inbox",
        TEAM_ROSTER_ID: "Team roster",
        NO_TABLES_ID: "No tables here",
        BROKEN_PAGE_ID: "Broken page",
        RESTRICTED_PAGE_ID: "Salary bands (restricted)",
    }

    assert {page_id: demo.page(page_id).title for page_id in titles} == titles
    assert "<table" not in demo.page(NO_TABLES_ID).body
    assert "</table>" not in demo.page(BROKEN_PAGE_ID).body
    ancestors = requests.get(
        content_url(sandbox, JOB_INBOX_ID), params={"expand": "ancestors"}, auth=DEMO, timeout=30
    ).json()["ancestors"]
    assert [a["id"] for a in ancestors] == [HOME_PAGE_ID]


def test_python_edit_and_history(sandbox: Sandbox) -> None:
    demo = site(sandbox)
    page_id = demo.add_page("Scratch", "<p>one</p>")

    demo.edit_page(page_id, "<p>two</p>", by="Carla Costa")

    assert [(v.number, v.body, v.by) for v in demo.history(page_id)] == [
        (1, "<p>one</p>", "Demo Admin"),
        (2, "<p>two</p>", "Carla Costa"),
    ]
    assert read(sandbox, page_id)["version"]["by"]["displayName"] == "Carla Costa"


def test_create_page_over_http(sandbox: Sandbox) -> None:
    confluence = client(sandbox)

    created = confluence.create_page("REP", "Created by a job", "<p>hello</p>", parent_id=HOME_PAGE_ID)
    with pytest.raises(HTTPError) as duplicate:
        confluence.create_page("REP", "Created by a job", "<p>again</p>")

    assert created["version"]["number"] == 1
    assert site(sandbox).page(created["id"]).body == "<p>hello</p>"
    assert duplicate.value.response.status_code == 400
