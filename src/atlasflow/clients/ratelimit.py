"""What Atlassian's rate-limit headers ask of a client, and a pacer that does it.

* ``429``, and ``503`` with ``Retry-After`` (a throttling proxy), mean "not processed, come back later".
* How long: ``Retry-After`` (seconds or an HTTP date), else ``X-RateLimit-Reset`` (an ISO 8601 time).
* ``X-RateLimit-NearLimit: true`` (Cloud, under 20% of the budget left): slow down before a 429 comes.
* ``RateLimit-Reason: jira-per-issue-on-write``: writes to that one issue are limited; space them.
* Data Center's token bucket: ``X-RateLimit-FillRate`` tokens per ``X-RateLimit-Interval-Seconds``: at
  most that rate.

:class:`Pacer` applies these to every request of one client; its ``on_hold`` hook passes a server-asked
pause on (the credential blocks hand it to the global Prefect rate limit, so every flow slows down).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

_CRITICAL = contextvars.ContextVar("atlasflow_critical_path", default=False)

PER_ISSUE_WRITE = "jira-per-issue-on-write"
#: Spacing between requests while the server says the budget is nearly spent.
NEAR_LIMIT_SPACING = 0.25
#: How long a NearLimit signal slows this client down (renewed by every further signal).
NEAR_LIMIT_WINDOW = 10.0
#: Spacing of writes to one issue after a per-issue write limit, when the server gives no wait.
PER_ISSUE_SPACING = 1.0


@contextmanager
def critical_path() -> Iterator[None]:
    """Requests made inside go first where a shared rate limit makes this client's requests wait.

    For a chain of dependent pages that all other requests wait on (the ids of a large search): spending
    the limit on requests the chain feeds while the chain itself waits only makes everything later.
    """
    token = _CRITICAL.set(True)
    try:
        yield
    finally:
        _CRITICAL.reset(token)


def on_critical_path() -> bool:
    """Whether the current request is inside :func:`critical_path`."""
    return _CRITICAL.get()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return max((when - current).total_seconds(), 0.0)


def is_rate_limited(response: httpx.Response) -> bool:
    """A 429, or a 503 announcing when to come back (treated the same: the request was not processed)."""
    return response.status_code == 429 or (response.status_code == 503 and "Retry-After" in response.headers)


def server_wait(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds the server asks to wait: ``Retry-After``, else ``X-RateLimit-Reset``; ``None`` if neither."""
    wait = parse_retry_after(response.headers.get("Retry-After"), now)
    if wait is not None:
        return wait
    reset = response.headers.get("X-RateLimit-Reset")
    if not reset:
        return None
    try:
        when = datetime.fromisoformat(reset.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def fill_rate_spacing(response: httpx.Response) -> float | None:
    """Seconds between requests that Data Center's ``FillRate`` per ``Interval-Seconds`` allows."""
    try:
        rate = float(response.headers["X-RateLimit-FillRate"])
        interval = float(response.headers["X-RateLimit-Interval-Seconds"])
    except (KeyError, ValueError):
        return None
    return interval / rate if rate > 0 and interval > 0 else None


class Pacer:
    """Spaces one client's requests as the server's rate-limit headers ask (thread-safe).

    Args:
        on_hold: Called with the seconds of a server-asked pause (e.g. to hold a shared rate limit).
    """

    def __init__(self, on_hold: Callable[[float], None] | None = None) -> None:
        self.on_hold = on_hold
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._spacing = 0.0
        self._spacing_until = 0.0
        self._next_slot = 0.0
        self._issue_spacing: dict[str, float] = {}
        self._issue_next: dict[str, float] = {}

    def before(self, method: str, path: str) -> None:
        """Sleep until this request may go."""
        write = method.upper() not in ("GET", "HEAD", "OPTIONS")
        with self._lock:
            now = time.monotonic()
            start = max(now, self._paused_until)
            if self._spacing and now < self._spacing_until:
                start = max(start, self._next_slot)
                self._next_slot = start + self._spacing
            if write and path in self._issue_spacing:
                start = max(start, self._issue_next.get(path, 0.0))
                self._issue_next[path] = start + self._issue_spacing[path]
        if start > now:
            time.sleep(start - now)

    def observe(self, method: str, path: str, response: httpx.Response) -> None:
        """Learn from a response's rate-limit headers."""
        headers = response.headers
        now = time.monotonic()
        hold = None
        with self._lock:
            if headers.get("X-RateLimit-NearLimit", "").lower() == "true":
                self._slow(NEAR_LIMIT_SPACING, now + NEAR_LIMIT_WINDOW)
            spacing = fill_rate_spacing(response)
            if spacing is not None:
                self._slow(spacing, now + max(NEAR_LIMIT_WINDOW, spacing * 10))
            if is_rate_limited(response):
                wait = server_wait(response)
                if headers.get("RateLimit-Reason") == PER_ISSUE_WRITE:
                    self._issue_spacing[path] = max(wait or 0.0, PER_ISSUE_SPACING)
                elif wait:
                    self._paused_until = max(self._paused_until, now + wait)
                    hold = wait
        if hold is not None and self.on_hold is not None:
            self.on_hold(hold)

    def _slow(self, spacing: float, until: float) -> None:
        """Space requests ``spacing`` apart until ``until``, starting with the next one (call with the lock)."""
        now = time.monotonic()
        self._spacing = max(spacing, self._spacing) if self._spacing_until > now else spacing
        self._spacing_until = until
        self._next_slot = max(self._next_slot, now + self._spacing)
