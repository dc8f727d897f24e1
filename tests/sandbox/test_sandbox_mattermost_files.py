"""The Mattermost bot API over real HTTP: channels by team and name, file uploads, posts carrying files."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from atlasflow.blocks import MattermostBot
from atlasflow.clients.mattermost import FileTooLarge, MattermostClient
from atlasflow.errors import ApiError
from atlasflow.sandbox.mattermost import DEMO_CHANNELS

if TYPE_CHECKING:
    from atlasflow.sandbox.app import Sandbox

REPORTS = DEMO_CHANNELS[0]


def bot(sb: Sandbox, team: str | None = None, token: str | None = None) -> MattermostClient:
    return MattermostBot(url=sb.url, token=token or sb.mattermost.bot_token, team=team).get_client()


def test_file_posted_arrives_byte_for_byte_with_a_permalink(cloud_sandbox: Sandbox) -> None:
    client = bot(cloud_sandbox)
    channel = client.channel("acme/reports")
    assert (channel.id, channel.team_name) == (REPORTS.id, "acme")
    file_id = client.upload(channel, "report.xlsx", b"\x00PK workbook bytes", "application/vnd.ms-excel")
    link = client.post(channel, "Export done", [file_id])

    [post] = cloud_sandbox.mattermost.posts
    assert post.channel == REPORTS.id and post.file_ids == (file_id,) and post.message == "Export done"
    stored = cloud_sandbox.mattermost.files[file_id]
    assert (stored.name, stored.data, stored.post_id) == ("report.xlsx", b"\x00PK workbook bytes", post.id)
    assert link == f"{cloud_sandbox.url}/acme/pl/{post.id}"
    opened = httpx.get(link).json()
    assert opened["id"] == post.id and opened["metadata"]["files"][0]["name"] == "report.xlsx"
    bytes_back = httpx.get(
        f"{cloud_sandbox.url}/api/v4/files/{file_id}",
        headers={"Authorization": f"Bearer {cloud_sandbox.mattermost.bot_token}"},
    )
    assert bytes_back.content == b"\x00PK workbook bytes"


def test_channel_references(cloud_sandbox: Sandbox) -> None:
    assert bot(cloud_sandbox, team="acme").channel("reports").id == REPORTS.id
    by_id = bot(cloud_sandbox).channel(REPORTS.id)
    assert (by_id.name, by_id.team_name) == ("reports", "acme")
    with pytest.raises(ValueError, match="team-name/channel-name"):
        bot(cloud_sandbox).channel("reports")
    with pytest.raises(ApiError, match=r"404.*Channel does not exist"):
        bot(cloud_sandbox).channel("acme/nope")
    with pytest.raises(ApiError, match="403"):
        bot(cloud_sandbox).channel("acme/private-hr")
    with pytest.raises(ApiError, match="401"):
        bot(cloud_sandbox, token="wrong-bot-token").channel("acme/reports")


def test_too_large_is_refused_before_the_body_is_read(cloud_sandbox: Sandbox) -> None:
    cloud_sandbox.mattermost.max_file_size = 1000
    client = bot(cloud_sandbox)
    channel = client.channel("acme/reports")
    with pytest.raises(FileTooLarge, match=r"413.*big\.xlsx \(5,000 bytes\) is larger than the server accepts"):
        client.upload(channel, "big.xlsx", b"x" * 5000, "application/octet-stream")
    assert cloud_sandbox.mattermost.files == {}


def test_a_post_only_carries_files_the_bot_uploaded_to_that_channel(cloud_sandbox: Sandbox) -> None:
    client = bot(cloud_sandbox)
    reports, town = client.channel("acme/reports"), client.channel("acme/town-square")
    elsewhere = client.upload(town, "a.txt", b"a", "text/plain")
    with pytest.raises(ApiError, match="created without file"):
        client.post(reports, "wrong channel", [elsewhere])
    mine = client.upload(reports, "b.txt", b"b", "text/plain")
    client.post(reports, "first", [mine])
    with pytest.raises(ApiError, match="created without file"):
        client.post(reports, "second use", [mine])  # a file belongs to one post
