"""Mattermost REST v4 client for a bot account: find a channel, upload a file, post with it.

Incoming webhooks cannot carry files, so a file goes through the bot API: ``POST /api/v4/files`` (multipart
``channel_id`` then ``files``), then ``POST /api/v4/posts`` naming the uploaded ``file_ids``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from atlasflow.clients.http import ApiClient
from atlasflow.errors import ApiError, ConfigurationError

_ID = re.compile(r"^[a-z0-9]{26}$")


class FileTooLarge(ApiError):
    """The server refused the upload as larger than its ``MaxFileSize`` (413)."""


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    team_name: str | None


class MattermostClient:
    """Talks to one Mattermost server as a bot (``Authorization: Bearer <token>``).

    Args:
        api: HTTP client on the server's base URL.
        team: Team name for channel references without one.
    """

    def __init__(self, api: ApiClient, team: str | None = None) -> None:
        self.api = api
        self.team = team

    def close(self) -> None:
        self.api.close()

    def channel(self, reference: str) -> Channel:
        """The channel ``team-name/channel-name``, ``channel-name`` (in the block's team) or a channel id.

        Raises:
            ConfigurationError: A bare channel name without a team to look it up in.
            ApiError: The server does not know the channel or the bot may not see it.
        """
        team, _, name = reference.strip().rpartition("/")
        if not team and _ID.match(name):
            data = self.api.get_json(f"/api/v4/channels/{name}")
            team_id = str(data.get("team_id") or "")
            team_name = str(self.api.get_json(f"/api/v4/teams/{team_id}")["name"]) if team_id else None
            return Channel(str(data["id"]), str(data["name"]), team_name)
        team = team or self.team or ""
        if not team or not name:
            raise ConfigurationError(
                f"channel {reference!r}: give team-name/channel-name, a channel id, or set the block's team"
            )
        data = self.api.get_json(f"/api/v4/teams/name/{quote(team)}/channels/name/{quote(name)}")
        return Channel(str(data["id"]), str(data["name"]), team)

    def upload(self, channel: Channel, file_name: str, content: bytes, media_type: str) -> str:
        """Upload a file to a channel (not yet posted); returns its file id.

        Raises:
            FileTooLarge: The server's file size limit is smaller than the file.
        """
        response = self.api.request(
            "POST",
            "/api/v4/files",
            data={"channel_id": channel.id},
            files={"files": (file_name, content, media_type)},
            ok=(413,),
            idempotent=False,
        )
        if response.status_code == 413:
            raise FileTooLarge(
                "Mattermost",
                "POST",
                "/api/v4/files",
                413,
                f"{file_name} ({len(content):,} bytes) is larger than the server accepts "
                "(System Console > Environment > File Storage > Maximum File Size)",
            )
        return str(self.api.decode(response)["file_infos"][0]["id"])

    def post(self, channel: Channel, message: str, file_ids: list[str]) -> str:
        """Post ``message`` with the uploaded files; returns the post's permalink."""
        body = self.api.post_json("/api/v4/posts", {"channel_id": channel.id, "message": message, "file_ids": file_ids})
        missing = set(file_ids) - set(body.get("file_ids") or [])
        if missing:
            raise ApiError(
                "Mattermost", "POST", "/api/v4/posts", None, f"the post was created without file(s) {sorted(missing)}"
            )
        team = channel.team_name or "_redirect"
        return f"{self.api.base_url}/{quote(team)}/pl/{quote(str(body['id']), safe='')}"
