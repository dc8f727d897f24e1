"""Stage "rows": issues as reached by the walk, as :class:`~atlasflow.formats.records.ExportRow` (the one row
model every sheet and snapshot reads)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from atlasflow.clients.gcpause import gc_paused
from atlasflow.formats.jira_values import parse_jira_time
from atlasflow.formats.records import ExportRow

if TYPE_CHECKING:
    from atlasflow.reports.tree import Node


class ExportRows:
    """Builds the rows of walked issues.

    Args:
        extra_fields: Extra columns: title as asked (name or id) → field id.
        renderers: Field id → how its value is shown (:func:`atlasflow.formats.jira_values.renderer`).
    """

    def __init__(self, extra_fields: dict[str, str], renderers: dict[str, Callable[[Any], Any]]) -> None:
        self.extra_fields = extra_fields
        self.renderers = renderers

    def __call__(self, nodes: Iterable[Node]) -> list[ExportRow]:
        """The rows of ``nodes``, built under the GC pause (:mod:`atlasflow.clients.gcpause`): they hold no
        cycles, and a full collection over a large export's issues costs more than building them."""
        with gc_paused():
            return [self.row(node) for node in nodes]

    def row(self, node: Node) -> ExportRow:
        """The row of one issue: its base fields, its place in the tree and the extra columns rendered."""
        fields = node.issue.get("fields", {})
        return ExportRow(
            key=node.key,
            summary=str(fields.get("summary") or ""),
            type=name_of(fields.get("issuetype")) or "",
            status=name_of(fields.get("status")) or "",
            priority=name_of(fields.get("priority")),
            assignee=_person(fields.get("assignee")),
            created=parse_jira_time(fields.get("created")),
            updated=parse_jira_time(fields.get("updated")),
            parent=node.parent,
            root=node.root,
            level=node.level,
            relation=node.relation,
            extra={title: self.renderers[fid](fields.get(fid)) for title, fid in self.extra_fields.items()},
        )


def name_of(value: Any) -> str | None:
    """The ``name`` of a Jira object (issue type, status, priority), if it has one."""
    return str(value["name"]) if isinstance(value, dict) and "name" in value else None


def _person(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    return str(value.get("displayName") or value.get("name") or value.get("accountId") or "") or None
