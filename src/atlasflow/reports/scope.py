"""Stage "scope": what a report covers (root tickets, a project or a JQL query), named, quoted and bounded.

A :class:`Scope` is built once from the flow's parameters (exactly one of the three) and gives every later
stage what it needs: the search to run (:attr:`Scope.jql`, project keys quoted) or the root keys, whether
levels below the first are walked, the human description shown in workbooks and messages, the slug file
names are made of, and :func:`scope_id`, the stable name snapshots are kept under.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from atlasflow.clients.jira import quote_jql
from atlasflow.errors import ConfigurationError

ScopeKind = Literal["roots", "project", "jql"]


@dataclass(frozen=True)
class Scope:
    """One scope of a report.

    Attributes:
        kind: ``roots`` (issues by key and everything below), ``project`` (a whole project, one search) or
            ``jql`` (any query; issues whose parent is not in the result are roots, and what lies below them
            is walked too).
        description: For readers: ``roots DEMO-1, DEMO-2``, ``project = DEMO`` or the JQL as given.
        slug: For file names: ``roots-DEMO-1-DEMO-2``, ``project-DEMO``, ``jql-<digest>``.
        keys: The root keys (``roots`` only): upper case, in the order given, each once.
        jql: The search (``project`` and ``jql`` only); a project key is quoted.
    """

    kind: ScopeKind
    description: str
    slug: str
    keys: tuple[str, ...] = ()
    jql: str | None = None

    @property
    def levels_below(self) -> bool:
        """Whether the levels below the first are walked: a project's search already holds every level."""
        return self.kind != "project"

    def file_stem(self, report: str) -> str:
        """``<report>-<slug>`` with only characters safe in a file or attachment name, at most 80 of the slug."""
        return f"{report}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', self.slug)[:80]}"


def scope_of(root_tickets: list[str] | None, project_key: str | None, jql: str | None) -> Scope:
    """The one scope given.

    Raises:
        ValueError: When not exactly one of the three is given.
    """
    given = [x for x in (root_tickets, project_key, jql) if x]
    if len(given) != 1:
        raise ConfigurationError("give exactly one of root_tickets, project_key or jql")
    if root_tickets:
        keys = [k.strip().upper() for k in root_tickets]
        more = f"-and-{len(keys) - 3}-more-{_digest(','.join(keys))}" if len(keys) > 3 else ""
        slug = "roots-" + "-".join(keys[:3]) + more
        return Scope("roots", f"roots {', '.join(keys)}", slug, keys=tuple(dict.fromkeys(keys)))
    if project_key:
        query = f"project = {quote_jql(project_key)} ORDER BY key"
        return Scope("project", f"project = {project_key}", f"project-{project_key}", jql=query)
    assert jql is not None
    return Scope("jql", jql, "jql-" + _digest(jql), jql=jql)


def scope_id(settings: dict[str, Any]) -> str:
    """A stable name for a scope and the settings that shape its rows (site, query, columns, depth ...)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]
