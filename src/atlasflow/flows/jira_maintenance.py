"""Jira maintenance jobs: permission checks, bulk field updates and guarded deletes, with dry runs.

Rules the writing jobs (``jira-bulk-update``, ``jira-delete-issues``) share:

* ``dry_run=True`` is the default: they read, publish what they would do, and write nothing.
* They write only the issues one search listed before the first write (by key; the JQL is not re-run).
* Every guard is checked before the first write, so a refusal never leaves a job half done.
* One issue failing (403, 400, ...) does not stop the others. When any issue failed, the run ends
  **Failed** after the rest were done; the message names each failed issue, and the result artifact
  lists the outcome of every issue.
* A transient failure that outlived the client's own retries stops the apply task; Prefect retries the
  task, which resumes after the issues already handled (nothing is written twice).

Artifacts (keys are stable, so ``prefect artifact inspect <key>`` shows the latest runs):
``jira-permissions-check``, ``jira-bulk-update-plan``, ``jira-bulk-update-result``,
``jira-delete-issues-plan``, ``jira-delete-issues-result``. Jira text in them is shortened to one line
with ``\\`` and ``|`` escaped, so it cannot break the Markdown table it is shown in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from atlasflow.blocks import jira_client
from atlasflow.clients.jira import JiraClient
from atlasflow.errors import ApiError, ConfigurationError, JobFailed, TransientError
from atlasflow.formats.jira_values import name_of
from atlasflow.formats.messages import inert
from atlasflow.runtime.failures import one_line_failures
from atlasflow.runtime.hooks import job_hooks
from atlasflow.runtime.tasks import remote_task

#: At most this many rows go into one table artifact (the result still counts every issue).
ARTIFACT_ROWS = 1000
#: Characters of one Jira value shown in an artifact cell.
CELL_CHARS = 200
#: Issues named in a failure message (the result artifact names all of them).
NAMED_IN_MESSAGE = 20


class JobRefused(JobFailed):
    """A guard refused the job before anything was written."""


class MissingPermissions(JobFailed):
    """The account lacks one or more of the permissions a permission check requires."""


class IssuesFailed(JobFailed):
    """Some issues could not be changed; the others were. ``result`` holds the counts and the errors."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


class IssueOutcomes:
    """The outcome per issue key, shared with an apply task so that a retried task resumes.

    A plain class on purpose: Prefect passes it to the task as is (collections may be copied).
    """

    def __init__(self) -> None:
        self.outcome: dict[str, str] = {}  # key -> updated | deleted | skipped | failed
        self.detail: dict[str, str] = {}

    def record(self, key: str, outcome: str, detail: str = "") -> None:
        self.outcome[key] = outcome
        self.detail[key] = detail

    def handled(self, key: str) -> bool:
        return key in self.outcome

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcome.values() if o == outcome)

    def errors(self) -> dict[str, str]:
        return {k: self.detail[k] for k, o in self.outcome.items() if o == "failed"}


# ------------------------------------------------------------------------------------ bulk update plan


@dataclass
class Change:
    """The fields one issue gets (only those whose value differs)."""

    key: str
    fields: dict[str, Any]


@dataclass
class UpdatePlan:
    changes: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)


def _wanted_values(fields: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    """Field id -> value; two names for one field are refused (which value would win?)."""
    wanted: dict[str, Any] = {}
    given: dict[str, str] = {}
    for name, value in fields.items():
        fid = ids[name]
        if fid in wanted:
            raise ConfigurationError(f"{given[fid]!r} and {name!r} are the same field ({fid}); give it once")
        wanted[fid], given[fid] = value, name
    return wanted


def plan_updates(issues: list[dict[str, Any]], wanted: dict[str, Any], labels: dict[str, str]) -> UpdatePlan:
    """Which issues need which fields changed, and a before/after row per issue and field."""
    plan = UpdatePlan()
    for issue in issues:
        key = str(issue["key"])
        current = issue.get("fields") or {}
        diff = {fid: value for fid, value in wanted.items() if not same_value(current.get(fid), value)}
        for fid, value in wanted.items():
            plan.rows.append(
                {
                    "key": key,
                    "field": labels.get(fid, fid),
                    "before": cell(current.get(fid)),
                    "after": cell(value),
                    "action": "update" if fid in diff else "none (already set)",
                }
            )
        if diff:
            plan.changes.append(Change(key, diff))
        else:
            plan.unchanged.append(key)
    return plan


def same_value(current: Any, wanted: Any) -> bool:
    """Whether ``current`` (as Jira returns it) already holds ``wanted`` (as one would send it).

    Dicts match when every key asked for has the same value (``{"name": "High"}`` matches Jira's whole
    priority object); lists element by element, in order; anything else by equality. When unsure,
    the answer is no, and the value is written.
    """
    if isinstance(wanted, dict):
        return isinstance(current, dict) and all(same_value(current.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return (
            isinstance(current, list)
            and len(current) == len(wanted)
            and all(same_value(c, w) for c, w in zip(current, wanted, strict=True))
        )
    if isinstance(wanted, bool) or isinstance(current, bool):
        return current is wanted
    return bool(current == wanted)


# ----------------------------------------------------------------------------------------- delete plan


@dataclass
class DeletePlan:
    """The matched issues, their sub-tasks, and the order to delete them in."""

    issues: list[dict[str, Any]]
    order: list[str]
    subtasks: dict[str, list[str]]  # matched key -> every sub-task key (matched or not)

    @property
    def matched(self) -> int:
        return len(self.issues)

    def matched_below(self, key: str) -> list[str]:
        """Matched issues below ``key`` through sub-task links (which Jira deletes with it)."""
        matched = set(self.subtasks)
        below: list[str] = []
        frontier = [key]
        while frontier:
            kids = [s for k in frontier for s in self.subtasks.get(k, []) if s in matched and s not in below]
            below.extend(kids)
            frontier = kids
        return below

    def outside(self) -> dict[str, list[str]]:
        """Matched issue -> its sub-tasks the JQL does not match (only issues that have such)."""
        matched = set(self.subtasks)
        found = {k: [s for s in subs if s not in matched] for k, subs in self.subtasks.items()}
        return {k: subs for k, subs in found.items() if subs}

    def extra_subtasks(self, deleted: Iterable[str] | None = None) -> int:
        """Sub-tasks outside the match belonging to matched issues (of ``deleted`` ones, if given)."""
        outside = self.outside()
        keys = outside if deleted is None else [k for k in deleted if k in outside]
        return sum(len(outside[k]) for k in keys)

    def refusals(self, confirm_count: int, *, delete_subtasks: bool) -> list[str]:
        reasons = []
        if confirm_count != self.matched:
            reasons.append(
                f"the JQL matches {self.matched} issue(s) but confirm_count is {confirm_count} (check "
                f"the list a dry run shows, then pass confirm_count={self.matched})"
            )
        outside = self.outside()
        if outside and not delete_subtasks:
            named = "; ".join(f"{k} (sub-tasks {', '.join(subs)})" for k, subs in list(outside.items())[:20])
            more = f" and {len(outside) - 20} more" if len(outside) > 20 else ""
            reasons.append(
                f"{len(outside)} issue(s) have sub-tasks the JQL does not match, which Jira would delete "
                f"with them: {named}{more} (pass delete_subtasks=True to delete those sub-tasks too, or "
                "match them as well)"
            )
        return reasons

    def rows(self, *, delete_subtasks: bool) -> list[dict[str, str]]:
        outside = self.outside()
        parent_of = {s: k for k, subs in self.subtasks.items() for s in subs}
        rows = []
        for issue in self.issues:
            key = str(issue["key"])
            fields = issue.get("fields") or {}
            note = ""
            if key in outside:
                what = "its sub-tasks go too" if delete_subtasks else "refused: sub-tasks outside the match"
                note = f"{what}: {', '.join(outside[key])}"
            elif delete_subtasks and parent_of.get(key) in self.subtasks:
                note = f"goes with {parent_of[key]}"
            rows.append(
                {
                    "key": key,
                    "summary": cell(fields.get("summary")),
                    "type": cell((fields.get("issuetype") or {}).get("name")),
                    "sub-tasks": str(len(self.subtasks.get(key, []))),
                    "note": cell(note),
                }
            )
        return rows


def plan_deletes(issues: list[dict[str, Any]], *, delete_subtasks: bool) -> DeletePlan:
    """The deletion order: parents first when Jira deletes their sub-tasks with them, else sub-tasks first."""
    subtasks = {str(i["key"]): [str(s["key"]) for s in (i.get("fields") or {}).get("subtasks") or []] for i in issues}
    parent_of = {s: k for k, subs in subtasks.items() for s in subs if s in subtasks}

    def depth(key: str) -> int:
        seen = {key}
        level = 0
        while (up := parent_of.get(key)) is not None and up not in seen:
            seen.add(up)
            key, level = up, level + 1
        return level

    keys = list(subtasks)
    order = sorted(keys, key=depth) if delete_subtasks else sorted(keys, key=depth, reverse=True)
    return DeletePlan(issues=issues, order=order, subtasks=subtasks)


# --------------------------------------------------------------------------------------------- tasks


@remote_task(timeout_seconds=300)
def read_permissions(client: JiraClient, project_key: str, permissions: list[str]) -> tuple[str, dict[str, bool]]:
    """(display name of the account, permission -> granted) in one project."""
    granted = client.my_permissions(project_key, permissions)
    me = client.myself()
    name = me.get("displayName") or me.get("name") or me.get("emailAddress") or me.get("accountId") or "?"
    return str(name), granted


@remote_task(timeout_seconds=900)
def search_issues(client: JiraClient, jql: str, fields: list[str]) -> list[dict[str, Any]]:
    """Every issue the JQL matches (each key once, in the search's order), with the given fields."""
    found: dict[str, dict[str, Any]] = {}
    for issue in client.search(jql, fields):
        found.setdefault(str(issue["key"]), issue)
    return list(found.values())


@remote_task(timeout_seconds=1800, retry_delay_seconds=30)
def apply_updates(client: JiraClient, changes: list[Change], notify_users: bool, outcomes: IssueOutcomes) -> None:
    """PUT each change; per-issue errors are recorded, a transient failure stops the task (to be retried)."""
    logger = get_run_logger()
    for change in changes:
        if outcomes.handled(change.key):
            continue
        try:
            client.update_issue(change.key, change.fields, notify_users=notify_users)
        except TransientError:
            raise
        except ApiError as exc:
            outcomes.record(change.key, "failed", _reason(exc))
            logger.warning("%s not updated: %s", change.key, _reason(exc))
        else:
            outcomes.record(change.key, "updated")


@remote_task(timeout_seconds=1800, retry_delay_seconds=30)
def apply_deletes(client: JiraClient, plan: DeletePlan, delete_subtasks: bool, outcomes: IssueOutcomes) -> None:
    """DELETE each issue in plan order; per-issue errors are recorded, a transient failure stops the task."""
    logger = get_run_logger()
    for key in plan.order:
        if outcomes.handled(key):
            continue
        try:
            client.delete_issue(key, delete_subtasks=delete_subtasks)
        except TransientError:
            raise
        except ApiError as exc:
            if exc.status == 404:
                outcomes.record(key, "skipped", "already gone (404)")
            else:
                outcomes.record(key, "failed", _reason(exc))
                logger.warning("%s not deleted: %s", key, _reason(exc))
            continue
        outcomes.record(key, "deleted")
        if delete_subtasks:  # matched sub-tasks went with it: no request for them, no 404
            for sub in plan.matched_below(key):
                if not outcomes.handled(sub):
                    outcomes.record(sub, "deleted", f"with {key}")


# --------------------------------------------------------------------------------------------- flows


@flow(name="jira-permissions-check", **job_hooks())
@one_line_failures
def jira_permissions_check(project_key: str, permissions: list[str], jira_block: str = "jira") -> dict[str, Any]:
    """Check what the configured Jira account may do in a project; fail if a required permission is missing.

    Args:
        project_key: The project, e.g. ``OPS``.
        permissions: Jira permission keys that are all required, e.g.
            ``["BROWSE_PROJECTS", "EDIT_ISSUES", "DELETE_ISSUES"]``.
        jira_block: Name of a saved ``JiraCredentials`` block.

    Returns:
        ``{"project": key, "account": display name, "permissions": {permission: granted}}``.

    Raises:
        MissingPermissions: Naming each missing permission (after the table artifact is published).

    Example:
        ```python
        jira_permissions_check("OPS", ["BROWSE_PROJECTS", "EDIT_ISSUES"])
        ```
    """
    wanted = list(dict.fromkeys(p.strip().upper() for p in permissions if p.strip()))
    project = project_key.strip().upper()
    if not wanted:
        raise ConfigurationError("give at least one permission key, e.g. BROWSE_PROJECTS")
    if not project:
        raise ConfigurationError("give a project key")
    client = jira_client(jira_block)
    try:
        account, granted = read_permissions(client, project, wanted)
    finally:
        client.close()
    missing = [p for p in wanted if not granted.get(p)]
    verdict = f"missing {', '.join(missing)}" if missing else "all granted"
    create_table_artifact(
        [{"permission": p, "granted": "yes" if granted.get(p) else "no"} for p in wanted],
        key="jira-permissions-check",
        description=f"Permissions of {inert(account, 80)} in {inert(project, 40)}: {verdict}",
    )
    if missing:
        raise MissingPermissions(
            f"{account} lacks {len(missing)} required permission(s) in project {project}: " + ", ".join(missing)
        )
    get_run_logger().info("%s holds all %d permission(s) in %s", account, len(wanted), project)
    return {"project": project, "account": account, "permissions": {p: bool(granted.get(p)) for p in wanted}}


@flow(name="jira-bulk-update", **job_hooks())
@one_line_failures
def jira_bulk_update(
    jql: str,
    fields: dict[str, Any],
    dry_run: bool = True,
    max_issues: int = 100,
    notify_users: bool = False,
    jira_block: str = "jira",
) -> dict[str, Any]:
    """Set fields on every issue a JQL query matches; a dry run (the default) only shows before/after.

    Values are Jira REST field values, sent as they are (``PUT .../issue/{key}`` with ``{"fields": ...}``)
    for the API the site speaks (Cloud: v3, Data Center: v2). For example: text and numbers plain
    (``{"Story Points": 5}``); ``{"name": "High"}`` for priority; ``{"value": "Platform"}`` for a select
    list; ``{"accountId": "..."}`` (Cloud) or ``{"name": "jdoe"}`` (Data Center) for a user; a list of
    strings for labels; ``None`` to clear. Cloud's rich-text fields (``description``) take an Atlassian
    Document (``{"type": "doc", "version": 1, "content": [...]}``), Data Center's take a string.

    An issue that already holds every requested value (the value asked for is contained in the current
    one: ``{"name": "High"}`` matches a priority named High) is skipped: no write, no notification.

    Guards: a real run refuses to start, writing nothing, when more than ``max_issues`` issues would
    change; it never writes more than ``max_issues`` issues. Issues failing one by one (403, 400) are
    collected while the others are updated, and the run then ends Failed naming them.

    Args:
        jql: Which issues. Must not be empty.
        fields: Field id, key or display name (``"Story Points"``) -> Jira REST value.
        dry_run: Only publish the before/after table; write nothing.
        max_issues: The most issues a real run may change.
        notify_users: Send Jira's update e-mails to watchers (Jira may require admin rights to turn
            them off; without them it sends anyway or refuses, depending on the site).
        jira_block: Name of a saved ``JiraCredentials`` block.

    Returns:
        ``dry_run``, ``matched`` (issues found), ``to_update`` (issues needing a change), ``updated``,
        ``failed``, ``skipped`` (already holding the values), ``not_attempted`` (0 unless a transient
        failure stopped the run), ``errors`` (key -> message) and, for dry runs, ``would_refuse``
        (why a real run would refuse, or ``None``). A failed run raises :class:`IssuesFailed`, whose
        ``result`` holds the same dict.

    Example:
        ```python
        jira_bulk_update("project = OPS AND priority = Low", {"priority": {"name": "Medium"}}, dry_run=False)
        ```
    """
    logger = get_run_logger()
    if not jql.strip():
        raise ConfigurationError("jql must not be empty (an empty query matches every issue)")
    if not fields:
        raise ConfigurationError("give at least one field to set")
    if max_issues < 1:
        raise ConfigurationError("max_issues must be at least 1")
    client = jira_client(jira_block)
    try:
        ids = client.resolve_fields(fields)
        wanted = _wanted_values(fields, ids)
        labels = {fid: (name if name == fid else f"{name} ({fid})") for name, fid in ids.items()}
        issues = search_issues(client, jql, list(wanted))
        plan = plan_updates(issues, wanted, labels)
        refusal = None
        if len(plan.changes) > max_issues:
            refusal = (
                f"{len(plan.changes)} issues would change, more than max_issues={max_issues}; narrow the JQL "
                "or raise max_issues"
            )
        mode = "dry run" if dry_run else "real run"
        _publish_rows(
            plan.rows,
            key="jira-bulk-update-plan",
            summary=f"Bulk update plan ({mode}) for {code(jql)}: {len(issues)} matched, "
            f"{len(plan.changes)} to update, {len(plan.unchanged)} already set" + _refusal_note(refusal, dry_run),
        )
        logger.info(
            "%d issue(s) match; %d to update, %d already set",
            len(issues),
            len(plan.changes),
            len(plan.unchanged),
        )
        result: dict[str, Any] = {
            "dry_run": dry_run,
            "matched": len(issues),
            "to_update": len(plan.changes),
            "updated": 0,
            "failed": 0,
            "skipped": len(plan.unchanged),
            "not_attempted": 0,
            "errors": {},
        }
        if dry_run:
            result["would_refuse"] = refusal
            logger.info("dry run: nothing written%s", f"; a real run would refuse: {refusal}" if refusal else "")
            return result
        if refusal:
            raise JobRefused(f"Nothing was updated: {refusal}.")
        outcomes = IssueOutcomes()
        for key in plan.unchanged:
            outcomes.record(key, "skipped", "already set")
        stopped: TransientError | None = None
        try:
            apply_updates(client, plan.changes, notify_users, outcomes)
        except TransientError as exc:
            stopped = exc
    finally:
        client.close()
    result.update(updated=outcomes.count("updated"), failed=outcomes.count("failed"), errors=outcomes.errors())
    result["not_attempted"] = len(issues) - len(outcomes.outcome)
    _publish_outcomes(
        [i["key"] for i in issues],
        outcomes,
        key="jira-bulk-update-result",
        summary=f"Bulk update result for {code(jql)}: {_figures(result, 'updated')}",
    )
    _finish(result, stopped, verb="update", done="updated")
    return result


@flow(name="jira-delete-issues", **job_hooks())
@one_line_failures
def jira_delete_issues(
    jql: str,
    confirm_count: int,
    dry_run: bool = True,
    delete_subtasks: bool = False,
    jira_block: str = "jira",
) -> dict[str, Any]:
    """Delete the issues a JQL query matches, only when told exactly how many there are.

    Guards, all checked before the first deletion (a refusal deletes nothing):

    * a dry run (the default) deletes nothing; it lists what would go (key, summary, type, sub-tasks);
    * ``confirm_count`` must equal the number of issues the JQL matches, counted by a full search (not
      Jira's approximate count);
    * an issue with sub-tasks that the JQL does not match is refused unless ``delete_subtasks``: those
      sub-tasks would go with it unconfirmed. Sub-tasks that are matched too are confirmed: without
      ``delete_subtasks`` they are deleted before their parent; with it, the parent is deleted first
      (with its sub-tasks) and the matched sub-tasks are counted as deleted with it (no 404).

    Only the keys the search listed are deleted. Per-issue failures are collected like the bulk update's,
    and the run then ends Failed naming them; an issue already gone (404) is counted as skipped.

    Args:
        jql: Which issues. Must not be empty.
        confirm_count: How many issues you expect the JQL to match (see a dry run's ``matched``).
        dry_run: Only list what would be deleted.
        delete_subtasks: Also delete sub-tasks the JQL does not match (Jira's ``deleteSubtasks``).
        jira_block: Name of a saved ``JiraCredentials`` block.

    Returns:
        ``dry_run``, ``matched``, ``deleted`` (matched issues deleted, sub-tasks deleted with a matched
        parent included), ``failed``, ``skipped`` (already gone), ``not_attempted``,
        ``extra_subtasks`` (sub-tasks outside the match deleted, or for a dry run that would be deleted,
        with their parents), ``errors`` (key -> message) and, for dry runs, ``would_refuse``. A failed
        run raises :class:`IssuesFailed` carrying the same dict as ``result``.

    Example:
        ```python
        jira_delete_issues("project = OPS AND status = Done", confirm_count=7, dry_run=False)
        ```
    """
    logger = get_run_logger()
    if not jql.strip():
        raise ConfigurationError("jql must not be empty (an empty query matches every issue)")
    if confirm_count < 0:
        raise ConfigurationError("confirm_count must be >= 0")
    client = jira_client(jira_block)
    try:
        issues = search_issues(client, jql, ["summary", "issuetype", "subtasks"])
        plan = plan_deletes(issues, delete_subtasks=delete_subtasks)
        refusals = plan.refusals(confirm_count, delete_subtasks=delete_subtasks)
        refusal = "; ".join(refusals) if refusals else None
        mode = "dry run" if dry_run else "real run"
        _publish_rows(
            plan.rows(delete_subtasks=delete_subtasks),
            key="jira-delete-issues-plan",
            summary=f"Delete plan ({mode}) for {code(jql)}: {plan.matched} matched, "
            f"{plan.extra_subtasks()} sub-task(s) outside the match" + _refusal_note(refusal, dry_run),
        )
        logger.info("%d issue(s) match, with %d sub-task(s) outside the match", plan.matched, plan.extra_subtasks())
        result: dict[str, Any] = {
            "dry_run": dry_run,
            "matched": plan.matched,
            "deleted": 0,
            "failed": 0,
            "skipped": 0,
            "not_attempted": 0,
            "extra_subtasks": plan.extra_subtasks() if delete_subtasks else 0,
            "errors": {},
        }
        if dry_run:
            result["would_refuse"] = refusal
            logger.info("dry run: nothing deleted%s", f"; a real run would refuse: {refusal}" if refusal else "")
            return result
        if refusal:
            raise JobRefused(f"Nothing was deleted: {refusal}.")
        outcomes = IssueOutcomes()
        stopped: TransientError | None = None
        try:
            apply_deletes(client, plan, delete_subtasks, outcomes)
        except TransientError as exc:
            stopped = exc
    finally:
        client.close()
    result.update(
        deleted=outcomes.count("deleted"),
        failed=outcomes.count("failed"),
        skipped=outcomes.count("skipped"),
        errors=outcomes.errors(),
        not_attempted=plan.matched - len(outcomes.outcome),
        extra_subtasks=plan.extra_subtasks(deleted=[k for k, o in outcomes.outcome.items() if o == "deleted"])
        if delete_subtasks
        else 0,
    )
    _publish_outcomes(
        plan.order,
        outcomes,
        key="jira-delete-issues-result",
        summary=f"Delete result for {code(jql)}: {_figures(result, 'deleted')}",
    )
    _finish(result, stopped, verb="deletion", done="deleted")
    return result


# ---------------------------------------------------------------------------------------------- output


def cell(value: Any, limit: int = CELL_CHARS) -> str:
    """A Jira value as one line of table-cell text: shortened, line breaks as ⏎, ``\\`` and ``|`` escaped."""
    text = display(value)
    text = re.sub(r"\r\n|\r|\n", " ⏎ ", text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|")


def display(value: Any) -> str:
    """A human reading of a Jira field value (names of objects, text of Atlassian Documents)."""
    if value is None:
        return "(empty)"
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, list):
        return ", ".join(display(v) for v in value) if value else "(empty)"
    if isinstance(value, dict):
        return name_of(value).strip() or "(empty)"
    return str(value)


def _reason(exc: ApiError) -> str:
    return f"{exc.status}: {exc.detail}" if exc.status else str(exc)


def code(text: str, limit: int = 200) -> str:
    """User text (a JQL query) as a one-line Markdown code span: shown as typed, never as markup."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    fence = "`" * (max((len(m) for m in re.findall(r"`+", flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def _refusal_note(refusal: str | None, dry_run: bool) -> str:
    if not refusal:
        return ""
    return f"; a real run would refuse: {refusal}" if dry_run else f"; refused: {refusal}"


def _figures(result: dict[str, Any], done: str) -> str:
    text = f"{result[done]} {done}, {result['failed']} failed, {result['skipped']} skipped"
    return text + (f", {result['not_attempted']} not attempted" if result["not_attempted"] else "")


def _publish_rows(rows: list[dict[str, str]], *, key: str, summary: str) -> None:
    if len(rows) > ARTIFACT_ROWS:
        summary += f" (table: first {ARTIFACT_ROWS} of {len(rows)} rows)"
    if not rows:
        rows = [{"key": "", "note": "no issue matched"}]
    create_table_artifact(rows[:ARTIFACT_ROWS], key=key, description=summary)


def _publish_outcomes(keys: list[str], outcomes: IssueOutcomes, *, key: str, summary: str) -> None:
    rows = [
        {
            "key": k,
            "outcome": outcomes.outcome.get(k, "not attempted"),
            "detail": cell(outcomes.detail.get(k, ""), 500),
        }
        for k in keys
    ]
    _publish_rows(rows, key=key, summary=summary)


def _finish(result: dict[str, Any], stopped: TransientError | None, *, verb: str, done: str) -> None:
    """Raise :class:`IssuesFailed` (the run ends Failed) if any issue failed or was not attempted."""
    errors: dict[str, str] = result["errors"]
    if not errors and stopped is None:
        return
    parts = []
    if errors:
        named = "; ".join(f"{k}: {m}" for k, m in list(errors.items())[:NAMED_IN_MESSAGE])
        more = f"; and {len(errors) - NAMED_IN_MESSAGE} more" if len(errors) > NAMED_IN_MESSAGE else ""
        parts.append(f"{len(errors)} of {result['matched']} issue {verb}s failed: {named}{more}")
    if stopped is not None:
        parts.append(f"stopped by a transient failure that outlived the retries: {stopped}")
    raise IssuesFailed(" | ".join(parts) + f" (outcome: {_figures(result, done)})", result)
