"""The shared Jira rate limit: slots taken a few per round trip to Prefect, never past the limit's burst."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from atlasflow.clients.ratelimit import critical_path
from atlasflow.runtime.ratelimit import JIRA_RATE_LIMIT, RATE_LIMIT_BATCH
from atlasflow.runtime.ratelimit import PrefectRateLimiter as _RateLimiter


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


class BusyPrefect(ThreadingHTTPServer):
    """A proxy in front of the test server answering the first ``busy`` slot requests 503, the way a Prefect
    server on SQLite does while another write holds the database."""

    def __init__(self, upstream: str, busy: int) -> None:
        self.upstream, self.busy, self.answered_busy = upstream, busy, 0
        self.http = httpx.Client(timeout=30)
        super().__init__(("127.0.0.1", 0), _Forward)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api"


class _Forward(BaseHTTPRequestHandler):
    server: BusyPrefect

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.endswith("/concurrency_limits/increment") and self.server.answered_busy < self.server.busy:
            self.server.answered_busy += 1
            status, headers, content = 503, {}, b'{"exception_message": "Service Unavailable"}'
        else:
            sent = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            answer = self.server.http.request(
                self.command, self.server.upstream + self.path.removeprefix("/api"), headers=sent, content=body
            )
            status, content = answer.status_code, answer.content
            headers = {"content-type": answer.headers["content-type"]}
        self.send_response(status)
        for name, value in {**headers, "content-length": str(len(content))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def busy_prefect() -> Iterator[BusyPrefect]:
    proxy = BusyPrefect(str(PREFECT_API_URL.value()), busy=2)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    yield proxy
    proxy.shutdown()
    proxy.http.close()


def test_a_busy_prefect_server_is_asked_again_at_once(limit: None, busy_prefect: BusyPrefect) -> None:
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(JIRA_RATE_LIMIT, limit=50, slot_decay_per_second=0.01)
    with temporary_settings(updates={PREFECT_API_URL: busy_prefect.url}):
        limiter = _RateLimiter(JIRA_RATE_LIMIT)
        started = time.monotonic()
        limiter()
        waited = time.monotonic() - started
    assert busy_prefect.answered_busy == 2
    assert active_slots() == RATE_LIMIT_BATCH  # the busy answers took nothing
    # Not Prefect's client back-off (2 s, then 4 s, each +-20%): every request of an export waits behind this one.
    assert waited < 1.5, waited
