"""Atlassian's rate-limit headers: what they ask for, and a client that does it (pure pacing logic, then
through real HTTP against the sandbox's Cloud and Data Center 429s)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from atlasflow.clients.http import ApiClient
from atlasflow.clients.ratelimit import (
    NEAR_LIMIT_SPACING,
    PER_ISSUE_WRITE,
    Pacer,
    fill_rate_spacing,
    is_rate_limited,
    server_wait,
)
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.core import Faults

DEMO = ("demo@example.com", "sandbox-token")


def answer(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers)


def timed(call: object) -> float:
    started = time.monotonic()
    call()  # type: ignore[operator]
    return time.monotonic() - started


def test_a_503_with_retry_after_is_a_rate_limit_and_a_plain_503_is_not() -> None:
    assert is_rate_limited(answer(429))
    assert is_rate_limited(answer(503, **{"Retry-After": "2"}))
    assert not is_rate_limited(answer(503))


def test_the_wait_comes_from_retry_after_else_from_the_reset_time() -> None:
    now = time.time()
    reset = (datetime.fromtimestamp(now, UTC) + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")

    assert server_wait(answer(429, **{"Retry-After": "5", "X-RateLimit-Reset": reset}), now) == 5.0
    assert server_wait(answer(429, **{"X-RateLimit-Reset": reset}), now) == pytest.approx(30.0, abs=0.01)
    assert server_wait(answer(429, **{"X-RateLimit-Reset": "tomorrow"}), now) is None


def test_data_center_fill_rate_is_a_spacing() -> None:
    headers = {"X-RateLimit-FillRate": "5", "X-RateLimit-Interval-Seconds": "1"}

    assert fill_rate_spacing(answer(429, **headers)) == 0.2
    assert fill_rate_spacing(answer(429)) is None


def test_near_limit_spaces_requests() -> None:
    pacer = Pacer()
    pacer.observe("GET", "/a", answer(200, **{"X-RateLimit-NearLimit": "true"}))

    waited = [timed(lambda: pacer.before("GET", "/a")) for _ in range(3)]

    assert all(w >= NEAR_LIMIT_SPACING * 0.9 for w in waited)


def test_a_per_issue_write_limit_spaces_writes_to_that_issue_only() -> None:
    holds: list[float] = []
    pacer = Pacer(holds.append)
    limited = answer(429, **{"Retry-After": "0.3", "RateLimit-Reason": PER_ISSUE_WRITE})
    pacer.observe("PUT", "/rest/api/3/issue/DEMO-2", limited)

    first = timed(lambda: pacer.before("PUT", "/rest/api/3/issue/DEMO-2"))
    second = timed(lambda: pacer.before("PUT", "/rest/api/3/issue/DEMO-2"))
    other = timed(lambda: pacer.before("PUT", "/rest/api/3/issue/DEMO-3"))
    read = timed(lambda: pacer.before("GET", "/rest/api/3/issue/DEMO-2"))

    assert first < 0.1 and second >= 0.9  # at least a second between writes to the one issue
    assert other < 0.1 and read < 0.1
    assert holds == []  # the rest of the site is not limited: nothing to share


def test_a_burst_limit_pauses_the_client_and_is_shared(cloud_sandbox: Sandbox) -> None:
    holds: list[float] = []
    cloud_sandbox.state.faults = Faults(rate_429=0.5, retry_after=1, seed=3)
    api = ApiClient("Jira", cloud_sandbox.url, auth=DEMO, on_hold=holds.append)

    for _ in range(6):
        api.get_json("/rest/api/3/myself")

    limited = [e for e in cloud_sandbox.state.log.entries if e.status == 429]
    assert limited, "the seed should have drawn at least one 429"
    assert len(holds) == len(limited) and all(0.5 <= h <= 1.0 for h in holds)


def test_a_throttled_503_is_retried_even_for_a_write(cloud_sandbox: Sandbox) -> None:
    cloud_sandbox.state.faults = Faults(rate_429=0.5, retry_after=0, throttle_as_503=True, seed=3)
    api = ApiClient("Jira", cloud_sandbox.url, auth=DEMO)

    for n in range(4):
        api.request("PUT", "/rest/api/3/issue/DEMO-2", json={"fields": {"summary": f"Renamed {n}"}})

    deadline = time.monotonic() + 5  # the sandbox logs a request just after answering it
    while (statuses := [e.status for e in cloud_sandbox.state.log.entries if e.method == "PUT"]).count(204) < 4:
        assert time.monotonic() < deadline, statuses
        time.sleep(0.01)
    assert 503 in statuses


def test_data_center_429s_set_the_pace_from_the_fill_rate(dc_sandbox: Sandbox) -> None:
    dc_sandbox.state.faults = Faults(rate_429=0.5, retry_after=0, fill_rate=4, interval_seconds=1, seed=3)
    api = ApiClient("Jira", dc_sandbox.url, auth=DEMO)

    for _ in range(5):
        api.get_json("/rest/api/2/myself")

    stamps = [e.at for e in dc_sandbox.state.log.entries]
    first_429 = next(i for i, e in enumerate(dc_sandbox.state.log.entries) if e.status == 429)
    gaps = [b - a for a, b in zip(stamps[first_429:], stamps[first_429 + 1 :], strict=False)]
    assert gaps and min(gaps) >= 0.2  # 4 per second: a quarter second apart, a little jitter allowed
