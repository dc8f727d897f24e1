"""Credential blocks: round trip through a Prefect server, and the token never shows."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL

from atlasflow.blocks import JiraCredentials
from atlasflow.errors import ApiError
from atlasflow.runtime.ratelimit import JIRA_RATE_LIMIT
from atlasflow.sandbox.app import Sandbox

SECRET = "tok-RECOGNISABLE-0123456789"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://acme.atlassian.net", "cloud"),
        ("https://acme.atlassian.net/wiki", "cloud"),
        ("https://jira.acme.com", "datacenter"),
        ("http://127.0.0.1:8765", "datacenter"),
    ],
)
def test_auto_deployment_follows_the_host(url: str, expected: str) -> None:
    assert JiraCredentials(url=url, token=SECRET).resolved_deployment() == expected


def test_explicit_deployment_wins() -> None:
    assert JiraCredentials(url="http://127.0.0.1", token=SECRET, deployment="cloud").resolved_deployment() == "cloud"


def test_round_trip_keeps_the_secret_out_of_sight(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    JiraCredentials(url="https://acme.atlassian.net", username="me@acme.com", token=SECRET).save(
        "secret-check", overwrite=True
    )
    loaded = JiraCredentials.load("secret-check")
    assert loaded.token.get_secret_value() == SECRET
    assert loaded.username == "me@acme.com"
    assert SECRET not in repr(loaded) and SECRET not in str(loaded)
    assert SECRET not in caplog.text

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    inspected = subprocess.run(
        [sys.executable, "-m", "prefect", "block", "inspect", "atlasflow-jira-credentials/secret-check"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert inspected.returncode == 0, inspected.stderr
    assert "secret-check" in inspected.stdout
    assert SECRET not in inspected.stdout + inspected.stderr


def test_bearer_and_basic_auth_reach_the_site(dc_sandbox: Sandbox) -> None:
    bearer = JiraCredentials(url=dc_sandbox.url, token="sandbox-token").get_client()
    basic = JiraCredentials(url=dc_sandbox.url, username="demo@example.com", token="sandbox-token").get_client()
    wrong = JiraCredentials(url=dc_sandbox.url, username="demo@example.com", token=SECRET).get_client()
    try:
        assert bearer.myself()["displayName"] == basic.myself()["displayName"] == "Demo Admin"
        with pytest.raises(ApiError) as failure:
            wrong.myself()
        assert failure.value.status == 401
        assert SECRET not in str(failure.value)
    finally:
        for client in (bearer, basic, wrong):
            client.close()


def test_every_jira_request_takes_a_slot_of_the_shared_rate_limit(cloud_site: Sandbox, tmp_path: Path) -> None:
    from atlasflow.flows.jira_export import jira_export

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(JIRA_RATE_LIMIT, limit=10_000, slot_decay_per_second=0.01)
        try:
            result = jira_export(root_tickets=["DEMO-1"], output_dir=str(tmp_path))
            limit = client.read_global_concurrency_limit_by_name(JIRA_RATE_LIMIT)
        finally:
            client.delete_global_concurrency_limit_by_name(JIRA_RATE_LIMIT)
    jira_requests = len(cloud_site.state.log.matching("/rest/"))
    assert jira_requests == result["requests"] > 0
    assert limit.active_slots >= jira_requests - 1  # slots decay slowly: each request took one


def test_a_server_asked_pause_is_held_on_the_shared_rate_limit(cloud_site: Sandbox) -> None:
    """A 429 seen by one client occupies the slots its Retry-After is worth, so every flow slows down."""
    from atlasflow.sandbox.core import Faults

    name = "atlasflow-hold-check"
    cloud_site.state.faults = Faults(rate_429=0.5, retry_after=2, seed=3, path_prefix="/rest/api/3/myself")
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, limit=100, slot_decay_per_second=5)
        try:
            credentials = JiraCredentials.load("jira")
            credentials.rate_limit = name
            jira = credentials.get_client()
            for _ in range(4):
                jira.myself()
            active = client.read_global_concurrency_limit_by_name(name).active_slots
        finally:
            client.delete_global_concurrency_limit_by_name(name)
    limited = [e for e in cloud_site.state.log.entries if e.status == 429]
    assert limited, "the seed should have drawn a 429"
    assert active >= 5  # 2 s at 5 slots/s were held on top of one slot per request (some have decayed)
