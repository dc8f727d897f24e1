"""Credential blocks for Jira and Confluence: editable in the Prefect UI, secrets kept as ``SecretStr``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal, cast
from urllib.parse import urlparse

from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import rate_limit
from prefect.exceptions import ObjectNotFound
from pydantic import ConfigDict, Field, SecretStr, field_validator

from atlasflow.clients.confluence import ConfluenceClient
from atlasflow.clients.http import ApiClient
from atlasflow.clients.jira import JiraClient

log = logging.getLogger(__name__)

DeploymentKind = Literal["auto", "cloud", "datacenter"]
#: The global rate limit (created by ``atlasflow setup``) that every flow's Jira requests share.
JIRA_RATE_LIMIT = "atlasflow-jira-api"


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
    """Fields and client construction common to Jira and Confluence sites."""

    model_config = ConfigDict(hide_input_in_errors=True)  # a refused value may be a secret

    url: str = Field(description="Site base URL.")
    username: str | None = Field(
        default=None, description="Cloud: the account e-mail (basic auth). Leave empty for a Data Center PAT."
    )
    token: SecretStr = Field(description="Cloud API token, or Data Center personal access token (Bearer).")
    deployment: DeploymentKind = Field(
        default="auto", description="cloud, datacenter, or auto (*.atlassian.net is Cloud)."
    )
    verify_tls: bool = Field(default=True, description="Verify TLS certificates.")
    timeout_seconds: float = Field(default=30.0, gt=0, description="HTTP connect/read timeout per request.")

    _service = "Atlassian"

    @field_validator("url")
    @classmethod
    def _valid_url(cls, url: str) -> str:
        return check_site_url(url)

    def resolved_deployment(self) -> Literal["cloud", "datacenter"]:
        """``cloud`` or ``datacenter``; ``auto`` decides by host name."""
        if self.deployment != "auto":
            return self.deployment
        host = urlparse(self.url).hostname or ""
        return "cloud" if host.endswith(".atlassian.net") else "datacenter"

    def api_client(self, before_request: Callable[[], None] | None = None) -> ApiClient:
        """An HTTP client authenticated for this site (Basic with username, else Bearer)."""
        token = self.token.get_secret_value()
        auth = (self.username, token) if self.username else None
        headers = {} if self.username else {"Authorization": f"Bearer {token}"}
        return ApiClient(
            self._service,
            self.url,
            headers=headers,
            auth=auth,
            timeout=self.timeout_seconds,
            verify=self.verify_tls,
            before_request=before_request,
        )


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
        return JiraClient(self.api_client(_rate_limiter(self.rate_limit)), self.resolved_deployment())


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
    _documentation_url = "https://developer.atlassian.com/cloud/confluence/rest/v2/intro/"  # type: ignore[assignment]

    def get_client(self) -> ConfluenceClient:
        """A Confluence client for this site."""
        return ConfluenceClient(self.api_client())


class _RateLimiter:
    """Takes one slot of a Prefect rate limit per request; does nothing when the limit does not exist.

    Whether the limit exists is asked once per client: acquiring a slot of a missing limit costs Prefect
    more than a second of back-off each time.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.active: bool | None = None

    def __call__(self) -> None:
        if self.active is None:
            self.active = _limit_exists(self.name)
            if not self.active:
                log.info(
                    "rate limit %s does not exist (see `atlasflow setup`): Jira requests are not limited",
                    self.name,
                )
        if self.active:
            rate_limit(self.name, strict=True)


def _limit_exists(name: str) -> bool:
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            return False
    return True


def _rate_limiter(name: str | None) -> Callable[[], None] | None:
    return _RateLimiter(name) if name else None


def jira_client(block_name: str) -> JiraClient:
    """A client for the saved ``JiraCredentials`` block (``Block.load`` is typed sync-or-async)."""
    return cast(JiraCredentials, JiraCredentials.load(block_name)).get_client()


def confluence_client(block_name: str) -> ConfluenceClient:
    """A client for the saved ``ConfluenceCredentials`` block."""
    return cast(ConfluenceCredentials, ConfluenceCredentials.load(block_name)).get_client()
