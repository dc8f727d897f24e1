"""The Jira site behind the sandbox: projects, users, fields, issues and links, in memory.

A :class:`JiraSite` is built for one mode and keeps that mode's hierarchy rules:

* **cloud**: every child points to its parent through ``parent`` (epic -> story/task/bug -> sub-task).
* **datacenter**: sub-tasks point to their parent through ``parent`` (and are listed in the parent's
  ``subtasks``); stories, tasks and bugs point to their epic through the **Epic Link** custom field
  ``customfield_10830`` (value: the epic's key), never through ``parent``.

The sandbox also allows sub-tasks of sub-tasks (real Jira does not), so that generated trees can be
deeper than three levels; they use ``parent`` in both modes, so one traversal works everywhere: the
children of ``X`` are ``parent = X`` plus, in Data Center, ``"Epic Link" = X``.

The demo and generated sites are seeded by :mod:`atlasflow.sandbox.jira.seed`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from atlasflow.sandbox.core import Account, Mode
from atlasflow.sandbox.identity import account_id
from atlasflow.sandbox.jira.catalog import (
    DETAIL_FIELDS,
    EPIC_LINK_FIELD,
    GROUPS,
    ISSUE_TYPES,
    LINK_TYPES,
    PLATFORM_OPTIONS,
    PRIORITIES,
    REGION_OPTIONS,
    SPRINTS,
    STATUSES,
    TEAM_OPTIONS,
    build_fields,
    custom_schema,
)
from atlasflow.sandbox.jira.model import (
    BASE_TIME,
    DATE_RE,
    FieldDef,
    Issue,
    IssueType,
    JiraSettings,
    Link,
    Priority,
    Project,
    Status,
    User,
    check_summary,
    jira_time,
)
from atlasflow.sandbox.jira.seed import build_demo, build_tree, level_sizes


def _account_id(name: str) -> str:
    return account_id(name)

class JiraSite:
    """An in-memory Jira site for one mode. Thread-safe: every public method takes :attr:`lock`.

    The indexes (:attr:`issues`, :attr:`by_project`, :attr:`children`, :attr:`epic_children`, ...)
    are read by the routes and the JQL evaluator while they hold :attr:`lock`; change the site only
    through its methods. :attr:`generation` grows with every change, so caches know when to drop.
    """

    def __init__(self, mode: Mode, settings: JiraSettings | None = None) -> None:
        self.mode: Mode = mode
        self.settings = settings or JiraSettings()
        self.lock = threading.RLock()
        self.generation = 0
        self.projects: dict[str, Project] = {}
        self.users: dict[str, User] = {}
        self.fields: tuple[FieldDef, ...] = build_fields(mode)
        self.statuses = STATUSES
        self.issue_types = ISSUE_TYPES
        self.priorities = PRIORITIES
        self.link_types = LINK_TYPES
        self.issues: dict[str, Issue] = {}
        self.by_id: dict[str, str] = {}
        self.by_project: dict[str, set[str]] = {}
        self.children: dict[str, set[str]] = {}
        self.epic_children: dict[str, set[str]] = {}
        self.links: dict[int, Link] = {}
        self.links_of: dict[str, list[Link]] = {}
        self._next_issue_id = 10000
        self._next_link_id = 10100
        self.field_by_id = {f.id: f for f in self.fields}

    # ----------------------------------------------------------------------------------- lookups

    def field(self, ident: str) -> FieldDef | None:
        """A field by id, name or JQL clause name (``cf[10830]``), case-insensitive."""
        if ident in self.field_by_id:
            return self.field_by_id[ident]
        folded = ident.casefold()
        for f in self.fields:
            if folded in (f.id.casefold(), f.name.casefold()) or folded in (
                c.casefold() for c in f.clause_names
            ):
                return f
        return None

    def custom_field(self, name: str) -> FieldDef:
        """The custom field called ``name`` (e.g. ``"Story Points"``); ``KeyError`` if absent."""
        found = self.field(name)
        if found is None or not found.custom:
            raise KeyError(f"no custom field {name!r} on this {self.mode} site")
        return found

    def find_project(self, ident: str) -> Project | None:
        """A project by key, id or name, case-insensitive."""
        if ident.upper() in self.projects:
            return self.projects[ident.upper()]
        folded = ident.casefold()
        return next((p for p in self.projects.values() if folded in (p.id, p.name.casefold())), None)

    def find_user(self, ident: str) -> User | None:
        """A user by username, account id or e-mail address, case-insensitive."""
        folded = ident.casefold()
        if folded in self.users:
            return self.users[folded]
        return next(
            (u for u in self.users.values() if folded in (u.account_id.casefold(), u.email.casefold())),
            None,
        )

    def find_status(self, ident: str) -> Status | None:
        folded = ident.casefold()
        return next((s for s in self.statuses if folded in (s.id, s.name.casefold())), None)

    def find_issue_type(self, ident: str) -> IssueType | None:
        folded = ident.casefold()
        return next((t for t in self.issue_types if folded in (t.id, t.name.casefold())), None)

    def find_priority(self, ident: str) -> Priority | None:
        folded = ident.casefold()
        return next((p for p in self.priorities if folded in (p.id, p.name.casefold())), None)

    def find_issue(self, ident: str) -> Issue | None:
        """An issue by key (case-insensitive) or numeric id."""
        if ident.isdigit():
            key = self.by_id.get(ident)
            return self.issues.get(key) if key else None
        return self.issues.get(ident.upper())

    def issue_type(self, issue: Issue) -> IssueType:
        return next(t for t in self.issue_types if t.name == issue.type)

    def status(self, issue: Issue) -> Status:
        return next(s for s in self.statuses if s.name == issue.status)

    def user_for(self, account: Account) -> User:
        """The site user of an authenticated account (added on first sight)."""
        with self.lock:
            user = self.find_user(account.username)
            if user is None:
                user = self.add_user(account.username, account.display_name, email=account.username)
            return user

    def browsable(self, account: Account) -> frozenset[str]:
        """Keys of the projects ``account`` may browse."""
        with self.lock:
            if "BROWSE_PROJECTS" not in account.permissions:
                return frozenset()
            return frozenset(
                p.key for p in self.projects.values() if p.browsers is None or account.username in p.browsers
            )

    def has_permission(self, account: Account, project: str, permission: str) -> bool:
        """Whether ``account`` holds a project permission in ``project`` (browsing is required too)."""
        return permission in account.permissions and project in self.browsable(account)

    def subtasks_of(self, key: str) -> list[Issue]:
        """Sub-task children of ``key``, in natural key order."""
        with self.lock:
            kids = [self.issues[k] for k in self.children.get(key, ())]
            return sorted((i for i in kids if self.issue_type(i).subtask), key=lambda i: i.number)

    # --------------------------------------------------------------------------- public Python API

    def __len__(self) -> int:
        return len(self.issues)

    def keys(self, project: str | None = None) -> list[str]:
        """Issue keys (of one project, or all), in natural order (DEMO-2 before DEMO-10)."""
        with self.lock:
            keys = self.by_project.get(project.upper(), set()) if project else self.issues.keys()
            return sorted(keys, key=lambda k: (self.issues[k].project, self.issues[k].number))

    def issue(self, key: str) -> Issue:
        """A copy of the issue ``key`` (or numeric id); ``KeyError`` if there is none."""
        with self.lock:
            found = self.find_issue(key)
            if found is None:
                raise KeyError(key)
            return dataclasses.replace(
                found, labels=list(found.labels), custom=dict(found.custom), details=dict(found.details)
            )

    def add_project(self, key: str, name: str, *, browsers: frozenset[str] | None = None) -> Project:
        """Add a project; ``browsers`` restricts who may see it (usernames)."""
        with self.lock:
            project = Project(str(10000 + len(self.projects)), key.upper(), name, browsers)
            self.projects[project.key] = project
            self.by_project[project.key] = set()
            self.generation += 1
            return project

    def add_custom_field(self, name: str, kind: str, custom_type: str) -> FieldDef:
        """Add a custom field (e.g. a second "Team", as sites that use Advanced Roadmaps have)."""
        with self.lock:
            number = 10900 + sum(1 for f in self.fields if f.custom)
            fid = f"customfield_{number}"
            fdef = FieldDef(
                id=fid,
                name=name,
                custom=True,
                kind=kind,
                schema=custom_schema(fid, kind, custom_type),
                clause_names=(f"cf[{number}]", name),
            )
            self.fields = (*self.fields, fdef)
            self.field_by_id[fid] = fdef
            self.generation += 1
            return fdef

    def add_user(self, name: str, display_name: str, *, email: str | None = None, active: bool = True) -> User:
        """Add a user; ``name`` is the Data Center username (Cloud gets a derived account id)."""
        with self.lock:
            user = User(
                name=name,
                key=f"JIRAUSER{10000 + len(self.users)}",
                account_id=_account_id(name),
                display_name=display_name,
                email=email or f"{name}@example.com",
                active=active,
            )
            self.users[name.casefold()] = user
            return user

    def create_issue(
        self,
        project: str,
        type: str,
        summary: str,
        parent: str | None = None,
        epic: str | None = None,
        **fields: Any,
    ) -> str:
        """Create an issue and return its key.

        Args:
            project: Project key.
            type: Issue type name: Epic, Story, Task, Bug or Sub-task.
            summary: At most 255 characters.
            parent: Parent key. Required for sub-tasks. In Cloud a story/task/bug may have an epic as
                parent; in Data Center only sub-tasks have a parent (use ``epic``).
            epic: Epic key. Data Center: the Epic Link. Cloud: the same as ``parent=epic``.
            **fields: ``status``, ``assignee`` (username, account id or e-mail), ``priority``,
                ``description``, ``labels``, ``created``, ``updated`` and custom fields by name or id.

        Raises:
            ValueError: For anything Jira would refuse (unknown project/type/user, bad hierarchy...).
        """
        with self.lock:
            proj = self.projects.get(project.upper())
            itype = self.find_issue_type(type)
            if proj is None or itype is None:
                raise ValueError(f"unknown project {project!r} or issue type {type!r}")
            if self.mode == "cloud" and epic is not None:
                if parent not in (None, epic):
                    raise ValueError("in Cloud an issue has one parent: pass parent or epic, not both")
                parent, epic = epic, None
            self._check_hierarchy(itype, parent, epic, proj.key)
            now = jira_time(datetime.now(UTC))
            issue = Issue(
                id=self._next_issue_id,
                key=f"{proj.key}-{proj.next_number}",
                project=proj.key,
                number=proj.next_number,
                type=itype.name,
                summary="",
                status=self.statuses[0].name,
                priority="Medium",
                assignee=None,
                reporter=None,
                created=fields.pop("created", now),
                updated=now,
                parent=parent,
                epic=epic,
            )
            self._apply(issue, {"summary": summary, **fields})
            self._add(issue)
            return issue.key

    def update_issue(self, key: str, **fields: Any) -> None:
        """Change fields of ``key`` and set ``updated`` to now (unless ``updated`` is given).

        Args:
            key: Issue key.
            **fields: ``summary``, ``status``, ``assignee`` (``None`` unassigns), ``priority``,
                ``description``, ``labels``, ``updated`` and custom fields by name or id (Data Center
                ``Epic Link``/``customfield_10830`` moves the issue to another epic).

        Raises:
            KeyError: Unknown issue. ValueError: Invalid value.
        """
        with self.lock:
            issue = self._existing(key)
            epic_field = self.field(EPIC_LINK_FIELD) if self.mode == "datacenter" else None
            changes = dict(fields)
            for name in list(changes):
                if epic_field is not None and self.field(name) is epic_field:
                    self._set_epic(issue, changes.pop(name))
            updated = changes.pop("updated", jira_time(datetime.now(UTC)))
            self._apply(issue, changes)
            issue.updated = updated
            self.generation += 1

    def move_issue(self, key: str, new_parent: str | None) -> None:
        """Re-parent ``key``: Cloud ``parent``; Data Center ``parent`` of a sub-task, else Epic Link.

        ``None`` detaches the issue (not possible for a sub-task).
        """
        with self.lock:
            issue = self._existing(key)
            itype = self.issue_type(issue)
            if self.mode == "datacenter" and not itype.subtask:
                self._set_epic(issue, new_parent)
            else:
                self._check_hierarchy(itype, new_parent, None, issue.project)
                if new_parent is not None and self._is_descendant(new_parent.upper(), issue.key):
                    raise ValueError(f"{new_parent} is below {issue.key}: that would make a loop")
                self._unindex_parent(issue)
                issue.parent = new_parent.upper() if new_parent else None
                if issue.parent:
                    self.children.setdefault(issue.parent, set()).add(issue.key)
            issue.updated = jira_time(datetime.now(UTC))
            self.generation += 1

    def delete_issue(self, key: str) -> list[str]:
        """Delete ``key`` with its sub-tasks (recursively); other children are detached.

        Returns:
            The deleted keys.
        """
        with self.lock:
            issue = self._existing(key)
            doomed = [issue.key]
            for sub in self.subtasks_of(issue.key):
                doomed.extend(self.delete_issue(sub.key))
            for child_key in list(self.children.get(issue.key, ())):
                self.issues[child_key].parent = None
            for child_key in list(self.epic_children.get(issue.key, ())):
                self.issues[child_key].epic = None
            self.children.pop(issue.key, None)
            self.epic_children.pop(issue.key, None)
            for link in self.links_of.pop(issue.key, []):
                self._remove_link(link)
            self._unindex_parent(issue)
            self.by_project[issue.project].discard(issue.key)
            del self.by_id[str(issue.id)]
            del self.issues[issue.key]
            self.generation += 1
            return doomed

    def link_issues(self, source: str, target: str, link_type: str = "Blocks") -> int:
        """Link two issues: ``source`` <outward> ``target`` (e.g. source *blocks* target); returns the id."""
        with self.lock:
            ltype = next((t for t in self.link_types if t.name.casefold() == link_type.casefold()), None)
            if ltype is None:
                raise ValueError(f"unknown link type {link_type!r}")
            src, dst = self._existing(source), self._existing(target)
            link = Link(self._next_link_id, ltype, src.key, dst.key)
            self._next_link_id += 1
            self.links[link.id] = link
            self.links_of.setdefault(src.key, []).append(link)
            self.links_of.setdefault(dst.key, []).append(link)
            self.generation += 1
            return link.id

    # ---------------------------------------------------------------------------------- internals

    def _existing(self, key: str) -> Issue:
        found = self.find_issue(key)
        if found is None:
            raise KeyError(key)
        return found

    def _check_hierarchy(self, itype: IssueType, parent: str | None, epic: str | None, project: str) -> None:
        if itype.subtask and parent is None:
            raise ValueError("a sub-task needs a parent")
        if parent is not None:
            target = self.find_issue(parent)
            if target is None:
                raise ValueError(f"parent {parent} does not exist")
            if itype.subtask and target.project != project:
                raise ValueError("sub-tasks must be created in the same project as the parent")
            if not itype.subtask:
                if self.mode == "datacenter":
                    raise ValueError("in Data Center only sub-tasks have a parent; use epic=")
                if itype.hierarchy_level >= 1 or self.issue_type(target).hierarchy_level != 1:
                    raise ValueError(f"a {itype.name} cannot have a {target.type} as parent")
        if epic is not None:
            if itype.subtask or itype.hierarchy_level >= 1:
                raise ValueError(f"a {itype.name} cannot have an Epic Link")
            self._epic(epic)

    def _epic(self, key: str) -> Issue:
        target = self.find_issue(key)
        if target is None or target.type != "Epic":
            raise ValueError(f"{key} is not an epic")
        return target

    def _set_epic(self, issue: Issue, epic: str | None) -> None:
        if epic is not None:
            self._check_hierarchy(self.issue_type(issue), None, epic, issue.project)
        if issue.epic:
            self.epic_children.get(issue.epic, set()).discard(issue.key)
        issue.epic = self._epic(epic).key if epic else None
        if issue.epic:
            self.epic_children.setdefault(issue.epic, set()).add(issue.key)

    def _is_descendant(self, candidate: str, ancestor: str) -> bool:
        seen: set[str] = set()
        current: str | None = candidate
        while current is not None and current not in seen:
            if current == ancestor:
                return True
            seen.add(current)
            found = self.issues.get(current)
            current = found.parent if found else None
        return False

    def _apply(self, issue: Issue, changes: dict[str, Any]) -> None:
        """Validate and set plain (non-hierarchy) fields."""
        for name, value in changes.items():
            if name == "summary":
                issue.summary = check_summary(value)
            elif name == "status":
                status = self.find_status(str(value))
                if status is None:
                    raise ValueError(f"unknown status {value!r}")
                issue.status = status.name
            elif name in ("priority", "assignee", "reporter"):
                setattr(issue, name, self._person_or_priority(name, value))
            elif name == "description":
                issue.description = None if value is None else str(value)
            elif name == "labels":
                issue.labels = [str(v) for v in value]
            elif name in ("created", "updated"):
                setattr(issue, name, str(value))
            else:
                self._apply_custom(issue, name, value)

    def _person_or_priority(self, name: str, value: Any) -> str | None:
        if value is None:
            return None
        if name == "priority":
            priority = self.find_priority(str(value))
            if priority is None:
                raise ValueError(f"unknown priority {value!r}")
            return priority.name
        user = self.find_user(str(value))
        if user is None:
            raise ValueError(f"unknown user {value!r}")
        return user.name

    def _apply_custom(self, issue: Issue, name: str, value: Any) -> None:
        if name in DETAIL_FIELDS:
            issue.details[name] = value
            return
        fdef = self.field(name)
        if fdef is None or not fdef.custom or fdef.kind == "epiclink":
            raise ValueError(f"field {name!r} cannot be set this way on this {self.mode} site")
        if value is None:
            issue.custom.pop(fdef.id, None)
            return
        issue.custom[fdef.id] = self.custom_value(fdef, value)

    def custom_value(self, fdef: FieldDef, value: Any) -> Any:
        """``value`` as stored for custom field ``fdef`` (mode-neutral); ``ValueError`` if Jira would refuse it.

        Sprints are sprint ids; multi-selects option values; cascading selects ``[parent, child]``;
        user pickers usernames; groups group names; date-times Jira timestamps.
        """
        kind = fdef.kind
        if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"{fdef.name} must be a number")
        if kind == "option" and value not in TEAM_OPTIONS:
            raise ValueError(f"{value!r} is not an option of {fdef.name}")
        if kind == "date" and not (isinstance(value, str) and DATE_RE.match(value)):
            raise ValueError(f"{fdef.name} must be a date YYYY-MM-DD")
        if kind == "sprint":
            ids = value if isinstance(value, list) else [value]
            if not all(isinstance(i, int) and any(sp.id == i for sp in SPRINTS) for i in ids):
                raise ValueError(f"Sprint with id {value!r} does not exist")
            return list(ids)
        if kind == "multioption":
            if not isinstance(value, list) or any(v not in PLATFORM_OPTIONS for v in value):
                raise ValueError(f"{value!r} are not options of {fdef.name}")
            return list(value)
        if kind == "cascading":
            parent, child = [*value, None][:2] if isinstance(value, list | tuple) else (value, None)
            if parent not in REGION_OPTIONS or (child is not None and child not in REGION_OPTIONS[parent][1]):
                raise ValueError(f"{value!r} is not an option of {fdef.name}")
            return [parent, child]
        if kind in ("user", "users"):
            names = value if isinstance(value, list) else [value]
            users = [self.find_user(str(n)) for n in names]
            if any(u is None for u in users):
                raise ValueError(f"unknown user in {value!r}")
            found = [u.name for u in users if u is not None]
            return found if kind == "users" else found[0]
        if kind == "group" and value not in GROUPS:
            raise ValueError(f"Group '{value}' does not exist.")
        if kind in ("string", "textarea", "url", "datetime", "group"):
            return str(value)
        return value

    def _add(self, issue: Issue) -> None:
        self.issues[issue.key] = issue
        self.by_id[str(issue.id)] = issue.key
        self.by_project[issue.project].add(issue.key)
        if issue.parent:
            self.children.setdefault(issue.parent, set()).add(issue.key)
        if issue.epic:
            self.epic_children.setdefault(issue.epic, set()).add(issue.key)
        self.projects[issue.project].next_number = issue.number + 1
        self._next_issue_id = issue.id + 1
        self.generation += 1

    def _unindex_parent(self, issue: Issue) -> None:
        if issue.parent:
            self.children.get(issue.parent, set()).discard(issue.key)

    def _remove_link(self, link: Link) -> None:
        del self.links[link.id]
        for end in (link.source, link.target):
            if link in self.links_of.get(end, ()):
                self.links_of[end].remove(link)

    # ------------------------------------------------------------------------------- constructors

    def add_record(self, project: str, itype: str, summary: str, index: int, **attrs: Any) -> Issue:
        """A demo/generated record with deterministic times, without validation (fast path)."""
        proj = self.projects[project]
        created = BASE_TIME + timedelta(minutes=97 * index)
        issue = Issue(
            id=self._next_issue_id,
            key=f"{project}-{proj.next_number}",
            project=project,
            number=proj.next_number,
            type=itype,
            summary=summary,
            status=attrs.pop("status", STATUSES[index % 3].name),
            priority=attrs.pop("priority", PRIORITIES[(index * 7) % 5].name),
            assignee=attrs.pop("assignee", None),
            reporter=attrs.pop("reporter", "demo@example.com"),
            created=jira_time(created),
            updated=jira_time(created + timedelta(days=index % 9, hours=index % 5)),
            **attrs,
        )
        self._add(issue)
        return issue

    def custom_id(self, name: str) -> str:
        return self.custom_field(name).id

    @classmethod
    def demo(cls, mode: Mode) -> JiraSite:
        """The deterministic demo site described in :mod:`atlasflow.sandbox.jira.seed`."""
        site = cls(mode)
        with site.lock:
            build_demo(site)
        return site

    @classmethod
    def generated(
        cls,
        mode: Mode,
        *,
        total: int = 20000,
        depth: int = 4,
        fanout: int | None = None,
        project: str = "BIG",
        seed: int = 0,
    ) -> JiraSite:
        """A site with one large deterministic tree rooted at ``<project>-1`` (an epic).

        Levels: 0 the root epic; 1 stories (Cloud: ``parent``; DC: Epic Link to the root); 2 and
        deeper: sub-tasks via ``parent`` (levels 3+ are sub-tasks of sub-tasks, a sandbox liberty).
        Children are spread round-robin over the level above, so sibling counts differ by at most one.

        Args:
            total: Issues in the tree. With ``fanout=None`` the level sizes grow geometrically so that
                exactly ``total`` issues fill ``depth`` levels below the root (the last level takes the
                remainder); with a ``fanout`` the tree is the full ``fanout``-ary tree, cut at ``total``.
            depth: Levels below the root.
            fanout: Children per issue, or ``None`` to derive it from ``total`` and ``depth``.
            project: Project key.
            seed: Seed for summaries, statuses and the few extra links.
        """
        if total < 1 or depth < 0:
            raise ValueError("total must be >= 1 and depth >= 0")
        site = cls(mode)
        with site.lock:
            build_tree(site, project, seed, level_sizes(total, depth, fanout))
        return site


def iter_tree(site: JiraSite, root: str) -> Iterator[tuple[str, int]]:
    """Yield ``(key, level)`` of ``root`` and everything below it (children, then epic children).

    A test helper: the same walk a product traversal makes through ``parent``/Epic Link searches.
    """
    with site.lock:
        level, frontier, seen = 0, [root.upper()], {root.upper()}
        while frontier:
            yield from ((key, level) for key in frontier)
            below: list[str] = []
            for key in frontier:
                kids = site.children.get(key, set()) | site.epic_children.get(key, set())
                below.extend(k for k in sorted(kids, key=lambda k: site.issues[k].number) if k not in seen)
            seen.update(below)
            frontier, level = below, level + 1
