"""The HTTP layer against a misbehaving sandbox: what is retried, what is said, what never leaks."""

from __future__ import annotations

import base64
import logging
import socket
import time
from email.utils import formatdate

import pytest

from atlasflow.clients.http import (
    ApiClient,
    RetryPolicy,
    TransientError,
    redact,
)
from atlasflow.clients.ratelimit import parse_retry_after
from atlasflow.errors import ApiError
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.core import ALL_PERMISSIONS, Account, Faults

FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02)
TOKEN = "tokECHOED9d41c7RECOGNISABLE"
USER = "echo@example.com"


def client(sb: Sandbox, *, bearer: bool = False, timeout: float = 5.0, url: str | None = None) -> ApiClient:
    sb.state.accounts.append(Account(USER, TOKEN, "Echo Target", ALL_PERMISSIONS))
    if bearer:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return ApiClient("Jira", url or sb.url, headers=headers, retry=FAST, timeout=timeout)
    return ApiClient("Jira", url or sb.url, auth=(USER, TOKEN), retry=FAST, timeout=timeout)


def secret_spellings() -> list[str]:
    basic = base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
    return [TOKEN, basic, basic.rstrip("=")]


@pytest.mark.parametrize(("bearer", "status", "method"), [(False, 401, "GET"), (True, 400, "POST")])
def test_a_server_echoing_the_authorization_header_leaks_no_secret(
    cloud_sandbox: Sandbox, caplog: pytest.LogCaptureFixture, bearer: bool, status: int, method: str
) -> None:
    caplog.set_level(logging.DEBUG)
    api = client(cloud_sandbox, bearer=bearer)
    cloud_sandbox.state.faults = Faults(echo_status=status)
    with pytest.raises(ApiError) as caught:
        api.request(method, "/rest/api/3/myself")
    text = f"{caught.value}\n{caught.value.detail}\n{caught.value!r}\n{caplog.text}"
    assert f"Jira answered {status} to {method} /rest/api/3/myself" in text
    assert "Request rejected by gateway" in text and "***" in text, "the echo did not happen: the test proves nothing"
    for spelling in secret_spellings():
        assert spelling not in text
    assert TOKEN not in redact(f"posted later: {TOKEN}"), "the process-wide redaction misses the client's token"


def test_an_echoing_transient_failure_leaks_nothing_in_retry_logs(
    cloud_sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = client(cloud_sandbox)
    cloud_sandbox.state.faults = Faults(echo_status=503)
    with pytest.raises(TransientError) as caught:
        api.get_json("/rest/api/3/myself")
    assert len(cloud_sandbox.state.log.entries) == FAST.attempts
    for spelling in secret_spellings():
        assert spelling not in f"{caught.value}\n{caplog.text}"


@pytest.mark.parametrize(("mode", "said"), [("html", "an HTML page"), ("truncated_json", "invalid JSON")])
def test_a_200_that_is_not_json_names_service_method_and_path(cloud_sandbox: Sandbox, mode: str, said: str) -> None:
    api = client(cloud_sandbox)
    cloud_sandbox.state.faults = Faults(answer_200=mode)  # type: ignore[arg-type]
    with pytest.raises(ApiError) as caught:
        api.get_json("/rest/api/3/myself", {"x": "1"})
    message = str(caught.value)
    assert message.startswith("Jira answered 200 to GET /rest/api/3/myself: expected JSON, got ")
    assert said in message
    if mode == "html":
        assert "Sign in to continue" in message and "<h1>" not in message
    assert len(cloud_sandbox.state.log.entries) == 1


def test_a_url_without_scheme_fails_at_once_as_a_configuration_error(cloud_sandbox: Sandbox) -> None:
    api = client(cloud_sandbox, url="jira.example.invalid")
    started = time.monotonic()
    with pytest.raises(ApiError) as caught:
        api.get_json("/rest/api/3/myself")
    assert not isinstance(caught.value, TransientError)
    assert "UnsupportedProtocol" in str(caught.value) and "configuration error" in str(caught.value)
    assert api.requests_made == 1 and time.monotonic() - started < 1


def test_a_post_is_not_resent_after_a_read_timeout_but_a_get_is(cloud_sandbox: Sandbox) -> None:
    api = client(cloud_sandbox, timeout=0.3)
    cloud_sandbox.state.faults = Faults(stall="POST /rest/api/3/issue", stall_seconds=0.8)
    with pytest.raises(ApiError) as caught:
        api.request("POST", "/rest/api/3/issue", json={"fields": {"summary": "once"}})
    assert not isinstance(caught.value, TransientError) and "ReadTimeout" in str(caught.value)
    assert api.requests_made == 1
    time.sleep(0.6)
    cloud_sandbox.state.faults = Faults(stall="GET /rest/api/3/myself", stall_seconds=0.8)
    assert api.get_json("/rest/api/3/myself")["emailAddress"] == USER
    assert api.requests_made == 3


def test_5xx_is_retried_for_reads_and_idempotent_posts_not_for_plain_posts(cloud_sandbox: Sandbox) -> None:
    api = client(cloud_sandbox)
    cloud_sandbox.state.faults = Faults(rate_5xx=1.0)
    with pytest.raises(ApiError) as once:
        api.request("POST", "/rest/api/3/issue", json={})
    assert not isinstance(once.value, TransientError) and api.requests_made == 1
    with pytest.raises(TransientError):
        api.post_json("/rest/api/3/search/jql", {"jql": "project = DEMO"}, idempotent=True)
    assert api.requests_made == 1 + FAST.attempts
    with pytest.raises(TransientError):
        api.request("PUT", "/rest/api/3/issue/DEMO-1", json={"fields": {}})
    assert api.requests_made == 1 + 2 * FAST.attempts


def test_429_is_retried_for_any_method_honouring_an_http_date_retry_after(cloud_sandbox: Sandbox) -> None:
    api = client(cloud_sandbox)
    cloud_sandbox.state.faults = Faults(rate_429=1.0, retry_after=2, retry_after_date=True)
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        api.request("POST", "/rest/api/3/issue", json={})
    assert caught.value.status == 429 and api.requests_made == FAST.attempts
    # two waits of about 2 s (an HTTP date has whole seconds: 1-2 s each); backoff alone would be ~0.03 s
    assert time.monotonic() - started >= 1.8


def test_connection_refused_is_retried_even_for_a_post() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api = ApiClient("Jira", f"http://127.0.0.1:{port}", auth=(USER, TOKEN), retry=FAST)
    with pytest.raises(TransientError) as caught:
        api.request("POST", "/rest/api/3/issue", json={})
    assert "ConnectError" in str(caught.value) and api.requests_made == FAST.attempts


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert RetryPolicy(max_retry_after=60).delay(1, 3600.0) == 60.0
