"""Sandbox plumbing shared by the Jira, Confluence and Mattermost stand-ins.

Faults, authentication and the request log are applied here, once, by one ASGI middleware, so the
product code meets them exactly as it would meet a real site: over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import random
import re
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from email.utils import formatdate
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Mode = Literal["cloud", "datacenter"]

ADMIN_PREFIX = "/_sandbox"


@dataclass
class Faults:
    """Faults injected into requests (admin paths are never affected).

    Attributes:
        latency_ms: Added to every request before it is answered.
        rate_429: Share of requests answered 429 with ``Retry-After``.
        retry_after: Seconds announced in ``Retry-After``.
        retry_after_date: Announce ``Retry-After`` as an HTTP date (that many seconds ahead) instead.
        rate_5xx: Share of requests answered 500 or 503.
        rate_drop: Share of requests whose connection is dropped mid-response.
        concurrent_edits: Number of upcoming Confluence page writes that a "colleague" pre-empts by
            editing the page between the product's read and its write.
        path_prefix: Only requests whose path starts with this are faulted ("" = all).
        seed: Seed of the random draw, so a faulty run is repeatable.
        stall: ``"METHOD /path-prefix"``: the next matching request is held for ``stall_seconds`` before it
            is handled (then handled normally), and :attr:`stalled` is set, so a test can act, e.g. kill
            the client, while that request is in flight. One-shot.
        stall_seconds: How long a stalled request is held.
        echo_status: When set (e.g. 401 or 400), matching requests are answered with this status and an
            error body that echoes the request's headers, ``Authorization`` included, as some proxies and
            API gateways do.
        answer_200: ``"html"``: matching requests get ``200`` with an HTML sign-in page (an SSO proxy in
            front of the site); ``"truncated_json"``: ``200`` with a JSON body cut short.
    """

    latency_ms: float = 0.0
    rate_429: float = 0.0
    retry_after: int = 1
    retry_after_date: bool = False
    rate_5xx: float = 0.0
    rate_drop: float = 0.0
    concurrent_edits: int = 0
    path_prefix: str = ""
    seed: int = 7
    stall: str = ""
    stall_seconds: float = 5.0
    echo_status: int = 0
    answer_200: Literal["", "html", "truncated_json"] = ""

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self.stalled = threading.Event()

    def take_stall(self, method: str, path: str) -> bool:
        """Whether this request is the one to hold (consumes the stall)."""
        with self._lock:
            if not self.stall or not f"{method} {path}".startswith(self.stall):
                return False
            self.stall = ""
        self.stalled.set()
        return True

    def draw(self) -> str | None:
        """Pick the fault for one request: ``"429"``, ``"5xx"``, ``"drop"`` or ``None``."""
        with self._lock:
            x = self._rng.random()
        for name, rate in (("429", self.rate_429), ("5xx", self.rate_5xx), ("drop", self.rate_drop)):
            if x < rate:
                return name
            x -= rate
        return None

    def retry_after_header(self) -> str:
        if self.retry_after_date:
            return formatdate(time.time() + self.retry_after, usegmt=True)
        return str(self.retry_after)

    def pick_5xx(self) -> int:
        with self._lock:
            return self._rng.choice((500, 503))

    def take_concurrent_edit(self) -> bool:
        """Consume one pending concurrent edit, if any."""
        with self._lock:
            if self.concurrent_edits <= 0:
                return False
            self.concurrent_edits -= 1
            return True

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: str
    status: int
    fault: str | None
    user: str | None
    at: float


@dataclass
class RequestLog:
    """Every request the sandbox answered, for tests and benchmarks."""

    entries: list[LoggedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()

    def matching(self, path_prefix: str = "", method: str | None = None) -> list[LoggedRequest]:
        with self._lock:
            return [
                e
                for e in self.entries
                if e.path.startswith(path_prefix) and (method is None or e.method == method)
            ]

    def counters(self) -> dict[str, int]:
        """Requests counted by ``"METHOD path"`` and by status."""
        with self._lock:
            counts = Counter(f"{e.method} {e.path}" for e in self.entries)
            counts.update(f"status {e.status}" for e in self.entries)
            counts["total"] = len(self.entries)
        return dict(counts)


@dataclass
class Account:
    """A sandbox user: Basic auth with ``username``/``token``, or Bearer ``token`` (Data Center PAT)."""

    username: str
    token: str
    display_name: str
    permissions: frozenset[str]


ALL_PERMISSIONS = frozenset(
    {
        "BROWSE_PROJECTS",
        "CREATE_ISSUES",
        "EDIT_ISSUES",
        "DELETE_ISSUES",
        "ASSIGN_ISSUES",
        "TRANSITION_ISSUES",
        "ADD_COMMENTS",
    }
)


def default_accounts() -> list[Account]:
    """The demo accounts: an admin-like user and a read-only viewer."""
    return [
        Account("demo@example.com", "sandbox-token", "Demo Admin", ALL_PERMISSIONS),
        Account("viewer@example.com", "viewer-token", "Vera Viewer", frozenset({"BROWSE_PROJECTS"})),
    ]


def jira_error(status: int, *messages: str, errors: dict[str, str] | None = None) -> JSONResponse:
    """A Jira-shaped error: ``{"errorMessages": [...], "errors": {...}}``."""
    return JSONResponse({"errorMessages": list(messages), "errors": errors or {}}, status_code=status)


def confluence_error(status: int, message: str) -> JSONResponse:
    """A Confluence v1-shaped error body."""
    reasons = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}
    body = {
        "statusCode": status,
        "data": {"authorized": status != 401, "valid": True, "errors": [], "successful": False},
        "message": message,
        "reason": reasons.get(status, "Error"),
    }
    return JSONResponse(body, status_code=status)


def is_confluence_path(path: str) -> bool:
    return path.startswith(("/wiki/", "/rest/api/content"))


_PERMALINK = re.compile(r"^/[^/]+/pl/[^/]+$")


def is_mattermost_path(path: str) -> bool:
    """Webhooks, the bot API and the web app's permalinks ``/{team}/pl/{post_id}``."""
    return path.startswith(("/hooks/", "/api/v4/")) or bool(_PERMALINK.match(path))


def find_account(accounts: list[Account], authorization: str) -> Account | None:
    """The account an ``Authorization`` header proves, if any."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            username, _, token = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        return next((a for a in accounts if a.username == username and a.token == token), None)
    if scheme.lower() == "bearer":
        return next((a for a in accounts if a.token == value), None)
    return None


class SandboxMiddleware:
    """Logs, faults and authenticates every non-admin request."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        faults = self.state.faults
        status_box: dict[str, Any] = {"status": 0, "fault": None, "user": None}

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box["status"] = message["status"]
            await send(message)

        try:
            if faults.latency_ms:
                await asyncio.sleep(faults.latency_ms / 1000)
            if faults.take_stall(scope["method"], path):
                await asyncio.sleep(faults.stall_seconds)
            fault = faults.draw() if path.startswith(faults.path_prefix) else None
            status_box["fault"] = fault
            if fault == "drop":
                await self._drop(logging_send)
                return
            response = (
                self._fault_response(fault, faults)
                or self._misbehaviour(scope, faults)
                or self._auth_failure(scope)
            )
            if response is not None:
                await response(scope, receive, logging_send)
                return
            await self.app(scope, receive, logging_send)
        finally:
            self.state.log.add(
                LoggedRequest(
                    method=scope["method"],
                    path=path,
                    query=scope.get("query_string", b"").decode("latin-1"),
                    status=status_box["status"],
                    fault=status_box["fault"],
                    user=scope.get("state", {}).get("user"),
                    at=time.time(),
                )
            )

    @staticmethod
    async def _drop(send: Send) -> None:
        """Start a response, send part of it and break off, as a reset connection looks to a client."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"partial": ', "more_body": True})
        raise ConnectionAbortedError("sandbox: injected dropped connection")

    @staticmethod
    def _fault_response(fault: str | None, faults: Faults) -> Response | None:
        if fault == "429":
            return JSONResponse(
                {"errorMessages": ["Rate limit exceeded."], "errors": {}},
                status_code=429,
                headers={"Retry-After": faults.retry_after_header()},
            )
        if fault == "5xx":
            return JSONResponse(
                {"errorMessages": ["Internal server error (injected)."], "errors": {}},
                status_code=faults.pick_5xx(),
            )
        return None

    @staticmethod
    def _misbehaviour(scope: Scope, faults: Faults) -> Response | None:
        """A misbehaving server or gateway: headers echoed in an error, or a 200 that is not JSON."""
        if not scope["path"].startswith(faults.path_prefix):
            return None
        if faults.echo_status:
            echoed = "; ".join(f"{k.decode('latin-1')}: {v.decode('latin-1')}" for k, v in scope["headers"])
            return jira_error(faults.echo_status, f"Request rejected by gateway. Request headers: {echoed}")
        if faults.answer_200 == "html":
            page = (
                "<!DOCTYPE html><html><head><title>Sign in - Acme SSO</title></head><body>"
                "<h1>Sign in to continue</h1><form method='post' action='/sso/login'>"
                "<input name='username'><input name='password' type='password'></form></body></html>"
            )
            return Response(page, status_code=200, media_type="text/html; charset=utf-8")
        if faults.answer_200 == "truncated_json":
            return Response('{"issues": [{"id": "10001", "key": "DEMO-1", "fie', media_type="application/json")
        return None

    def _auth_failure(self, scope: Scope) -> Response | None:
        path: str = scope["path"]
        if is_mattermost_path(path):
            return None
        headers = dict(scope["headers"])
        account = find_account(self.state.accounts, headers.get(b"authorization", b"").decode("latin-1"))
        if account is None:
            if is_confluence_path(path):
                return confluence_error(401, "This request requires authentication.")
            return jira_error(
                401, "You are not authenticated. Authentication required to perform this operation."
            )
        scope.setdefault("state", {})["user"] = account.username
        return None


@dataclass
class SandboxState:
    """Everything one sandbox instance knows; the domain parts are filled by :mod:`sandbox.app`."""

    mode: Mode
    faults: Faults = field(default_factory=Faults)
    log: RequestLog = field(default_factory=RequestLog)
    accounts: list[Account] = field(default_factory=default_accounts)

    def account(self, request: Request) -> Account:
        """The authenticated account of a request (the middleware has checked it)."""
        username = request.scope.get("state", {}).get("user")
        return next(a for a in self.accounts if a.username == username)


def admin_routes(state: SandboxState) -> list[Route]:
    """``/_sandbox/*``: read the request log, set faults, reset."""

    async def get_requests(request: Request) -> Response:
        prefix = request.query_params.get("path", "")
        return JSONResponse(
            {
                "counters": state.log.counters(),
                "requests": [asdict(e) for e in state.log.matching(prefix)],
            }
        )

    async def set_faults(request: Request) -> Response:
        body = await request.json() if await request.body() else {}
        known = {f.name for f in fields(Faults)}
        unknown = set(body) - known
        if unknown:
            return JSONResponse({"error": f"unknown fault settings: {sorted(unknown)}"}, status_code=400)
        state.faults = Faults(**body)
        return JSONResponse(state.faults.as_dict())

    async def reset_log(request: Request) -> Response:
        state.log.clear()
        return JSONResponse({"ok": True})

    return [
        Route(f"{ADMIN_PREFIX}/requests", get_requests, methods=["GET"]),
        Route(f"{ADMIN_PREFIX}/faults", set_faults, methods=["POST", "PUT"]),
        Route(f"{ADMIN_PREFIX}/requests/reset", reset_log, methods=["POST"]),
    ]
