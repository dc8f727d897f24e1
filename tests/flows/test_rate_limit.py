"""The shared Jira rate limit: slots taken a few per round trip to Prefect, never past the limit's burst."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from prefect.client.orchestration import get_client

from atlasflow.blocks.credentials import JIRA_RATE_LIMIT, RATE_LIMIT_BATCH, _RateLimiter
from atlasflow.clients.ratelimit import critical_path


@pytest.fixture
def limit() -> Iterator[None]:
    yield
    with get_client(sync_client=True) as client:
        client.delete_global_concurrency_limit_by_name(JIRA_RATE_LIMIT)


def active_slots() -> int:
    with get_client(sync_client=True) as client:
        return int(client.read_global_concurrency_limit_by_name(JIRA_RATE_LIMIT).active_slots)


def test_slots_are_taken_a_batch_per_round_trip(limit: None) -> None:
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(JIRA_RATE_LIMIT, limit=50, slot_decay_per_second=0.01)
    limiter = _RateLimiter(JIRA_RATE_LIMIT)
    for _ in range(RATE_LIMIT_BATCH + 2):  # two batches: every request has a slot of its own
        limiter()
    assert active_slots() == 2 * RATE_LIMIT_BATCH


def test_a_batch_is_never_larger_than_the_limit(limit: None) -> None:
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(JIRA_RATE_LIMIT, limit=2, slot_decay_per_second=0.01)
    limiter = _RateLimiter(JIRA_RATE_LIMIT)
    limiter()
    limiter()
    assert active_slots() == 2


def test_refused_slots_are_waited_for_and_the_rate_holds(limit: None) -> None:
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(JIRA_RATE_LIMIT, limit=5, slot_decay_per_second=10)
    limiter = _RateLimiter(JIRA_RATE_LIMIT)
    started = time.monotonic()
    for _ in range(25):  # the burst of 5, then 20 more at 10 a second
        limiter()
    assert time.monotonic() - started >= 20 / 10 * 0.9  # slots decay in steps of the server's clock
    assert active_slots() <= 5


def test_requests_on_the_critical_path_take_the_next_free_slot(limit: None) -> None:
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(JIRA_RATE_LIMIT, limit=5, slot_decay_per_second=20)
    limiter = _RateLimiter(JIRA_RATE_LIMIT)
    handed: list[str] = []

    def bulk() -> None:
        for _ in range(10):
            limiter()
            handed.append("bulk")

    crowd = [threading.Thread(target=bulk, daemon=True) for _ in range(8)]
    for thread in crowd:
        thread.start()
    while len(handed) < 10:  # the crowd is queueing for slots
        time.sleep(0.01)
    waiting_from = len(handed)
    with critical_path():
        limiter()
    handed.append("first")
    for thread in crowd:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in crowd), "requests left waiting once the first one was served"
    # At most the slots already in hand and the batch being asked for go before it, not the whole crowd.
    assert handed.index("first") - waiting_from <= RATE_LIMIT_BATCH, handed.index("first") - waiting_from
    assert len(handed) == 81
