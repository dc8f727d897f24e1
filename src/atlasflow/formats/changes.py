"""Differences between two export snapshots.

A snapshot maps each exported issue key to a flat, JSON-serialisable dict of the
field values a reader cares about (``updated`` and ``created`` are left out on
purpose: ``updated`` moves on every edit and would make every issue "changed").
Snapshots are produced with :func:`snapshot_of`, stored by the flow as JSON next to
the export, and compared with :func:`diff_snapshots` on the next run.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from math import isfinite
from typing import Any, Literal

from atlasflow.formats.records import ExportRow

Snapshot = dict[str, dict[str, Any]]
"""Issue key -> flat JSON-serialisable field values."""

BASE_FIELDS: tuple[str, ...] = (
    "summary",
    "type",
    "status",
    "priority",
    "assignee",
    "parent",
    "level",
    "relation",
)
"""Fields of :class:`ExportRow` kept in a snapshot, in this order, before the extra columns."""

FIELD_WEIGHTS: dict[str, int] = {"status": 3, "parent": 3, "level": 3}
"""Weight of a changed field when ordering changed issues; fields not listed weigh 1."""

_DIGITS = re.compile(r"(\d+)")
_JIRA_KEY = re.compile(r"(\D+-)([0-9]+)")


def snapshot_of(row: ExportRow, extra_columns: Sequence[str]) -> dict[str, Any]:
    """Return the snapshot entry of one exported issue.

    Args:
        row: The exported issue.
        extra_columns: Titles of ``row.extra`` to keep, as exported. A missing value is
            kept as ``None``. A title equal to one of :data:`BASE_FIELDS` is stored
            under ``"extra: <title>"`` so that it cannot hide the base field.

    Returns:
        The field values, JSON-safe: datetimes become ISO 8601 strings (aware ones in
        UTC, so the same instant always compares equal), tuples become lists and
        unknown objects their ``str()``.
    """
    values: dict[str, Any] = {name: getattr(row, name) for name in BASE_FIELDS}
    for title in extra_columns:
        name = f"extra: {title}" if title in values else title
        values[name] = _json_safe(row.extra.get(title))
    return values


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if isfinite(value) else str(value)
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    return str(value)


@dataclass
class FieldChange:
    """One field whose value differs between the two snapshots."""

    field: str
    old: Any
    new: Any


@dataclass
class IssueChange:
    """One issue that appeared, disappeared or changed.

    Attributes:
        key: Issue key.
        kind: ``new`` (only in the new snapshot), ``gone`` (only in the old one) or
            ``changed`` (in both, with different values).
        summary: The issue summary (the new one if the issue still exists).
        changes: The changed fields, for ``changed`` issues only; empty otherwise.
    """

    key: str
    kind: Literal["new", "gone", "changed"]
    summary: str
    changes: list[FieldChange] = field(default_factory=list)


@dataclass
class ChangeReport:
    """What changed between two snapshots.

    Attributes:
        new: Issues only in the new snapshot, in natural key order.
        gone: Issues only in the old snapshot, in natural key order.
        changed: Issues in both with different values, in natural key order.
        field_counts: For each field, how many changed issues changed it.
    """

    new: list[IssueChange]
    gone: list[IssueChange]
    changed: list[IssueChange]
    field_counts: dict[str, int]

    def ordered(self) -> list[IssueChange]:
        """Return all changes, biggest movements first.

        Changed issues come first, by decreasing weight: the sum of the weights of
        their changed fields, where ``status``, ``parent`` and ``level`` weigh 3 (a
        workflow move or a re-parenting matters more than an edit) and every other
        field weighs 1 (see :data:`FIELD_WEIGHTS`). New issues follow, then gone
        ones. Ties are broken by natural key order (``DEMO-2`` before ``DEMO-10``).
        """
        changed = sorted(self.changed, key=lambda change: (-_weight(change), natural_key(change.key)))
        return changed + _by_key(self.new) + _by_key(self.gone)

    def is_empty(self) -> bool:
        """Tell whether nothing appeared, disappeared or changed."""
        return not (self.new or self.gone or self.changed)


def _by_key(changes: list[IssueChange]) -> list[IssueChange]:
    return sorted(changes, key=lambda change: natural_key(change.key))


def _weight(change: IssueChange) -> int:
    return sum(FIELD_WEIGHTS.get(item.field, 1) for item in change.changes)


def natural_key(key: str) -> tuple[tuple[Any, ...], str]:
    """Sort key putting ``DEMO-2`` before ``DEMO-10`` (digit runs compare as numbers)."""
    simple = _JIRA_KEY.fullmatch(key)  # the usual PROJ-123: the same parts, found in one match
    if simple:
        return (simple[1].casefold(), int(simple[2]), ""), key
    parts = _DIGITS.split(key)
    return tuple(int(part) if index % 2 else part.casefold() for index, part in enumerate(parts)), key


def diff_snapshots(old: Snapshot, new: Snapshot) -> ChangeReport:
    """Compare two snapshots of the same export scope.

    Only fields present in both entries of an issue are compared, so adding or
    removing an extra column between two runs does not mark every issue as changed.

    Args:
        old: The previous snapshot.
        new: The current snapshot.

    Returns:
        The new, gone and changed issues with per-field counts.
    """
    field_counts: Counter[str] = Counter()
    changed: list[IssueChange] = []
    for key, new_values in new.items():
        old_values = old.get(key)
        if old_values is None or old_values == new_values:
            continue
        changes = [
            FieldChange(name, old_values[name], value)
            for name, value in new_values.items()
            if name in old_values and old_values[name] != value
        ]
        if changes:
            field_counts.update(change.field for change in changes)
            changed.append(IssueChange(key, "changed", _summary(new_values), changes))
    return ChangeReport(
        new=_only_in(new, old, "new"),
        gone=_only_in(old, new, "gone"),
        changed=_by_key(changed),
        field_counts=dict(field_counts.most_common()),
    )


def _only_in(side: Snapshot, other: Snapshot, kind: Literal["new", "gone"]) -> list[IssueChange]:
    return _by_key([IssueChange(key, kind, _summary(side[key])) for key in side.keys() - other.keys()])


def _summary(values: dict[str, Any]) -> str:
    summary = values.get("summary")
    return "" if summary is None else str(summary)


def describe_changes(report: ChangeReport) -> str:
    """Describe a report in one line.

    Returns:
        E.g. ``"12 new, 3 gone, 40 changed: 25 status, 9 assignee"`` (fields by
        decreasing count, then by name), or ``"no changes"``.
    """
    if report.is_empty():
        return "no changes"
    text = f"{len(report.new)} new, {len(report.gone)} gone, {len(report.changed)} changed"
    counts = sorted(report.field_counts.items(), key=lambda item: (-item[1], item[0]))
    if counts:
        text += ": " + ", ".join(f"{count} {name}" for name, count in counts)
    return text
