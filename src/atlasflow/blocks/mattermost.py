"""The Mattermost bot block: what file deliveries post through (incoming webhooks cannot carry files)."""

from __future__ import annotations

from typing import cast

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator

from atlasflow.blocks.credentials import check_secret_length, check_site_url
from atlasflow.clients.http import ApiClient
from atlasflow.clients.mattermost import MattermostClient


class MattermostBot(Block):
    """A Mattermost bot account (System Console > Integrations > Bot Accounts) and its access token.

    Example:
        ```python
        from atlasflow.blocks import MattermostBot

        client = MattermostBot.load("BLOCK_NAME").get_client()
        channel = client.channel("acme/reports")
        ```
    """

    _block_type_name = "atlasflow Mattermost Bot"
    _block_type_slug = "atlasflow-mattermost-bot"
    _description = "A Mattermost bot account that posts files (atlasflow)."
    _documentation_url = "https://developers.mattermost.com/integrate/reference/bot-accounts/"  # type: ignore[assignment]

    url: str = Field(description="Server base URL, e.g. https://chat.acme.com.")
    token: SecretStr = Field(description="The bot's access token.")
    team: str | None = Field(
        default=None, description="Team name used for channel names given without one (team-name/channel-name)."
    )
    verify_tls: bool = Field(default=True, description="Verify TLS certificates.")
    timeout_seconds: float = Field(default=120.0, gt=0, description="HTTP timeout per request (uploads included).")

    @field_validator("url")
    @classmethod
    def _valid_url(cls, url: str) -> str:
        return check_site_url(url)

    @field_validator("token")
    @classmethod
    def _long_enough(cls, token: SecretStr) -> SecretStr:
        checked = check_secret_length(token)
        assert checked is not None
        return checked

    def get_client(self) -> MattermostClient:
        token = self.token.get_secret_value()
        api = ApiClient(
            "Mattermost",
            self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=self.timeout_seconds,
            verify=self.verify_tls,
        )
        return MattermostClient(api, self.team)


def mattermost_client(block_name: str) -> MattermostClient:
    """A client for the saved ``MattermostBot`` block."""
    return cast(MattermostBot, MattermostBot.load(block_name)).get_client()
