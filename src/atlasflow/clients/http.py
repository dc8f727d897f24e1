"""HTTP plumbing shared by the Atlassian clients: auth, timeouts, retries by error class, clear errors.

What is retried is decided per failure and method (:func:`retry_decision`): rate limiting (429) for any
request, since the server refused it unprocessed; 5xx, read timeouts and dropped connections only for
requests that are safe to replay; connection failures (the request provably never left) for any request;
configuration errors (a URL without a scheme, a malformed header) never.

Every text that leaves a client (exception messages, log lines) is scrubbed of the secrets it holds:
a server or gateway that echoes the ``Authorization`` header back in an error body cannot leak it.

Bodies are bounded: one is read as it streams in, decompressed here a MiB at a time, and refused once it
passes :data:`MAX_BODY_BYTES` on the wire or decompressed (a gzip bomb stops there, the rest never
inflated); a body nested too deeply for the JSON decoder is an error naming the endpoint, never a
``RecursionError``.

No Prefect import here: these clients work the same from a flow, a script or a test.
"""

from __future__ import annotations

import base64
import functools
import json as jsonlib
import logging
import random
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx
import orjson
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from atlasflow.clients.ratelimit import Pacer, is_rate_limited, server_wait
from atlasflow.errors import ApiError, BodyTooLarge, RateLimited, TransientError, api_error

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
#: Statuses meaning the server refused the request without processing it: safe to resend any request.
REFUSED_UNPROCESSED = frozenset({429})
#: Methods HTTP defines as idempotent: replaying them after an unknown outcome changes nothing more.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
MAX_RETRY_AFTER = 120.0
REDACTED = "***"
MAX_BODY_BYTES = 128 * 2**20
"""The largest response body read (128 MiB), counted on the wire and again decompressed; a client may set its
own (``max_body_bytes``). The largest legitimate pages are far below it: a 1,000-issue page with every field
of the sandbox's issues is about 6.3 MB (17 KB for the largest issue), with the export's eight fields 2.6 MB,
and a 5,000-id search page 75 KB."""
#: Content codings this client asks for and decodes (``Accept-Encoding``).
ACCEPTED_ENCODINGS = ("gzip", "deflate")
#: Decompressed bytes produced per step: what one step of a bomb can cost before the cap is checked.
INFLATE_STEP = 2**20

#: Transport failures where the request provably did not reach the server.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)
#: Failures of our own configuration: retrying cannot help.
CONFIGURATION = (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.TooManyRedirects, httpx.DecodingError)

Decision = Literal["retry", "fail"]
#: Turns a JSON body into Python values; raises ``ValueError`` for a body it cannot read.
Decoder = Callable[[bytes], Any]


# --- secrets ----------------------------------------------------------------------------------------

_registry_lock = threading.Lock()
_registered: set[str] = set()


def secret_forms(secret: str, username: str | None = None) -> set[str]:
    """Every spelling of ``secret`` a server might echo: as is, URL- and JSON-escaped, and, with a
    username, the Basic ``base64(username:secret)`` (padded and unpadded, standard and URL-safe)."""
    if not secret:
        return set()
    forms = {secret, quote(secret, safe=""), jsonlib.dumps(secret)[1:-1]}
    if username:
        pair = f"{username}:{secret}".encode()
        for encoded in (base64.b64encode(pair).decode(), base64.urlsafe_b64encode(pair).decode()):
            forms |= {encoded, encoded.rstrip("=")}
    return {f for f in forms if f}


def register_secrets(forms: Iterable[str]) -> None:
    """Remember secrets process-wide, so :func:`redact` scrubs them from any text (e.g. a chat post)."""
    with _registry_lock:
        _registered.update(f for f in forms if f)


#: Characters that make up a token (a word, an API token, base64url): a secret next to one of them is part of a
#: longer token, not the secret itself.
_TOKEN_CHAR = r"[\w-]"


def scrub(text: str, forms: Iterable[str]) -> str:
    """``text`` with every whole-token occurrence of one of ``forms`` replaced by ``***`` (longest first, so no
    tail survives).

    An occurrence counts only where it is not part of a longer run of token characters (letters, digits, ``_``,
    ``-``): blanking a secret inside a word (``e***pected``) would spell it out. Punctuation, quotes, spaces,
    ``/``, ``=`` and ``&`` end a token, so a secret echoed in a header, a URL, a query or JSON is still scrubbed.
    """
    wanted = frozenset(f for f in forms if f)
    if not wanted or not any(form in text for form in wanted):
        return text
    return _secrets_pattern(wanted).sub(REDACTED, text)


@functools.lru_cache(maxsize=64)
def _secrets_pattern(forms: frozenset[str]) -> re.Pattern[str]:
    """One pattern matching each of ``forms`` as a whole token, longest first."""
    alternatives = []
    for form in sorted(forms, key=len, reverse=True):
        before = rf"(?<!{_TOKEN_CHAR})" if re.match(_TOKEN_CHAR, form[0]) else ""
        after = rf"(?!{_TOKEN_CHAR})" if re.match(_TOKEN_CHAR, form[-1]) else ""
        alternatives.append(before + re.escape(form) + after)
    return re.compile("|".join(alternatives))


def redact(text: str) -> str:
    """``text`` scrubbed of every secret any client in this process holds."""
    with _registry_lock:
        forms = set(_registered)
    return scrub(text, forms)


# --- errors and retries -----------------------------------------------------------------------------


def error_detail(response: httpx.Response) -> str:
    """The human part of an Atlassian or Mattermost error body (not yet scrubbed); the start of the body when
    it is not JSON or nested too deeply to read."""
    try:
        return _said(orjson.loads(response.content))  # orjson refuses more than 1,024 levels (a ValueError)
    except (ValueError, RecursionError):
        return _preview(response) or response.reason_phrase


def _said(body: Any) -> str:
    """What an error body says: its messages, else its start."""
    if isinstance(body, dict):
        parts: list[str] = [str(m) for m in body.get("errorMessages") or []]
        errors = body.get("errors")
        if isinstance(errors, dict):
            parts += [f"{k}: {v}" for k, v in errors.items()]
        elif isinstance(errors, list):  # Confluence REST API v2: [{"status", "code", "title", "detail"}]
            parts += [str(e.get("title") or e.get("code")) for e in errors if isinstance(e, dict)]
        if body.get("message"):
            parts.append(str(body["message"]))
        if parts:
            return "; ".join(parts)
    return str(body)[:500]


def _preview(response: httpx.Response, limit: int = 200) -> str:
    """The start of a body as one line of visible text (tags of an HTML page dropped)."""
    text = response.text
    if "html" in response.headers.get("content-type", "") or text.lstrip().startswith("<"):
        text = re.sub(r"<[^>]*>", " ", text)
    flat = " ".join(text.split())
    return flat[:limit] + ("…" if len(flat) > limit else "")


def retry_decision(method: str, failure: int | httpx.HTTPError, *, idempotent: bool | None = None) -> Decision:
    """Whether a failed attempt may be sent again.

    Args:
        method: HTTP method of the request.
        failure: The response status, or the transport error, of the attempt.
        idempotent: Whether replaying the request is harmless; by default the HTTP semantics of ``method``.
    """
    replay_safe = method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent
    if isinstance(failure, int):
        if failure in REFUSED_UNPROCESSED:
            return "retry"
        return "retry" if failure in RETRYABLE_STATUS and replay_safe else "fail"
    if isinstance(failure, CONFIGURATION):
        return "fail"
    if isinstance(failure, NOT_SENT):
        return "retry"
    return "retry" if isinstance(failure, httpx.TransportError) and replay_safe else "fail"


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried.

    Attributes:
        attempts: Total tries per request, the first included.
        backoff: Base of the exponential backoff in seconds (jittered).
        max_backoff: Ceiling of one backoff sleep.
        max_retry_after: Ceiling of a server-announced ``Retry-After`` wait.
    """

    attempts: int = 6
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = MAX_RETRY_AFTER

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before try ``attempt + 1``: the server's ``Retry-After`` if given, else jittered backoff."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return min(self.backoff * 2.0 ** (attempt - 1), self.max_backoff) * random.uniform(0.5, 1.0)


class ApiClient:
    """A thin, thread-safe wrapper over :class:`httpx.Client` for one service.

    Args:
        service: Name used in error messages ("Jira", "Confluence").
        base_url: Site base URL (what links for people are made from).
        headers: Extra headers.
        auth: How requests are authenticated (and routed), see :class:`atlasflow.clients.auth.AtlassianAuth`.
        timeout: Seconds for connect/read/write: a blocking call never hangs longer.
        verify: TLS verification.
        retry: Retry policy for transient failures.
        before_request: Called before every attempt (e.g. a shared rate limit).
        on_hold: Called with the seconds of a server-asked pause (429 / throttled 503), e.g. to hold a
            shared rate limit; this client pauses and spaces its requests itself (:class:`Pacer`).
        secrets: Further secrets to scrub from error text (e.g. an OAuth client secret); the token and
            password of ``auth`` and ``headers`` are always scrubbed.
        max_body_bytes: The largest response body read, on the wire and decompressed (see
            :data:`MAX_BODY_BYTES`); a larger one fails the request, not retried.
    """

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        timeout: float = 30.0,
        verify: bool = True,
        retry: RetryPolicy | None = None,
        before_request: Callable[[], None] | None = None,
        secrets: Iterable[str] = (),
        on_hold: Callable[[float], None] | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.before_request = before_request
        self.pacer = Pacer(on_hold)
        self._count_lock = threading.Lock()
        self.requests_made = 0
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add_secret(secret)
        if isinstance(auth, tuple):
            self.add_secret(auth[1], username=auth[0])
        for name, value in (headers or {}).items():
            if name.lower() in ("authorization", "proxy-authorization"):
                self.add_secret(value)
                self.add_secret(value.partition(" ")[2])
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Accept": "application/json", "Accept-Encoding": ", ".join(ACCEPTED_ENCODINGS), **(headers or {})},
            auth=auth,
            timeout=timeout,
            verify=verify,
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
        )

    def add_secret(self, secret: str, *, username: str | None = None) -> None:
        """Scrub ``secret`` (in every echoed spelling) from this client's error text from now on."""
        forms = secret_forms(secret, username)
        self._secrets |= forms
        register_secrets(forms)

    def scrub(self, text: str) -> str:
        """``text`` without any secret this client holds."""
        return scrub(text, self._secrets)

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
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (),
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one request, retrying only what :func:`retry_decision` allows.

        Args:
            method: HTTP method.
            path: Path below the base URL.
            params: Query parameters.
            json: JSON body.
            files: Multipart file parts, ``{field: (file name, bytes, media type)}`` (sent with ``data``).
            data: Multipart (with ``files``) or form fields.
            headers: Extra headers for this request.
            ok: Error statuses the caller handles itself (returned, not raised).
            idempotent: Whether replaying is harmless (e.g. a search sent as POST); default by method.

        Raises:
            ApiError: For a failure that is not retried, quoting the server's message (scrubbed); its kind by
                status (:func:`~atlasflow.errors.api_error`).
            TransientError: When retries are exhausted (:class:`~atlasflow.errors.RateLimited` for 429).
        """
        retrying = Retrying(
            stop=stop_after_attempt(self.retry.attempts),
            retry=retry_if_exception_type(_Retry),
            wait=self._wait,
            before_sleep=self._log_retry,
            reraise=True,
            sleep=time.sleep,
        )
        try:
            response: httpx.Response = retrying(
                self._attempt, method, path, params, _Body(json, files, data, headers), ok, idempotent
            )
        except _Retry as exhausted:
            raise exhausted.error from exhausted.__cause__
        return response

    def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: _Body,
        ok: tuple[int, ...],
        idempotent: bool | None,
    ) -> httpx.Response:
        self.pacer.before(method, path)
        if self.before_request is not None:
            self.before_request()
        with self._count_lock:  # pages of one level are fetched from several threads
            self.requests_made += 1
        try:
            request = self._http.build_request(
                method, path, params=params, json=body.json, files=body.files, data=body.data, headers=body.headers
            )
            response = loaded(self._http.send(request, stream=True), self.max_body_bytes)
        except BodyTooLarge as exc:
            raise BodyTooLarge(self.service, method, path, exc.status, exc.detail) from None
        except httpx.HTTPError as exc:
            detail = self.scrub(f"{type(exc).__name__}: {exc}")
            if retry_decision(method, exc, idempotent=idempotent) == "retry":
                raise _Retry(TransientError(self.service, method, path, None, detail)) from exc
            if isinstance(exc, CONFIGURATION):
                detail += " (a configuration error: check the site URL and credentials; not retried)"
            raise ApiError(self.service, method, path, None, detail) from exc
        self.pacer.observe(method, path, response)
        if response.is_success or response.status_code in ok:
            return response
        detail = self.scrub(error_detail(response))
        status = 429 if is_rate_limited(response) else response.status_code  # 503 + Retry-After: throttled
        if retry_decision(method, status, idempotent=idempotent) == "fail":
            raise api_error(self.service, method, path, response.status_code, detail)
        retry_after = server_wait(response)
        kind = RateLimited if status == 429 else TransientError
        raise _Retry(kind(self.service, method, path, response.status_code, detail, retry_after))

    def _wait(self, state: RetryCallState) -> float:
        error = _failure_of(state)
        return self.retry.delay(state.attempt_number, error.retry_after if error else None)

    def _log_retry(self, state: RetryCallState) -> None:
        error = _failure_of(state)
        if error is None:
            return
        what = str(error.status) if error.status else error.detail
        log.warning(
            "%s %s %s: %s; retry %d in %.1fs",
            self.service,
            error.method,
            error.path,
            what,
            state.attempt_number,
            state.upcoming_sleep,
        )

    def decode(self, response: httpx.Response, decoder: Decoder | None = None) -> Any:
        """The JSON body of a successful response, by ``decoder`` if given (e.g. one that keeps only some keys).

        Raises:
            ApiError: Naming service, method and path when the body is not JSON (an HTML login or
                proxy page answered 200, a truncated body), with the start of what came instead.
        """
        try:
            return (decoder or orjson.loads)(response.content)
        except (ValueError, RecursionError) as exc:
            request = response.request
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            why = str(exc)
            if isinstance(exc, RecursionError) or "depth limit" in why:  # orjson's limit: 1,024 levels
                what, why = "a body nested too deeply to decode", "deeper than the JSON decoder follows"
            elif "html" in kind:
                what = "an HTML page (a login, SSO or proxy page?)"
            else:
                what = f"invalid JSON ({kind})"
            detail = self.scrub(f"expected JSON, got {what}: {why}; body starts: {_preview(response)!r}")
            path = request.url.raw_path.decode("ascii", "replace").split("?")[0]
            raise ApiError(self.service, request.method, path, response.status_code, detail) from None

    def get_json(self, path: str, params: Mapping[str, Any] | None = None, *, decoder: Decoder | None = None) -> Any:
        return self.decode(self.request("GET", path, params=params), decoder)

    def post_json(self, path: str, body: Any, *, idempotent: bool = False, decoder: Decoder | None = None) -> Any:
        """POST ``body`` and decode the answer; ``idempotent=True`` for reads sent as POST (searches)."""
        return self.decode(self.request("POST", path, json=body, idempotent=idempotent), decoder)


# --- bounded bodies ---------------------------------------------------------------------------------


def read_body(response: httpx.Response, cap: int) -> bytes:
    """The body of a response opened with ``stream=True``, decoded by its ``Content-Encoding``.

    At most ``cap`` bytes are read from the wire and at most ``cap`` (plus one :data:`INFLATE_STEP`) are
    decompressed: a body declaring a larger ``Content-Length`` is not read at all.

    Raises:
        BodyTooLarge: Naming the cap and where it was passed.
        httpx.DecodingError: A body that does not decode by its ``Content-Encoding``.
        httpx.TransportError: The connection failed while reading.
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        detail = f"body of {int(declared):,} bytes (Content-Length) {_over(cap)}; not read"
        raise _too_large(response, detail)
    layers = [_Inflater(coding) for coding in _codings(response)]
    pieces: list[bytes] = []
    size = 0
    raw = response.iter_raw()
    for final, chunk in _with_end(raw):
        if response.num_bytes_downloaded > cap:
            raise _too_large(response, f"body on the wire {_over(cap)}; reading stopped there")
        for piece in _inflate(layers, chunk, final):
            size += len(piece)
            if size > cap:
                raise _too_large(response, f"body decompressed {_over(cap)}; reading stopped there")
            pieces.append(piece)
    return b"".join(pieces)


def loaded(response: httpx.Response, cap: int) -> httpx.Response:
    """``response`` (opened with ``stream=True``) with its body read by :func:`read_body`, then closed."""
    try:
        response._content = read_body(response, cap)  # what Response.read() sets
    finally:
        response.close()
    return response


def fetch_once(method: str, url: str, cap: int, *, timeout: float, verify: bool, **send: Any) -> httpx.Response:
    """One request outside an :class:`ApiClient` (a token endpoint, a cloud-id lookup), its body read under ``cap``.

    Raises:
        BodyTooLarge: The body passed ``cap``.
        httpx.HTTPError: As ``httpx.request`` raises.
    """
    with httpx.Client(timeout=timeout, verify=verify) as client:
        return loaded(client.send(client.build_request(method, url, **send), stream=True), cap)


def json_or_none(response: httpx.Response) -> Any:
    """The JSON body of a response, or ``None`` when it is not JSON (or nested past the decoder's depth)."""
    try:
        return orjson.loads(response.content)
    except (ValueError, RecursionError):
        return None


def _too_large(response: httpx.Response, detail: str) -> BodyTooLarge:
    """:class:`BodyTooLarge` for ``response``, the service named by its host (an :class:`ApiClient` names it)."""
    request = response.request
    path = request.url.raw_path.decode("ascii", "replace").split("?")[0]
    return BodyTooLarge(request.url.host or "the server", request.method, path, response.status_code, detail)


def _over(cap: int) -> str:
    size = f"{cap // 2**20:,} MiB" if cap % 2**20 == 0 else f"{cap:,} bytes"
    return f"larger than this client's cap of {size} (max_body_bytes)"


def _with_end(chunks: Iterator[bytes]) -> Iterator[tuple[bool, bytes]]:
    """``chunks`` each with whether it is the last, and an empty last one (so decoders are flushed once)."""
    for chunk in chunks:
        yield False, chunk
    yield True, b""


def _codings(response: httpx.Response) -> list[str]:
    """The content codings to undo, in the order to undo them (the last applied first); others are left as
    httpx leaves them."""
    named = [c.strip().lower() for c in response.headers.get("content-encoding", "").split(",")]
    codings = [c for c in reversed(named) if c in ACCEPTED_ENCODINGS]
    if len(codings) > len(ACCEPTED_ENCODINGS):
        raise httpx.DecodingError(f"{len(codings)} content codings stacked", request=response.request)
    return codings


def _inflate(layers: list[_Inflater], data: bytes, final: bool) -> Iterator[bytes]:
    """``data`` through every layer, in pieces of at most :data:`INFLATE_STEP` (flushing them when ``final``)."""
    if not layers:
        if data:
            yield data
        return
    first, rest = layers[0], layers[1:]
    for piece in first.feed(data):
        yield from _inflate(rest, piece, final=False)
    if final:
        yield from _inflate(rest, first.flush(), final=True)


class _Inflater:
    """One ``gzip`` or ``deflate`` coding undone a step at a time (``deflate`` as zlib or, as some servers
    send it, raw)."""

    def __init__(self, coding: str) -> None:
        self._raw_fallback = coding == "deflate"
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 16 if coding == "gzip" else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                piece = self._z.decompress(data, INFLATE_STEP)
            except zlib.error as exc:
                if not self._raw_fallback:
                    raise httpx.DecodingError(f"the body does not decode: {exc}") from None
                self._raw_fallback = False
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._raw_fallback = False
            data = self._z.unconsumed_tail
            if piece:
                yield piece

    def flush(self) -> bytes:
        try:
            return self._z.flush()
        except zlib.error as exc:
            raise httpx.DecodingError(f"the body does not decode: {exc}") from None


@dataclass(frozen=True)
class _Body:
    """What one request sends besides its path and query (the same on every attempt)."""

    json: Any = None
    files: Mapping[str, tuple[str, bytes, str]] | None = None
    data: Mapping[str, str] | None = None
    headers: Mapping[str, str] | None = None


class _Retry(Exception):
    """One attempt failed in a way the policy retries; carries the error to raise once retries run out."""

    def __init__(self, error: TransientError) -> None:
        super().__init__(str(error))
        self.error = error


def _failure_of(state: RetryCallState) -> TransientError | None:
    exc = state.outcome.exception() if state.outcome else None
    return exc.error if isinstance(exc, _Retry) else None
