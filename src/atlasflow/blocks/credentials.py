"""Credential blocks for Jira and Confluence: editable in the Prefect UI, secrets kept as ``SecretStr``.

A block holds fields and builds a client (``get_client()``); the global Jira rate limit its clients take a
slot of lives in :mod:`atlasflow.runtime.ratelimit`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal, cast
from urllib.parse import urlparse

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

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
from atlasflow.runtime.ratelimit import JIRA_RATE_LIMIT, PrefectRateLimiter

DeploymentKind = Literal["auto", "cloud", "datacenter"]
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
        limiter = PrefectRateLimiter(self.rate_limit) if self.rate_limit else None
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


def jira_client(block_name: str) -> JiraClient:
    """A client for the saved ``JiraCredentials`` block (``Block.load`` is typed sync-or-async)."""
    return cast(JiraCredentials, JiraCredentials.load(block_name)).get_client()


def confluence_client(block_name: str) -> ConfluenceClient:
    """A client for the saved ``ConfluenceCredentials`` block."""
    return cast(ConfluenceCredentials, ConfluenceCredentials.load(block_name)).get_client()
