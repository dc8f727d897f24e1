"""How atlasflow proves who it is to an Atlassian site, and which address each request goes to.

Credential kinds (:data:`CredentialKind`):

* ``api-token``: e-mail + API token, HTTP Basic. On Cloud a classic token works at the site URL and a token
  with scopes only through the ``api.atlassian.com`` gateway; nobody should have to say which one they
  hold, so the site is tried first and, on a 401, the cloud id is looked up (``/_edge/tenant_info``) and the
  request repeated through the gateway, which is then kept for the client's life. On Data Center: the site.
* ``pat``: a Data Center personal access token, Bearer, at the site.
* ``oauth``: a service account's OAuth 2.0 client credentials. An access token is fetched from the token
  endpoint (Cloud ``https://auth.atlassian.com/oauth/token``, Data Center ``<site>/rest/oauth2/latest/token``),
  cached, renewed shortly before it expires and once more when a request answers 401. Cloud requests go
  through the gateway, Data Center ones to the site.

Requests are always built against the site URL (so every link made from :attr:`ApiClient.base_url` is one
people can open); :class:`AtlassianAuth` moves them to the gateway when that is the route. A request that
stays refused raises :class:`AuthenticationError` naming the routes and credential kind tried and how to
rotate the credential.

What a server answers is not trusted to pick hosts: a cloud id must be a UUID before it is put in a gateway
path (:func:`check_cloud_id`), and a link a server hands out becomes a link on the site or is refused
(:func:`site_link`, :meth:`AtlassianAuth.people_link`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from atlasflow.clients.http import (
    error_detail,
    fetch_once,
    json_or_none,
    scrub,
    secret_forms,
)
from atlasflow.errors import AuthenticationError, BodyTooLarge

CredentialKind = Literal["api-token", "pat", "oauth"]
Product = Literal["jira", "confluence"]

CLOUD_TOKEN_URL = "https://auth.atlassian.com/oauth/token"
DEFAULT_GATEWAY = "https://api.atlassian.com"
#: Renew an access token this long before it expires (at most a tenth of its lifetime).
RENEW_BEFORE_SECONDS = 60.0
#: Token endpoint and ``tenant_info`` answers are a few hundred bytes; no more than this is read of them.
SMALL_BODY_BYTES = 2**20

ROTATE = {
    "api-token": "API tokens expire (one year at most; scoped tokens also only cover their scopes): create a "
    "new one at https://id.atlassian.com/manage-profile/security/api-tokens (Data Center: your password or a "
    "new personal access token) and store it with `atlasflow configure`",
    "pat": "personal access tokens expire on the date set when they were made: create a new one under "
    "Profile > Personal Access Tokens and store it with `atlasflow configure`",
    "oauth": "check the service account's product access and the scopes of its OAuth 2.0 credential; to "
    "rotate, create a new credential (Cloud: Atlassian Administration > Directory > Service accounts) and "
    "store it with `atlasflow configure`",
}
DESCRIBED = {
    "api-token": "e-mail + API token",
    "pat": "personal access token",
    "oauth": "service account OAuth 2.0 client credentials",
}


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def check_cloud_id(value: str) -> str:
    """``value`` if it is a cloud id (a UUID such as ``b6f5c3a2-9d41-4e7f-8a2c-5d3e1f0a7b96``).

    Raises:
        ValueError: One line quoting (the start of) the value.
    """
    if not _UUID.fullmatch(value):
        raise ValueError(f"{value[:60]!r} is not a cloud id (a UUID such as b6f5c3a2-9d41-4e7f-8a2c-5d3e1f0a7b96)")
    return value


def site_link(site_url: str, value: str) -> str:
    """The link people open for ``value``, a path or URL a server answered, on the site ``site_url``.

    A path (``/download/attachments/…``) is joined with the site URL; an absolute URL is kept when it is on the
    site's scheme, host and port (no user name in it either).

    Raises:
        ValueError: One line naming the host ``value`` leads to, for anything else (another host, a path that
            would change the host once joined, another scheme).
    """
    site = urlsplit(site_url)
    relative = value.startswith("/") and not value.startswith("//")
    link = site_url.rstrip("/") + value if relative else value
    parts = urlsplit(link)
    if (parts.scheme.lower(), parts.netloc.lower()) != (site.scheme.lower(), site.netloc.lower()):
        where = parts.netloc or f"{value[:40]!r}"
        raise ValueError(f"it leads to {where}, not to the site {site.netloc}; links stay on the site")
    return link


@dataclass(frozen=True)
class Site:
    """Where a product lives.

    Attributes:
        url: The site as people see it in the browser (``https://acme.atlassian.net/wiki``).
        product: ``jira`` or ``confluence`` (the gateway path differs).
        cloud: Cloud (gateway, tenant_info) or Data Center.
        gateway_url: The API gateway (``https://api.atlassian.com``).
        cloud_id: The site's cloud id; looked up when ``None``.
    """

    url: str
    product: Product
    cloud: bool
    gateway_url: str = DEFAULT_GATEWAY
    cloud_id: str | None = None

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` of the site: what the gateway base stands in for."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def gateway_base(self, cloud_id: str) -> str:
        return f"{self.gateway_url.rstrip('/')}/ex/{self.product}/{cloud_id}"


@dataclass(frozen=True)
class ClientCredentials:
    """A service account's OAuth 2.0 credential and the endpoint that turns it into access tokens."""

    client_id: str
    client_secret: str
    token_url: str


class AtlassianAuth(httpx.Auth):
    """Authenticates and routes every request of one client (thread-safe).

    Args:
        site: The site and its gateway.
        service: "Jira" or "Confluence", for messages.
        kind: The credential kind.
        username: Basic-auth user (``api-token``).
        token: API token or PAT.
        oauth: Client credentials (``oauth``).
        timeout: Seconds per request to the token endpoint and tenant_info.
        verify: TLS verification for those requests.
    """

    requires_request_body = True  # a request moved to the gateway is rebuilt with its body

    def __init__(
        self,
        site: Site,
        service: str,
        kind: CredentialKind,
        *,
        username: str | None = None,
        token: str | None = None,
        oauth: ClientCredentials | None = None,
        timeout: float = 30.0,
        verify: bool = True,
    ) -> None:
        self.site = site
        self.service = service
        self.kind = kind
        self._basic = httpx.BasicAuth(username, token or "") if kind == "api-token" and username else None
        self._token = token
        self._oauth = oauth
        self._secrets = secret_forms(token or "", username) | secret_forms(oauth.client_secret if oauth else "")
        self._timeout = timeout
        self._verify = verify
        self._lock = threading.Lock()
        self._cloud_id = site.cloud_id
        self._gateway: str | None = None  # the gateway base, once requests go there
        self._always_gateway = site.cloud and kind == "oauth"
        self._access: tuple[str, float] | None = None  # token, renew-at (monotonic)
        self.tokens_fetched = 0
        #: Called with every access token fetched (e.g. to scrub it from error text).
        self.on_access_token: Callable[[str], None] | None = None

    @property
    def route(self) -> str:
        """The base requests go to now: the site URL or the gateway base."""
        return self._gateway or self.site.url

    # -- the flow ---------------------------------------------------------------------------------------

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        tried = []
        routed = self._authorised(self._routed(request))
        tried.append(self._route_of(routed))
        response = yield routed
        if response.status_code != 401:
            return
        retry = self._after_refusal(request, routed)
        if retry is not None:
            tried.append(self._route_of(retry))
            response = yield retry
            if response.status_code != 401:
                return
        response.read()
        raise self._failure(request, response, tried)

    def _use_gateway(self) -> str:
        with self._lock:
            if self._gateway is None:
                self._gateway = self.site.gateway_base(self._discover_cloud_id())
            return self._gateway

    def people_link(self, value: str) -> str:
        """The link people open for ``value``, a path or URL this site's server answered.

        Besides what :func:`site_link` keeps, a URL below this site's gateway base (Cloud:
        ``https://api.atlassian.com/ex/confluence/{cloudId}/wiki/download/…``, as answers may carry since
        2026-07-14) becomes the same path on the site; a gateway URL for another cloud id is refused.

        Raises:
            ValueError: One line naming where ``value`` leads, when that is not this site.
        """
        if self.site.cloud and value.startswith(self.site.gateway_url.rstrip("/") + "/ex/"):
            with self._lock:
                base = self.site.gateway_base(self._discover_cloud_id())
            if not value.startswith(base + "/"):
                raise ValueError(f"it leads to the API gateway of another site, not to {base}; links stay on the site")
            return site_link(self.site.origin, value[len(base) :])
        return site_link(self.site.url, value)

    def _routed(self, request: httpx.Request) -> httpx.Request:
        gateway = self._use_gateway() if self._always_gateway else self._gateway
        return _moved(request, self.site.origin, gateway) if gateway else request

    def _authorised(self, request: httpx.Request) -> httpx.Request:
        if self._basic is not None:
            return next(self._basic.auth_flow(request))
        bearer = self._access_token() if self.kind == "oauth" else self._token
        request.headers["Authorization"] = f"Bearer {bearer}"
        return request

    def _after_refusal(self, request: httpx.Request, refused: httpx.Request) -> httpx.Request | None:
        """The one retry a 401 earns: through the gateway (API token on Cloud) or with a renewed token."""
        if self.kind == "oauth":
            with self._lock:
                if self._access is not None and refused.headers.get("Authorization") == f"Bearer {self._access[0]}":
                    self._access = None  # refused: renew (unless another thread already has)
            return self._authorised(self._routed(request))
        if self.kind == "api-token" and self.site.cloud and refused.url == request.url:
            self._use_gateway()  # refused at the site: a scoped token, or a stale one
            return self._authorised(self._routed(request))
        return None

    # -- cloud id and access tokens -----------------------------------------------------------------------

    def _discover_cloud_id(self) -> str:
        """The configured cloud id, else the one ``<site>/_edge/tenant_info`` reports (call with the lock).

        Raises:
            AuthenticationError: No cloud id in the answer, or one that is not a UUID: it would be put in the
                gateway path, so nothing is sent to the gateway with it.
        """
        if self._cloud_id:
            try:
                return check_cloud_id(self._cloud_id)
            except ValueError as exc:
                raise AuthenticationError(self.service, "GET", "(gateway)", None, f"the configured {exc}") from None
        url = f"{self.site.origin}/_edge/tenant_info"
        response = self._send("GET", url)  # transport errors: retried
        body = json_or_none(response) if response.is_success else None
        cloud_id = body.get("cloudId") if isinstance(body, dict) else None
        if not isinstance(cloud_id, str) or not cloud_id:
            detail = f"no cloudId in the answer ({response.status_code}); set cloud_id on the block"
            raise self._setup_error("GET", url, response.status_code, detail)
        try:
            self._cloud_id = check_cloud_id(cloud_id)
        except ValueError as exc:
            detail = f"the cloudId answered, {exc}; nothing was sent to the gateway: set cloud_id on the block"
            raise AuthenticationError(self.service, "GET", url, response.status_code, detail) from None
        return self._cloud_id

    def _access_token(self) -> str:
        with self._lock:
            if self._access is None or time.monotonic() >= self._access[1]:
                self._access = self._fetch_token()
            return self._access[0]

    def _fetch_token(self) -> tuple[str, float]:
        assert self._oauth is not None
        oauth = self._oauth
        grant = {"grant_type": "client_credentials", "client_id": oauth.client_id, "client_secret": oauth.client_secret}
        started = time.monotonic()
        # auth.atlassian.com takes JSON (as its documentation shows); Data Center a form. Transport errors
        # propagate: the client's retry policy decides (the request itself was not sent).
        if self.site.cloud:
            response = self._send("POST", oauth.token_url, json=grant)
        else:
            response = self._send("POST", oauth.token_url, data=grant)
        if not response.is_success:
            detail = _oauth_error(response)
            raise self._setup_error("POST", oauth.token_url, response.status_code, detail)
        try:
            body = json_or_none(response)
            token, lifetime = str(body["access_token"]), float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise self._setup_error(
                "POST", oauth.token_url, response.status_code, "no access_token in the answer"
            ) from exc
        self.tokens_fetched += 1
        self._secrets |= secret_forms(token)
        if self.on_access_token is not None:
            self.on_access_token(token)
        return token, started + lifetime - min(RENEW_BEFORE_SECONDS, lifetime / 10)

    def _send(self, method: str, url: str, **send: Any) -> httpx.Response:
        """A request to the token endpoint or ``tenant_info``: their answers are small, and read no further.

        Raises:
            AuthenticationError: The answer passed :data:`SMALL_BODY_BYTES`.
        """
        try:
            return fetch_once(method, url, SMALL_BODY_BYTES, timeout=self._timeout, verify=self._verify, **send)
        except BodyTooLarge as exc:
            raise self._setup_error(method, url, exc.status, exc.detail) from None

    # -- messages -------------------------------------------------------------------------------------------

    def _route_of(self, request: httpx.Request) -> str:
        url = str(request.url)
        if self._gateway and url.startswith(self._gateway):
            return f"the gateway {self._gateway}"
        return f"the site {self.site.url}"

    def _failure(self, request: httpx.Request, response: httpx.Response, tried: list[str]) -> AuthenticationError:
        detail = scrub(error_detail(response), self._secrets)
        routes = ", then ".join(dict.fromkeys(tried))
        who = DESCRIBED[self.kind] + (f" (client id {self._oauth.client_id})" if self._oauth else "")
        renewed = "; a renewed access token was refused too" if self.kind == "oauth" else ""
        message = f"{detail} — tried {who} at {routes}{renewed}. {ROTATE[self.kind]}."
        path = request.url.raw_path.decode("ascii", "replace").split("?")[0]
        return AuthenticationError(self.service, request.method, path, 401, message)

    def _setup_error(self, method: str, url: str, status: int | None, detail: str) -> AuthenticationError:
        detail = scrub(detail, self._secrets)
        who = DESCRIBED[self.kind]
        return AuthenticationError(
            self.service, method, url, status, f"{detail} (signing in with {who}). {ROTATE[self.kind]}."
        )


def _moved(request: httpx.Request, origin: str, base: str) -> httpx.Request:
    """``request`` sent to ``base`` instead of the site ``origin`` (same path below it, same body)."""
    url = str(request.url)
    if not url.startswith(origin):
        return request
    headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"host"]
    return httpx.Request(
        request.method,
        base + url[len(origin) :],
        headers=headers,
        content=request.content,
        extensions=request.extensions,
    )


def _oauth_error(response: httpx.Response) -> str:
    """``error: error_description`` of an OAuth error body, else the usual detail."""
    body = json_or_none(response)
    if isinstance(body, dict) and body.get("error"):
        return f"{body['error']}: {body.get('error_description', '')}".rstrip(": ")
    return error_detail(response)
