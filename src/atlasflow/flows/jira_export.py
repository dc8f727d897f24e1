"""Jira export: every issue under root tickets, a project or a JQL query, written to an Excel workbook."""

from __future__ import annotations

import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.runtime import flow_run

from atlasflow.blocks import jira_client
from atlasflow.errors import ConfigurationError
from atlasflow.files import input_file, output_directory, reports_root
from atlasflow.flows.delivery import DeliveryReport, Destinations, Parcel, deliver
from atlasflow.flows.snapshots import snapshot_store
from atlasflow.formats.changes import ChangeReport, Snapshot, describe_changes, diff_snapshots, natural_key
from atlasflow.formats.messages import figure_text, inert, is_empty, label
from atlasflow.formats.records import ExportRow
from atlasflow.reports.scope import Scope, scope_id, scope_of
from atlasflow.reports.sheets import read_export_rows, write_export_workbook
from atlasflow.reports.snapshots import build_snapshot
from atlasflow.reports.tree import Node, TreeWalker, walk_levels
from atlasflow.runtime.failures import one_line_failures
from atlasflow.runtime.hooks import job_hooks
from atlasflow.runtime.params import PageId, page_key
from atlasflow.runtime.progress import RunProgressBar
from atlasflow.runtime.tasks import opaque, remote_task


@dataclass(frozen=True)
class Level:
    """Issues as a task returns them. Prefect links every element of a task's result to its run (to track
    dependencies); wrapped, a level of 100,000 issues is one link instead of 100,000."""

    nodes: list[Node]


@remote_task(timeout_seconds=900)
def fetch_roots(walker: TreeWalker, scope: Scope) -> Level:
    """Level 0: the root tickets, or the issues of a project / JQL arranged as trees.

    Raises:
        ConfigurationError: Naming the root tickets Jira did not return.
    """
    if scope.kind == "roots":
        issues = walker.fetch_keys(scope.keys)
        missing = set(scope.keys) - {str(i["key"]) for i in issues}
        if missing:
            raise ConfigurationError(f"root ticket(s) not found or not visible: {', '.join(sorted(missing))}")
        return Level(sorted((Node(i) for i in issues), key=lambda n: natural_key(n.key)))
    return Level(walker.forest(walker.fetch_jql(str(scope.jql))))


@remote_task(timeout_seconds=900)
def fetch_level(walker: TreeWalker, frontier: list[Node], seen: set[str]) -> Level:
    """One level down: all children (and linked issues) of a whole level in as few searches as possible."""
    return Level(walker.children(frontier, seen))


@task(cache_policy=NONE, timeout_seconds=600)
def compare(
    rows: list[ExportRow], extra_columns: list[str], compare_to: str | None, previous: Snapshot | None
) -> tuple[Snapshot, ChangeReport | None, str | None]:
    """This export's snapshot, and what changed since ``compare_to`` (or why nothing is compared).

    ``previous`` is the stored snapshot of the scope, read while Jira was being walked.
    """
    snapshot = build_snapshot(rows, extra_columns)
    if compare_to is None or compare_to.lower() == "none":
        return snapshot, None, None
    if compare_to.lower() == "previous":
        if previous is None:
            return snapshot, None, "first export of this scope: nothing to compare with"
        old = previous
    else:
        old = build_snapshot(read_export_rows(input_file(compare_to, "compare_to")), extra_columns)
    return snapshot, diff_snapshots(old, snapshot), None


def walk(
    walker: TreeWalker, roots: list[Node], max_depth: int | None, follow: bool, progress: RunProgressBar
) -> list[Node]:
    """The roots and, when ``follow``, every level below them (:func:`atlasflow.reports.tree.walk_levels`), each
    level one :func:`fetch_level` task.

    The progress bar moves with each level: toward 80% by the share of ``max_depth`` done, or, without a
    depth limit, half of what is left per level (the depth of a tree is not known before it is walked).
    """
    logger = get_run_logger()
    if not follow:
        return list(roots)

    def next_level(frontier: list[Node], seen: set[str]) -> list[Node]:
        return fetch_level(walker, opaque(frontier), opaque(seen)).nodes

    def reached(level: int, frontier: list[Node], total: int) -> None:
        share = level / max_depth if max_depth else 1 - 0.5**level
        progress.update(10 + 70 * share, f"level {level}: {len(frontier)} issue(s), {total} in all")
        logger.info(
            "level %d: %d issue(s), %d in all, %d requests so far",
            level,
            len(frontier),
            total,
            walker.client.requests_made,
        )

    return walk_levels(roots, max_depth, next_level, reached)


@task(cache_policy=NONE, timeout_seconds=1800)
def write_workbook(
    rows: list[ExportRow],
    path: Path,
    extra_columns: list[str],
    query: str,
    browse_url: str,
    changes: ChangeReport | None,
    changes_note: str | None,
) -> dict[str, Any]:
    stats = write_export_workbook(
        path,
        rows,
        extra_columns=extra_columns,
        query=query,
        generated_at=datetime.now(UTC),
        browse_url=browse_url,
        changes=changes,
        changes_note=changes_note,
        hierarchy=True,
    )
    return {"links_written": stats.links_written, "links_dropped": stats.links_dropped}


@flow(name="jira-export", log_prints=False, **job_hooks())
@one_line_failures
def jira_export(
    root_tickets: list[str] | None = None,
    project_key: str | None = None,
    jql: str | None = None,
    fields: list[str] | None = None,
    max_depth: int | None = None,
    include_links: bool = False,
    within_projects: list[str] | None = None,
    output_dir: str | None = None,
    jira_block: str = "jira",
    compare_to: str | None = "previous",
    snapshot_block: str | None = None,
    attach_to_page: PageId | None = None,
    confluence_block: str = "confluence",
    post_to_channel: str | None = None,
    mattermost_block: str = "mattermost-bot",
    storage_block: str | None = None,
) -> dict[str, Any]:
    """Export every issue of a scope, at every level, to an Excel workbook.

    Args:
        root_tickets: Root issue keys (epics, stories ...); everything below them is exported.
        project_key: A whole project.
        jql: Any JQL; issues whose parent is not in the result are roots, and what lies below them is
            followed too.
        fields: Extra columns: field ids or display names (custom fields by name work).
        max_depth: Levels below the roots to follow; empty = all.
        include_links: Follow issue links as well as the hierarchy.
        within_projects: Project keys: every search is bounded to them, so no issue of another project is
            exported, whatever the hierarchy or links lead to (the job inbox sets it to the projects a
            request names).
        output_dir: A folder inside the reports folder (:mod:`atlasflow.files`) to keep the workbook in.
            Default: the reports folder itself when the workbook is delivered nowhere else; when it is
            delivered, no local copy is kept unless this is given.
        jira_block: Name of a saved ``JiraCredentials`` block.
        compare_to: What the "Changes" sheet compares with: ``"previous"`` (the last export of the same
            scope that reached a reader: delivered to at least one destination, or, with none asked for,
            written), the path of an earlier export workbook inside the reports folder, or empty for no
            "Changes" sheet.
        snapshot_block: A Prefect filesystem block (``slug/name``) to keep snapshots in, so that runs on
            other machines see them; default: ``.atlasflow-snapshots`` in ``output_dir`` (or the reports
            folder).
        attach_to_page: A Confluence page id: the workbook becomes its attachment
            ``jira-export-<scope>.xlsx``, one new version per run.
        confluence_block: ``ConfluenceCredentials`` block for ``attach_to_page``.
        post_to_channel: A Mattermost channel, ``team-name/channel-name`` or its id: the workbook is posted
            there as a file with the scope, counts and changes.
        mattermost_block: ``MattermostBot`` block for ``post_to_channel``.
        storage_block: Any Prefect writable filesystem block (``slug/name``: ``local-file-system/…``,
            ``remote-file-system/…``, ``s3-bucket/…`` …): the workbook is written to ``jira-export-<scope>/``
            there under its timestamped name.

    Returns:
        ``path`` of the workbook kept locally (``None`` when none is), ``delivered`` (a link per
        destination), counts by level and type, what changed, requests made, duration.

    Raises:
        DeliveryError: After every destination was tried, naming those that failed and why.
    """
    logger = get_run_logger()
    started = time.monotonic()
    scope = scope_of(root_tickets, project_key, jql)
    query = scope.description
    if max_depth is not None and max_depth < 0:
        raise ConfigurationError("max_depth must be >= 0 or None")
    page = page_key(attach_to_page) if attach_to_page is not None else None
    destinations = Destinations(page, confluence_block, post_to_channel, mattermost_block, storage_block)
    keep_local = output_dir is not None or not destinations
    directory = output_directory(output_dir) if output_dir is not None else reports_root()
    if compare_to is not None and compare_to.lower() not in ("previous", "none"):
        input_file(compare_to, "compare_to")  # refused before any Jira request
    progress = RunProgressBar(f"Jira export of {query}")
    client = jira_client(jira_block)
    scratch = tempfile.TemporaryDirectory(prefix="atlasflow-export-")
    try:
        extra = client.resolve_fields(fields or [])
        columns = list(extra)
        store = snapshot_store(str(directory), snapshot_block)
        snapshot_name = scope_id(
            {
                "site": client.api.base_url,
                "query": query,
                "fields": columns,
                "depth": max_depth,
                "links": include_links,
                **({"within": sorted(within_projects)} if within_projects else {}),
            }
        )
        with ThreadPoolExecutor(max_workers=1) as reader:
            # the previous snapshot is read while Jira is walked
            previous = reader.submit(store.load, snapshot_name) if str(compare_to).lower() == "previous" else None
            walker = TreeWalker(
                client,
                extra,
                include_links=include_links,
                levels_below=scope.levels_below,
                within_projects=within_projects or (),
            )
            roots = fetch_roots(walker, scope).nodes
            logger.info("level 0: %d issue(s) for %s", len(roots), query)
            progress.update(10, f"level 0: {len(roots)} issue(s) for {query}")
            nodes = walk(walker, roots, max_depth, follow=scope.levels_below, progress=progress)
            rows = walker.rows(nodes)
            snapshot, changes, note = compare(
                opaque(rows), columns, compare_to, opaque(previous.result() if previous else None)
            )
        stamp = _stamp(datetime.now(UTC), flow_run.id)
        folder = directory if keep_local else Path(scratch.name).resolve()
        path = folder / f"{scope.file_stem('jira-export')}-{stamp}.xlsx"
        path.parent.mkdir(parents=True, exist_ok=True)
        browse = client.api.base_url + "/browse/"
        progress.update(85, f"{len(nodes)} issue(s) read; writing the workbook")
        links = write_workbook(opaque(rows), path, columns, query, browse, opaque(changes), note)
        result: dict[str, Any] = {
            "path": str(path) if keep_local else None,
            "scope": query,
            "issues": len(nodes),
            "changes": describe_changes(changes) if changes else note,
            "by_level": {str(k): v for k, v in sorted(Counter(n.level for n in nodes).items())},
            "by_type": dict(Counter(_type_name(n) for n in nodes).most_common()),
            "requests": client.requests_made,
            "duration_seconds": round(time.monotonic() - started, 2),
            **links,
        }
        report = deliver(_parcel(path, scope, result), destinations) if destinations else DeliveryReport()
        result["delivered"] = report.delivered
        if report.delivered or not destinations:  # it reached a reader: the next Changes sheet starts here
            store.save(snapshot_name, snapshot)
    finally:
        client.close()
        scratch.cleanup()
    _publish(result, path.name, report.openable or (path.as_uri() if keep_local else None))
    logger.info("wrote %s (%d issues, %d requests)", path.name, result["issues"], result["requests"])
    progress.update(100, f"{result['issues']} issue(s) exported")
    report.raise_for_failures()
    return result


def _parcel(path: Path, scope: Scope, result: dict[str, Any]) -> Parcel:
    """The workbook as delivered: a stable name per scope on the page, a chat message with the figures."""
    types = ", ".join(f"{count} {inert(name, 40)}" for name, count in list(result["by_type"].items())[:6])
    message = (
        f"**Jira export** of {inert(result['scope'])}: {result['issues']} issues ({types})\n"
        f"Changes: {inert(result['changes'] or 'not compared')}"
    )
    comment = f"{result['issues']} issues; changes: {result['changes'] or 'not compared'}"[:255]
    stem = scope.file_stem("jira-export")
    return Parcel(path, f"{stem}.xlsx", stem, message, comment)


def _type_name(node: Node) -> str:
    return str((node.issue.get("fields", {}).get("issuetype") or {}).get("name", "?"))


def _stamp(now: datetime, run_id: str | None) -> str:
    """``20261202-210622.481-1a2b3c4d``: sorts by time, and two runs in one instant still differ."""
    return f"{now:%Y%m%d-%H%M%S}.{now.microsecond // 1000:03d}-{(run_id or uuid.uuid4().hex)[:8]}"


def _publish(result: dict[str, Any], name: str, link: str | None) -> None:
    """The summary table and, when the workbook can be opened somewhere, a link to it."""
    rows = [{"figure": label(k), "value": figure_text(v)} for k, v in result.items() if k != "path" and not is_empty(v)]
    description = (
        f"Jira export of {result['scope']}: {result['issues']} issues, {result['requests']} requests, "
        f"changes: {result['changes'] or 'not compared'}, {name}"
    )
    create_table_artifact(rows, key="jira-export-summary", description=description)
    if link:
        create_link_artifact(link, link_text=name, key="jira-export-workbook", description="The exported workbook")
