"""Each credential kind against the sandbox over real HTTP: classic and scoped API tokens, Cloud and Data
Center service accounts (OAuth 2.0 client credentials), Data Center PATs; routes, renewal and the errors."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import SecretStr

from atlasflow.blocks import ConfluenceCredentials, JiraCredentials
from atlasflow.clients.auth import AuthenticationError
from atlasflow.demo import SandboxAuth, sandbox_credentials
from atlasflow.formats.confluence_tables import read_table
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.confluence import COLLEAGUE_EDIT, TEAM_ROSTER_ID
from atlasflow.sandbox.core import DEMO_CLOUD_ID

GATEWAY_JIRA = f"/ex/jira/{DEMO_CLOUD_ID}"
GATEWAY_WIKI = f"/ex/confluence/{DEMO_CLOUD_ID}"


def jira(sb: Sandbox, auth: SandboxAuth, **overrides: Any) -> JiraCredentials:
    return JiraCredentials(url=sb.jira_url, rate_limit=None, **(sandbox_credentials(sb, auth) | overrides))


def confluence(sb: Sandbox, auth: SandboxAuth, **overrides: Any) -> ConfluenceCredentials:
    return ConfluenceCredentials(url=sb.confluence_url, **(sandbox_credentials(sb, auth) | overrides))


def paths(sb: Sandbox, at_least: int = 0) -> list[str]:
    """``STATUS METHOD path`` of every request the sandbox answered, in order (waiting for ``at_least`` of
    them: the sandbox logs a request just after answering it)."""
    deadline = time.monotonic() + 5
    while len(sb.state.log.entries) < at_least and time.monotonic() < deadline:
        time.sleep(0.01)
    return [f"{e.status} {e.method} {e.path}" for e in sb.state.log.entries]


def test_classic_token_stays_at_the_site(cloud_sandbox: Sandbox) -> None:
    client = jira(cloud_sandbox, "token").get_client()

    assert client.myself()["displayName"] == "Demo Admin"
    assert len(list(client.search("project = DEMO", ["summary"]))) > 0

    assert all(not p.split()[2].startswith(("/ex/", "/_edge")) for p in paths(cloud_sandbox))
    assert all(p.startswith("200") for p in paths(cloud_sandbox))


def test_scoped_token_finds_the_gateway_once_and_keeps_it(cloud_sandbox: Sandbox) -> None:
    client = jira(cloud_sandbox, "scoped").get_client()

    assert client.myself()["displayName"] == "Demo Admin"
    assert client.issue("DEMO-1", ["summary"])["key"] == "DEMO-1"

    assert paths(cloud_sandbox, 4) == [
        "401 GET /rest/api/3/myself",
        "200 GET /_edge/tenant_info",
        f"200 GET {GATEWAY_JIRA}/rest/api/3/myself",
        f"200 GET {GATEWAY_JIRA}/rest/api/3/issue/DEMO-1",
    ]
    assert client.api.base_url == cloud_sandbox.url  # links are made from the site, never the gateway


def test_a_configured_cloud_id_saves_the_lookup(cloud_sandbox: Sandbox) -> None:
    jira(cloud_sandbox, "scoped", cloud_id=DEMO_CLOUD_ID).get_client().myself()

    assert "200 GET /_edge/tenant_info" not in paths(cloud_sandbox, 2)


def test_scoped_token_reads_and_writes_confluence_pages_through_v2_on_the_gateway(cloud_sandbox: Sandbox) -> None:
    client = confluence(cloud_sandbox, "scoped").get_client()
    page = client.get_page(TEAM_ROSTER_ID)
    written = client.put_page(page, page.body + "<p>added</p>", "atlasflow test")

    assert written.version == page.version + 1
    assert cloud_sandbox.confluence is not None
    assert cloud_sandbox.confluence.page(TEAM_ROSTER_ID).body == page.body + "<p>added</p>"
    assert paths(cloud_sandbox, 4)[-2:] == [
        f"200 GET {GATEWAY_WIKI}/wiki/api/v2/pages/{TEAM_ROSTER_ID}",
        f"200 PUT {GATEWAY_WIKI}/wiki/api/v2/pages/{TEAM_ROSTER_ID}",
    ]


def test_a_concurrent_edit_on_v2_is_reread_and_merged(cloud_sandbox: Sandbox) -> None:
    client = confluence(cloud_sandbox, "token").get_client()
    cloud_sandbox.state.faults.concurrent_edits = 1

    def add_row(page: Any) -> tuple[str, None]:
        at = page.body.index("</tbody>")
        return page.body[:at] + "<tr><td><p>DAN</p></td></tr>" + page.body[at:], None

    outcome = client.edit_page(TEAM_ROSTER_ID, add_row)

    assert outcome.written and outcome.attempts == 2
    assert cloud_sandbox.confluence is not None
    body = cloud_sandbox.confluence.page(TEAM_ROSTER_ID).body
    assert COLLEAGUE_EDIT.format(number=2) in body and "<p>DAN</p>" in body
    assert [r["Key"] for r in read_table(body, 0).rows][-1] == "DAN"
    assert f"409 PUT /wiki/api/v2/pages/{TEAM_ROSTER_ID}" in paths(cloud_sandbox, 4)


def test_data_center_pages_stay_on_v1(dc_sandbox: Sandbox) -> None:
    client = confluence(dc_sandbox, "token").get_client()
    client.get_page(TEAM_ROSTER_ID)

    assert paths(dc_sandbox, 1) == [f"200 GET /rest/api/content/{TEAM_ROSTER_ID}"]


def test_cloud_service_account_gets_one_token_and_uses_the_gateway(cloud_sandbox: Sandbox) -> None:
    credentials = jira(cloud_sandbox, "oauth")
    client = credentials.get_client()
    client.myself()
    client.issue("DEMO-1")
    found = confluence(cloud_sandbox, "oauth").get_client().find_page("REP", "Team roster")

    assert found is not None and found.id == TEAM_ROSTER_ID
    assert paths(cloud_sandbox, 8)[:4] == [
        "200 GET /_edge/tenant_info",
        "200 POST /oauth/token",
        f"200 GET {GATEWAY_JIRA}/rest/api/3/myself",
        f"200 GET {GATEWAY_JIRA}/rest/api/3/issue/DEMO-1",
    ]
    assert cloud_sandbox.state.tokens.issued == 2  # one per client: Jira's and Confluence's


def test_an_access_token_is_renewed_before_it_expires(cloud_sandbox: Sandbox) -> None:
    cloud_sandbox.state.tokens.ttl_seconds = 1.0
    client = jira(cloud_sandbox, "oauth", cloud_id=DEMO_CLOUD_ID).get_client()
    client.myself()
    time.sleep(1.0)
    client.myself()

    assert cloud_sandbox.state.tokens.issued == 2
    assert not [p for p in paths(cloud_sandbox, 4) if p.startswith("401")]


def test_a_refused_access_token_is_renewed_once(cloud_sandbox: Sandbox) -> None:
    client = jira(cloud_sandbox, "oauth", cloud_id=DEMO_CLOUD_ID).get_client()
    client.myself()
    cloud_sandbox.state.tokens.revoke_all()  # e.g. the credential was rotated, or the server restarted
    client.myself()

    assert paths(cloud_sandbox, 5)[-3:] == [
        f"401 GET {GATEWAY_JIRA}/rest/api/3/myself",
        "200 POST /oauth/token",
        f"200 GET {GATEWAY_JIRA}/rest/api/3/myself",
    ]


def test_data_center_service_account_signs_in_at_the_site(dc_sandbox: Sandbox) -> None:
    assert jira(dc_sandbox, "oauth").get_client().myself()["displayName"] == "Demo Admin"
    assert confluence(dc_sandbox, "oauth").get_client().get_page(TEAM_ROSTER_ID).id == TEAM_ROSTER_ID

    assert paths(dc_sandbox, 4) == [
        "200 POST /rest/oauth2/latest/token",
        "200 GET /rest/api/2/myself",
        "200 POST /rest/oauth2/latest/token",
        f"200 GET /rest/api/content/{TEAM_ROSTER_ID}",
    ]


def test_data_center_pat(dc_sandbox: Sandbox) -> None:
    credentials = jira(dc_sandbox, "token")

    assert credentials.credential_kind() == "pat"
    assert credentials.get_client().myself()["displayName"] == "Demo Admin"


def test_a_refused_api_token_says_where_it_was_tried_and_how_to_rotate(cloud_sandbox: Sandbox) -> None:
    secret = "expired-token-RECOGNISABLE"
    client = jira(cloud_sandbox, "token", token=SecretStr(secret)).get_client()

    with pytest.raises(AuthenticationError) as failure:
        client.myself()

    message = str(failure.value)
    assert failure.value.status == 401
    assert f"the site {cloud_sandbox.url}, then the gateway {cloud_sandbox.url}{GATEWAY_JIRA}" in message
    assert "e-mail + API token" in message and "expire" in message and "atlasflow configure" in message
    assert secret not in message


def test_a_wrong_client_secret_is_named_without_the_secret(cloud_sandbox: Sandbox) -> None:
    secret = "client-secret-RECOGNISABLE"
    client = jira(cloud_sandbox, "oauth", client_secret=SecretStr(secret)).get_client()

    with pytest.raises(AuthenticationError) as failure:
        client.myself()

    message = str(failure.value)
    assert cloud_sandbox.oauth_token_url in message and "access_denied" in message
    assert "service account" in message and "atlasflow configure" in message
    assert secret not in message


def test_a_refused_pat_names_the_credential_kind(dc_sandbox: Sandbox) -> None:
    with pytest.raises(AuthenticationError) as failure:
        jira(dc_sandbox, "token", token=SecretStr("stale-token")).get_client().myself()

    assert f"personal access token at the site {dc_sandbox.url}" in str(failure.value)
    assert "expire" in str(failure.value)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({}, "give a token"),
        ({"client_id": "x"}, "go together"),
        ({"client_secret": SecretStr("x-secret-value")}, "go together"),
    ],
)
def test_a_block_needs_one_complete_way_to_sign_in(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        JiraCredentials(url="https://acme.atlassian.net", **fields)


def test_client_credentials_alone_are_enough() -> None:
    credentials = JiraCredentials(
        url="https://acme.atlassian.net", client_id="id", client_secret=SecretStr("secret-12")
    )

    assert credentials.credential_kind() == "oauth"
    assert credentials.auth().site.gateway_base("abc") == "https://api.atlassian.com/ex/jira/abc"


@pytest.mark.parametrize("auth", ["scoped", "oauth"])
def test_attachments_go_through_the_gateway_with_v1_and_link_to_the_site(cloud_sandbox: Sandbox, auth: str) -> None:
    client = confluence(cloud_sandbox, auth).get_client()  # type: ignore[arg-type]
    first = client.upload_attachment(TEAM_ROSTER_ID, "report.xlsx", b"PK one", "application/octet-stream")
    second = client.upload_attachment(TEAM_ROSTER_ID, "report.xlsx", b"PK two", "application/octet-stream")

    assert (first.version, second.version) == (1, 2)
    assert second.download_url.startswith(cloud_sandbox.confluence_url + "/download/")
    puts = [p for p in paths(cloud_sandbox, 4) if p.startswith("200 PUT")]
    assert puts == [f"200 PUT {GATEWAY_WIKI}/wiki/rest/api/content/{TEAM_ROSTER_ID}/child/attachment"] * 2


def test_a_stale_v2_write_is_a_version_conflict_quoting_confluence(cloud_sandbox: Sandbox) -> None:
    from atlasflow.clients.confluence import VersionConflict

    client = confluence(cloud_sandbox, "token").get_client()
    page = client.get_page(TEAM_ROSTER_ID)
    client.put_page(page, page.body + "<p>one</p>")

    with pytest.raises(VersionConflict, match="Current version is: 2"):
        client.put_page(page, page.body + "<p>two</p>")
