"""The low-severity trust items of issue 27, over real HTTP against the sandbox where the protocol is the subject:
a cloud id that is not a UUID, links a server hands out on another host, secrets spelled out by scrubbing inside
words, and an attachment upload whose 503 came after the file was stored."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from atlasflow.blocks import ConfluenceCredentials, JiraCredentials, MattermostBot
from atlasflow.clients.auth import AuthenticationError
from atlasflow.clients.confluence import ConfluenceClient
from atlasflow.clients.http import ApiClient, RetryPolicy, redact, register_secrets, scrub
from atlasflow.demo import DEMO_CLIENT_SECRET, DEMO_SCOPED_TOKEN, DEMO_TOKEN, SandboxAuth, sandbox_credentials
from atlasflow.errors import ApiError
from atlasflow.runtime.notify import scrub_block_secrets as _redact
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.confluence import EXPORT_SUMMARY_ID
from atlasflow.sandbox.core import Faults

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DEMO = ("demo@example.com", DEMO_TOKEN)
FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02)


def logged(sb: Sandbox, at_least: int = 0) -> list[str]:
    """``STATUS METHOD path`` of every request answered (waiting for ``at_least``: logged just after the answer)."""
    deadline = time.monotonic() + 5
    while len(sb.state.log.entries) < at_least and time.monotonic() < deadline:
        time.sleep(0.01)
    return [f"{e.status} {e.method} {e.path}" for e in sb.state.log.entries]


def confluence(sb: Sandbox, auth: SandboxAuth = "token") -> ConfluenceClient:
    return ConfluenceCredentials(url=sb.confluence_url, **sandbox_credentials(sb, auth)).get_client()


# --- 1. the cloud id ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cloud_id",
    [
        "../../rest/api/3/myself",
        "b6f5c3a2-9d41-4e7f-8a2c-5d3e1f0a7b96/../../../other",
        "b6f5c3a2-9d41-4e7f-8a2c-5d3e1f0a7b96?x=",
        "not-a-uuid",
        "b6f5c3a2-9d41-4e7f-8a2c-5d3e1f0a7b96\n",
    ],
)
def test_a_cloud_id_that_is_not_a_uuid_never_reaches_the_gateway(cloud_sandbox: Sandbox, cloud_id: str) -> None:
    cloud_sandbox.state.cloud_id = cloud_id  # what /_edge/tenant_info now reports
    fields = sandbox_credentials(cloud_sandbox, "scoped")
    client = JiraCredentials(url=cloud_sandbox.jira_url, rate_limit=None, **fields)

    with pytest.raises(AuthenticationError) as failure:
        client.get_client().myself()

    message = str(failure.value)
    assert "\n" not in message and "not a cloud id" in message
    assert logged(cloud_sandbox, 2) == ["401 GET /rest/api/3/myself", "200 GET /_edge/tenant_info"]


@pytest.mark.parametrize(
    ("where", "faults", "said"),
    [
        ("/_edge/tenant_info", {"big_body_mib": 64}, "larger than this client's cap of 1 MiB"),
        ("/_edge/tenant_info", {"deep_body": 100_000}, "no cloudId in the answer"),
        ("/oauth/token", {"big_body_mib": 64}, "larger than this client's cap of 1 MiB"),
        ("/oauth/token", {"deep_body": 100_000}, "no access_token in the answer"),
    ],
)
def test_sign_in_answers_are_read_bounded(
    cloud_sandbox: Sandbox, where: str, faults: dict[str, Any], said: str
) -> None:
    """A hostile tenant_info or token endpoint: a gzip bomb stops at 1 MiB, a deep body is no RecursionError."""
    cloud_sandbox.state.faults = Faults(path_prefix=where, **faults)
    kind: SandboxAuth = "scoped" if where == "/_edge/tenant_info" else "oauth"
    client = JiraCredentials(url=cloud_sandbox.jira_url, rate_limit=None, **sandbox_credentials(cloud_sandbox, kind))

    with pytest.raises(AuthenticationError) as failure:
        client.get_client().myself()

    message = str(failure.value)
    assert "\n" not in message and said in message, message


def test_a_configured_cloud_id_must_be_a_uuid() -> None:
    with pytest.raises(ValidationError, match="cloud id"):
        JiraCredentials(url="https://acme.atlassian.net", token=SecretStr(DEMO_TOKEN), cloud_id="acme/../../x")
    upper = "B6F5C3A2-9D41-4E7F-8A2C-5D3E1F0A7B96"
    block = JiraCredentials(url="https://acme.atlassian.net", token=SecretStr(DEMO_TOKEN), cloud_id=upper)
    assert block.cloud_id == upper


# --- 2. links a server hands out ---------------------------------------------------------------------------


@pytest.mark.parametrize("written", ["{path}", "{site}{path}", "{gateway}{path}"])
@pytest.mark.parametrize("auth", ["token", "scoped"])
def test_download_links_on_the_site_or_its_gateway_become_site_links(
    cloud_sandbox: Sandbox, written: str, auth: SandboxAuth
) -> None:
    cloud_sandbox.attachments.download_link = written
    uploaded = confluence(cloud_sandbox, auth).upload_attachment(EXPORT_SUMMARY_ID, "r.xlsx", b"bytes", XLSX)

    assert uploaded.download_url.startswith(f"{cloud_sandbox.confluence_url}/download/attachments/{EXPORT_SUMMARY_ID}/")
    with httpx.Client(auth=DEMO) as http:
        assert http.get(uploaded.download_url).content == b"bytes"


@pytest.mark.parametrize(
    "written",
    [
        "https://attacker.example{path}",
        "//attacker.example{path}",
        "@attacker.example{path}",
        ".attacker.example{path}",
        ":1{path}",
        "javascript:alert(1)//{path}",
    ],
)
def test_download_links_on_any_other_host_are_refused(sandbox: Sandbox, written: str) -> None:
    sandbox.attachments.download_link = written

    with pytest.raises(ApiError) as failure:
        confluence(sandbox).upload_attachment(EXPORT_SUMMARY_ID, "r.xlsx", b"bytes", XLSX)

    message = str(failure.value)
    assert "\n" not in message and "download link" in message and "refused" in message


def test_a_gateway_link_of_another_cloud_id_is_refused(cloud_sandbox: Sandbox) -> None:
    cloud_sandbox.attachments.download_link = "{other_gateway}{path}"

    with pytest.raises(ApiError, match=r"download link.*refused"):
        confluence(cloud_sandbox, "scoped").upload_attachment(EXPORT_SUMMARY_ID, "r.xlsx", b"bytes", XLSX)


def test_a_plain_client_keeps_links_on_its_site(dc_sandbox: Sandbox) -> None:
    plain = ConfluenceClient(ApiClient("Confluence", dc_sandbox.confluence_url, auth=DEMO), "datacenter")
    dc_sandbox.attachments.download_link = "{site}{path}"
    assert plain.upload_attachment(EXPORT_SUMMARY_ID, "a.xlsx", b"a", XLSX).download_url.startswith(dc_sandbox.url)
    dc_sandbox.attachments.download_link = "@attacker.example{path}"
    with pytest.raises(ApiError, match="download link"):
        plain.upload_attachment(EXPORT_SUMMARY_ID, "b.xlsx", b"b", XLSX)


# --- 3. scrubbing whole tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret", "scrubbed"),
    [
        ("unexpected JSON", "expected", "unexpected JSON"),
        ("anexpected8 and expected8", "expected8", "anexpected8 and ***"),
        ("expectedly", "expected", "expectedly"),
        ("got expected, fine", "expected", "got ***, fine"),
        ("Authorization: Bearer tok-RECOGNISABLE; next", "tok-RECOGNISABLE", "Authorization: Bearer ***; next"),
        ("/hooks/abcdefgh12345678?x=1", "abcdefgh12345678", "/hooks/***?x=1"),
        ('{"token":"p@ss word!"}', "p@ss word!", '{"token":"***"}'),
        ("token=abcdefgh12345678&a=b", "abcdefgh12345678", "token=***&a=b"),
    ],
)
def test_secrets_are_scrubbed_as_whole_tokens_only(text: str, secret: str, scrubbed: str) -> None:
    assert scrub(text, {secret}) == scrubbed


def test_the_process_wide_redaction_and_a_blocks_redaction_leave_words_whole() -> None:
    secret = "xpected9"
    register_secrets({secret})
    block = JiraCredentials(url="https://acme.atlassian.net", token=SecretStr(secret))

    for redacted in (redact, lambda text: _redact(text, block)):
        assert redacted("unexpected9 JSON, token xpected9") == "unexpected9 JSON, token ***"


@pytest.mark.parametrize(
    "fields",
    [
        {"token": SecretStr("short")},
        {"username": "me@acme.com", "token": SecretStr("1234567")},
        {"client_id": "id", "client_secret": SecretStr("abc")},
    ],
)
def test_blocks_refuse_secrets_shorter_than_8_characters(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="at least 8 characters") as failure:
        JiraCredentials(url="https://acme.atlassian.net", **fields)
    secret = next(v for v in fields.values() if isinstance(v, SecretStr)).get_secret_value()
    assert secret not in str(failure.value)


def test_a_mattermost_bot_refuses_a_short_token() -> None:
    with pytest.raises(ValidationError, match="at least 8 characters") as failure:
        MattermostBot(url="https://chat.acme.com", token=SecretStr("t0k3n"))
    assert "t0k3n" not in str(failure.value)


def test_the_demo_secrets_are_long_enough() -> None:
    for secret in (DEMO_TOKEN, "viewer-token", DEMO_SCOPED_TOKEN):
        assert JiraCredentials(url="https://acme.atlassian.net", token=SecretStr(secret))
    oauth: dict[str, Any] = {"client_id": "id", "client_secret": SecretStr(DEMO_CLIENT_SECRET)}
    assert JiraCredentials(url="https://acme.atlassian.net", **oauth)


# --- 4. an upload answered 503 after it was stored ----------------------------------------------------------


def fast_client(sb: Sandbox) -> ConfluenceClient:
    return ConfluenceClient(ApiClient("Confluence", sb.confluence_url, auth=DEMO, retry=FAST), sb.mode)


def test_an_upload_stored_then_answered_503_is_found_not_sent_again(sandbox: Sandbox) -> None:
    client = fast_client(sandbox)
    client.upload_attachment(EXPORT_SUMMARY_ID, "r.xlsx", b"first run", XLSX)
    sandbox.attachments.upload_failures = ["store then 503"]
    sandbox.state.log.clear()

    uploaded = client.upload_attachment(EXPORT_SUMMARY_ID, "r.xlsx", b"second run", XLSX)

    [stored] = sandbox.attachments.on_page(EXPORT_SUMMARY_ID)
    assert [v.data for v in stored.versions] == [b"first run", b"second run"]
    assert (uploaded.id, uploaded.version, uploaded.size) == (stored.id, 2, len(b"second run"))
    uploads = [line.split()[0] for line in logged(sandbox) if line.split()[1] in ("PUT", "POST")]
    assert uploads == ["503"], "the stored upload was sent again"


def test_an_upload_answered_503_before_it_was_stored_is_sent_again_once(sandbox: Sandbox) -> None:
    client = fast_client(sandbox)
    sandbox.attachments.upload_failures = ["503"]

    uploaded = client.upload_attachment(EXPORT_SUMMARY_ID, "new.xlsx", b"only run", XLSX)

    [stored] = sandbox.attachments.on_page(EXPORT_SUMMARY_ID)
    assert [v.data for v in stored.versions] == [b"only run"]
    assert (uploaded.id, uploaded.version) == (stored.id, 1)


def test_an_upload_that_keeps_failing_before_storing_gives_up_with_the_servers_answer(dc_sandbox: Sandbox) -> None:
    client = fast_client(dc_sandbox)
    dc_sandbox.attachments.upload_failures = ["503"] * FAST.attempts

    with pytest.raises(ApiError, match="503"):
        client.upload_attachment(EXPORT_SUMMARY_ID, "new.xlsx", b"never", XLSX)

    assert dc_sandbox.attachments.on_page(EXPORT_SUMMARY_ID) == []
    assert [line.split()[:2] for line in logged(dc_sandbox) if " POST " in line] == [["503", "POST"]] * FAST.attempts
