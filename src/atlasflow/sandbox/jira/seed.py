"""The data the sandbox Jira starts with: the demo site and generated trees.

Demo site (:meth:`JiraSite.demo`, same keys and summaries in both modes)
-----------------------------------------------------------------------
``DEMO`` (292 issues): eight epics ``DEMO-1``, ``DEMO-30``, ``DEMO-57``, ``DEMO-90``, ``DEMO-112``,
``DEMO-141``, ``DEMO-168``, ``DEMO-201``; each has 6-9 stories, each story 1-4 sub-tasks; then 70
issues outside any epic, ``DEMO-223`` .. ``DEMO-292``: 40 tasks (every fourth with two sub-tasks,
e.g. ``DEMO-223`` with ``DEMO-224``, ``DEMO-225``) and ten bugs ``DEMO-283`` .. ``DEMO-292``.

``DEMO-1`` is the root to use for flow tests (29 issues)::

    DEMO-1  Epic      "Checkout revamp 🛒"
      DEMO-2  Story   '=HYPERLINK("http://evil","x")'      blocks DEMO-4 (cycle, see below)
        DEMO-3  Sub-task '+1+1'
      DEMO-4  Story   '-2'                                   blocks DEMO-7
        DEMO-5  Sub-task '@SUM(A1)'
        DEMO-6  Sub-task '<script>alert(1)</script>'
      DEMO-7  Story   '<b>bold</b> & co'                     blocks DEMO-2
        DEMO-8 .. DEMO-10 Sub-tasks: '@channel please look', '@all hands: release checklist',
                                     '@here deploy now'
      DEMO-11 Story   'Ünïcödé café, naïve façade'
        DEMO-12 .. DEMO-15 Sub-tasks: '日本語の要約テキスト', 'Deploy 🚀 and celebrate 🎉',
                                     a 255-character summary (Jira's cap; its description is long),
                                     a summary with quotes, a backslash and semicolons
      DEMO-16, DEMO-18, DEMO-21, DEMO-25: four more stories, with 1, 2, 3 and 4 sub-tasks

Links: ``DEMO-2`` blocks ``DEMO-4`` blocks ``DEMO-7`` blocks ``DEMO-2`` (a cycle); ``DEMO-1`` relates
to ``DEMO-223``; ``DEMO-31`` (story of ``DEMO-30``) blocks ``DEMO-16``; ``DEMO-292`` duplicates
``DEMO-283``; ``DEMO-11`` relates to ``OPS-1``; ``DEMO-16`` blocks ``SECRET-2`` (hidden from the
viewer). Assignees: some unassigned, ``frank`` is inactive; priorities: some ``null``.

``OPS`` (20 issues, a maintenance-job target): tasks ``OPS-1`` (sub-tasks ``OPS-2`` .. ``OPS-4``),
``OPS-5`` .. ``OPS-7``, ``OPS-8`` (sub-tasks ``OPS-9``, ``OPS-10``), ``OPS-11`` .. ``OPS-13``,
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from atlasflow.sandbox.jira.catalog import (
    COMPONENTS,
    EPIC_NAME_FIELD,
    GROUPS,
    PLATFORM_OPTIONS,
    REGION_OPTIONS,
    SPRINTS,
    STATUSES,
    TEAM_OPTIONS,
    VERSIONS,
)
from atlasflow.sandbox.jira.model import (
    BASE_TIME,
    SUMMARY_MAX,
    Issue,
    jira_time,
)

if TYPE_CHECKING:
    from atlasflow.sandbox.jira.site import JiraSite


def build_demo(site: JiraSite) -> None:
    """Fill the empty ``site`` with the demo data described in the module docstring (under ``site.lock``)."""
    _DemoBuilder(site).build()


def build_tree(site: JiraSite, project: str, seed: int, sizes: list[int]) -> None:
    """Fill the empty ``site`` with a :meth:`JiraSite.generated` tree: ``sizes[n]`` issues on level ``n``."""
    _TreeBuilder(site, project, seed).build(sizes)


def _add_people(site: JiraSite) -> list[str]:
    """The accounts' users plus the demo team; returns the assignable usernames."""
    site.add_user("demo@example.com", "Demo Admin", email="demo@example.com")
    site.add_user("viewer@example.com", "Vera Viewer", email="viewer@example.com")
    team = [("alice", "Alice Anders"), ("bob", "Bob Brandt"), ("carol", "Carol Chen")]
    team += [("dave", "Dave Dubois"), ("erin", "Erin Eriksen")]
    for name, display in team:
        site.add_user(name, display)
    site.add_user("frank", "Frank Former", active=False)
    return [name for name, _ in team]


def level_sizes(total: int, depth: int, fanout: int | None) -> list[int]:
    """Issues per level (level 0 = the root) summing to ``total`` (or less for a small full tree)."""
    if fanout is not None:
        sizes, left = [], total
        for level in range(depth + 1):
            size = min(fanout**level, left)
            if size == 0:
                break
            sizes.append(size)
            left -= size
        return sizes
    if depth == 0 or total <= depth + 1:
        return [1] * min(total, depth + 1)
    low, high = 1.0, float(total)
    for _ in range(100):  # bisection for the ratio r with 1 + r + ... + r^depth = total
        mid = (low + high) / 2
        low, high = (mid, high) if sum(mid**i for i in range(depth + 1)) < total else (low, mid)
    sizes = [max(1, round(low**level)) for level in range(depth)]
    while total - sum(sizes) < 1:  # rounding overshot: take from the widest level above
        sizes[sizes.index(max(sizes[1:]))] -= 1
    sizes.append(total - sum(sizes))
    return sizes


_WORDS = (
    "billing", "search", "login", "export", "cache", "invoice", "report", "sync", "upload", "queue",
    "profile", "audit", "metrics", "webhook", "schema", "import", "backup", "alerting", "quota", "badge",
)  # fmt: skip


class _TreeBuilder:
    """Builds :meth:`JiraSite.generated` trees."""

    def __init__(self, site: JiraSite, project: str, seed: int) -> None:
        self.site = site
        self.project = project.upper()
        self.rng = random.Random(seed)

    def build(self, sizes: list[int]) -> None:
        site = self.site
        people = _add_people(site)
        site.add_project(self.project, f"{self.project.title()} generated tree")
        team_id, points_id = site.custom_id("Team"), site.custom_id("Story Points")
        teams = list(TEAM_OPTIONS)
        rng, index = self.rng, 0
        root = site.add_record(self.project, "Epic", "Generated root epic", index, status="In Progress")
        if site.mode == "datacenter":
            root.custom[EPIC_NAME_FIELD] = root.summary
        previous, levels = [root.key], [[root.key]]
        for level, size in enumerate(sizes[1:], start=1):
            itype = "Story" if level == 1 else "Sub-task"
            current: list[str] = []
            for n in range(size):
                index += 1
                parent_key = previous[n % len(previous)]
                hierarchy = {"epic": parent_key} if level == 1 and site.mode == "datacenter" else {}
                issue = site.add_record(
                    self.project,
                    itype,
                    f"L{level} {rng.choice(_WORDS)} {rng.choice(_WORDS)} #{n + 1}",
                    index,
                    status=STATUSES[rng.randrange(3)].name,
                    assignee=people[index % 6] if index % 6 < len(people) else None,
                    parent=None if hierarchy else parent_key,
                    **hierarchy,
                )
                if level == 1:
                    issue.custom[points_id] = (1, 2, 3, 5, 8)[index % 5]
                    issue.custom[team_id] = teams[index % 3]
                current.append(issue.key)
            levels.append(current)
            previous = current
        self._links(levels)

    def _links(self, levels: list[list[str]]) -> None:
        """A blocks-cycle among the first stories and a few random links across the tree."""
        site = self.site
        if len(levels) > 1 and len(levels[1]) >= 3:
            a, b, c = levels[1][:3]
            for source, target in ((a, b), (b, c), (c, a)):
                site.link_issues(source, target, "Blocks")
        everything = [key for level in levels for key in level]
        for _ in range(min(50, len(everything) // 500)):
            source, target = self.rng.sample(everything, 2)
            site.link_issues(source, target, self.rng.choice(("Blocks", "Relates")))


_SPECIAL_SUMMARIES = (
    '=HYPERLINK("http://evil","x")',
    "+1+1",
    "-2",
    "@SUM(A1)",
    "<script>alert(1)</script>",
    "<b>bold</b> & co",
    "@channel please look",
    "@all hands: release checklist",
    "@here deploy now",
    "Ünïcödé café, naïve façade",
    "日本語の要約テキスト",
    "Deploy 🚀 and celebrate 🎉",
    ("Very long summary " + "lorem ipsum dolor sit amet " * 12)[:SUMMARY_MAX],
    "Quote \"double\", 'single', back\\slash; semi;colon",
)
_EPICS = (
    ("Checkout revamp 🛒", 8),
    ("Search relevance", 7),
    ("Mobile onboarding", 9),
    ("Billing migration", 6),
    ("Reporting dashboards", 8),
    ("Accessibility audit", 7),
    ("Data retention", 9),
    ("Partner API v2", 6),
)
_OPS_TASKS = (
    ("Rotate TLS certificates", 3),
    ("Upgrade PostgreSQL to 16", 0),
    ("Clean up stale feature flags", 0),
    ("Archive old build artifacts", 0),
    ("Patch base images", 2),
    ("Review on-call runbooks", 0),
    ("Renew domain registrations", 0),
    ("Tune alert thresholds", 0),
    ("Reindex search cluster", 1),
    ("Prune unused IAM roles", 0),
    ("Verify backups restore", 0),
    ("Update dependency pins", 0),
    ("Cost report for Q1", 0),
    ("Decommission legacy VPN", 0),
)


class _DemoBuilder:
    """Builds :meth:`JiraSite.demo` (see the module docstring for the resulting keys)."""

    def __init__(self, site: JiraSite) -> None:
        self.site = site
        self.index = 0
        self.people: list[str] = []
        self.specials = list(_SPECIAL_SUMMARIES)

    def build(self) -> None:
        site = self.site
        self.people = _add_people(site)
        site.add_project("DEMO", "Demo project")
        site.add_project("OPS", "Operations")
        site.add_project("EMPTY", "Empty project")
        site.add_project("SECRET", "Secret project", browsers=frozenset({"demo@example.com"}))
        for number, (summary, stories) in enumerate(_EPICS):
            self._epic(number, summary, stories)
        self._standalone()
        self._ops()
        self._secret()
        for source, target, kind in (
            ("DEMO-2", "DEMO-4", "Blocks"),
            ("DEMO-4", "DEMO-7", "Blocks"),
            ("DEMO-7", "DEMO-2", "Blocks"),
            ("DEMO-1", "DEMO-223", "Relates"),
            ("DEMO-31", "DEMO-16", "Blocks"),
            ("DEMO-292", "DEMO-283", "Duplicate"),
            ("DEMO-11", "OPS-1", "Relates"),
            ("DEMO-16", "SECRET-2", "Blocks"),
        ):
            site.link_issues(source, target, kind)

    def _next(self, project: str, itype: str, summary: str, **attrs: Any) -> Issue:
        self.index += 1
        i = self.index
        attrs.setdefault("assignee", None if i % 6 == 5 else ("frank" if i % 41 == 0 else self.people[i % 5]))
        if itype == "Sub-task" and i % 9 == 0:
            attrs.setdefault("priority", None)
        return self.site.add_record(project, itype, summary, i, **attrs)

    def _special_or(self, default: str) -> str:
        return self.specials.pop(0) if self.specials else default

    def _epic(self, number: int, summary: str, stories: int) -> None:
        site = self.site
        epic = self._next("DEMO", "Epic", summary, status="In Progress", labels=["roadmap"])
        epic.custom[site.custom_id("Target Date")] = f"2026-{number + 2:02d}-28"
        epic.custom[site.custom_id("Team")] = list(TEAM_OPTIONS)[number % 3]
        epic.description = f"Epic {number + 1}: {summary}.\n\nGoal: ship it."
        if site.mode == "datacenter":
            epic.custom[EPIC_NAME_FIELD] = summary
        for j in range(stories):
            self._story(epic, number, j)

    def _story(self, epic: Issue, number: int, j: int) -> None:
        site = self.site
        in_first = number == 0
        summary = self._special_or(f"Story {j + 1}") if in_first else f"{epic.summary}: story {j + 1}"
        hierarchy = {"epic": epic.key} if site.mode == "datacenter" else {"parent": epic.key}
        story = self._next(
            "DEMO", "Story", summary, labels=[["backend"], ["frontend", "ux"], []][j % 3], **hierarchy
        )
        story.description = self._description(story.summary)
        story.custom[site.custom_id("Story Points")] = (1, 2, 3, 5, 8, 13)[j % 6]
        story.custom[site.custom_id("Team")] = list(TEAM_OPTIONS)[(number + j) % 3]
        story.custom[site.custom_id("Sprint")] = [
            sp.id for sp in SPRINTS[(number + j) % 3 : (number + j) % 3 + 1 + j % 2]
        ]
        _story_details(site, story, number, j, self.people)
        for k in range(1 + (number + j) % 4):
            default = f"{story.summary[:40]} / step {k + 1}" if not in_first else f"Step {k + 1}"
            self._subtask("DEMO", self._special_or(default) if in_first else default, story)

    @staticmethod
    def _description(summary: str) -> str:
        if len(summary) == SUMMARY_MAX:
            return "A very long description. " * 80
        return f"Details for: {summary}\n\nAcceptance criteria:\n- it works\n- it is tested"

    def _subtask(self, project: str, summary: str, parent: Issue) -> Issue:
        sub = self._next(project, "Sub-task", summary, parent=parent.key)
        if len(summary) == SUMMARY_MAX:
            sub.description = self._description(summary)
        return sub

    def _standalone(self) -> None:
        for t in range(50):
            is_bug = t >= 40
            summary = (
                f"Bug: {_WORDS[t % 20]} fails on retry" if is_bug else f"Task: tidy {_WORDS[t % 20]} module"
            )
            issue = self._next("DEMO", "Bug" if is_bug else "Task", summary)
            if not is_bug and t % 4 == 0:
                for k in range(2):
                    self._subtask("DEMO", f"{summary} / part {k + 1}", issue)

    def _ops(self) -> None:
        for summary, subtasks in _OPS_TASKS:
            task = self._next("OPS", "Task", summary, labels=["maintenance"])
            for k in range(subtasks):
                self._subtask("OPS", f"{summary}: step {k + 1}", task)

    def _secret(self) -> None:
        site = self.site
        epic = self._next("SECRET", "Epic", "Acquisition due diligence", assignee="demo@example.com")
        if site.mode == "datacenter":
            epic.custom[EPIC_NAME_FIELD] = epic.summary
        hierarchy = {"epic": epic.key} if site.mode == "datacenter" else {"parent": epic.key}
        story = self._next("SECRET", "Story", "Review target's contracts", **hierarchy)
        self._subtask("SECRET", "Summarise liabilities", story)
        self._next("SECRET", "Task", "Board memo draft")
        self._next("SECRET", "Task", "Legal sign-off")


def _story_details(site: JiraSite, story: Issue, number: int, j: int, people: list[str]) -> None:
    """Every other field type on a demo story, deterministic by its epic ``number`` and place ``j``."""
    n = number + j
    custom = story.custom
    custom[site.custom_id("Customer")] = ("ACME Corp", "Globex", "Initech")[n % 3]
    custom[site.custom_id("Platforms")] = [list(PLATFORM_OPTIONS)[k] for k in range(1 + n % 3)]
    region = list(REGION_OPTIONS)[n % 2]
    custom[site.custom_id("Region")] = [region, list(REGION_OPTIONS[region][1])[j % 2] if n % 4 else None]
    custom[site.custom_id("Reviewers")] = [people[n % 5], people[(n + 2) % 5]]
    custom[site.custom_id("QA Owner")] = people[(n + 1) % 5]
    custom[site.custom_id("Owning Group")] = GROUPS[n % 3]
    custom[site.custom_id("Spec URL")] = f"https://wiki.example.com/spec/{story.key}?v={n}"
    custom[site.custom_id("Go-live")] = jira_time(BASE_TIME + timedelta(days=30 + n, hours=n % 8))
    custom[site.custom_id("Release Notes")] = f"Release note for {story.key}\n\n* faster\n* safer"
    created = BASE_TIME + timedelta(days=n % 5)
    done = story.status == "Done"
    story.details.update(
        fixVersions=[VERSIONS[n % 3][1]] if n % 4 else [VERSIONS[0][1], VERSIONS[1][1]],
        versions=[VERSIONS[0][1]] if j % 3 == 0 else [],
        components=[list(COMPONENTS)[n % 3]],
        duedate=f"2026-{1 + n % 12:02d}-{10 + j:02d}",
        resolution="Done" if done else None,
        environment="Chrome 131 on macOS 15\nprod cluster eu-1" if j % 2 == 0 else None,
        security="Staff only" if n % 7 == 3 else None,
        timetracking=(8 * 3600 * (1 + j), 4 * 3600 * (j % 3), 3600 * (2 + n % 5)),
        votes=n % 4,
        watches=1 + n % 3,
        comment=[
            (people[n % 5], f"Looks good to me, see {story.key}.", jira_time(created + timedelta(hours=1))),
            (people[(n + 1) % 5], "Merged 🚀 — thanks!", jira_time(created + timedelta(hours=5))),
        ][: j % 3],
        worklog=[(people[n % 5], jira_time(created + timedelta(hours=2)), 3600 * (2 + n % 5), "pairing")],
        attachment=[("trace.log", 2048, "text/plain", people[n % 5], jira_time(created))] if j % 2 else [],
    )
