"""Jira field values as text people read: one pure module every job renders Jira values with."""

from __future__ import annotations

from typing import Any

#: Attributes naming a Jira object, in the order Jira's UI prefers them.
NAME_ATTRIBUTES = ("displayName", "name", "value", "key", "emailAddress", "accountId", "id")
#: Atlassian Document nodes that end a line.
_BLOCK_NODES = ("paragraph", "heading", "listItem", "codeBlock")


def is_adf(value: Any) -> bool:
    """Whether ``value`` is an Atlassian Document (what Cloud's v3 API returns for rich text)."""
    return isinstance(value, dict) and value.get("type") == "doc"


def adf_text(node: Any) -> str:
    """The plain text of an Atlassian Document node: blocks end in a line break, hard breaks are line breaks."""
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return str(node.get("text", ""))
    if node.get("type") == "hardBreak":
        return "\n"
    inner = "".join(adf_text(child) for child in node.get("content") or [])
    return inner + "\n" if node.get("type") in _BLOCK_NODES else inner


def object_name(value: dict[str, Any]) -> str | None:
    """The name Jira shows for an object value (user, option, version …); cascading options as ``Parent / Child``."""
    for attr in NAME_ATTRIBUTES:
        if value.get(attr) is not None:
            child = value.get("child")
            suffix = object_name(child) if isinstance(child, dict) else None
            return str(value[attr]) + (f" / {suffix}" if suffix else "")
    return None
