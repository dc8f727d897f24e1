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


#: Parameter names whose values are never shown (a flow taking a secret as a parameter is a mistake, but
#: its posts must not make it worse).
_SECRET_NAME = re.compile(r"token|password|passwd|secret|credential|api_?key|auth", re.IGNORECASE)
EMPTY = "–"


def is_empty(value: object) -> bool:
    """``None``, blank text and empty collections: figures that say nothing and are left out."""
    return value is None or (isinstance(value, str) and not value.strip()) or value in ([], {}, ())


def figure_text(value: object, items: int = 10) -> str:
    """A figure as words: ``3``, ``2.5``, ``yes``, ``A, B, C``, ``0: 1, 1: 8`` (never a Python repr).

    Empty values read ``–``; long lists and mappings show their first ``items`` and how many more there are.
    """
    if is_empty(value):
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.2f}".rstrip("0")
    if isinstance(value, Mapping):
        pairs = [f"{k}: {figure_text(v, items)}" for k, v in list(value.items())[:items] if not is_empty(v)]
        return ", ".join(pairs) + _more(len(value), items) if pairs else EMPTY
    if isinstance(value, list | tuple | set | frozenset):
        values = list(value)
        if all(isinstance(v, Mapping) for v in values):
            return f"{len(values)} item(s)"
        return ", ".join(figure_text(v, items) for v in values[:items]) + _more(len(values), items)
    return " ".join(str(value).split())


def _more(total: int, shown: int) -> str:
    return f" (+{total - shown} more)" if total > shown else ""


def label(key: str) -> str:
    """A result or parameter key as words: ``by_level`` → ``by level``."""
    return key.replace("_", " ").strip()


def describe_figures(figures: Mapping[str, Any], limit: int = 12) -> str:
    """``key: value`` pairs of a job's figures or parameters as words, inert, separated by `` · ``.

    Empty values are left out; values of secret-looking keys (token, password …) are never shown.
    """
    parts = []
    for key, value in figures.items():
        if is_empty(value):
            continue
        text = "***" if _SECRET_NAME.search(str(key)) else figure_text(value)
        parts.append(f"{inert(label(str(key)), 40)}: {inert(text, 200)}")
        if len(parts) == limit:
            break
    return " · ".join(parts)
