"""HTTP plumbing shared by the Atlassian clients: auth, timeouts, transient-failure retries, clear errors.

No Prefect import here: these clients work the same from a flow, a script or a test.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 120.0


class AtlassianError(Exception):
    """A request that failed for good; the message quotes what the server said."""

    def __init__(self, service: str, method: str, path: str, status: int | None, detail: str) -> None:
        self.service = service
        self.method = method
        self.path = path
        self.status = status
        self.detail = detail
        where = f"{method} {path}"
        prefix = f"{service} answered {status} to {where}" if status else f"{service}: {where} failed"
        super().__init__(f"{prefix}: {detail}")


class TransientError(AtlassianError):
    """Still failing after every retry (rate limiting, 5xx, dropped connections)."""


def error_detail(response: httpx.Response) -> str:
    """The human part of an Atlassian or Mattermost error body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict):
        parts: list[str] = [str(m) for m in body.get("errorMessages") or []]
        errors = body.get("errors")
        if isinstance(errors, dict):
            parts += [f"{k}: {v}" for k, v in errors.items()]
        if body.get("message"):
            parts.append(str(body["message"]))
        if parts:
            return "; ".join(parts)
    return str(body)[:500]


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried.

    Attributes:
        attempts: Total tries per request, the first included.
        backoff: Base of the exponential backoff in seconds (jittered).
        max_backoff: Ceiling of one backoff sleep.
    """

    attempts: int = 6
    backoff: float = 0.5
    max_backoff: float = 30.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), MAX_RETRY_AFTER)
            except ValueError:
                pass
        return min(self.backoff * 2 ** (attempt - 1), self.max_backoff) * random.uniform(0.5, 1.0)


class ApiClient:
    """A thin, thread-safe wrapper over :class:`httpx.Client` for one service.

    Args:
        service: Name used in error messages ("Jira", "Confluence").
        base_url: Site base URL.
        headers: Extra headers (e.g. Authorization for a bearer token).
        auth: Basic auth pair, if any.
        timeout: Seconds for connect/read/write: a blocking call never hangs longer.
        verify: TLS verification.
        retry: Retry policy for transient failures.
        before_request: Called before every attempt (e.g. a shared rate limit).
    """

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float = 30.0,
        verify: bool = True,
        retry: RetryPolicy | None = None,
        before_request: Callable[[], None] | None = None,
    ) -> None:
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.before_request = before_request
        self._count_lock = threading.Lock()
        self.requests_made = 0
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Accept": "application/json", **(headers or {})},
            auth=auth,
            timeout=timeout,
            verify=verify,
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        ok: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send one request, retrying only transient failures.

        Args:
            method: HTTP method.
            path: Path below the base URL.
            params: Query parameters.
            json: JSON body.
            ok: Error statuses the caller handles itself (returned, not raised).

        Raises:
            AtlassianError: For a 4xx/5xx that is not transient, quoting the server's message.
            TransientError: When retries are exhausted.
        """
        for attempt in range(1, self.retry.attempts + 1):
            if self.before_request is not None:
                self.before_request()
            with self._count_lock:  # pages of one level are fetched from several threads
                self.requests_made += 1
            try:
                response = self._http.request(method, path, params=params, json=json)
            except httpx.TransportError as exc:
                if attempt == self.retry.attempts:
                    raise TransientError(self.service, method, path, None, f"{type(exc).__name__}: {exc}") from exc
                delay = self.retry.delay(attempt, None)
                log.warning(
                    "%s %s %s: %s; retry %d in %.1fs",
                    self.service,
                    method,
                    path,
                    type(exc).__name__,
                    attempt,
                    delay,
                )
                time.sleep(delay)
                continue
            if response.is_success or response.status_code in ok:
                return response
            if response.status_code not in RETRYABLE_STATUS:
                raise AtlassianError(self.service, method, path, response.status_code, error_detail(response))
            if attempt == self.retry.attempts:
                raise TransientError(self.service, method, path, response.status_code, error_detail(response))
            delay = self.retry.delay(attempt, response.headers.get("Retry-After"))
            log.warning(
                "%s %s %s: %d; retry %d in %.1fs",
                self.service,
                method,
                path,
                response.status_code,
                attempt,
                delay,
            )
            time.sleep(delay)
        raise AssertionError("unreachable")

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params).json()

    def post_json(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body).json()
