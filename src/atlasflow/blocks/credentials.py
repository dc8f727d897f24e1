"""Credential blocks for Jira and Confluence: editable in the Prefect UI, secrets kept as ``SecretStr``."""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Callable
from typing import ClassVar, Literal, cast
from urllib.parse import urlparse

import httpx
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES
from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from atlasflow.clients.auth import (
    CLOUD_TOKEN_URL,
    DEFAULT_GATEWAY,
    AtlassianAuth,
    ClientCredentials,
    CredentialKind,
    Product,
    Site,
    check_cloud_id,
)
from atlasflow.clients.confluence import ConfluenceClient
from atlasflow.clients.http import ApiClient
from atlasflow.clients.jira import JiraClient
from atlasflow.clients.ratelimit import on_critical_path

log = logging.getLogger(__name__)

DeploymentKind = Literal["auto", "cloud", "datacenter"]
#: The global rate limit (created by ``atlasflow setup``) that every flow's Jira requests share.
JIRA_RATE_LIMIT = "atlasflow-jira-api"
#: Slots of the rate limit a client takes per round trip to the Prefect API.
RATE_LIMIT_BATCH = 5
#: The least time the rate limiter keeps asking a busy Prefect API before failing the request, in seconds
#: (longer when Prefect's client would itself retry longer: :func:`prefect_retry_budget`).
PREFECT_PATIENCE = 60.0


def prefect_retry_budget(retries: int | None = None) -> float:
    """Seconds Prefect's client waits in all, jitter aside, before giving up on a call: ``2**n`` s after its
    n-th failed attempt, for ``retries`` retries (default: ``PREFECT_CLIENT_MAX_RETRIES``)."""
    count = PREFECT_CLIENT_MAX_RETRIES.value() if retries is None else retries
    return float(sum(2**attempt for attempt in range(1, count + 1)))


#: Shorter secrets are refused: scrubbing them from text would blank parts of ordinary words, spelling them out.
MIN_SECRET_LENGTH = 8


def check_secret_length(secret: SecretStr | None) -> SecretStr | None:
    """Refuse secrets shorter than :data:`MIN_SECRET_LENGTH` (the message does not repeat them): a short
    secret cannot be scrubbed from error texts without spelling it out around it."""
    if secret is not None and len(secret.get_secret_value()) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"a secret must be at least {MIN_SECRET_LENGTH} characters long (API tokens, personal access "
            "tokens, bot tokens and client secrets are far longer): check that the whole value was pasted"
        )
    return secret


def check_site_url(url: str) -> str:
    """``url`` if it is a usable site base URL: http(s), a host, no user name or password in it.

    Raises:
        ValueError: Saying what is wrong, without repeating the URL (it may hold a password).
    """
    parts = urlparse(url.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError("the site URL must start with https:// (or http://), e.g. https://acme.atlassian.net")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "the site URL must not contain a user name or password (user:secret@host): it would be written "
            "into every link; give the user as `username` and the secret as `token`"
        )
    if not parts.hostname:
        raise ValueError("the site URL has no host name, e.g. https://acme.atlassian.net")
    return url.strip()


class _AtlassianCredentials(Block):
    """Fields and client construction common to Jira and Confluence sites.

    Three ways to sign in: e-mail + API token (classic or with scopes, Cloud; the route is found by itself),
    a Data Center personal access token (token without username), or a service account's OAuth 2.0 client
    credentials (``client_id`` + ``client_secret``, Cloud or Data Center).
    """

    model_config = ConfigDict(hide_input_in_errors=True)  # a refused value may be a secret

    url: str = Field(description="Site URL as in the browser (https://acme.atlassian.net, …/wiki for Confluence).")
    username: str | None = Field(
        default=None, description="Cloud: the account e-mail (basic auth). Leave empty for a Data Center PAT."
    )
    token: SecretStr | None = Field(
        default=None,
        description="Cloud API token (classic or with scopes), or Data Center personal access token. Empty when "
        "client credentials are given.",
    )
    client_id: str | None = Field(default=None, description="Service account OAuth 2.0 client id.")
    client_secret: SecretStr | None = Field(default=None, description="Service account OAuth 2.0 client secret.")
    cloud_id: str | None = Field(
        default=None, description="Cloud site id for the API gateway; looked up from the site when empty."
    )
    gateway_url: str = Field(default=DEFAULT_GATEWAY, description="Atlassian API gateway (Cloud).")
    oauth_token_url: str | None = Field(
        default=None,
        description="OAuth 2.0 token endpoint; empty = Cloud https://auth.atlassian.com/oauth/token, "
        "Data Center <url>/rest/oauth2/latest/token.",
    )
    deployment: DeploymentKind = Field(
        default="auto", description="cloud, datacenter, or auto (*.atlassian.net is Cloud)."
    )
    verify_tls: bool = Field(default=True, description="Verify TLS certificates.")
    timeout_seconds: float = Field(default=30.0, gt=0, description="HTTP connect/read timeout per request.")

    _service = "Atlassian"
    _product: ClassVar[Product] = "jira"

    @model_validator(mode="after")
    def _one_way_to_sign_in(self) -> _AtlassianCredentials:
        if (self.client_id is None) != (self.client_secret is None):
            raise ValueError("client_id and client_secret go together: give both (a service account) or neither")
        if self.token is None and self.client_id is None:
            raise ValueError("give a token (API token or personal access token) or client_id + client_secret")
        return self

    def credential_kind(self) -> CredentialKind:
        """``oauth`` with client credentials, else ``api-token`` with a username, else ``pat``."""
        if self.client_id is not None:
            return "oauth"
        return "api-token" if self.username else "pat"

    @field_validator("url", "gateway_url", "oauth_token_url")
    @classmethod
    def _valid_url(cls, url: str | None) -> str | None:
        return None if url is None else check_site_url(url)

    @field_validator("token", "client_secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        return check_secret_length(secret)

    @field_validator("cloud_id")
    @classmethod
    def _valid_cloud_id(cls, cloud_id: str | None) -> str | None:
        """A configured cloud id goes into gateway paths: a UUID or nothing (empty = look it up)."""
        return check_cloud_id(cloud_id.strip()) if cloud_id and cloud_id.strip() else None

    def resolved_deployment(self) -> Literal["cloud", "datacenter"]:
        """``cloud`` or ``datacenter``; ``auto`` decides by host name."""
        if self.deployment != "auto":
            return self.deployment
        host = urlparse(self.url).hostname or ""
        return "cloud" if host.endswith(".atlassian.net") else "datacenter"

    def auth(self) -> AtlassianAuth:
        """Authentication and routing for this site's credential kind (see :mod:`atlasflow.clients.auth`)."""
        cloud = self.resolved_deployment() == "cloud"
        site = Site(self.url.rstrip("/"), self._product, cloud, self.gateway_url, self.cloud_id or None)
        oauth = None
        if self.client_id is not None and self.client_secret is not None:
            token_url = self.oauth_token_url or (
                CLOUD_TOKEN_URL if cloud else f"{self.url.rstrip('/')}/rest/oauth2/latest/token"
            )
            oauth = ClientCredentials(self.client_id, self.client_secret.get_secret_value(), token_url)
        return AtlassianAuth(
            site,
            self._service,
            self.credential_kind(),
            username=self.username,
            token=self.token.get_secret_value() if self.token is not None else None,
            oauth=oauth,
            timeout=self.timeout_seconds,
            verify=self.verify_tls,
        )

    def api_client(
        self,
        before_request: Callable[[], None] | None = None,
        on_hold: Callable[[float], None] | None = None,
        auth: AtlassianAuth | None = None,
    ) -> ApiClient:
        """An HTTP client for this site: requests are made against the site URL and routed by ``auth``
        (default: a new :meth:`auth`).

        The token, the client secret and every access token fetched are scrubbed from its error text.
        """
        auth = auth or self.auth()
        api = ApiClient(
            self._service,
            self.url,
            auth=auth,
            timeout=self.timeout_seconds,
            verify=self.verify_tls,
            before_request=before_request,
            on_hold=on_hold,
        )
        if self.token is not None:
            api.add_secret(self.token.get_secret_value(), username=self.username)
        if self.client_secret is not None:
            api.add_secret(self.client_secret.get_secret_value())
        auth.on_access_token = api.add_secret
        return api


class JiraCredentials(_AtlassianCredentials):
    """Credentials for a Jira Cloud or Data Center site.

    Example:
        ```python
        from atlasflow.blocks import JiraCredentials

        credentials = JiraCredentials.load("BLOCK_NAME")
        for issue in credentials.get_client().search("project = DEMO", fields=["summary"]):
            print(issue["key"])
        ```
    """

    _block_type_name = "atlasflow Jira Credentials"
    _block_type_slug = "atlasflow-jira-credentials"
    _description = "Jira Cloud or Data Center site and credentials (atlasflow)."
    _service = "Jira"
    _documentation_url = "https://developer.atlassian.com/cloud/jira/platform/rest/v3/intro/"  # type: ignore[assignment]

    rate_limit: str | None = Field(
        default=JIRA_RATE_LIMIT,
        description="Global rate limit (a concurrency limit with slot decay) every Jira request takes a slot "
        "of; empty = none.",
    )

    def get_client(self) -> JiraClient:
        """A Jira client for this site, taking a slot of the shared rate limit per request."""
        limiter = _RateLimiter(self.rate_limit) if self.rate_limit else None
        api = self.api_client(limiter, limiter.hold if limiter else None)
        return JiraClient(api, self.resolved_deployment())


class ConfluenceCredentials(_AtlassianCredentials):
    """Credentials for a Confluence Cloud (``https://acme.atlassian.net/wiki``) or Data Center site.

    Example:
        ```python
        from atlasflow.blocks import ConfluenceCredentials

        credentials = ConfluenceCredentials.load("BLOCK_NAME")
        page = credentials.get_client().get_page("123456")
        ```
    """

    _block_type_name = "atlasflow Confluence Credentials"
    _block_type_slug = "atlasflow-confluence-credentials"
    _description = "Confluence Cloud or Data Center site and credentials (atlasflow)."
    _service = "Confluence"
    _product: ClassVar[Product] = "confluence"
    _documentation_url = "https://developer.atlassian.com/cloud/confluence/rest/v2/intro/"  # type: ignore[assignment]

    def get_client(self) -> ConfluenceClient:
        """A Confluence client for this site: pages through v2 on Cloud, v1 on Data Center; links it hands out
        lead to the site (see :meth:`AtlassianAuth.people_link`)."""
        auth = self.auth()
        return ConfluenceClient(self.api_client(auth=auth), self.resolved_deployment(), links=auth.people_link)


class _RateLimiter:
    """Takes a slot of a Prefect rate limit for every request; does nothing when the limit does not exist.

    Slots are taken :data:`RATE_LIMIT_BATCH` at a time (never more than the limit's burst) and handed to
    this client's requests one by one: one round trip to the Prefect API per batch instead of one per
    request, which at real-world latency would otherwise cap a parallel export well below the limit. The
    limit's rate is unchanged: slots decay at the same pace whoever holds them.

    Requests on a client's critical path (:func:`atlasflow.clients.ratelimit.critical_path`: the chain of
    id pages of a large search) take the next free slot before requests the chain feeds.

    A refused batch is asked for again once that many slots have decayed, and from then on each batch
    once the previous one's slots have (see :meth:`_occupy`). (Prefect's own ``rate_limit`` waits for the
    server's ``Retry-After``, which counts every slot refused lately as if still waiting: a lone client
    polling at that pace gets about half the rate.)

    Whether the limit exists is asked once per client: acquiring a slot of a missing limit costs Prefect
    more than a second of back-off each time.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.active: bool | None = None
        self.limit = 1
        self.per_second = 0.0
        self._ready = 0  # slots taken and not yet handed to a request
        self._taking = False  # a thread is asking Prefect for the next batch
        self._first_waiting = 0  # requests on the critical path waiting for a slot
        self._turn = threading.Condition()
        self._client: _SlotClient | None = None
        self._client_lock = threading.Lock()  # batches and server-asked holds may ask at once
        self._paced = False  # a batch was refused lately: ask for each next one once the last has decayed
        self._next_ask = 0.0  # monotonic time the last batch's slots have decayed by

    def __call__(self) -> None:
        """A slot for one request; requests on the critical path (:func:`critical_path`) are served first."""
        first = on_critical_path()
        with self._turn:
            if self.active is None:
                self._look_up()
            if not self.active:
                return
            self._first_waiting += first
            try:
                while True:
                    my_turn = first or not self._first_waiting
                    if my_turn and self._ready:
                        self._ready -= 1
                        return
                    if my_turn and not self._taking:
                        self._taking = True
                        break
                    self._turn.wait()
            finally:
                self._first_waiting -= first
                if first:
                    self._turn.notify_all()  # the others' turn, if it was the last one first in line
        batch, spare = max(1, min(RATE_LIMIT_BATCH, self.limit)), 0
        try:
            self._occupy(batch)
            spare = batch - 1  # one is this request's
        finally:
            with self._turn:
                self._taking = False
                self._ready += spare
                self._turn.notify_all()

    def hold(self, seconds: float) -> None:
        """The server asked for a pause: occupy the slots that many seconds of the shared rate free, so every
        flow on every worker slows down, not only this client (at most the whole limit at once)."""
        if self.active is None:
            self._look_up()
        if self.active and self.per_second > 0:
            self._occupy(min(self.limit, max(1, math.ceil(seconds * self.per_second))))

    def _occupy(self, slots: int) -> None:
        """Occupy ``slots`` of the limit, waiting while they are taken.

        Once a batch has been refused, the limit is spent as fast as it frees: each later batch is asked
        for when the previous one's slots have decayed, not at once (that ask would be refused, and a
        refusal restarts the server's decay clock). Pacing ends after an idle spell long enough for the
        limit to fill again.
        """
        client = self._prefect()
        decay = slots / self.per_second if self.per_second > 0 else 1.0
        while True:
            now = time.monotonic()
            if now > self._next_ask + decay:
                self._paced = False
            elif self._paced and now < self._next_ask:
                time.sleep(self._next_ask - now)
            try:
                client.increment(self.name, slots)
            except httpx.HTTPStatusError as refused:
                if refused.response.status_code != httpx.codes.LOCKED:
                    raise
                self._paced = True
                self._next_ask = time.monotonic() + decay
                continue
            self._next_ask = time.monotonic() + decay
            return

    def _prefect(self) -> _SlotClient:
        """One Prefect connection for the limiter's life, closed with it: opening one per batch costs ~60 ms,
        paid by every request waiting behind the batch."""
        with self._client_lock:
            if self._client is None:
                self._client = _SlotClient()
                weakref.finalize(self, self._client.close)
            return self._client

    def _look_up(self) -> None:
        with get_client(sync_client=True) as client:
            try:
                limit = client.read_global_concurrency_limit_by_name(self.name)
            except ObjectNotFound:
                self.active = False
                log.info(
                    "rate limit %s does not exist (see `atlasflow setup`): Jira requests are not limited", self.name
                )
                return
        self.active = True
        self.limit = limit.limit
        self.per_second = float(limit.slot_decay_per_second or 0.0)


class _SlotClient:
    """The rate limiter's own Prefect client (not the flow run's, which ``get_client`` hands out inside a
    run), asking a busy server again sooner than Prefect's client would."""

    def __init__(self) -> None:
        # A response hook raising on "busy" ends Prefect's own retry loop at once, back-off and all.
        self._client = get_client(httpx_settings={"event_hooks": {"response": [_raise_busy]}}, sync_client=True)
        self._client.__enter__()

    def increment(self, name: str, slots: int) -> None:
        """Take ``slots`` of the limit now, or raise its refusal (423).

        A busy Prefect API is asked again after 50 ms, doubling, for as long as Prefect's client would retry
        (:func:`prefect_retry_budget`, at least :data:`PREFECT_PATIENCE`): every
        request of the export waits behind this one, where Prefect's client would wait 2 s and more.
        """
        for attempt in Retrying(
            retry=retry_if_exception_type(PrefectBusy),
            wait=wait_exponential_jitter(initial=0.05, max=5, jitter=0.05),
            stop=stop_after_delay(max(PREFECT_PATIENCE, prefect_retry_budget())),
            reraise=True,
        ):
            with attempt:
                self._client.increment_concurrency_slots(names=[name], slots=slots, mode="rate_limit")

    def close(self) -> None:
        self._client.__exit__(None, None, None)


class PrefectBusy(RuntimeError):
    """The Prefect API answered 503: busy, not refusing (a server on SQLite while another write holds the
    database: a flow's own logs and states, for one)."""


def _raise_busy(response: httpx.Response) -> None:
    if response.status_code == httpx.codes.SERVICE_UNAVAILABLE:
        raise PrefectBusy(f"the Prefect API is busy: {response.request.method} {response.request.url.path}")


def jira_client(block_name: str) -> JiraClient:
    """A client for the saved ``JiraCredentials`` block (``Block.load`` is typed sync-or-async)."""
    return cast(JiraCredentials, JiraCredentials.load(block_name)).get_client()


def confluence_client(block_name: str) -> ConfluenceClient:
    """A client for the saved ``ConfluenceCredentials`` block."""
    return cast(ConfluenceCredentials, ConfluenceCredentials.load(block_name)).get_client()
