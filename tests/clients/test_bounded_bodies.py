"""Response bodies are bounded over real HTTP: a gzip bomb, an oversized body and a deeply nested body each end
in one line naming the endpoint, without holding the whole thing in memory or crashing with RecursionError."""

from __future__ import annotations

import tracemalloc
from typing import Literal

import pytest

from atlasflow.clients.http import MAX_BODY_BYTES, ApiClient, RetryPolicy, error_detail
from atlasflow.clients.jira import JiraClient
from atlasflow.errors import ApiError
from atlasflow.reports.pages import PageReader
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.core import Faults

MIB = 1 << 20
ONCE = RetryPolicy(attempts=1)
SEARCH = "/rest/api/3/search/jql"


def client(sb: Sandbox, max_body_bytes: int = MAX_BODY_BYTES) -> ApiClient:
    return ApiClient(
        "Jira", sb.url, auth=("demo@example.com", "sandbox-token"), retry=ONCE, max_body_bytes=max_body_bytes
    )


def peak_while(call: object) -> tuple[int, ApiError]:
    """Peak traced memory while ``call()`` runs, and the error it raised."""
    tracemalloc.start()
    try:
        with pytest.raises(ApiError) as caught:
            call()  # type: ignore[operator]
        return tracemalloc.get_traced_memory()[1], caught.value
    finally:
        tracemalloc.stop()


def test_a_gzip_bomb_is_stopped_at_the_cap_without_inflating_the_rest(cloud_sandbox: Sandbox) -> None:
    inflated = 8 * MAX_BODY_BYTES
    cloud_sandbox.state.faults = Faults(big_body_mib=inflated // MIB, path_prefix=SEARCH)
    api = client(cloud_sandbox)
    peak, error = peak_while(lambda: api.get_json(SEARCH, {"jql": "project = DEMO"}))
    assert str(error).startswith(f"Jira answered 200 to GET {SEARCH}: ")
    assert f"{MAX_BODY_BYTES // MIB} MiB" in str(error) and "\n" not in str(error)
    assert peak < MAX_BODY_BYTES + 16 * MIB < inflated // 4
    assert api.get_json("/rest/api/3/myself")["emailAddress"] == "demo@example.com"  # the client goes on


@pytest.mark.parametrize(
    ("encoding", "said"),
    [("gzip", "body decompressed larger"), ("identity", "body on the wire larger"), ("sized", "(Content-Length)")],
)
def test_a_body_over_a_clients_own_cap_is_refused_once(cloud_sandbox: Sandbox, encoding: str, said: str) -> None:
    cloud_sandbox.state.faults = Faults(big_body_mib=64, big_body_encoding=encoding, path_prefix=SEARCH)  # type: ignore[arg-type]
    api = client(cloud_sandbox, max_body_bytes=4 * MIB)
    peak, error = peak_while(lambda: api.get_json(SEARCH))
    assert str(error).startswith(f"Jira answered 200 to GET {SEARCH}: ") and said in str(error)
    assert "this client's cap of 4 MiB (max_body_bytes)" in str(error)
    assert peak < 12 * MIB
    assert api.requests_made == 1  # not retried: it would be as large again


def test_a_body_within_the_cap_is_read_whole_in_either_encoding(cloud_sandbox: Sandbox) -> None:
    encodings: tuple[Literal["gzip", "identity", "sized"], ...] = ("gzip", "identity", "sized")
    for encoding in encodings:
        cloud_sandbox.state.faults = Faults(big_body_mib=3, big_body_encoding=encoding)
        body = client(cloud_sandbox, max_body_bytes=4 * MIB).get_json(SEARCH)
        assert body["issues"] == [] and len(body["padding"]) > 3 * MIB - 100


@pytest.mark.parametrize("decoder", ["default", "page reader"])
def test_a_deeply_nested_body_is_an_error_naming_the_endpoint_not_a_recursion_error(
    cloud_sandbox: Sandbox, decoder: str
) -> None:
    cloud_sandbox.state.faults = Faults(deep_body=5000, path_prefix=SEARCH)
    api = client(cloud_sandbox)
    with pytest.raises(ApiError) as caught:
        if decoder == "default":
            api.get_json(SEARCH, {"jql": "project = DEMO"})
        else:
            list(JiraClient(api, "cloud").search("project = DEMO", ["summary"], PageReader(["summary"])))
    message = str(caught.value)
    assert message.startswith("Jira answered 200 to ") and SEARCH in message
    assert "nested" in message and "\n" not in message


def test_a_deeply_nested_body_is_quoted_in_an_error_not_a_recursion_error(cloud_sandbox: Sandbox) -> None:
    cloud_sandbox.state.faults = Faults(deep_body=5000, path_prefix=SEARCH)
    response = client(cloud_sandbox).request("GET", SEARCH)
    assert error_detail(response).startswith('{"isLast": true, "issues": [], "deep": [[[')
