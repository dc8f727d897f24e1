"""A JQL subset: parsed into an AST, evaluated over a :class:`~atlasflow.sandbox.jira.site.JiraSite`.

Supported (field names and keywords case-insensitive, values bare or quoted)::

    project      = != in (not in)   by key, id or name
    key/issuekey/id/issue  = != in (not in)   by key or numeric id;  < <= > >=  (a numeric value compares
                 ids, a key compares numbers within its project: keyset paging)
    parent       = != in (not in) is (not) EMPTY
    "Epic Link"  = != in (not in) is (not) EMPTY   also cf[10830], customfield_10830 (Data Center)
    status, issuetype/type         = != in (not in)   by name or id
    priority, assignee             = != in (not in) is (not) EMPTY   (assignee: currentUser())
    AND, OR, NOT, parentheses; ORDER BY key|id|created|updated|priority|status|issuetype|summary|
    assignee|reporter|project [ASC|DESC], ...

Everything else is refused with Jira's wording, never skipped: an unknown field, a known field outside
the subset (``summary ~ x``), an operator such as ``~``, ``<``, ``was``, ``changed``, an unknown
function, a syntax error, and values that do not exist (``An issue with key 'X' does not exist for
field 'key'.``; projects the account cannot browse do not exist for it). With ``strict=False`` (Data
Center ``validateQuery=warn|false``) unknown values become warnings and match nothing, as in Jira.

Like Jira, ``!=`` and ``not in`` never match an empty field. Without ``ORDER BY`` results come newest
first (by id descending); Jira leaves that order unspecified. ``key in (...)``, ``parent in (...)``,
``"Epic Link" in (...)`` and ``project = X`` are answered from indexes, so walking a tree level by
level costs time in proportion to the issues found, not to the size of the site.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from atlasflow.sandbox.core import Account, Mode
from atlasflow.sandbox.jira.catalog import EPIC_LINK_FIELD
from atlasflow.sandbox.jira.model import Issue, split_key
from atlasflow.sandbox.jira.site import JiraSite


class JqlError(Exception):
    """A query Jira would answer with 400; ``messages`` are the ``errorMessages``."""

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


# --------------------------------------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class Value:
    text: str
    quoted: bool
    pos: int


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    args: tuple[Value, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Empty:
    """``EMPTY`` or ``NULL``."""

    pos: int


@dataclass(frozen=True, slots=True)
class ValueList:
    items: tuple[Value | Function, ...]
    source: str
    """The list as written, e.g. ``(A, B)``, for error messages."""


Operand = Value | Function | Empty | ValueList


@dataclass(frozen=True, slots=True)
class Clause:
    field: str
    op: str
    """Lower-case operator: ``=``, ``!=``, ``in``, ``not in``, ``is``, ``is not``, ``~``, ``was`` ..."""
    operand: Operand
    pos: int


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


Node = Clause | And | Or | Not


@dataclass(frozen=True, slots=True)
class SortKey:
    field: str
    descending: bool


@dataclass(frozen=True, slots=True)
class Query:
    where: Node | None
    order_by: tuple[SortKey, ...] = ()


# ----------------------------------------------------------------------------------------- parsing

_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"})
_KEYWORDS |= {"was", "changed"}
_RESERVED_WORDS = frozenset(
    """abort access add after alias all alter any as audit avg before begin between boolean break byte
    catch cf char character check checkpoint collate collation column commit connect continue count
    create current date decimal declare decrement default defaults define delete delimiter difference
    distinct divide do double drop else encoding end equals escape exclusive exec execute exists
    explain false fetch file field first float for from function go goto grant greater group having
    identified if immediate increment index initial inner inout input insert int integer intersect
    intersection into isempty isnull join last left less like limit lock long max min minus mode modify
    modulo more multiply next noaudit notin nowait number object of on option outer output power
    previous prior privileges public raise raw remainder rename resume return returns revoke right row
    rowid rownum rows select session set share size sqrt start strict string subtract sum synonym
    table then to trans transaction trigger true uid union unique update user validate values view when
    whenever where while with""".split()  # noqa: SIM905 - a word list reads better as text
)
_OPERATORS = "'=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'"
_TOKEN_RE = re.compile(
    r"""(?P<ws>\s+)
      |(?P<cf>cf\[\d+\])
      |(?P<op>!=|!~|<=|>=|=|~|<|>)
      |(?P<punct>[(),])
      |(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      |(?P<word>[\w.:\-]+)""",
    re.VERBOSE | re.IGNORECASE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # word, string, op, punct, eof
    text: str
    pos: int  # 0-based offset

    def is_keyword(self, *words: str) -> bool:
        return self.kind == "word" and self.text.casefold() in words


def _unquote(raw: str) -> str:
    body, out, i = raw[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


class _Parser:
    def __init__(self, text: str, mode: Mode) -> None:
        self.text = text
        self.prefix = "Error in JQL Query:" if mode == "cloud" else "Error in the JQL Query:"
        self.tokens = self._tokenize()
        self.i = 0

    # tokens ---------------------------------------------------------------------------------
    def _tokenize(self) -> list[_Token]:
        tokens, pos = [], 0
        while pos < len(self.text):
            match = _TOKEN_RE.match(self.text, pos)
            if match is None or match.end() == pos:
                char = self.text[pos]
                if char in "\"'":
                    raise self.error(
                        f"The quoted string '{self.text[pos + 1 :]}' has not been completed.", pos
                    )
                raise self.error(
                    f"The character '{char}' is a reserved JQL character. You must enclose it in a string or "
                    f"use the escape '\\u{ord(char):04x}' instead.",
                    pos,
                )
            kind = match.lastgroup or "ws"
            if kind != "ws":
                text = match.group()
                if kind == "string":
                    tokens.append(_Token("string", _unquote(text), pos))
                else:
                    tokens.append(_Token("word" if kind == "cf" else kind, text, pos))
            pos = match.end()
        tokens.append(_Token("eof", "", len(self.text)))
        return tokens

    @property
    def peek(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return token

    def error(self, message: str, pos: int | None = None) -> JqlError:
        if pos is None:
            return JqlError(f"{self.prefix} {message}")
        line = self.text.count("\n", 0, pos) + 1
        column = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return JqlError(f"{self.prefix} {message} (line {line}, character {column})")

    def unexpected(self, expecting: str, suffix: str = "") -> JqlError:
        token = self.peek
        if token.kind == "eof":
            return self.error(f"Expecting {expecting} before the end of the query.{suffix}")
        return self.error(f"Expecting {expecting} but got '{token.text}'.{suffix}", token.pos)

    # grammar --------------------------------------------------------------------------------
    def query(self) -> Query:
        where = None
        if self.peek.kind != "eof" and not self.peek.is_keyword("order"):
            where = self.or_expr()
        order: tuple[SortKey, ...] = ()
        if self.peek.is_keyword("order"):
            self.advance()
            if not self.peek.is_keyword("by"):
                raise self.unexpected("'by'")
            self.advance()
            order = self.sort_keys()
        if self.peek.kind != "eof":
            raise self.unexpected("either 'OR' or 'AND'" if where is not None else "a field name")
        return Query(where, order)

    def or_expr(self) -> Node:
        nodes = [self.and_expr()]
        while self.peek.is_keyword("or"):
            self.advance()
            nodes.append(self.and_expr())
        return nodes[0] if len(nodes) == 1 else Or(tuple(nodes))

    def and_expr(self) -> Node:
        nodes = [self.not_expr()]
        while self.peek.is_keyword("and"):
            self.advance()
            nodes.append(self.not_expr())
        return nodes[0] if len(nodes) == 1 else And(tuple(nodes))

    def not_expr(self) -> Node:
        if self.peek.is_keyword("not"):
            self.advance()
            return Not(self.not_expr())
        if self.peek.text == "(" and self.peek.kind == "punct":
            self.advance()
            inner = self.or_expr()
            if self.peek.text != ")":
                raise self.unexpected("')'")
            self.advance()
            return inner
        return self.clause()

    def field_name(self) -> str:
        token = self.peek
        if token.kind == "string" or (token.kind == "word" and token.text.casefold() not in _KEYWORDS):
            self._refuse_reserved(token)
            self.advance()
            return token.text
        raise self.unexpected("a field name")

    def clause(self) -> Clause:
        pos = self.peek.pos
        name = self.field_name()
        op = self.operator()
        return Clause(name, op, self.operand(op), pos)

    def operator(self) -> str:
        token = self.peek
        if token.kind == "op":
            self.advance()
            return token.text
        words = {"in": ("in",), "is": ("is",), "was": ("was",), "changed": ("changed",)}
        if token.is_keyword("not"):
            self.advance()
            if not self.peek.is_keyword("in"):
                raise self.unexpected("'IN'")
            self.advance()
            return "not in"
        if token.kind == "word" and token.text.casefold() in words:
            self.advance()
            op = token.text.casefold()
            if op in ("is", "was") and self.peek.is_keyword("not"):
                self.advance()
                op += " not"
            if op.startswith("was") and self.peek.is_keyword("in"):
                self.advance()
                op += " in"
            return op
        raise self.unexpected("operator", f" The valid operators are {_OPERATORS}.")

    def operand(self, op: str) -> Operand:
        if op == "changed":
            return Empty(self.peek.pos)
        if op.startswith("is"):
            if not self.peek.is_keyword("empty", "null"):
                raise self.unexpected("'EMPTY' or 'NULL'")
            return Empty(self.advance().pos)
        if self.peek.kind == "punct" and self.peek.text == "(":
            return self.value_list()
        if self.peek.is_keyword("empty", "null"):
            return Empty(self.advance().pos)
        return self.value()

    def value_list(self) -> ValueList:
        start = self.advance().pos
        items = [self.value()]
        while self.peek.text == "," and self.peek.kind == "punct":
            self.advance()
            items.append(self.value())
        if self.peek.text != ")" or self.peek.kind != "punct":
            raise self.unexpected("')'")
        end = self.advance().pos
        return ValueList(tuple(items), self.text[start : end + 1])

    def value(self) -> Value | Function:
        token = self.peek
        if token.kind == "string":
            self.advance()
            return Value(token.text, True, token.pos)
        if token.kind != "word" or token.text.casefold() in _KEYWORDS:
            quote = f" You must surround '{token.text}' in quotation marks to use it as a value."
            raise self.unexpected("either a value, list or function", quote if token.kind != "eof" else "")
        self._refuse_reserved(token)
        self.advance()
        if self.peek.kind == "punct" and self.peek.text == "(":
            self.advance()
            args: list[Value] = []
            while not (self.peek.kind == "punct" and self.peek.text == ")"):
                arg = self.value()
                if isinstance(arg, Function):
                    raise self.error("Functions cannot be nested.", arg.pos)
                args.append(arg)
                if self.peek.kind == "punct" and self.peek.text == ",":
                    self.advance()
                elif not (self.peek.kind == "punct" and self.peek.text == ")"):
                    raise self.unexpected("')'")
            self.advance()
            return Function(token.text, tuple(args), token.pos)
        return Value(token.text, False, token.pos)

    def sort_keys(self) -> tuple[SortKey, ...]:
        keys = []
        while True:
            name = self.field_name()
            descending = False
            if self.peek.is_keyword("asc", "desc"):
                descending = self.advance().text.casefold() == "desc"
            keys.append(SortKey(name, descending))
            if not (self.peek.kind == "punct" and self.peek.text == ","):
                return tuple(keys)
            self.advance()

    def _refuse_reserved(self, token: _Token) -> None:
        if token.kind == "word" and token.text.casefold() in _RESERVED_WORDS:
            raise self.error(
                f"'{token.text}' is a reserved JQL word. "
                "You must surround it in quotation marks to use it in a query.",
                token.pos,
            )


def parse(text: str, mode: Mode = "datacenter") -> Query:
    """Parse JQL; raise :class:`JqlError` with Jira's syntax-error wording (Cloud drops "the")."""
    return _Parser(text, mode).query()


# -------------------------------------------------------------------------------------- evaluation

_KIND_OF_FIELD = {
    "project": "project",
    "issuekey": "key",
    "parent": "parent",
    EPIC_LINK_FIELD: "epic",
    "status": "status",
    "issuetype": "type",
    "priority": "priority",
    "assignee": "assignee",
}
_NULLABLE = frozenset({"parent", "epic", "priority", "assignee"})
_EQUALITY_OPS = frozenset({"=", "!=", "in", "not in"})
_RANGE_OPS = {"<": int.__lt__, "<=": int.__le__, ">": int.__gt__, ">=": int.__ge__}


class _Pred:
    """A compiled condition: ``index()`` answers from indexes when it can (else ``None``)."""

    def index(self) -> set[str] | None:
        return None

    def test(self, issue: Issue) -> bool:
        raise NotImplementedError


@dataclass(eq=False)
class _AttrPred(_Pred):
    attr: str
    values: frozenset[str | None]
    negate: bool
    lookup: Callable[[str], Iterable[str]] | None

    def index(self) -> set[str] | None:
        if self.negate or self.lookup is None or None in self.values:
            return None
        found: set[str] = set()
        for value in self.values:
            if value is not None:
                found.update(self.lookup(value))
        return found

    def test(self, issue: Issue) -> bool:
        value = getattr(issue, self.attr)
        if self.negate:
            return value is not None and value not in self.values
        return value in self.values


@dataclass(eq=False)
class _RangePred(_Pred):
    """``id > 10500`` (``project`` is ``None``) or ``key > DEMO-5`` (numbers within ``project``)."""

    op: str
    bound: int
    project: str | None

    def test(self, issue: Issue) -> bool:
        if self.project is None:
            return bool(_RANGE_OPS[self.op](issue.id, self.bound))
        return issue.project == self.project and bool(_RANGE_OPS[self.op](issue.number, self.bound))


@dataclass(eq=False)
class _AndPred(_Pred):
    children: list[_Pred]
    issues: dict[str, Issue]

    def index(self) -> set[str] | None:
        indexed = [(child, child.index()) for child in self.children]
        sets = sorted((s for _, s in indexed if s is not None), key=len)
        if not sets:
            return None
        rest = [child for child, s in indexed if s is None]
        base = sets[0].intersection(*sets[1:])
        return {k for k in base if all(child.test(self.issues[k]) for child in rest)}

    def test(self, issue: Issue) -> bool:
        return all(child.test(issue) for child in self.children)


@dataclass(eq=False)
class _OrPred(_Pred):
    children: list[_Pred]

    def index(self) -> set[str] | None:
        found: set[str] = set()
        for child in self.children:
            part = child.index()
            if part is None:
                return None
            found |= part
        return found

    def test(self, issue: Issue) -> bool:
        return any(child.test(issue) for child in self.children)


@dataclass(eq=False)
class _NotPred(_Pred):
    child: _Pred

    def test(self, issue: Issue) -> bool:
        return not self.child.test(issue)


@dataclass
class SearchResult:
    issues: list[Issue]
    warnings: list[str] = field(default_factory=list)


class _Compiler:
    def __init__(self, site: JiraSite, account: Account, strict: bool) -> None:
        self.site = site
        self.account = account
        self.strict = strict
        self.browsable = site.browsable(account)
        self.errors: list[str] = []
        self.problems: list[str] = []  # unknown values: errors when strict, else warnings

    def node(self, node: Node) -> _Pred:
        if isinstance(node, Clause):
            return self.clause(node)
        if isinstance(node, And):
            return _AndPred([self.node(c) for c in node.children], self.site.issues)
        if isinstance(node, Or):
            return _OrPred([self.node(c) for c in node.children])
        return _NotPred(self.node(node.child))

    def clause(self, clause: Clause) -> _Pred:
        fdef = self.site.field(clause.field)
        kind = _KIND_OF_FIELD.get(fdef.id) if fdef else None
        if fdef is None:
            self.errors.append(
                f"Field '{clause.field}' does not exist or you do not have permission to view it."
            )
            return _AttrPred("key", frozenset(), False, None)
        if kind == "key" and clause.op in _RANGE_OPS:
            return self.range_clause(clause)
        allowed = _EQUALITY_OPS | ({"is", "is not"} if kind in _NULLABLE else set())
        if kind is None or clause.op not in allowed:
            self.errors.append(f"The operator '{clause.op}' is not supported by the '{clause.field}' field.")
            return _AttrPred("key", frozenset(), False, None)
        operand, op = clause.operand, clause.op
        if isinstance(operand, Empty):
            if kind not in _NULLABLE:
                self.errors.append(f"The field '{clause.field}' does not support searching for EMPTY values.")
            return _AttrPred(kind, frozenset({None}), op in ("!=", "is not"), None)
        if op in ("in", "not in") and isinstance(operand, Value):
            shown = f'"{operand.text}"' if operand.quoted else operand.text
            self.errors.append(
                f"Operator '{op}' does not support the non-list value '{shown}' for field '{clause.field}'."
            )
        if op in ("=", "!=") and isinstance(operand, ValueList):
            self.errors.append(
                f"Operator '{op}' does not support the list value '{operand.source}' "
                f"for field '{clause.field}'."
            )
        items = operand.items if isinstance(operand, ValueList) else (operand,)
        values = frozenset(v for v in (self.resolve(kind, clause.field, item) for item in items) if v)
        return _AttrPred(kind, values, op in ("!=", "not in"), self._lookup(kind))

    def range_clause(self, clause: Clause) -> _Pred:
        operand = clause.operand
        if not isinstance(operand, Value):
            self.errors.append(f"The operator '{clause.op}' is not supported by the '{clause.field}' field.")
            return _AttrPred("key", frozenset(), False, None)
        if operand.text.isdigit():
            return _RangePred(clause.op, int(operand.text), None)
        key = self.resolve("key", clause.field, operand)
        issue = self.site.issues.get(key) if key else None
        if issue is None:
            return _AttrPred("key", frozenset(), False, None)
        return _RangePred(clause.op, issue.number, issue.project)

    def resolve(self, kind: str, name: str, item: Value | Function) -> str | None:
        """The canonical stored value an operand item stands for; ``None`` (and a problem) if none."""
        if isinstance(item, Function):
            if item.name.casefold() == "currentuser" and not item.args:
                if kind == "assignee":
                    return self.site.user_for(self.account).name
                self.errors.append(
                    f"A value provided by the function 'currentUser' is invalid for the field '{name}'."
                )
                return None
            self.errors.append(
                f"Unable to find JQL function '{item.name}({', '.join(a.text for a in item.args)})'."
            )
            return None
        text, site = item.text, self.site
        if kind in ("key", "parent", "epic"):
            issue = site.find_issue(text)
            if issue is not None and issue.project in self.browsable:
                return issue.key
            if split_key(text) is None and not text.isdigit():
                self.problems.append(f"The issue key '{text}' for field '{name}' is invalid.")
            else:
                self.problems.append(f"An issue with key '{text}' does not exist for field '{name}'.")
            return None
        found: str | None
        if kind == "project":
            project = site.find_project(text)
            found = project.key if project is not None and project.key in self.browsable else None
        elif kind == "assignee":
            user = site.find_user(text)
            found = user.name if user else None
        else:
            finder = {
                "status": site.find_status,
                "type": site.find_issue_type,
                "priority": site.find_priority,
            }[kind]
            entity = finder(text)
            found = entity.name if entity else None
        if found is None:
            self.problems.append(f"The value '{text}' does not exist for the field '{name}'.")
        return found

    def _lookup(self, kind: str) -> Callable[[str], Iterable[str]] | None:
        site = self.site
        lookups: dict[str, Callable[[str], Iterable[str]]] = {
            "project": lambda v: site.by_project.get(v, ()),
            "key": lambda v: (v,) if v in site.issues else (),
            "parent": lambda v: site.children.get(v, ()),
            "epic": lambda v: site.epic_children.get(v, ()),
        }
        return lookups.get(kind)


_NULL_LAST = (1, 0)


def _sort_key(site: JiraSite, name: str) -> Callable[[Issue], Any] | None:
    fdef = site.field(name)
    fid = fdef.id if fdef else None
    status_rank = {s.name: n for n, s in enumerate(site.statuses)}
    type_rank = {t.name: n for n, t in enumerate(site.issue_types)}
    priority_rank = {p.name: p.rank for p in site.priorities}

    def person(username: str | None) -> Any:
        user = site.find_user(username) if username else None
        return (0, user.display_name.casefold()) if user else _NULL_LAST

    getters: dict[str | None, Callable[[Issue], Any]] = {
        "issuekey": lambda i: (0, (i.project, i.number)),
        "created": lambda i: (0, i.created),
        "updated": lambda i: (0, i.updated),
        "summary": lambda i: (0, i.summary.casefold()),
        "project": lambda i: (0, i.project),
        "status": lambda i: (0, status_rank[i.status]),
        "issuetype": lambda i: (0, type_rank[i.type]),
        "priority": lambda i: (0, priority_rank[i.priority]) if i.priority else _NULL_LAST,
        "assignee": lambda i: person(i.assignee),
        "reporter": lambda i: person(i.reporter),
    }
    if name.casefold() == "id":
        return lambda i: (0, i.id)
    return getters.get(fid)


def search(site: JiraSite, query: Query, account: Account, *, strict: bool = True) -> SearchResult:
    """Issues matching ``query`` that ``account`` may browse, in the query's order.

    Raises:
        JqlError: Unknown fields, unsupported operators or functions, and (when ``strict``) values
            that do not exist; all problems at once, as Jira lists them.
    """
    with site.lock:
        compiler = _Compiler(site, account, strict)
        pred = compiler.node(query.where) if query.where is not None else None
        sorters = []
        for key in query.order_by:
            getter = _sort_key(site, key.field)
            if getter is None:
                known = site.field(key.field) is not None or key.field.casefold() == "id"
                compiler.errors.append(
                    f"Not able to sort using field '{key.field}'."
                    if known
                    else f"Field '{key.field}' does not exist or you do not have permission to view it."
                )
            else:
                sorters.append((getter, key.descending))
        if compiler.errors or (strict and compiler.problems):
            raise JqlError(*compiler.errors, *(compiler.problems if strict else ()))
        keys = pred.index() if pred is not None else None
        if keys is not None:
            candidates: Iterable[Issue] = (site.issues[k] for k in keys)
        else:
            candidates = (i for i in site.issues.values() if pred is None or pred.test(i))
        found = [i for i in candidates if i.project in compiler.browsable]
        found.sort(key=lambda i: i.id, reverse=True)
        for getter, descending in reversed(sorters):
            found.sort(key=getter, reverse=descending)
        return SearchResult(found, [] if strict else compiler.problems)
