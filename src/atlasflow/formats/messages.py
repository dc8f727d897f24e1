"""Chat message text: untrusted text made inert (no pings, no markup) and posts kept within limits."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Mattermost rejects or splits posts over this many characters.
MATTERMOST_POST_LIMIT = 16_383
_ZWSP = "\u200b"
_MENTION = re.compile(r"@(?=[\w.-])")
_MARKDOWN = re.compile(r"([\\`*_~|<>\[\]()!&])")
_TRUNCATED = "\n… (shortened to fit the post limit)"


def inert(text: object, limit: int = 300) -> str:
    """Untrusted text as inert Markdown: mentions defused, markup escaped, one line, at most ``limit`` chars.

    ``@channel`` becomes ``@\u200bchannel`` (a zero-width space after the ``@``), which Mattermost does not
    treat as a mention (nor, likewise, Slack-style ``<!channel>``, which Mattermost expands); Markdown
    punctuation is backslash-escaped so the text cannot open code blocks,
    tables, links or headings, and ``&`` too, so an entity such as ``&#64;channel`` shows as typed instead
    of rendering as ``@channel``.
    """
    flat = " ".join(str(text).split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    defused = _MENTION.sub("@" + _ZWSP, flat).replace("<!", "<" + _ZWSP + "!")
    return _MARKDOWN.sub(r"\\\1", defused)


def fit_post(text: str, limit: int = MATTERMOST_POST_LIMIT) -> str:
    """``text`` shortened, with a note saying so, to fit one post."""
    if len(text) <= limit:
        return text
    return text[: limit - len(_TRUNCATED)] + _TRUNCATED


def describe_figures(figures: Mapping[str, Any], limit: int = 12) -> str:
    """``key: value`` pairs of the scalar figures of a job result, inert, separated by `` · ``."""
    parts = []
    for key, value in figures.items():
        if isinstance(value, bool | int | float | str) or value is None:
            parts.append(f"{inert(key, 40)}: {inert(value, 120)}")
        elif isinstance(value, Mapping):
            inner = ", ".join(f"{inert(k, 40)} {inert(v, 40)}" for k, v in list(value.items())[:8])
            parts.append(f"{inert(key, 40)}: {inner}")
        if len(parts) == limit:
            break
    return " · ".join(parts)
