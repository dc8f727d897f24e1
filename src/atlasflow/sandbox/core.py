"""Sandbox plumbing shared by the Jira, Confluence and Mattermost stand-ins.

Faults, authentication and the request log are applied here, once, by one ASGI middleware, so the
product code meets them exactly as it would meet a real site: over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import random
import re
import secrets
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
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
        rate_limit_reason: ``RateLimit-Reason`` of injected 429s on Cloud (``jira-burst-based``,
            ``jira-per-issue-on-write``, ``jira-quota-tenant-based`` ...). Cloud 429s also carry
            ``X-RateLimit-Reset`` (ISO 8601); Data Center ones ``X-RateLimit-Interval-Seconds``,
            ``X-RateLimit-FillRate`` and ``X-RateLimit-Limit`` (its token bucket).
        throttle_as_503: Answer the injected rate limits 503 with ``Retry-After`` (a throttling proxy).
        near_limit: Every answer carries ``X-RateLimit-NearLimit: true`` (Cloud: under 20% of the budget left).
        fill_rate: Data Center's bucket: tokens added per ``interval_seconds`` (announced on 429s).
        interval_seconds: Data Center's refill interval.
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
    rate_limit_reason: str = "jira-burst-based"
    throttle_as_503: bool = False
    near_limit: bool = False
    fill_rate: int = 10
    interval_seconds: int = 1
    #: A search that never ends. ``"repeat"``: Cloud ``search/jql`` is never ``isLast`` and, past its last
    #: page, answers that page again under a fresh ``nextPageToken``; Data Center ``search`` answers every
    #: request with its first answer (a cache that ignores the query). ``"fresh"`` (Cloud): past the last page,
    #: ids never seen, above the site's highest, a page after the other (ids-only pages; with fields, as
    #: ``"repeat"``).
    endless_pages: Literal["", "repeat", "fresh"] = ""
    #: When positive, Cloud ``search/approximate-count`` answers this whatever the query matches, and Data
    #: Center ``search`` gives it as its ``total``.
    approximate_count: int = 0
    #: When positive, matching requests get ``200`` with a JSON-looking body of this many MiB, streamed as it is
    #: sent (the sandbox holds a MiB at most).
    big_body_mib: int = 0
    #: How ``big_body_mib`` is sent: ``"gzip"`` (a gzip bomb: about 1 KB on the wire per MiB), ``"identity"``
    #: (chunked, no length said) or ``"sized"`` (as it is, with its ``Content-Length``).
    big_body_encoding: Literal["gzip", "identity", "sized"] = "gzip"
    #: When positive, matching requests get ``200`` with a JSON body nested this many levels deep.
    deep_body: int = 0

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
    """A sandbox user: Basic auth with ``username``/``token``, or Bearer ``token`` (Data Center PAT).

    ``scoped_token`` is the account's API token with scopes (Cloud): Basic auth like the classic token, but
    accepted through the api.atlassian.com gateway only, never at the site URL.
    """

    username: str
    token: str
    display_name: str
    permissions: frozenset[str]
    scoped_token: str | None = None


@dataclass(frozen=True)
class OAuthClient:
    """OAuth 2.0 client credentials of a service account; the tokens it gets act as ``username``."""

    client_id: str
    client_secret: str
    username: str


class TokenIssuer:
    """Access tokens of the client-credentials grant: issued with a lifetime, expiring, revocable."""

    def __init__(self, ttl_seconds: float = 3600.0) -> None:
        self.ttl_seconds = ttl_seconds
        self.issued = 0
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}

    def issue(self, username: str) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (username, time.monotonic() + self.ttl_seconds)
            self.issued += 1
        return token

    def holder(self, token: str) -> str | None:
        """The username a live token acts as; ``None`` for unknown or expired tokens."""
        with self._lock:
            username, expires = self._tokens.get(token, ("", 0.0))
        return username if username and time.monotonic() < expires else None

    def revoke_all(self) -> None:
        with self._lock:
            self._tokens.clear()


Credential = Literal["token", "scoped", "pat", "oauth"]
"""How a request proved its account: classic API token, scoped API token, PAT, OAuth access token."""


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
    """The demo accounts: an admin-like user and a read-only viewer, each with a scoped token too."""
    return [
        Account(  # also "Administer Jira": it may check other users' permissions
            "demo@example.com", "sandbox-token", "Demo Admin", ALL_PERMISSIONS | {"ADMINISTER"}, "sandbox-scoped-token"
        ),
        Account(
            "viewer@example.com", "viewer-token", "Vera Viewer", frozenset({"BROWSE_PROJECTS"}), "viewer-scoped-token"
        ),
    ]


DEMO_CLOUD_ID = "b6f5c3a2-9d41-4e7f-8a2c-5d3e1f0a7b96"
"""The demo site's cloud id, as ``/_edge/tenant_info`` reports it."""


def default_oauth_clients() -> list[OAuthClient]:
    """The demo service account's OAuth 2.0 credential; it acts as the demo account, so every job sees the
    same pages and issues whichever credential kind it uses."""
    return [OAuthClient("sandbox-client-id", "sandbox-client-secret", "demo@example.com")]


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


#: Paths answered without credentials: the cloud-id lookup and the OAuth token endpoints.
OPEN_PATHS = frozenset({"/_edge/tenant_info", "/oauth/token", "/rest/oauth2/latest/token"})

GATEWAY_PRODUCTS = {"jira": "/rest/", "confluence": "/wiki/"}
"""Gateway product → the site paths it forwards to (``/ex/jira/{id}/rest/...``, ``/ex/confluence/{id}/wiki/...``)."""


def gateway_site_path(path: str, cloud_id: str) -> str | None:
    """The site path behind a gateway path, or ``None`` when the product or cloud id is unknown."""
    parts = path.split("/", 4)  # "", "ex", product, cloud id, rest
    if len(parts) < 5 or parts[1] != "ex" or parts[3] != cloud_id:
        return None
    site_path = "/" + parts[4]
    prefix = GATEWAY_PRODUCTS.get(parts[2])
    return site_path if prefix and site_path.startswith(prefix) else None


def gateway_refuses(site_path: str) -> bool:
    """Confluence's v1 content API is not served to scoped credentials on the gateway; attachments are."""
    v1 = "/wiki/rest/api/content"
    return site_path.startswith(v1) and "/child/attachment" not in site_path and "/download/" not in site_path


def find_account(
    accounts: list[Account], authorization: str, issuer: TokenIssuer | None = None
) -> tuple[Account, Credential] | None:
    """The account an ``Authorization`` header proves and how, if any."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            username, _, token = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        for account in accounts:
            if account.username == username and token in (account.token, account.scoped_token):
                return account, "token" if token == account.token else "scoped"
        return None
    if scheme.lower() == "bearer":
        holder = issuer.holder(value) if issuer is not None else None
        if holder is not None:
            return next(((a, "oauth") for a in accounts if a.username == holder), None)
        return next(((a, "pat") for a in accounts if a.token == value), None)
    return None


_MIB = 1 << 20


async def _big_body(mib: int, gzip: bool) -> AsyncIterator[bytes]:
    """``{"issues": [], "padding": "000…"}`` of ``mib`` MiB (and 2 bytes), a MiB at a time; gzip-encoded, every
    MiB after the first is the same 1 KB: the deflate state is reset after each (a full flush)."""
    first = b'{"issues": [], "padding": "'.ljust(_MIB, b"0")
    zeros, tail = b"0" * _MIB, b'"}'
    if not gzip:
        for chunk in (first, *(zeros for _ in range(mib - 1)), tail):
            yield chunk
            await asyncio.sleep(0)
        return
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: with a gzip header
    yield deflate.compress(first) + deflate.flush(zlib.Z_FULL_FLUSH)
    again = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(first)
    for _ in range(mib - 1):
        yield again
        crc = zlib.crc32(zeros, crc)
        await asyncio.sleep(0)
    last = zlib.compressobj(9, zlib.DEFLATED, -15)  # a raw deflate stream may follow a full flush
    size = mib * _MIB + len(tail)
    yield last.compress(tail) + last.flush() + struct.pack("<II", zlib.crc32(tail, crc), size & 0xFFFFFFFF)


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

        def log_once() -> None:
            """Logged before the last byte leaves: a client that has its answer finds the request logged."""
            if status_box.get("logged"):
                return
            status_box["logged"] = True
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

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box["status"] = message["status"]
                if faults.near_limit and self.state.mode == "cloud":
                    message = {**message, "headers": [*message.get("headers", []), (b"x-ratelimit-nearlimit", b"true")]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                log_once()
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
                self._fault_response(fault, faults, self.state.mode)
                or self._misbehaviour(scope, faults)
                or self._auth_failure(scope)
            )
            if response is not None:
                await response(scope, receive, logging_send)
                return
            await self.app(scope, receive, logging_send)
        finally:
            log_once()  # dropped connections and errors: no last body message was sent

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
    def _fault_response(fault: str | None, faults: Faults, mode: Mode) -> Response | None:
        if fault == "429":
            headers = {"Retry-After": faults.retry_after_header()}
            if mode == "cloud":
                reset = datetime.fromtimestamp(time.time() + faults.retry_after, UTC)
                headers |= {
                    "X-RateLimit-Reset": reset.isoformat(timespec="seconds").replace("+00:00", "Z"),
                    "RateLimit-Reason": faults.rate_limit_reason,
                }
            else:
                headers |= {
                    "X-RateLimit-Interval-Seconds": str(faults.interval_seconds),
                    "X-RateLimit-FillRate": str(faults.fill_rate),
                    "X-RateLimit-Limit": str(faults.fill_rate * 2),
                }
            return JSONResponse(
                {"errorMessages": ["Rate limit exceeded."], "errors": {}},
                status_code=503 if faults.throttle_as_503 else 429,
                headers=headers,
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
        if faults.big_body_mib > 0:
            gzip = faults.big_body_encoding == "gzip"
            headers = {
                "gzip": {"content-encoding": "gzip"},
                "sized": {"content-length": str(faults.big_body_mib * _MIB + 2)},  # 2: the closing '"}'
            }.get(faults.big_body_encoding)
            stream = _big_body(faults.big_body_mib, gzip)
            return StreamingResponse(stream, media_type="application/json", headers=headers)
        if faults.deep_body > 0:
            depth = faults.deep_body
            body = b'{"isLast": true, "issues": [], "deep": ' + b"[" * depth + b"]" * depth + b"}"
            return Response(body, media_type="application/json")
        return None

    def _auth_failure(self, scope: Scope) -> Response | None:
        """Authenticate a request; a gateway request is rewritten to the site path it stands for.

        Classic API tokens and PATs pass at the site only; scoped tokens and Cloud OAuth tokens through the
        gateway only (Data Center has no gateway: its OAuth tokens pass at the site).
        """
        path: str = scope["path"]
        if is_mattermost_path(path) or path in OPEN_PATHS:
            return None
        gateway = path.startswith("/ex/")
        if gateway:
            site_path = gateway_site_path(path, self.state.cloud_id) if self.state.mode == "cloud" else None
            if site_path is None:
                return JSONResponse({"code": 404, "message": "Not Found"}, status_code=404)
            scope["path"] = site_path
            scope["raw_path"] = site_path.encode()
        headers = dict(scope["headers"])
        found = find_account(
            self.state.accounts, headers.get(b"authorization", b"").decode("latin-1"), self.state.tokens
        )
        cloud = self.state.mode == "cloud"
        passes_gateway = ("scoped", "oauth") if cloud else ()
        if found is None or (found[1] in passes_gateway) != gateway or (not cloud and found[1] == "scoped"):
            if gateway:
                return JSONResponse({"code": 401, "message": "Unauthorized"}, status_code=401)
            if is_confluence_path(scope["path"]):
                return confluence_error(401, "This request requires authentication.")
            return jira_error(
                401, "You are not authenticated. Authentication required to perform this operation."
            )
        if gateway and gateway_refuses(scope["path"]):
            return JSONResponse({"code": 401, "message": "Unauthorized; scope does not match"}, status_code=401)
        scope.setdefault("state", {})["user"] = found[0].username
        scope["state"]["credential"] = found[1]
        return None


@dataclass
class SandboxState:
    """Everything one sandbox instance knows; the domain parts are filled by :mod:`sandbox.app`."""

    mode: Mode
    faults: Faults = field(default_factory=Faults)
    log: RequestLog = field(default_factory=RequestLog)
    accounts: list[Account] = field(default_factory=default_accounts)
    oauth_clients: list[OAuthClient] = field(default_factory=default_oauth_clients)
    tokens: TokenIssuer = field(default_factory=TokenIssuer)
    cloud_id: str = DEMO_CLOUD_ID

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
