"""Plain records shared by the clients, the format writers and the flows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class ExportRow:
    """One issue as it appears in an export.

    Attributes:
        key: Issue key, e.g. ``DEMO-12``.
        summary: Issue summary (untrusted text from Jira).
        type: Issue type name (``Epic``, ``Story``, ``Sub-task`` ...).
        status: Status name.
        priority: Priority name, if any.
        assignee: Assignee display name, if any.
        created: Creation time (timezone aware), if known.
        updated: Last update time (timezone aware), if known.
        parent: Key of the issue this one was reached from; ``None`` for roots.
        root: Key of the root this issue belongs to; ``None`` for roots.
        level: 0 for roots, 1 for direct children, and so on.
        relation: How it was reached: ``sub-task``, ``epic child``, ``child`` or a link type name.
        extra: Extra columns by column title (custom fields by their display name).
    """

    key: str
    summary: str
    type: str
    status: str
    priority: str | None = None
    assignee: str | None = None
    created: datetime | None = None
    updated: datetime | None = None
    parent: str | None = None
    root: str | None = None
    level: int = 0
    relation: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
