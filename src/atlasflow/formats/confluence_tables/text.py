"""Cell text: the normalised text of an element (line breaks, entities, links, macros), and of input values."""

from __future__ import annotations

import html
import re
from datetime import date, datetime
from datetime import time as dt_time

from atlasflow.formats.confluence_tables.tokens import CDATA, END, START, TEXT, Doc

_BLOCKS = frozenset(
    [
        "p",
        "div",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "li",
        "ul",
        "ol",
        "pre",
        "blockquote",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "tr",
        "td",
        "th",
        "caption",
        "dl",
        "dt",
        "dd",
        "hr",
        "section",
        "ac:task-list",
        "ac:task",
        "ac:task-body",
        "ac:layout",
        "ac:layout-section",
        "ac:layout-cell",
        "ac:adf-content",
    ]
)
SKIPPED = frozenset(
    [
        "ac:parameter",
        "ac:placeholder",
        "ac:task-id",
        "ac:task-uuid",
        "ac:task-status",
        "ac:adf-attribute",
        "ac:adf-fallback",
        "ac:image",
    ]
)
MACROS = frozenset(("ac:structured-macro", "ac:macro"))
_LINK_TARGET_ATTRS = (
    "ri:content-title",
    "ri:filename",
    "ri:value",
    "ri:space-key",
    "ri:username",
    "ri:userkey",
    "ri:account-id",
)
_INVALID_XML_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class _Lines:
    """Collects text with hard line breaks (``<br/>``) and soft ones (block boundaries).

    A soft break ends the current line only if it holds something other than whitespace.
    """

    __slots__ = ("current", "lines")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.current: list[str] = []

    def text(self, text: str) -> None:
        self.current.append(text)

    def hard(self) -> None:
        self.lines.append("".join(self.current))
        self.current = []

    def soft(self) -> None:
        if self.current:
            line = "".join(self.current)
            if not line.isspace():
                self.lines.append(line)
            self.current = []

    def result(self) -> str:
        self.soft()
        return _clean_lines(self.lines)


def clean_line(line: str) -> str:
    if _INVALID_XML_RE.search(line):
        line = _INVALID_XML_RE.sub("", line)
    return " ".join(line.split())


def _clean_lines(lines: list[str]) -> str:
    if len(lines) == 1:
        return clean_line(lines[0])
    cleaned = [clean_line(line) for line in lines]
    first = next((i for i, line in enumerate(cleaned) if line), len(cleaned))
    last = next((i for i in range(len(cleaned) - 1, -1, -1) if cleaned[i]), -1)
    return "\n".join(cleaned[first : last + 1])


def _normalise(text: str) -> str:
    """Text in the form reads return: whitespace collapsed per line, no blank lines at either end."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _clean_lines(text.split("\n"))


def value_text(value: object) -> str:
    """Text form of an input value: None and NaN/NaT give ``""``, dates ISO 8601, others ``str``."""
    if value is None or (isinstance(value, float | datetime) and value != value):
        return ""
    if isinstance(value, datetime | date | dt_time):
        return _normalise(value.isoformat())
    return _normalise(value if isinstance(value, str) else str(value))


def element_text(doc: Doc, i: int) -> str:
    """Normalised text of the content of element ``i``."""
    out = _Lines()
    _walk(doc, i + 1, doc.match[i], out)
    return out.result()


def _walk(doc: Doc, k: int, stop: int, out: _Lines) -> None:
    """Append the text of tokens ``k`` up to ``stop`` (exclusive) to ``out``."""
    src, kinds, names, match = doc.src, doc.kind, doc.name, doc.match
    while k < stop:
        kind = kinds[k]
        if kind == TEXT:
            out.text(html.unescape(src[doc.start[k] : doc.end[k]]))
        elif kind == CDATA:
            first, *rest = src[doc.start[k] + 9 : doc.end[k] - 3].split("\n")
            out.text(first)
            for line in rest:
                out.hard()
                out.text(line)
        elif kind == END:
            if names[k] in _BLOCKS:
                out.soft()
        else:
            name = names[k]
            if name == "br":
                out.hard()
            elif name in MACROS:
                _macro_text(doc, k, out)
            elif name == "ac:link":
                _link_text(doc, k, out)
            elif name == "ac:emoticon":
                attrs = doc.attrs(k)
                out.text(attrs.get("ac:emoji-shortname") or f":{attrs.get('ac:name', '')}:")
            elif name == "time":
                out.text(doc.attrs(k).get("datetime", ""))
            elif name not in SKIPPED:
                if name in _BLOCKS:
                    out.soft()
                if kind == START:
                    k += 1
                    continue
            k = match[k]
        k += 1


def _macro_text(doc: Doc, k: int, out: _Lines) -> None:
    params: dict[str, str] = {}
    for child in doc.children(k):
        name = doc.name[child]
        if name in ("ac:rich-text-body", "ac:plain-text-body"):
            out.soft()
            _walk(doc, child + 1, doc.match[child], out)
            out.soft()
            return
        if name == "ac:parameter":
            params[doc.attrs(child).get("ac:name", "")] = element_text(doc, child)
    out.text(params.get("title") or params.get("key") or "")


def _link_text(doc: Doc, k: int, out: _Lines) -> None:
    targets: list[int] = []
    for child in doc.children(k):
        name = doc.name[child]
        if name in ("ac:link-body", "ac:plain-text-link-body"):
            _walk(doc, child + 1, doc.match[child], out)
            return
        if name.startswith("ri:"):
            targets.append(child)
    for target in targets:
        attrs = doc.attrs(target)
        for attr in _LINK_TARGET_ATTRS:
            if attrs.get(attr):
                out.text(("@" if doc.name[target] == "ri:user" else "") + attrs[attr])
                return
    anchor = doc.attrs(k).get("ac:anchor")
    if anchor:
        out.text(f"#{anchor}")
