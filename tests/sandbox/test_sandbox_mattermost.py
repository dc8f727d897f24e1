"""The Mattermost stand-in over real HTTP: incoming webhooks, the bot API, the length limit, mentions."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import requests
from prefect.blocks.notifications import MattermostWebhook
from pydantic import SecretStr

from atlasflow.sandbox.mattermost import MAX_POST_RUNES

if TYPE_CHECKING:
    from atlasflow.sandbox.app import Sandbox


def hook(sb: Sandbox, payload: dict[str, Any]) -> requests.Response:
    return requests.post(sb.mattermost_hook_url, json=payload, timeout=30)


def bot_post(sb: Sandbox, payload: dict[str, Any], token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or sb.mattermost.bot_token}"}
    return requests.post(f"{sb.url}/api/v4/posts", json=payload, headers=headers, timeout=30)


def assert_app_error(response: requests.Response, status: int, error_id: str, message: str) -> None:
    body = response.json()
    assert response.status_code == status
    assert set(body) == {"id", "message", "detailed_error", "request_id", "status_code"}
    assert (body["id"], body["message"], body["detailed_error"], body["status_code"]) == (
        error_id,
        message,
        "",
        status,
    )
    assert len(body["request_id"]) == 26


def test_webhook_json_is_recorded(cloud_sandbox: Sandbox) -> None:
    response = hook(
        cloud_sandbox,
        {
            "text": "Export finished",
            "channel": "reports",
            "username": "atlasflow",
            "icon_url": "https://example.com/icon.png",
            "props": {"run_id": "42"},
        },
    )

    assert (response.status_code, response.text) == (200, "ok")
    assert response.headers["content-type"] == "text/plain"
    [post] = cloud_sandbox.mattermost.posts
    assert (post.source, post.channel, post.username, post.text) == (
        "webhook",
        "reports",
        "atlasflow",
        "Export finished",
    )
    assert (post.icon_url, post.props, post.attachments, post.mentions) == (
        "https://example.com/icon.png",
        {"run_id": "42"},
        [],
        (),
    )


def test_webhook_form_payload_is_recorded(cloud_sandbox: Sandbox) -> None:
    payload = {"text": "From a form\nline two", "channel": "#alerts"}

    response = requests.post(
        cloud_sandbox.mattermost_hook_url, data={"payload": json.dumps(payload)}, timeout=30
    )

    assert (response.status_code, response.text) == (200, "ok")
    [post] = cloud_sandbox.mattermost.posts
    assert (post.channel, post.text, post.username) == ("alerts", "From a form\nline two", None)


def test_webhook_without_channel_goes_to_the_hooks_channel(cloud_sandbox: Sandbox) -> None:
    hook(cloud_sandbox, {"text": "hi"})

    assert cloud_sandbox.mattermost.posts[0].channel == "town-square"


def test_webhook_with_an_unknown_token_is_400(cloud_sandbox: Sandbox) -> None:
    response = requests.post(f"{cloud_sandbox.url}/hooks/nosuchhook", json={"text": "hi"}, timeout=30)

    assert_app_error(response, 400, "web.incoming_webhook.invalid.app_error", "Invalid webhook.")
    assert cloud_sandbox.mattermost.posts == []


def test_webhook_without_text_or_attachments_is_400_before_the_token_is_checked(
    cloud_sandbox: Sandbox,
) -> None:
    good = hook(cloud_sandbox, {"channel": "reports"})
    bad_token = requests.post(f"{cloud_sandbox.url}/hooks/nosuchhook", json={"text": ""}, timeout=30)

    for response in (good, bad_token):
        assert_app_error(response, 400, "web.incoming_webhook.text.app_error", "No text specified.")
    assert cloud_sandbox.mattermost.posts == []


@pytest.mark.parametrize(
    "body", ["not json", '{"text": 5}', "[]"], ids=["garbage", "text-not-string", "array"]
)
def test_unparsable_webhook_payload_is_400(cloud_sandbox: Sandbox, body: str) -> None:
    response = requests.post(
        cloud_sandbox.mattermost_hook_url, data=body, headers={"Content-Type": "application/json"}, timeout=30
    )

    assert_app_error(
        response, 400, "model.incoming_hook.parse_data.app_error", "Unable to parse incoming data."
    )


def test_webhook_accepts_raw_newlines_inside_json_strings(cloud_sandbox: Sandbox) -> None:
    response = requests.post(
        cloud_sandbox.mattermost_hook_url,
        data=b'{"text": "line one\nline two"}',
        headers={"Content-Type": "application/json"},
        timeout=30,
    )

    assert response.status_code == 200
    assert cloud_sandbox.mattermost.posts[0].text == "line one\nline two"


def test_webhook_text_over_the_limit_is_split_into_posts(cloud_sandbox: Sandbox) -> None:
    text = "é" * MAX_POST_RUNES + "x" * MAX_POST_RUNES + "tail @channel"
    attachment = {"fallback": "f", "text": "details"}

    response = hook(cloud_sandbox, {"text": text, "attachments": [attachment], "props": {"k": "v"}})

    assert response.status_code == 200
    posts = cloud_sandbox.mattermost.posts
    assert [len(p.text) for p in posts] == [MAX_POST_RUNES, MAX_POST_RUNES, len("tail @channel")]
    assert "".join(p.text for p in posts) == text
    assert [p.attachments for p in posts] == [[], [], [attachment]]
    assert [p.props for p in posts] == [{"k": "v"}] * 3
    assert [p.mentions for p in posts] == [(), (), ("channel",)]


def test_webhook_text_at_the_limit_is_one_post(cloud_sandbox: Sandbox) -> None:
    hook(cloud_sandbox, {"text": "é" * MAX_POST_RUNES})

    assert [len(p.text) for p in cloud_sandbox.mattermost.posts] == [MAX_POST_RUNES]


def test_api_post_needs_the_bot_token(cloud_sandbox: Sandbox) -> None:
    payload = {"channel_id": "ch1", "message": "hello"}

    anonymous = requests.post(f"{cloud_sandbox.url}/api/v4/posts", json=payload, timeout=30)
    wrong = bot_post(cloud_sandbox, payload, token="wrong")

    for response in (anonymous, wrong):
        assert_app_error(
            response,
            401,
            "api.context.session_expired.app_error",
            "Invalid or expired session, please login again.",
        )
    assert cloud_sandbox.mattermost.posts == []


def test_api_post_is_201_and_recorded(cloud_sandbox: Sandbox) -> None:
    response = bot_post(cloud_sandbox, {"channel_id": "ch1", "message": "Run done @bob", "props": {"k": 1}})

    body = response.json()
    assert response.status_code == 201
    assert (body["channel_id"], body["message"], body["props"]) == ("ch1", "Run done @bob", {"k": 1})
    assert len(body["id"]) == 26 and body["create_at"] > 0 and body["user_id"]
    [post] = cloud_sandbox.mattermost.posts
    assert (post.id, post.source, post.channel, post.mentions) == (body["id"], "api", "ch1", ("bob",))


def test_api_message_over_the_limit_is_400(cloud_sandbox: Sandbox) -> None:
    too_long = bot_post(cloud_sandbox, {"channel_id": "ch1", "message": "é" * (MAX_POST_RUNES + 1)})
    at_limit = bot_post(cloud_sandbox, {"channel_id": "ch1", "message": "é" * MAX_POST_RUNES})

    assert_app_error(
        too_long,
        400,
        "model.post.is_valid.message_length.app_error",
        "Post Message property is longer than the maximum permitted length.",
    )
    assert at_limit.status_code == 201
    assert len(cloud_sandbox.mattermost.posts) == 1


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("@channel please review", ("channel",)),
        ("`@channel` is how you ping everyone", ()),
        ("``code with `@here` inside`` and then @all", ("all",)),
        ("before\n```\n@channel\n```\nafter", ()),
        ("intro\n\n    @here in an indented code block", ()),
        ("write to user@example.com", ()),
        ("x@channel", ()),
        ("Ping @Alice. and @here!", ("alice", "here")),
        ("@ALL: done", ("all",)),
        ("(@channel)", ("channel",)),
        ("<!channel> the build broke", ("channel",)),
        # The server resolves the escape before it looks for mentions: \@channel still notifies the channel.
        ("\\@channel", ("channel",)),
    ],
)
def test_mentions_are_found_as_the_server_finds_them(
    cloud_sandbox: Sandbox, text: str, mentions: tuple[str, ...]
) -> None:
    hook(cloud_sandbox, {"text": text})

    assert cloud_sandbox.mattermost.posts[0].mentions == mentions


def test_mentions_in_attachments_count(cloud_sandbox: Sandbox) -> None:
    hook(cloud_sandbox, {"attachments": [{"pretext": "@here", "text": "cc @carla", "title": "@nobody"}]})

    assert cloud_sandbox.mattermost.posts[0].mentions == ("here", "carla")


def test_mentions_aggregate_and_clear(cloud_sandbox: Sandbox) -> None:
    log = cloud_sandbox.mattermost
    hook(cloud_sandbox, {"text": "@channel first @bob"})
    bot_post(cloud_sandbox, {"channel_id": "ch1", "message": "@channel again @channel"})

    assert log.mentions() == {"channel": 2, "bob": 1}
    log.clear()
    assert (log.posts, log.mentions()) == ([], {})


def test_prefect_mattermost_block_posts_to_the_sandbox(cloud_sandbox: Sandbox) -> None:
    port = int(cloud_sandbox.url.rsplit(":", 1)[1])
    block = MattermostWebhook(
        hostname="127.0.0.1", token=SecretStr(cloud_sandbox.mattermost.hook_token), port=port, secure=False
    )

    block.notify("body @channel", "subject")

    # apprise sends {"text": "<title>\r\n<body>", "username": <app id>} and neither channel nor icon_url:
    # the block adds a bare NotifyMattermost, so the app id is apprise's default, "Apprise".
    [post] = cloud_sandbox.mattermost.posts
    assert (post.source, post.text, post.username) == ("webhook", "subject\r\nbody @channel", "Apprise")
    assert (post.channel, post.icon_url, post.mentions) == ("town-square", None, ("channel",))
