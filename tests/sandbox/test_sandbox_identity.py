"""The sandbox's Atlassian identity over real HTTP: tenant_info, the api.atlassian.com gateway, scoped tokens,
OAuth 2.0 token endpoints with expiring tokens, and Confluence Cloud's REST API v2 pages."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.confluence import SPACE_ID, TEAM_ROSTER_ID
from atlasflow.sandbox.core import DEMO_CLOUD_ID

CLASSIC = ("demo@example.com", "sandbox-token")
SCOPED = ("demo@example.com", "sandbox-scoped-token")
JIRA_GW = f"/ex/jira/{DEMO_CLOUD_ID}"
WIKI_GW = f"/ex/confluence/{DEMO_CLOUD_ID}"


def get(sb: Sandbox, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(sb.url + path, timeout=30, **kwargs)


def oauth_token(sb: Sandbox, **grant: str) -> httpx.Response:
    body = {
        "grant_type": "client_credentials",
        "client_id": "sandbox-client-id",
        "client_secret": "sandbox-client-secret",
    }
    return httpx.post(sb.oauth_token_url, data=body | grant, timeout=30)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tenant_info_needs_no_credentials(cloud_sandbox: Sandbox) -> None:
    assert get(cloud_sandbox, "/_edge/tenant_info").json() == {"cloudId": DEMO_CLOUD_ID}


def test_classic_tokens_pass_at_the_site_and_scoped_tokens_through_the_gateway_only(cloud_sandbox: Sandbox) -> None:
    myself = "/rest/api/3/myself"

    assert get(cloud_sandbox, myself, auth=CLASSIC).status_code == 200
    assert get(cloud_sandbox, myself, auth=SCOPED).status_code == 401
    assert get(cloud_sandbox, JIRA_GW + myself, auth=SCOPED).status_code == 200
    refused = get(cloud_sandbox, JIRA_GW + myself, auth=CLASSIC)
    assert (refused.status_code, refused.json()) == (401, {"code": 401, "message": "Unauthorized"})


@pytest.mark.parametrize(
    "path",
    ["/ex/jira/not-the-id/rest/api/3/myself", f"{JIRA_GW}/wiki/api/v2/pages/1", f"{WIKI_GW}/rest/api/3/myself"],
)
def test_the_gateway_knows_its_products_and_the_cloud_id(cloud_sandbox: Sandbox, path: str) -> None:
    assert get(cloud_sandbox, path, auth=SCOPED).status_code == 404


def test_the_gateway_refuses_v1_content_but_serves_v2_pages(cloud_sandbox: Sandbox) -> None:
    v1 = get(cloud_sandbox, f"{WIKI_GW}/wiki/rest/api/content/{TEAM_ROSTER_ID}", auth=SCOPED)
    v2 = get(cloud_sandbox, f"{WIKI_GW}/wiki/api/v2/pages/{TEAM_ROSTER_ID}", auth=SCOPED)
    attachments = get(cloud_sandbox, f"{WIKI_GW}/wiki/rest/api/content/{TEAM_ROSTER_ID}/child/attachment", auth=SCOPED)

    assert (v1.status_code, v1.json()) == (401, {"code": 401, "message": "Unauthorized; scope does not match"})
    assert v2.status_code == 200 and v2.json()["id"] == TEAM_ROSTER_ID
    assert attachments.status_code != 401
    assert get(cloud_sandbox, f"/wiki/rest/api/content/{TEAM_ROSTER_ID}", auth=CLASSIC).status_code == 200


def test_cloud_access_tokens_pass_the_gateway_only_and_expire(cloud_sandbox: Sandbox) -> None:
    cloud_sandbox.state.tokens.ttl_seconds = 0.5
    answer = httpx.post(
        cloud_sandbox.oauth_token_url,
        json={
            "grant_type": "client_credentials",
            "client_id": "sandbox-client-id",
            "client_secret": "sandbox-client-secret",
        },
        timeout=30,
    ).json()
    token = answer["access_token"]

    assert answer["token_type"] == "Bearer" and isinstance(answer["expires_in"], int)
    assert get(cloud_sandbox, f"{JIRA_GW}/rest/api/3/myself", headers=bearer(token)).status_code == 200
    assert get(cloud_sandbox, "/rest/api/3/myself", headers=bearer(token)).status_code == 401
    time.sleep(0.6)
    assert get(cloud_sandbox, f"{JIRA_GW}/rest/api/3/myself", headers=bearer(token)).status_code == 401


@pytest.mark.parametrize(
    ("grant", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "access_denied"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ],
)
def test_the_cloud_token_endpoint_refuses_bad_grants(
    cloud_sandbox: Sandbox, grant: dict[str, str], status: int, error: str
) -> None:
    answer = oauth_token(cloud_sandbox, **grant)

    assert (answer.status_code, answer.json()["error"]) == (status, error)


def test_data_center_service_accounts_get_site_tokens_from_a_form(dc_sandbox: Sandbox) -> None:
    answer = oauth_token(dc_sandbox)
    as_json = httpx.post(dc_sandbox.oauth_token_url, json={"grant_type": "client_credentials"}, timeout=30)

    assert answer.status_code == 200 and "refresh_token" not in answer.json()
    assert get(dc_sandbox, "/rest/api/2/myself", headers=bearer(answer.json()["access_token"])).status_code == 200
    assert as_json.status_code == 400
    assert oauth_token(dc_sandbox, client_secret="wrong").json()["error"] == "invalid_client"


def test_data_center_has_no_gateway(dc_sandbox: Sandbox) -> None:
    assert get(dc_sandbox, "/_edge/tenant_info").status_code == 404
    assert get(dc_sandbox, f"{JIRA_GW}/rest/api/2/myself", auth=CLASSIC).status_code == 404


def test_v2_page_has_its_body_only_when_asked(cloud_sandbox: Sandbox) -> None:
    bare = get(cloud_sandbox, f"/wiki/api/v2/pages/{TEAM_ROSTER_ID}", auth=CLASSIC).json()
    full = get(cloud_sandbox, f"/wiki/api/v2/pages/{TEAM_ROSTER_ID}?body-format=storage", auth=CLASSIC).json()

    assert bare["body"] == {} and bare["spaceId"] == str(SPACE_ID) and bare["status"] == "current"
    assert full["body"]["storage"]["representation"] == "storage"
    assert "<table" in full["body"]["storage"]["value"]
    assert full["_links"]["base"] == f"{cloud_sandbox.url}/wiki"


def test_v2_write_is_version_checked(cloud_sandbox: Sandbox) -> None:
    url = f"{cloud_sandbox.url}/wiki/api/v2/pages/{TEAM_ROSTER_ID}"
    page = httpx.get(url, params={"body-format": "storage"}, auth=CLASSIC, timeout=30).json()
    payload = {
        "id": TEAM_ROSTER_ID,
        "status": "current",
        "title": page["title"],
        "body": {"representation": "storage", "value": "<p>new</p>"},
        "version": {"number": page["version"]["number"], "message": "stale"},
    }

    stale = httpx.put(url, json=payload, auth=CLASSIC, timeout=30)
    no_status = httpx.put(url, json={**payload, "status": None}, auth=CLASSIC, timeout=30)
    written = httpx.put(
        url, json={**payload, "version": {"number": page["version"]["number"] + 1}}, auth=CLASSIC, timeout=30
    )

    assert stale.status_code == 409 and stale.json()["errors"][0]["code"] == "CONFLICT"
    assert no_status.status_code == 400
    assert written.status_code == 200 and written.json()["version"]["number"] == page["version"]["number"] + 1
    assert cloud_sandbox.confluence is not None
    assert cloud_sandbox.confluence.page(TEAM_ROSTER_ID).body == "<p>new</p>"


def test_v2_finds_pages_by_space_and_title(cloud_sandbox: Sandbox) -> None:
    spaces = get(cloud_sandbox, "/wiki/api/v2/spaces?keys=REP", auth=CLASSIC).json()["results"]
    pages = get(cloud_sandbox, f"/wiki/api/v2/pages?space-id={spaces[0]['id']}&title=Team roster", auth=CLASSIC).json()[
        "results"
    ]

    assert [s["key"] for s in spaces] == ["REP"]
    assert [p["id"] for p in pages] == [TEAM_ROSTER_ID]
