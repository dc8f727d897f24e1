"""Mattermost stand-in: incoming webhooks and the bot's ``POST /api/v4/posts``, recording every post.

What the real server does, and where we read it (mattermost/mattermost, ``server/``):

* ``POST /hooks/{token}`` (``channels/web/webhook.go`` ``incomingWebhook``): a form-encoded body is read from
  its ``payload`` field, any other body as JSON (raw control characters inside JSON strings are tolerated);
  an unreadable payload is 400 ``model.incoming_hook.parse_data.app_error``. Then
  (``channels/app/webhook.go`` ``HandleIncomingWebhook``) no text and no attachments is 400
  ``web.incoming_webhook.text.app_error`` and only after that an unknown token is 400
  ``web.incoming_webhook.invalid.app_error`` "Invalid webhook.". Success answers ``ok`` as ``text/plain``.
  Slack-style ``<!channel>``, ``<!here>``, ``<!all>`` become ``@channel``, ``@here``, ``@all``
  (``expandAnnouncement``, in the text and in attachments' pretext, text and title) and ``<url|label>``
  becomes ``[label](url)`` (``CreateWebhookPost``).
* Length limit (:data:`MAX_POST_RUNES`, 16,383 runes = Python code points; the server's ``MaxPostSize``
  for a current database): a webhook text over the limit is **split** into consecutive posts of at most the
  limit each, cut at exact rune boundaries (``SplitWebhookPost``, called by ``CreateWebhookPost``); every
  part carries the props and the attachments go with the last part. ``POST /api/v4/posts`` **rejects** a
  longer message with 400 ``model.post.is_valid.message_length.app_error`` (``public/model/post.go``
  ``Post.IsValid``; older servers named it ``model.post.is_valid.msg.app_error``).
* Mentions (``channels/app/notification.go`` ``getExplicitMentions`` and
  ``mention_parser_standard.go``): the message and each attachment's pretext and text are parsed as
  Markdown and only text nodes are searched, so code spans and code blocks never mention anyone. Words are
  runs of letters, digits and ``: . - _ @``, so ``user@example.com`` or ``x@channel`` mention nobody.
  ``@channel``, ``@all``, ``@here`` match case-insensitively, also with trailing ``. - : _``. A backslash
  escape does **not** prevent a mention: the Markdown parser turns ``\\@channel`` into the text nodes ``@``
  and ``channel``, which are joined before the search, so the server notifies the channel.

The bot API (``channels/api4/``): a bot sends ``Authorization: Bearer <token>`` (else 401
``api.context.session_expired.app_error``).

* ``GET /api/v4/teams/name/{team}/channels/name/{channel}``, ``GET /api/v4/channels/{id}``,
  ``GET /api/v4/teams/{id}``: the channel or team JSON; unknown names 404 (``app.channel.get_by_name.missing
  .app_error``, ``app.team.get_by_name.missing.app_error``), a private channel the bot is not in 403.
* ``POST /api/v4/files`` (multipart: ``channel_id`` first, then one or more ``files`` parts) answers 201
  ``{"file_infos": [...], "client_ids": []}``; a body longer than ``FileSettings.MaxFileSize``
  (:attr:`MattermostLog.max_file_size`, 100 MB by default) is 413
  ``api.file.upload_file.too_large_detailed.app_error``, checked on ``Content-Length`` before reading, as
  the server does; a channel the bot is not a member of is 403.
* ``POST /api/v4/posts`` with ``file_ids``: each file is attached when the bot uploaded it to that channel
  and no post has it yet; other ids are dropped from the post, as ``attachFilesToPost`` does. The post
  answers ``file_ids`` and ``metadata.files``. ``GET /api/v4/files/{id}`` returns the bytes.
* A permalink ``/{team}/pl/{post_id}`` (the web app's) answers the post's JSON here, so tests can open it.

Simplifications, all documented here:

* The Markdown is reduced to what decides mentions: fenced code blocks (backticks or tildes), indented code
  blocks (4 columns, after a blank line), code spans (matched backtick runs within a block) and backslash
  escapes. Entities, links and HTML are left as text.
* There is no user directory: ``@name`` counts as a mention of user ``name`` (lower-cased, trailing
  ``. - : _`` removed), whether or not such a user exists; a real server notifies only members.
* Any channel name and ``channel_id`` is accepted; the server's own props (``from_webhook``,
  ``override_username``, ...) are not added to the recorded ``props``; multipart webhook bodies are not
  supported (they are read as JSON and refused as unparsable).
"""

from __future__ import annotations

import base64
import json
import re
import string
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import parse_qs

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from atlasflow.sandbox.core import SandboxState

MAX_POST_RUNES = 16383
SYSTEM_MENTIONS = ("channel", "all", "here")
BOT_USER_ID = "sandboxbot0000000000000000"
HOOK_CREATOR_ID = "sandboxhookcreator00000000"

_ID_ALPHABET = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "ybndrfg8ejkmcpqxot1uwisza345h769")
_ANNOUNCEMENTS = {"<!channel>": "@channel", "<!here>": "@here", "<!all>": "@all"}
_SLACK_LINK = re.compile(r"<([^\n<|>]+)\|([^|\n>]+)>")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_WORD = re.compile(r"[\w:.\-@]+")
_SENTENCE_END = re.compile(r"[.\-:]")


def new_id() -> str:
    """A Mattermost-style id: 26 characters of base32 (Mattermost's alphabet) of a random UUID."""
    return base64.b32encode(uuid.uuid4().bytes).decode().rstrip("=").translate(_ID_ALPHABET)


@dataclass(frozen=True)
class Post:
    """One post as the server stored it.

    Attributes:
        id: Post id.
        create_at: Milliseconds since the epoch.
        source: ``"webhook"`` or ``"api"``.
        channel: Channel name (webhook; ``@user`` for a direct message) or channel id (API).
        username: The username override of a webhook post, the bot's username for an API post.
        message: The text (``text`` of a webhook, ``message`` of an API post), after Slack conversions.
        props: The props the client sent (without ``attachments``).
        attachments: Message attachments.
        icon_url: The icon override of a webhook post.
        user_id: The author: the hook's creator or the bot.
        mentions: Who the post would notify, in order of first appearance: ``channel``, ``all``, ``here`` or
            a username.
    """

    id: str
    create_at: int
    source: Literal["webhook", "api"]
    channel: str
    username: str | None
    message: str
    props: dict[str, Any]
    attachments: list[dict[str, Any]]
    icon_url: str | None
    user_id: str
    mentions: tuple[str, ...]
    file_ids: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The webhook name of :attr:`message`."""
        return self.message

    def as_api_json(self, files: dict[str, StoredFile] | None = None) -> dict[str, Any]:
        """The post as ``POST /api/v4/posts`` answers it (``files``: the server's file infos by id)."""
        props = dict(self.props)
        if self.attachments:
            props["attachments"] = self.attachments
        return {
            "id": self.id,
            "create_at": self.create_at,
            "update_at": self.create_at,
            "edit_at": 0,
            "delete_at": 0,
            "is_pinned": False,
            "user_id": self.user_id,
            "channel_id": self.channel,
            "root_id": "",
            "original_id": "",
            "message": self.message,
            "type": "",
            "props": props,
            "hashtags": "",
            "pending_post_id": "",
            "reply_count": 0,
            "last_reply_at": 0,
            "participants": None,
            "file_ids": list(self.file_ids),
            "metadata": {"files": [files[i].as_json() for i in self.file_ids]} if files and self.file_ids else {},
        }


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    display_name: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "create_at": 0,
            "update_at": 0,
            "delete_at": 0,
            "display_name": self.display_name,
            "name": self.name,
            "description": "",
            "type": "O",
            "allow_open_invite": True,
        }


@dataclass(frozen=True)
class Channel:
    """A channel; ``bot_member`` says whether the bot may read and post in it."""

    id: str
    team_id: str
    name: str
    display_name: str
    type: Literal["O", "P"] = "O"
    bot_member: bool = True

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "create_at": 0,
            "update_at": 0,
            "delete_at": 0,
            "team_id": self.team_id,
            "type": self.type,
            "display_name": self.display_name,
            "name": self.name,
            "header": "",
            "purpose": "",
            "last_post_at": 0,
            "total_msg_count": 0,
            "creator_id": "",
        }


@dataclass(frozen=True)
class StoredFile:
    """An uploaded file: the bytes as they arrived; ``post_id`` once a post carries it."""

    id: str
    channel_id: str
    user_id: str
    name: str
    data: bytes
    mime_type: str
    create_at: int
    post_id: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "channel_id": self.channel_id,
            "post_id": self.post_id,
            "create_at": self.create_at,
            "update_at": self.create_at,
            "delete_at": 0,
            "name": self.name,
            "extension": self.name.rpartition(".")[2] if "." in self.name else "",
            "size": len(self.data),
            "mime_type": self.mime_type,
            "has_preview_image": False,
            "mini_preview": None,
            "remote_id": "",
            "archived": False,
        }


#: The demo team and channels: the bot is in ``reports`` and ``town-square``, not in ``private-hr``.
DEMO_TEAM = Team("sandboxteam000000000000000", "acme", "Acme")
DEMO_CHANNELS = (
    Channel("sandboxreports000000000000", DEMO_TEAM.id, "reports", "Reports"),
    Channel("sandboxtownsquare000000000", DEMO_TEAM.id, "town-square", "Town Square"),
    Channel("sandboxprivatehr0000000000", DEMO_TEAM.id, "private-hr", "HR (private)", "P", bot_member=False),
)
DEFAULT_MAX_FILE_SIZE = 104_857_600


@dataclass
class MattermostLog:
    """The posts the stand-in received (thread-safe), and the tokens it accepts."""

    hook_token: str = "sandboxhook0000000000000000"
    bot_token: str = "sandbox-bot-token"
    hook_channel: str = "town-square"
    bot_username: str = "sandbox-bot"
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    teams: dict[str, Team] = field(default_factory=lambda: {DEMO_TEAM.id: DEMO_TEAM})
    channels: dict[str, Channel] = field(default_factory=lambda: {c.id: c for c in DEMO_CHANNELS})
    _posts: list[Post] = field(default_factory=list, init=False, repr=False)
    _files: dict[str, StoredFile] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    @property
    def files(self) -> dict[str, StoredFile]:
        """Every uploaded file by id (a copy)."""
        with self._lock:
            return dict(self._files)

    def add_file(self, stored: StoredFile) -> None:
        with self._lock:
            self._files[stored.id] = stored

    def attach(self, file_ids: list[str], channel_id: str, user_id: str, post_id: str) -> tuple[str, ...]:
        """Attach the files a post may carry (uploaded by ``user_id`` to its channel, not yet posted)."""
        attached = []
        with self._lock:
            for file_id in dict.fromkeys(file_ids):
                stored = self._files.get(file_id)
                if stored and stored.channel_id == channel_id and stored.user_id == user_id and not stored.post_id:
                    self._files[file_id] = replace(stored, post_id=post_id)
                    attached.append(file_id)
        return tuple(attached)

    def team_named(self, name: str) -> Team | None:
        return next((t for t in self.teams.values() if t.name == name), None)

    @property
    def posts(self) -> list[Post]:
        """Every post so far, oldest first (a copy)."""
        with self._lock:
            return list(self._posts)

    def add(self, post: Post) -> None:
        with self._lock:
            self._posts.append(post)

    def mentions(self) -> dict[str, int]:
        """How many posts mention each name (``channel``, ``all``, ``here`` or a username)."""
        with self._lock:
            return dict(Counter(name for post in self._posts for name in post.mentions))

    def clear(self) -> None:
        with self._lock:
            self._posts.clear()
            self._files.clear()


# -- mentions ---------------------------------------------------------------------------------------------


def mentions_in(message: str, attachments: list[dict[str, Any]] | None = None) -> tuple[str, ...]:
    """Who a post would notify, as the server parses it (see the module docstring)."""
    fields = [message]
    for attachment in attachments or []:
        fields += [str(attachment[k]) for k in ("pretext", "text") if attachment.get(k)]
    found: dict[str, None] = {}
    for text in fields:
        for chunk in _outside_code_blocks(text):
            for run in _text_runs(chunk):
                found.update(dict.fromkeys(_mentions_in_text(run)))
    return tuple(found)


def _indent(line: str) -> int:
    columns = 0
    for char in line:
        if char == " ":
            columns += 1
        elif char == "\t":
            columns += 4 - columns % 4
        else:
            break
    return columns


def _outside_code_blocks(text: str) -> Iterator[str]:
    """The stretches of ``text`` between fenced and indented code blocks."""
    chunk: list[str] = []
    fence: str | None = None
    in_indented, after_blank = False, True
    for line in text.split("\n"):
        blank = not line.strip()
        if fence is not None:
            closing = line.strip()
            if _indent(line) <= 3 and len(closing) >= len(fence) and set(closing) == {fence[0]}:
                fence, after_blank = None, False
            continue
        opening = _FENCE.match(line)
        if opening and not (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            yield "\n".join(chunk)
            chunk, fence = [], opening.group(1)
            continue
        if not blank and _indent(line) >= 4 and (after_blank or in_indented):
            yield "\n".join(chunk)
            chunk, in_indented = [], True
            continue
        if blank and in_indented:
            continue
        in_indented, after_blank = False, blank
        chunk.append(line)
    yield "\n".join(chunk)


def _closing_backticks(text: str, start: int, width: int) -> int | None:
    """Where the next run of exactly ``width`` backticks begins, from ``start``."""
    at = text.find("`" * width, start)
    while at >= 0:
        end = at + width
        while end < len(text) and text[end] == "`":
            end += 1
        if end - at == width:
            return at
        at = text.find("`" * width, end)
    return None


def _text_runs(chunk: str) -> Iterator[str]:
    """The text between code spans, with backslash escapes resolved."""
    run: list[str] = []
    i = 0
    while i < len(chunk):
        char = chunk[i]
        if char == "\\" and i + 1 < len(chunk) and chunk[i + 1] in string.punctuation:
            run.append(chunk[i + 1])
            i += 2
        elif char == "`":
            end = i
            while end < len(chunk) and chunk[end] == "`":
                end += 1
            close = _closing_backticks(chunk, end, end - i)
            if close is None:
                run.append(chunk[i:end])
                i = end
            else:
                yield "".join(run)
                run = []
                i = close + (end - i)
        else:
            run.append(char)
            i += 1
    yield "".join(run)


def _system_mention(word: str) -> str | None:
    lowered = word.lower()
    return lowered[1:] if lowered.startswith("@") and lowered[1:] in SYSTEM_MENTIONS else None


def _mentions_in_text(text: str) -> Iterator[str]:
    """``StandardMentionParser.ProcessText`` without a user directory."""
    for found in _WORD.findall(text):
        if found[0] == ":" and found[-1] == ":":
            continue
        word = found.lstrip(":.-_")
        if not word:
            continue
        system = _system_mention(word) or _system_mention(word.rstrip(".-:_"))
        if system:
            yield system
        elif word.startswith("@"):
            name = word[1:].rstrip(".-:_").lower()
            if name:
                yield name
        else:
            for piece in _SENTENCE_END.split(word):
                system = _system_mention(piece)
                if system:
                    yield system
                elif piece.startswith("@") and len(piece) > 1:
                    yield piece[1:].lower()


# -- the routes -------------------------------------------------------------------------------------------


class AppError(Exception):
    """A Mattermost ``model.AppError``: rendered as its JSON body."""

    def __init__(self, status: int, error_id: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_id, self.message = status, error_id, message

    def response(self) -> Response:
        request_id = new_id()
        body = {
            "id": self.error_id,
            "message": self.message,
            "detailed_error": "",
            "request_id": request_id,
            "status_code": self.status,
        }
        return JSONResponse(body, status_code=self.status, headers={"X-Request-Id": request_id})


@dataclass(frozen=True)
class WebhookRequest:
    """The fields of an incoming-webhook payload the stand-in uses."""

    text: str
    channel: str
    username: str
    icon_url: str
    attachments: list[dict[str, Any]] | None
    props: dict[str, Any]


def _string(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _unparsable()
    return value


def _unparsable() -> AppError:
    return AppError(400, "model.incoming_hook.parse_data.app_error", "Unable to parse incoming data.")


def parse_webhook_payload(raw: str) -> WebhookRequest:
    """Decode a webhook payload as the server does (strings checked, control characters tolerated).

    Raises:
        AppError: 400 ``model.incoming_hook.parse_data.app_error``.
    """
    try:
        payload = json.loads(raw, strict=False)
    except ValueError as exc:
        raise _unparsable() from exc
    if not isinstance(payload, dict):
        raise _unparsable()
    attachments = payload.get("attachments")
    props = payload.get("props")
    if attachments is not None and not (
        isinstance(attachments, list) and all(isinstance(a, dict) for a in attachments)
    ):
        raise _unparsable()
    if props is not None and not isinstance(props, dict):
        raise _unparsable()
    return WebhookRequest(
        text=_string(payload, "text"),
        channel=_string(payload, "channel"),
        username=_string(payload, "username"),
        icon_url=_string(payload, "icon_url"),
        attachments=attachments,
        props=props or {},
    )


def _expand_announcements(text: str) -> str:
    for slack, mattermost in _ANNOUNCEMENTS.items():
        text = text.replace(slack, mattermost)
    return text


def _slack_attachments(attachments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **a,
            **{
                k: _expand_announcements(a[k])
                for k in ("pretext", "text", "title")
                if isinstance(a.get(k), str)
            },
        }
        for a in attachments
    ]


def split_message(message: str, limit: int = MAX_POST_RUNES) -> list[str]:
    """A webhook text cut into parts of at most ``limit`` code points (one part, maybe empty, at least)."""
    return [message[i : i + limit] for i in range(0, len(message), limit)] or [""]


def webhook_posts(log: MattermostLog, hook: WebhookRequest) -> list[Post]:
    """The posts one accepted webhook call creates (several when the text is over the limit)."""
    message = _SLACK_LINK.sub(r"[\2](\1)", _expand_announcements(hook.text))
    attachments = _slack_attachments(hook.attachments or [])
    channel = hook.channel.removeprefix("#") or log.hook_channel
    parts = split_message(message)
    now = int(time.time() * 1000)
    posts = []
    for number, part in enumerate(parts, start=1):
        part_attachments = attachments if number == len(parts) else []
        posts.append(
            Post(
                id=new_id(),
                create_at=now,
                source="webhook",
                channel=channel,
                username=hook.username or None,
                message=part,
                props=dict(hook.props),
                attachments=part_attachments,
                icon_url=hook.icon_url or None,
                user_id=HOOK_CREATOR_ID,
                mentions=mentions_in(part, part_attachments),
            )
        )
    return posts


def _bearer_token(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() in ("bearer", "token") else ""


def api_post(log: MattermostLog, payload: Any) -> Post:
    """The post ``POST /api/v4/posts`` creates from a decoded JSON body.

    Raises:
        AppError: 400 for a body that is no post or a message over the limit, 403 without a channel.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("message", ""), str):
        raise AppError(
            400, "api.context.invalid_body_param.app_error", "Invalid or missing post in request body."
        )
    props = payload.get("props") or {}
    if not isinstance(props, dict):
        raise AppError(
            400, "api.context.invalid_body_param.app_error", "Invalid or missing post in request body."
        )
    channel_id = payload.get("channel_id")
    if not isinstance(channel_id, str) or not channel_id:
        raise AppError(
            403, "api.context.permissions.app_error", "You do not have the appropriate permissions."
        )
    message = str(payload.get("message", ""))
    if len(message) > MAX_POST_RUNES:
        raise AppError(
            400,
            "model.post.is_valid.message_length.app_error",
            "Post Message property is longer than the maximum permitted length.",
        )
    attachments = props.get("attachments")
    attachments = [a for a in attachments if isinstance(a, dict)] if isinstance(attachments, list) else []
    return Post(
        id=new_id(),
        create_at=int(time.time() * 1000),
        source="api",
        channel=channel_id,
        username=log.bot_username,
        message=message,
        props={k: v for k, v in props.items() if k != "attachments"},
        attachments=attachments,
        icon_url=None,
        user_id=BOT_USER_ID,
        mentions=mentions_in(message, attachments),
    )


def mattermost_routes(log: MattermostLog, state: SandboxState) -> list[Route]:
    """``POST /hooks/{token}``, ``POST /api/v4/posts``, and ``GET /_sandbox/mattermost/posts`` (what was posted).

    Mattermost paths bypass the sandbox accounts (:mod:`sandbox.core` leaves their authentication here);
    ``state`` is taken for the same factory signature as the other stand-ins.
    """

    async def incoming_webhook(request: Request) -> Response:
        body = (await request.body()).decode("utf-8", errors="replace")
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type == "application/x-www-form-urlencoded":
            body = parse_qs(body).get("payload", [""])[0]
        try:
            hook = parse_webhook_payload(body)
            if not hook.text and hook.attachments is None:
                raise AppError(400, "web.incoming_webhook.text.app_error", "No text specified.")
            if request.path_params["token"] != log.hook_token:
                raise AppError(400, "web.incoming_webhook.invalid.app_error", "Invalid webhook.")
        except AppError as exc:
            return exc.response()
        for post in webhook_posts(log, hook):
            log.add(post)
        return Response(b"ok", headers={"Content-Type": "text/plain"})

    async def create_post(request: Request) -> Response:
        if _bearer_token(request) != log.bot_token:
            return AppError(
                401,
                "api.context.session_expired.app_error",
                "Invalid or expired session, please login again.",
            ).response()
        try:
            try:
                payload = json.loads(await request.body())
            except ValueError as exc:
                raise AppError(
                    400,
                    "api.context.invalid_body_param.app_error",
                    "Invalid or missing post in request body.",
                ) from exc
            post = api_post(log, payload)
        except AppError as exc:
            return exc.response()
        file_ids = payload.get("file_ids") or []
        if not isinstance(file_ids, list) or not all(isinstance(i, str) for i in file_ids):
            return _invalid_body().response()
        channel = log.channels.get(post.channel)
        if channel is not None and not channel.bot_member:
            return _no_permission().response()
        post = replace(post, file_ids=log.attach(file_ids, post.channel, BOT_USER_ID, post.id))
        log.add(post)
        return JSONResponse(post.as_api_json(log.files), status_code=201)

    def bot_only(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                if _bearer_token(request) != log.bot_token:
                    raise AppError(
                        401,
                        "api.context.session_expired.app_error",
                        "Invalid or expired session, please login again.",
                    )
                return await handler(request)
            except AppError as exc:
                return exc.response()

        return endpoint

    def readable(channel: Channel | None, missing: str) -> Channel:
        if channel is None:
            raise AppError(404, missing, "Channel does not exist.")
        if channel.type == "P" and not channel.bot_member:
            raise _no_permission()
        return channel

    async def channel_by_name(request: Request) -> Response:
        team = log.team_named(request.path_params["team"])
        if team is None:
            raise AppError(404, "app.team.get_by_name.missing.app_error", "Unable to find the existing team.")
        name = request.path_params["channel"]
        found = next((c for c in log.channels.values() if c.team_id == team.id and c.name == name), None)
        return JSONResponse(readable(found, "app.channel.get_by_name.missing.app_error").as_json())

    async def channel_by_id(request: Request) -> Response:
        found = log.channels.get(request.path_params["id"])
        return JSONResponse(readable(found, "app.channel.get.existing.app_error").as_json())

    async def team_by_id(request: Request) -> Response:
        team = log.teams.get(request.path_params["id"])
        if team is None:
            raise AppError(404, "app.team.get.find.app_error", "Unable to find the existing team.")
        return JSONResponse(team.as_json())

    async def upload_files(request: Request) -> Response:
        length = int(request.headers.get("content-length") or 0)
        if length > log.max_file_size:
            raise AppError(
                413,
                "api.file.upload_file.too_large_detailed.app_error",
                f"Unable to upload file(s). {length} bytes exceeds the maximum allowed {log.max_file_size} bytes.",
            )
        form = await request.form(max_part_size=log.max_file_size)
        channel_id = form.get("channel_id") or request.query_params.get("channel_id")
        channel = log.channels.get(channel_id) if isinstance(channel_id, str) else None
        if channel is None or not channel.bot_member:
            raise _no_permission()
        now = int(time.time() * 1000)
        infos = []
        for part in form.getlist("files"):
            if not isinstance(part, UploadFile) or not part.filename:
                continue
            stored = StoredFile(
                id=new_id(),
                channel_id=channel.id,
                user_id=BOT_USER_ID,
                name=part.filename,
                data=await part.read(),
                mime_type=part.content_type or "application/octet-stream",
                create_at=now,
            )
            log.add_file(stored)
            infos.append(stored.as_json())
        if not infos:
            raise AppError(400, "api.file.upload_file.read_request.app_error", "Unable to upload file(s).")
        return JSONResponse({"file_infos": infos, "client_ids": []}, status_code=201)

    async def get_file(request: Request) -> Response:
        stored = log.files.get(request.path_params["id"])
        if stored is None:
            raise AppError(404, "app.file_info.get.app_error", "Unable to get the file info.")
        return Response(stored.data, media_type=stored.mime_type)

    async def permalink(request: Request) -> Response:
        team = log.team_named(request.path_params["team"])
        post = next((p for p in log.posts if p.id == request.path_params["id"]), None)
        if team is None or post is None:
            return Response(b"Not Found", status_code=404, media_type="text/plain")
        return JSONResponse(post.as_api_json(log.files))

    async def received_posts(request: Request) -> Response:
        """``GET /_sandbox/mattermost/posts``: every post received, oldest first (the sandbox's own view)."""
        return JSONResponse(
            [
                {
                    "id": p.id,
                    "create_at": p.create_at,
                    "source": p.source,
                    "channel": p.channel,
                    "username": p.username,
                    "message": p.message,
                    "mentions": list(p.mentions),
                }
                for p in log.posts
            ]
        )

    return [
        Route("/hooks/{token}", incoming_webhook, methods=["POST"]),
        Route("/api/v4/posts", create_post, methods=["POST"]),
        Route("/_sandbox/mattermost/posts", received_posts, methods=["GET"]),
        Route("/api/v4/teams/name/{team}/channels/name/{channel}", bot_only(channel_by_name), methods=["GET"]),
        Route("/api/v4/channels/{id}", bot_only(channel_by_id), methods=["GET"]),
        Route("/api/v4/teams/{id}", bot_only(team_by_id), methods=["GET"]),
        Route("/api/v4/files", bot_only(upload_files), methods=["POST"]),
        Route("/api/v4/files/{id}", bot_only(get_file), methods=["GET"]),
        Route("/{team}/pl/{id}", permalink, methods=["GET"]),
    ]


def _invalid_body() -> AppError:
    return AppError(400, "api.context.invalid_body_param.app_error", "Invalid or missing post in request body.")


def _no_permission() -> AppError:
    return AppError(403, "api.context.permissions.app_error", "You do not have the appropriate permissions.")
