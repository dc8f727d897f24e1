"""The tokenizer: one scan of a storage-format body into tags, text runs and CDATA sections.

A :class:`Doc` records the exact character span of every token and links each start tag to its end tag, so
readers work on token numbers and writers splice replacements into the original string. A body that is not
well-formed raises :class:`MalformedStorage` naming the line and column."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Sequence

from atlasflow.formats.confluence_tables.errors import MalformedStorage

TEXT, START, END, EMPTY, CDATA = range(5)

_TOKEN_RE = re.compile(
    r"""<(?:
        !--.*?-->                                   # comment
      | !\[CDATA\[.*?\]\]>                          # CDATA section
      | \?.*?\?>                                    # processing instruction
      | ![A-Za-z][^<>]*+>                           # declaration
      | /([A-Za-z][^\s/<>"']*+)\s*+>               # end tag: group 1 = name
      | ([A-Za-z][^\s/<>"']*+)                      # start or empty tag: group 2 = name ...
        [^<>"']*+(?:(?:"[^"]*+"|'[^']*+')[^<>"']*+)*+>   # ... then attributes
    )""",
    re.S | re.X,
)
ATTR_RE = re.compile(r"""([^\s=/<>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'<>=`]+)))?""")
_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)
SECTIONS = frozenset(("thead", "tbody", "tfoot"))
CELLS = frozenset(("td", "th"))
HEADINGS = frozenset(("p", "h1", "h2", "h3", "h4", "h5", "h6"))
_REQUIRED_PARENTS = {
    "td": frozenset(("tr",)),
    "th": frozenset(("tr",)),
    "tr": frozenset(("table", *SECTIONS)),
    **{name: frozenset(("table",)) for name in SECTIONS},
}


class Doc:
    """Tokens of a storage-format document, as parallel lists indexed by token number.

    ``match[i]`` links a start tag to its end tag and back (an empty element matches itself);
    ``start``/``end`` are character offsets into ``src``.
    """

    __slots__ = ("end", "kind", "match", "name", "src", "start")

    def __init__(self, src: str) -> None:
        self.src = src
        self.match: list[int] = []
        tokens = self._tokenize()
        self.kind: Sequence[int] = [t[0] for t in tokens]
        self.start: Sequence[int] = [t[1] for t in tokens]
        self.end: Sequence[int] = [t[2] for t in tokens]
        self.name: Sequence[str] = [t[3] for t in tokens]

    def _tokenize(self) -> list[tuple[int, int, int, str]]:
        """Return (kind, start, end, name) per token and fill ``match``."""
        src, match = self.src, self.match
        tokens: list[tuple[int, int, int, str]] = []
        stack: list[int] = []
        pos = 0
        for m in _TOKEN_RE.finditer(src):
            a, b = m.span()
            if a > pos:
                if src.find("<", pos, a) != -1:
                    raise self._stray(pos, a)
                match.append(len(tokens))
                tokens.append((TEXT, pos, a, ""))
            pos = b
            end_name, start_name = m.group(1, 2)
            if end_name is not None:
                name = end_name.lower()
                if name in _VOID:
                    continue
                if not stack:
                    raise self.error(a, f"</{name}> without a matching start tag")
                opened = stack.pop()
                if tokens[opened][3] != name:
                    where = self.where(tokens[opened][1])
                    raise self.error(a, f"</{name}> closes <{tokens[opened][3]}> opened at {where}")
                match[opened] = len(tokens)
                match.append(opened)
                tokens.append((END, a, b, name))
            elif start_name is not None:
                name = start_name.lower()
                required = _REQUIRED_PARENTS.get(name)
                if required is not None:
                    self._check_parent(name, required, tokens[stack[-1]][3] if stack else "", a)
                match.append(len(tokens))
                if src[b - 2] == "/" or name in _VOID:
                    tokens.append((EMPTY, a, b, name))
                else:
                    stack.append(len(tokens))
                    tokens.append((START, a, b, name))
            elif src.startswith("<![CDATA[", a):
                match.append(len(tokens))
                tokens.append((CDATA, a, b, ""))
        if pos < len(src):
            if src.find("<", pos) != -1:
                raise self._stray(pos, len(src))
            match.append(len(tokens))
            tokens.append((TEXT, pos, len(src), ""))
        if stack:
            opened = stack[-1]
            where = self.where(tokens[opened][1])
            raise self.error(len(src), f"<{tokens[opened][3]}> opened at {where} is never closed")
        return tokens

    def _stray(self, start: int, end: int) -> MalformedStorage:
        stray = self.src.find("<", start, end)
        return self.error(
            stray,
            f"'<' that does not start a valid tag, comment or CDATA section: {self.excerpt(stray)!r}",
        )

    def _check_parent(self, name: str, required: frozenset[str], parent: str, offset: int) -> None:
        if parent not in required:
            where = f"inside <{parent}>" if parent else "at the top level"
            raise self.error(offset, f"<{name}> {where}; it must be inside {_or_tags(required)}")

    def where(self, offset: int) -> str:
        line = self.src.count("\n", 0, offset) + 1
        column = offset - (self.src.rfind("\n", 0, offset) + 1) + 1
        return f"line {line}, column {column}"

    def excerpt(self, offset: int) -> str:
        return self.src[max(0, offset - 20) : offset + 20]

    def error(self, offset: int, message: str) -> MalformedStorage:
        return MalformedStorage(f"malformed storage format at {self.where(offset)}: {message}")

    def attrs(self, i: int) -> dict[str, str]:
        """Attributes of the start or empty tag ``i``, values decoded."""
        tag = self.src[self.start[i] + 1 + len(self.name[i]) : self.end[i] - 1]
        return {
            m.group(1).lower(): html.unescape(m.group(2) or m.group(3) or m.group(4) or "")
            for m in ATTR_RE.finditer(tag)
        }

    def children(self, i: int) -> Iterator[int]:
        """Token numbers of the child elements of element ``i``."""
        k = i + 1
        stop = self.match[i]
        while k < stop:
            if self.kind[k] in (START, EMPTY):
                yield k
                k = self.match[k] + 1
            else:
                k += 1

    def inner(self, i: int) -> tuple[int, int]:
        """Character span of the content of element ``i`` (empty for an empty element)."""
        return self.end[i], (self.start[self.match[i]] if self.match[i] != i else self.end[i])


def _or_tags(names: frozenset[str]) -> str:
    return " or ".join(f"<{name}>" for name in sorted(names))
