"""Jira field values as cells people read: the one pure module every job renders Jira values with.

:func:`render` turns any value of ``/rest/api/3`` (Cloud) or ``/rest/api/2`` (Data Center) into a typed
cell value, by the field's schema as ``/rest/api/x/field`` lists it (``schema.type``, ``schema.items``,
``schema.system``, ``schema.custom``): text, a number, a date, an aware datetime, a :class:`Link`, or
``None``. Rich text (Atlassian Document Format on Cloud) becomes readable text; Data Center's wiki markup
is kept as it is. Jira values are data: nothing here evaluates, links or pings anything they contain.

Rendering follows a value at most :data:`MAX_DEPTH` levels down; a value nested deeper (a hostile or broken
one) is shown as its text, flattened, after a note saying so, and only that cell is affected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from atlasflow.formats.excel_limits import MAX_CELL_CHARS, MAX_URL_CHARS

#: Attributes naming a Jira object, in the order Jira's UI prefers them.
NAME_ATTRIBUTES = ("displayName", "name", "value", "title", "key", "emailAddress", "accountId", "id")

MAX_DEPTH = 100
"""JSON levels a value is rendered through (a document's lists, quotes and tables each take two). Deeper
values are flattened instead: rendering recurses about once per level, so it stays far from Python's
recursion limit on any thread. Jira's editor builds nothing near this deep."""

#: Jira's default time tracking: 8-hour days, 5-day weeks (what it shows ``3d 4h`` in).
SECONDS_PER_MINUTE, SECONDS_PER_HOUR = 60, 3600
SECONDS_PER_DAY, SECONDS_PER_WEEK = 8 * SECONDS_PER_HOUR, 5 * 8 * SECONDS_PER_HOUR
#: System fields holding seconds of work, shown as durations.
DURATION_FIELDS = frozenset(
    {
        "timeoriginalestimate",
        "timeestimate",
        "timespent",
        "aggregatetimeoriginalestimate",
        "aggregatetimeestimate",
        "aggregatetimespent",
    }
)
SPRINT_TYPE = "com.pyxis.greenhopper.jira:gh-sprint"
_CUSTOM_TYPES = "com.atlassian.jira.plugin.system.customfieldtypes:"
_GREENHOPPER_NAME = re.compile(
    r"\bname=(.*?)(?:,(?:startDate|endDate|completeDate|activatedDate|sequence|goal|autoStartStop|synced"
    r"|incompleteIssuesDestinationId|rapidViewId|state)=|\]$)"
)
_GREENHOPPER = re.compile(r"^com\.atlassian\.greenhopper\.service\.sprint\.Sprint@[0-9a-f]+\[")

Cell = str | int | float | bool | date | datetime | None


@dataclass(frozen=True, slots=True)
class Link:
    """A cell showing ``text`` that opens ``url`` (an http(s) URL Excel accepts)."""

    text: str
    url: str

    def __str__(self) -> str:
        return self.text


CellValue = Cell | Link


# --------------------------------------------------------------------------------- entry points


def render(value: Any, schema: Mapping[str, Any] | None = None) -> CellValue:
    """A Jira field value as a typed cell value.

    Args:
        value: The value as the REST API returns it (``fields[<id>]``).
        schema: The field's ``schema`` from ``/rest/api/x/field`` (``None`` when unknown: the value's
            own shape decides).

    Returns:
        Text (within :data:`MAX_CELL_CHARS`, with a note when cut), a number, a ``date``, an aware
        ``datetime``, a :class:`Link`, a ``bool`` or ``None`` for an empty value.
    """
    return renderer(schema)(value)


def renderer(schema: Mapping[str, Any] | None) -> Callable[[Any], CellValue]:
    """The :func:`render` of one field, with its schema looked at once (for rendering many issues)."""
    schema = dict(schema or {})
    kind = str(schema.get("type") or "")
    custom = str(schema.get("custom") or "")
    system = str(schema.get("system") or "")
    special = _BY_SYSTEM.get(system) or _BY_CUSTOM.get(custom) or _BY_TYPE.get(kind)
    seconds = system in DURATION_FIELDS

    def one(value: Any) -> CellValue:
        if value is None or value == "":
            return None
        if kind == "array" or type(value) is list:
            return _array(value if type(value) is list else [value], schema) if value else None
        if seconds and type(value) in (int, float):
            return duration(int(value))
        if special is not None:
            result = special(value)
            return cap(result) if type(result) is str else result
        return _plain(value, custom)

    return one


def text(value: Any, schema: Mapping[str, Any] | None = None) -> str:
    """A Jira field value as one text (dates ISO, empty as ``""``): for chat lines and page cells."""
    cell = render(value, schema)
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "yes" if cell else "no"
    if isinstance(cell, datetime):
        return cell.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(cell, date):
        return cell.isoformat()
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell)


def cap(text: str, limit: int = MAX_CELL_CHARS) -> str:
    """``text`` within ``limit`` UTF-16 units; when cut, it ends with a note saying how much is missing."""
    if len(text) * 2 <= limit:  # cheap bound: a character is at most 2 UTF-16 units
        return text
    units = len(text.encode("utf-16-le")) // 2
    if units <= limit:
        return text
    note_for = f"… [cut: {units:,} characters in Jira, the first {limit:,} shown]"
    keep = limit - len(note_for.encode("utf-16-le")) // 2
    head = text.encode("utf-16-le")[: 2 * keep].decode("utf-16-le", errors="ignore")
    return head + note_for


def duration(seconds: int) -> str:
    """Seconds of work as Jira shows them: ``1w 2d 3h 30m`` (8-hour days, 5-day weeks); ``0m`` for none."""
    parts = []
    rest = max(seconds, 0)
    for size, unit in ((SECONDS_PER_WEEK, "w"), (SECONDS_PER_DAY, "d"), (SECONDS_PER_HOUR, "h"), (60, "m")):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0m"


def parse_jira_time(value: Any) -> datetime | None:
    """Jira's ``2026-01-05T10:15:30.000+0000`` as an aware datetime (UTC when it names no offset);
    ``None`` for anything else."""
    if type(value) is not str or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_jira_date(value: Any) -> date | None:
    """Jira's ``2026-03-28`` as a date; ``None`` for anything else."""
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


# ------------------------------------------------------------------------------- Atlassian Document


def is_adf(value: Any) -> bool:
    """Whether ``value`` is an Atlassian Document (what Cloud's v3 API returns for rich text)."""
    return isinstance(value, dict) and value.get("type") == "doc"


class _TooDeep(Exception):
    """Raised by the renderers below :data:`MAX_DEPTH`; the value is then shown :func:`_flattened`."""


def _check(depth: int) -> int:
    """``depth`` (the JSON level of a value about to be rendered), or :class:`_TooDeep` beyond the bound."""
    if depth > MAX_DEPTH:
        raise _TooDeep
    return depth


def _flattened(value: Any) -> str:
    """A value too deep to render, as a note and its text in order, without structure (and without recursion).

    Of a document (also one inside other JSON) its text nodes and the text of mentions, statuses ...; of
    other JSON every entry as ``key: value``.
    """
    parts: list[str] = []
    stack: list[tuple[str | None, Any, bool]] = [(None, value, False)]
    while stack:
        key, item, in_document = stack.pop()
        if isinstance(item, dict):
            in_document = in_document or is_adf(item)
            entries = [(k, v, in_document) for k, v in item.items() if not in_document or k in _DOCUMENT_KEYS]
            stack += reversed(entries)
        elif isinstance(item, list):
            stack += reversed([(key, v, in_document) for v in item])
        elif item is not None and item != "" and (not in_document or key == "text"):
            parts.append(str(item) if in_document or key is None else f"{key}: {item}")
    return cap(f"[nested deeper than {MAX_DEPTH} levels: shown flattened] " + "; ".join(parts))


#: What a flattened document keeps: the text of text nodes, of mentions, statuses ... (in ``attrs``).
_DOCUMENT_KEYS = frozenset({"content", "attrs", "text"})


def adf_text(node: Any) -> str:
    """The readable text of an Atlassian Document (or any of its nodes), without a trailing line break.

    Paragraphs, headings and hard breaks end lines; list items are on their own line with a bullet or
    their number (nested lists indented); code as its text; mentions, emoji, dates and statuses as
    their text; links as their text, followed by the URL when it differs; tables as one line per row
    with cells separated by ``|``; media as a placeholder.
    """
    try:
        return _adf_text(node, 1)
    except _TooDeep:
        return _flattened(node)


def _adf_text(node: Any, depth: int) -> str:
    return "\n".join(_blocks(node, "", depth)).strip("\n")


def _blocks(node: Any, indent: str, depth: int) -> list[str]:
    """The lines of a block node (or of a run of inline nodes) at JSON level ``depth``."""
    if not isinstance(node, dict):
        return []
    below = _check(depth) + 2  # the level of the nodes in its content
    kind = node.get("type")
    content = [c for c in node.get("content") or [] if isinstance(c, dict)]
    attrs = node.get("attrs") or {}
    if kind in ("bulletList", "orderedList"):
        start = int(attrs.get("order") or 1) if kind == "orderedList" else 0
        lines: list[str] = []
        for number, item in enumerate(content, start=start):
            marker = f"{number}. " if kind == "orderedList" else "• "
            lines += _item(item, indent, marker, below)
        return lines
    if kind in ("taskList", "decisionList"):
        lines = []
        for item in content:
            done = (item.get("attrs") or {}).get("state") in ("DONE", "DECIDED")
            lines += _item(item, indent, ("☑ " if done else "☐ ") if kind == "taskList" else "◆ ", below)
        return lines
    if kind == "table":
        cells = [(row.get("content") or [], _check(below) + 2) for row in content]
        return [indent + " | ".join(_cell_text(cell, depth) for cell in row) for row, depth in cells]
    if kind == "codeBlock":
        return [indent + line for line in _inline(content, below).split("\n")]
    if kind == "blockquote":
        return ["> " + line for child in content for line in _blocks(child, indent, below)]
    if kind == "rule":
        return [indent + "---"]
    if kind in ("expand", "nestedExpand"):
        title = str(attrs.get("title") or "")
        return ([indent + title] if title else []) + [line for c in content for line in _blocks(c, indent, below)]
    if kind in ("mediaSingle", "mediaGroup", "media"):
        return [indent + _media(node)]
    if kind in ("paragraph", "heading"):
        if all(c.get("type") == "text" and not c.get("marks") for c in content):  # the common case
            line = "".join(str(c.get("text", "")) for c in content)
            return [indent + line] if "\n" not in line else [indent + part for part in line.split("\n")]
        return [indent + line for line in _inline(content, below).split("\n")]
    if _is_inline(node):
        return [indent + line for line in _inline_node(node, depth).split("\n")]
    if content and all(_is_inline(c) for c in content):  # an unknown container of inline nodes
        return [indent + line for line in _inline(content, below).split("\n")]
    return [line for child in content for line in _blocks(child, indent, below)]


def _item(item: dict[str, Any], indent: str, marker: str, depth: int) -> list[str]:
    """A list item (at JSON level ``depth``): its first line after the marker, the rest indented under it."""
    below = _check(depth) + 2
    lines = [line for child in item.get("content") or [] for line in _blocks(child, indent + "  ", below)]
    if item.get("content") and _is_inline(item["content"][0]):  # task items hold inline nodes directly
        lines = [indent + "  " + line for line in _inline(item["content"], below).split("\n")]
    if not lines:
        return [indent + marker.rstrip()]
    return [indent + marker + lines[0].removeprefix(indent + "  "), *lines[1:]]


def _cell_text(cell: dict[str, Any], depth: int) -> str:
    below = _check(depth) + 2
    return " ".join(line.strip() for child in cell.get("content") or [] for line in _blocks(child, "", below))


_INLINE = frozenset(
    {"text", "hardBreak", "mention", "emoji", "inlineCard", "date", "status", "placeholder", "inlineExtension"}
)


def _is_inline(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") in _INLINE


def _inline(nodes: Sequence[Any], depth: int) -> str:
    """The text of inline ``nodes`` at JSON level ``depth``."""
    return "".join(_inline_node(n, depth) for n in nodes if isinstance(n, dict))


def _inline_node(node: dict[str, Any], depth: int) -> str:
    _check(depth)
    kind = node.get("type")
    attrs = node.get("attrs") or {}
    if kind == "text":
        value = str(node.get("text", ""))
        for mark in node.get("marks") or []:
            href = (mark.get("attrs") or {}).get("href") if isinstance(mark, dict) else None
            if mark.get("type") == "link" and href and str(href) != value:
                value = f"{value} ({href})"
        return value
    if kind == "hardBreak":
        return "\n"
    if kind == "mention":
        shown = str(attrs.get("text") or "")
        return shown if shown.startswith("@") or not shown else "@" + shown
    if kind == "emoji":
        return str(attrs.get("text") or attrs.get("shortName") or "")
    if kind in ("inlineCard", "blockCard", "embedCard"):
        return str(attrs.get("url") or "")
    if kind == "date":
        try:
            return datetime.fromtimestamp(int(str(attrs.get("timestamp"))) / 1000, UTC).date().isoformat()
        except (TypeError, ValueError, OverflowError):
            return ""
    if kind == "status":
        return str(attrs.get("text") or "")
    if kind in ("media", "mediaInline"):
        return _media(node)
    return _inline(node.get("content") or [], depth + 2)


def _media(node: dict[str, Any]) -> str:
    media = node
    for child in node.get("content") or []:
        if isinstance(child, dict) and child.get("type") in ("media", "mediaInline"):
            media = child
            break
    attrs = media.get("attrs") or {}
    name = attrs.get("alt") or attrs.get("name") or attrs.get("filename")
    return f"[attachment: {name}]" if name else "[attachment]"


# ----------------------------------------------------------------------------------- value kinds


def name_of(value: Any) -> str:
    """The name Jira shows for a value: objects by name (cascading options ``Parent / Child``), text as is."""
    try:
        return _name(value, 1)
    except _TooDeep:
        return _flattened(value)


def _name(value: Any, depth: int) -> str:
    """:func:`name_of` a value at JSON level ``depth``."""
    if isinstance(value, dict):
        if is_adf(value):
            return _adf_text(value, depth)
        found = object_name(value)
        return found if found is not None else _readable_dict(value, _check(depth))
    if isinstance(value, list):
        below = _check(depth) + 1
        return ", ".join(_name(v, below) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and _GREENHOPPER.match(value):
        return _sprint_name(value)
    return "" if value is None else str(value)


def object_name(value: dict[str, Any]) -> str | None:
    """The name Jira shows for an object value (user, option, version …); cascading options as ``Parent / Child``
    (at most :data:`MAX_DEPTH` levels of children)."""
    names: list[str] = []
    node: Any = value
    while len(names) < MAX_DEPTH:
        for attr in NAME_ATTRIBUTES:
            found = node.get(attr)
            if found is not None and type(found) is not dict and type(found) is not list:
                names.append(str(found))
                break
        else:
            break
        node = node.get("child")
        if not isinstance(node, dict):
            break
    return " / ".join(names) if names else None


def _readable_dict(value: dict[str, Any], depth: int) -> str:
    """An object without a name (at JSON level ``depth``): its plain entries as ``key: value`` (never a
    Python repr)."""
    parts = []
    for key, item in value.items():
        if key in ("self", "avatarUrls", "iconUrl") or item in (None, "", [], {}):
            continue
        parts.append(f"{key}: {_name(item, depth + 1)}")
    return "; ".join(parts)


def _plain(value: Any, custom: str) -> CellValue:
    """A value whose schema says nothing special: rich text as text, objects by name, numbers as numbers."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        if custom == _CUSTOM_TYPES + "url":
            return url_cell(value)
        return cap(_sprint_name(value) if _GREENHOPPER.match(value) else value)
    return cap(name_of(value))


def url_cell(value: str) -> CellValue:
    """A URL field: a :class:`Link` when it is an http(s) URL Excel accepts, else its text."""
    text = value.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return cap(value)
    if parts.scheme.lower() in ("http", "https") and parts.netloc and len(text) <= MAX_URL_CHARS:
        return Link(text, text)
    return cap(value)


def _array(values: list[Any], schema: Mapping[str, Any]) -> CellValue:
    items = str(schema.get("items") or "")
    system = str(schema.get("system") or "")
    custom = str(schema.get("custom") or "")
    if system == "issuelinks":
        return cap(_issue_links(values))
    if system == "subtasks":
        return cap(", ".join(str(v.get("key", "")) for v in values if isinstance(v, dict)))
    if system == "attachment" or items == "attachment":
        return cap(_attachments(values))
    if system == "worklog" and values and isinstance(values[0], dict) and "worklogs" in values[0]:
        return cap(_worklogs(values[0]))
    if custom == SPRINT_TYPE:
        return cap(", ".join(_sprint_name(v) if isinstance(v, str) else name_of(v) for v in values))
    rendered = [name_of(v) for v in values if v is not None]
    return cap(", ".join(r for r in rendered if r)) or None


def _issue_links(links: list[Any]) -> str:
    """``blocks DEMO-4; is blocked by DEMO-7`` (relation as Jira words it from this issue's side)."""
    parts = []
    for link in links:
        if not isinstance(link, dict):
            continue
        kind = link.get("type") or {}
        for side, word in (("outwardIssue", "outward"), ("inwardIssue", "inward")):
            other = link.get(side)
            if isinstance(other, dict):
                parts.append(f"{kind.get(word) or kind.get('name') or 'linked'} {other.get('key', '')}")
    return "; ".join(parts)


def _attachments(files: list[Any]) -> str:
    names = [str(f.get("filename") or f.get("name") or "?") for f in files if isinstance(f, dict)]
    return f"{len(names)}: {', '.join(names)}" if names else ""


def _sprint_name(value: str) -> str:
    """The name in Data Center's ``com.atlassian.greenhopper.service.sprint.Sprint@1a2b[id=1,…,name=…]``."""
    match = _GREENHOPPER_NAME.search(value)
    return match.group(1) if match else value


def _last_entry(entries: list[Any], noun: str, total: Any, what: Callable[[dict[str, Any]], str]) -> str:
    """``3 comments; last by Alice on 2026-01-07: Looks good`` (count, and the newest entry)."""
    real = [e for e in entries if isinstance(e, dict)]
    count = int(total) if isinstance(total, int) and total >= len(real) else len(real)
    if not count:
        return ""
    words = f"{count} {noun}{'' if count == 1 else 's'}"
    if not real:
        return words
    last = real[-1]
    author = name_of(last.get("author") or last.get("updateAuthor")) or "someone"
    when = parse_jira_time(last.get("started") or last.get("created"))
    on = f" on {_minute(when)} UTC" if when else ""
    body = what(last)
    return f"{words}; last by {author}{on}" + (f": {body}" if body else "")


def _minute(moment: datetime) -> str:
    """``2026-01-07 13:02`` in UTC (without strftime, which is slow)."""
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} {utc.hour:02d}:{utc.minute:02d}"


def _comments(value: Any) -> CellValue:
    if isinstance(value, list):
        value = {"comments": value}
    if not isinstance(value, dict):
        return _plain(value, "")
    return (
        _last_entry(value.get("comments") or [], "comment", value.get("total"), lambda c: name_of(c.get("body")))
        or None
    )


def _worklogs(value: Any) -> str:
    if not isinstance(value, dict):
        return name_of(value)

    def entry(log: dict[str, Any]) -> str:
        spent = log.get("timeSpent") or (
            duration(int(log["timeSpentSeconds"])) if isinstance(log.get("timeSpentSeconds"), int) else ""
        )
        note = name_of(log.get("comment")) if log.get("comment") else ""
        return f"{spent}" + (f" ({note})" if note and spent else note)

    return _last_entry(value.get("worklogs") or [], "worklog", value.get("total"), entry)


def _time_tracking(value: Any) -> CellValue:
    """``Estimated 1w · Remaining 3d 4h · Logged 2d`` from Jira's own strings (seconds as a fallback)."""
    if not isinstance(value, dict):
        return _plain(value, "")
    parts = []
    for label, name in (("Estimated", "originalEstimate"), ("Remaining", "remainingEstimate"), ("Logged", "timeSpent")):
        shown = value.get(name)
        if not shown and isinstance(value.get(name + "Seconds"), int):
            shown = duration(value[name + "Seconds"])
        if shown:
            parts.append(f"{label} {shown}")
    return " · ".join(parts) or None


def _count(attribute: str) -> Callable[[Any], CellValue]:
    def count(value: Any) -> CellValue:
        if isinstance(value, dict) and isinstance(value.get(attribute), int):
            return int(value[attribute])
        return _plain(value, "")

    return count


def _progress(value: Any) -> CellValue:
    if isinstance(value, dict) and isinstance(percent := value.get("percent"), int | float):
        return percent
    if isinstance(value, dict) and value.get("total"):
        return round(100 * float(value.get("progress") or 0) / float(value["total"]))
    return None if isinstance(value, dict) else _plain(value, "")


def _datetime(value: Any) -> CellValue:
    return parse_jira_time(value) or _plain(value, "")


def _date(value: Any) -> CellValue:
    return parse_jira_date(value) or _plain(value, "")


def _number(value: Any) -> CellValue:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    try:
        return float(str(value))
    except ValueError:
        return _plain(value, "")


def _issue_ref(value: Any) -> CellValue:
    if isinstance(value, dict) and value.get("key"):
        return str(value["key"])
    return _plain(value, "")


def _rich(value: Any) -> CellValue:
    return cap(adf_text(value)) if is_adf(value) else _plain(value, "")


_BY_SYSTEM: dict[str, Callable[[Any], CellValue]] = {
    "comment": _comments,
    "worklog": lambda v: _worklogs(v) or None,
    "timetracking": _time_tracking,
    "votes": _count("votes"),
    "watches": _count("watchCount"),
    "progress": _progress,
    "aggregateprogress": _progress,
    "parent": _issue_ref,
    "description": _rich,
    "environment": _rich,
}
_BY_CUSTOM: dict[str, Callable[[Any], CellValue]] = {
    _CUSTOM_TYPES + "textarea": _rich,
    _CUSTOM_TYPES + "url": lambda v: url_cell(v) if isinstance(v, str) else _plain(v, ""),
}
_BY_TYPE: dict[str, Callable[[Any], CellValue]] = {
    "datetime": _datetime,
    "date": _date,
    "number": _number,
    "comments-page": _comments,
    "timetracking": _time_tracking,
    "votes": _count("votes"),
    "watches": _count("watchCount"),
    "progress": _progress,
}
