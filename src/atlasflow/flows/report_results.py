"""Reporting: every finished atlasflow job run since the last report, written once into a Confluence table.

Exactly once: rows are upserted by run id (writing the same run twice changes nothing), and the watermark
(a Prefect Variable) moves only after the page write succeeded. A crash between the write and the
watermark makes the next report rewrite identical rows; a failed write leaves the watermark where it was,
so the next report includes those runs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger, runtime, task
from prefect.cache_policies import NONE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterEndTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import Artifact, FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.variables import Variable

from atlasflow.blocks import confluence_client
from atlasflow.clients.confluence import ConfluenceClient, Page
from atlasflow.errors import ConfigurationError
from atlasflow.formats.confluence_tables import MergeResult, merge_rows, read_table
from atlasflow.formats.messages import fit_post, inert
from atlasflow.runtime.failures import one_line_failures
from atlasflow.runtime.hooks import JOB_FLOWS, UNREPORTED_WHEN_COMPLETED, job_hooks
from atlasflow.runtime.notify import notify_policy, post
from atlasflow.runtime.params import PageId, page_key, table_ref
from atlasflow.runtime.tasks import opaque, remote_task

RESULT_COLUMNS = ["Run ID", "Job", "State", "Started", "Duration", "Summary"]
FINAL_STATES = [StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED]
PAGE_SIZE = 200


def read_watermark(name: str) -> datetime | None:
    value = Variable.get(name, default=None)
    return datetime.fromisoformat(str(value)) if value else None


def advance_watermark(name: str, until: datetime) -> None:
    """Record that every run ending up to ``until`` is reported: the last step of a report."""
    Variable.set(name, until.isoformat(), overwrite=True)


@task(cache_policy=NONE)
def finished_runs(since: datetime | None, until: datetime) -> list[dict[str, Any]]:
    """Rows for every atlasflow job run that ended in ``(since, until]``, read from the Prefect API."""
    runs: list[FlowRun] = []
    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows(flow_filter=FlowFilter(name=FlowFilterName(any_=JOB_FLOWS)))}
        run_filter = FlowRunFilter(
            end_time=FlowRunFilterEndTime(after_=since, before_=until),  # type: ignore[arg-type]
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=FINAL_STATES)),
        )
        while True:
            page = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=JOB_FLOWS)),
                flow_run_filter=run_filter,
                sort=FlowRunSort.END_TIME_DESC,
                limit=PAGE_SIZE,
                offset=len(runs),
            )
            runs.extend(page)
            if len(page) < PAGE_SIZE:
                break
        runs = [r for r in runs if (since is None or (r.end_time and r.end_time > since)) and _reported(r, flows)]
        runs.sort(key=lambda r: (r.end_time or until, str(r.id)))
        summaries = _summaries(client, [r.id for r in runs])
    return [_row(r, flows.get(r.flow_id, "?"), summaries.get(str(r.id), "")) for r in runs]


def _reported(run: FlowRun, flows: dict[Any, str]) -> bool:
    """Whether a run is a row: not a completed run of a flow whose work is other runs (the inbox)."""
    completed = run.state is not None and run.state.is_completed()
    return not (completed and flows.get(run.flow_id) in UNREPORTED_WHEN_COMPLETED)


#: Artifact types whose description is a job's summary (progress bars and results are not).
SUMMARY_ARTIFACTS = {"table", "markdown"}
#: A link artifact is stored as a markdown artifact holding just ``[text](url)``: not a summary either.
_LINK = re.compile(r"\[[^\]]*\]\([^)]*\)")


def _summaries(client: Any, run_ids: list[Any]) -> dict[str, str]:
    """Each run's summary (table and markdown artifact descriptions, not links) joined: the jobs describe
    their outcome there."""
    found: dict[str, list[str]] = {}
    for start in range(0, len(run_ids), 50):
        artifact_filter = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=run_ids[start : start + 50]))
        offset = 0
        while True:
            page = client.read_artifacts(artifact_filter=artifact_filter, limit=PAGE_SIZE, offset=offset)
            for artifact in page:
                if _is_summary(artifact):
                    found.setdefault(str(artifact.flow_run_id), []).append(artifact.description)
            offset += len(page)
            if len(page) < PAGE_SIZE:
                break
    return {run: "; ".join(sorted(texts)) for run, texts in found.items()}


def _is_summary(artifact: Artifact) -> bool:
    data = artifact.data if isinstance(artifact.data, str) else ""
    return bool(artifact.description) and artifact.type in SUMMARY_ARTIFACTS and not _LINK.fullmatch(data.strip())


def _row(run: FlowRun, job: str, summary: str) -> dict[str, Any]:
    state = run.state
    if not summary and state is not None and state.message and not state.is_completed():
        summary = state.message
    duration = (run.end_time - run.start_time).total_seconds() if run.end_time and run.start_time else None
    return {
        "Run ID": str(run.id),
        "Job": job,
        "State": state.name if state else "?",
        "Started": run.start_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if run.start_time else "",
        "Duration": f"{duration:.1f} s" if duration is not None else "",
        "Summary": " ".join(summary.split())[:500],
    }


@remote_task(timeout_seconds=600)
def write_rows(
    client: ConfluenceClient, page_id: str, table: int | str, rows: list[dict[str, Any]]
) -> tuple[MergeResult, Page]:
    """Upsert the rows by run id (re-read and re-merged after a concurrent edit)."""

    def edit(page: Page) -> tuple[str | None, MergeResult]:
        merged = merge_rows(page.body, table, "Run ID", rows, columns=RESULT_COLUMNS)
        return (merged.storage if merged.changed else None), merged

    outcome = client.edit_page(page_id, edit, message="atlasflow results report")
    return outcome.result, outcome.page


@remote_task(timeout_seconds=600)
def archive_oldest(
    client: ConfluenceClient, page_id: str, table: int | str, archive_page_id: str, max_rows: int
) -> int:
    """Move the oldest rows beyond ``max_rows`` from the results table into the archive page's table.

    The rows are upserted into the archive first (by run id: a retry after a crash adds nothing twice),
    then deleted from the results table; each write is re-read and re-merged after a concurrent edit.
    Returns how many rows were moved.
    """
    rows = [r for r in read_table(client.get_page(page_id).body, table).rows if r.get("Run ID")]
    oldest = rows[: max(0, len(rows) - max_rows)]  # rows are appended as runs end: the first are the oldest
    if not oldest:
        return 0
    moved = {r["Run ID"] for r in oldest}

    def into_archive(page: Page) -> tuple[str | None, MergeResult]:
        merged = merge_rows(page.body, table, "Run ID", oldest, columns=RESULT_COLUMNS)
        return (merged.storage if merged.changed else None), merged

    def out_of_results(page: Page) -> tuple[str | None, MergeResult]:
        keep = [{"Run ID": r["Run ID"]} for r in read_table(page.body, table).rows if r.get("Run ID")]
        keep = [r for r in keep if r["Run ID"] not in moved]
        merged = merge_rows(page.body, table, "Run ID", keep, columns=["Run ID"], delete_missing=True)
        return (merged.storage if merged.changed else None), merged

    client.edit_page(archive_page_id, into_archive, message="atlasflow results archive")
    client.edit_page(page_id, out_of_results, message="atlasflow results report: older rows archived")
    return len(oldest)


def digest(rows: list[dict[str, Any]], since: datetime | None) -> tuple[str, str]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["State"]] = counts.get(row["State"], 0) + 1
    subject = (
        f"atlasflow report: {len(rows)} run(s) since {since:%Y-%m-%d %H:%M} UTC"
        if since
        else (f"atlasflow report: {len(rows)} run(s)")
    )
    lines = [", ".join(f"{n} {inert(s, 30)}" for s, n in sorted(counts.items()))]
    lines += [
        f"- {inert(r['Job'], 60)} · {inert(r['State'], 30)} · {inert(r['Duration'], 20)} · {inert(r['Summary'], 200)}"
        for r in rows[:50]
    ]
    if len(rows) > 50:
        lines.append(f"… and {len(rows) - 50} more on the page")
    return subject, fit_post("\n".join(lines), limit=16_000)


def digest_wanted(policy: str, rows: list[dict[str, Any]]) -> bool:
    """The report's one post: under ``changes`` when it wrote rows, under ``failures`` when one of them did
    not complete, under ``always`` every time."""
    if policy == "always":
        return True
    if policy == "failures":
        return any(r["State"] != "Completed" for r in rows)
    return bool(rows)


def post_digest(notifier_block: str | None, subject: str, body: str) -> bool:
    """Post the digest; a failure is logged, never raised (the rows are on the page already)."""
    if not notifier_block:
        return False
    return post(notifier_block if "/" in notifier_block else f"mattermost-webhook/{notifier_block}", subject, body)


@flow(name="report-results", **job_hooks(completed_post=False))
@one_line_failures
def report_results(
    confluence_page_id: PageId,
    table: int | str = "Results",
    notifier_block: str | None = "mattermost",
    confluence_block: str = "confluence",
    watermark_variable: str = "atlasflow_report_watermark",
    settle_seconds: float = 30.0,
    max_rows: int | None = None,
    archive_page_id: PageId | None = None,
) -> dict[str, Any]:
    """Write every atlasflow job run finished since the last report into a results table, once each.

    Args:
        confluence_page_id: The page holding the results table.
        table: The table: index on the page or the heading above it.
        notifier_block: Notification block for the digest (``slug/name``, or a Mattermost webhook block name);
            empty posts no digest.
        confluence_block: Name of a saved ``ConfluenceCredentials`` block.
        watermark_variable: Prefect Variable holding the end time of the last reported window.
        settle_seconds: Runs ending in the last few seconds wait for the next report, so a run whose final
            state is still being written is not skipped.
        max_rows: Keep at most this many rows in the results table: the oldest beyond it move to the table
            of the same name on ``archive_page_id`` (a page with the same columns). Empty = no limit.
        archive_page_id: The archive page (required with ``max_rows``).

    Returns:
        The window reported, the number of runs, rows added, updated and archived, and whether a digest
        was posted.
        The digest is the report's one post (its completion is not posted separately); it follows the
        notification policy (``atlasflow_notify``): with ``changes`` only a report that wrote rows posts.
    """
    logger = get_run_logger()
    confluence_page_id = page_key(confluence_page_id)
    if (max_rows is None) != (archive_page_id is None) or (max_rows is not None and max_rows < 1):
        raise ConfigurationError("max_rows (at least 1) and archive_page_id go together: give both or neither")
    since = read_watermark(watermark_variable)
    until = datetime.now(UTC) - timedelta(seconds=settle_seconds)
    rows = finished_runs(since, until)
    logger.info("%d finished run(s) since %s", len(rows), since or "the beginning")
    added = updated = archived = 0
    if rows:
        client = confluence_client(confluence_block)
        try:
            merged, page = write_rows(client, confluence_page_id, table_ref(table), opaque(rows))
            if max_rows is not None and archive_page_id is not None:
                archived = archive_oldest(
                    client, confluence_page_id, table_ref(table), page_key(archive_page_id), max_rows
                )
        finally:
            client.close()
        added, updated = len(merged.added), len(merged.updated)
        logger.info(
            "page %s version %d: %d row(s) added, %d updated, %d older moved to the archive",
            confluence_page_id,
            page.version,
            added,
            updated,
            archived,
        )
    wanted = digest_wanted(notify_policy(list(runtime.flow_run.tags)), rows)
    posted = post_digest(notifier_block, *digest(rows, since)) if wanted else False
    advance_watermark(watermark_variable, until)
    return {
        "since": since.isoformat() if since else None,
        "until": until.isoformat(),
        "runs": len(rows),
        "added": added,
        "updated": updated,
        "archived": archived,
        "digest_posted": posted,
    }
