"""Jobs that depend on each other: export, then sync the workbook into a page table, then report.

Each step is a task that runs its job flow as a subflow (so every job keeps its own run, artifacts and
notification, and the results report lists it under its own name). The dependencies are declared to
Prefect: the sync takes the export's result as input, the report waits for the sync (``wait_for``). A
step whose upstream did not complete never runs: it ends ``Cancelled`` named ``NotRunnable`` with the
message "skipped because upstream <step> failed", and the pipeline ends ``Failed`` naming the step that
failed.
"""

from __future__ import annotations

import time
from typing import Any, cast

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State
from prefect.exceptions import PrefectHTTPStatusError
from prefect.states import Cancelled, Failed

from atlasflow.flows.confluence_table_sync import confluence_table_sync
from atlasflow.flows.jira_export import jira_export
from atlasflow.flows.report_results import report_results
from atlasflow.runtime.failures import one_line_failures
from atlasflow.runtime.hooks import job_hooks
from atlasflow.runtime.params import PageId, page_key

NOT_RUNNABLE = "NotRunnable"


@task(name="export", cache_policy=NONE)
def export_step(**parameters: Any) -> dict[str, Any]:
    """Run the Jira export (a subflow); its result carries the workbook path."""
    result: dict[str, Any] = jira_export(**parameters)
    return result


@task(name="table-sync", cache_policy=NONE)
def sync_step(export: Any, **parameters: Any) -> dict[str, Any]:
    """Sync the exported workbook into a page table (a subflow); ``export`` is the export step's result."""
    result: dict[str, Any] = confluence_table_sync(source=export["path"], **parameters)
    return result


@task(name="report", cache_policy=NONE)
def report_step(**parameters: Any) -> dict[str, Any]:
    """Write the finished runs into the results table (a subflow)."""
    result: dict[str, Any] = report_results(**parameters)
    return result


@flow(name="atlasflow-pipeline", **job_hooks(did_nothing=lambda result: True))  # its steps post their own ends
@one_line_failures
def pipeline(
    page_id: PageId,
    report_page_id: PageId,
    root_tickets: list[str] | None = None,
    project_key: str | None = None,
    jql: str | None = None,
    fields: list[str] | None = None,
    max_depth: int | None = None,
    include_links: bool = False,
    within_projects: list[str] | None = None,
    output_dir: str = "reports",
    table: int | str = 0,
    key_column: str = "Key",
    sheet: str = "Child Issues",
    columns: list[str] | None = None,
    report_table: int | str = "Results",
    notifier_block: str | None = "mattermost",
    report_settle_seconds: float = 0.0,
    report_watermark_variable: str = "atlasflow_report_watermark",
    jira_block: str = "jira",
    confluence_block: str = "confluence",
) -> Any:
    """Export a Jira scope, upsert the exported issues into a Confluence table, then report the runs.

    Args:
        page_id: Page whose table receives the exported issues.
        report_page_id: Page holding the results table.
        root_tickets: Export scope: root issue keys (or give ``project_key`` or ``jql``).
        project_key: Export scope: a whole project.
        jql: Export scope: any JQL.
        fields: Extra export columns (ids or display names).
        max_depth: Levels below the roots to follow; empty = all.
        include_links: Follow issue links as well as the hierarchy.
        within_projects: Bound every export search to these projects (see ``jira_export``).
        output_dir: Where the workbook goes (a directory the worker can write).
        table: The table receiving the issues: index on the page or the heading above it.
        key_column: Column identifying rows in that table (the workbook's ``Key``).
        sheet: Workbook sheet to sync.
        columns: Only write these columns (default: every workbook column the table has).
        report_table: The results table: index or heading.
        notifier_block: Notification block for the report digest; empty posts none.
        report_settle_seconds: The report's ``settle_seconds``; 0 so that this pipeline's own export and
            sync, which ended just before, are in it.
        report_watermark_variable: The report's watermark: the same as the hourly report's when both write
            the same results table (the default), another one for another table.
        jira_block: Name of the ``JiraCredentials`` block.
        confluence_block: Name of the ``ConfluenceCredentials`` block.

    Returns:
        The three steps' results by step name; the run ends Failed when a step did not complete.
    """
    page_id, report_page_id = page_key(page_id), page_key(report_page_id)
    # The steps are called, not submitted: each runs in this flow's thread, where the jobs' task timeouts
    # can interrupt blocking calls (in a task runner's worker thread Prefect cannot, and warns).
    export: State[Any] = cast(
        State,
        export_step(
            return_state=True,
            root_tickets=root_tickets,
            project_key=project_key,
            jql=jql,
            fields=fields,
            max_depth=max_depth,
            include_links=include_links,
            within_projects=within_projects,
            output_dir=output_dir,
            jira_block=jira_block,
        ),
    )
    sync: State[Any] = cast(
        State,
        sync_step(
            export,
            return_state=True,
            page_id=page_id,
            table=table,
            key_column=key_column,
            sheet=sheet,
            columns=columns,
            confluence_block=confluence_block,
        ),
    )
    report: State[Any] = cast(
        State,
        report_step(
            return_state=True,
            confluence_page_id=report_page_id,
            table=report_table,
            notifier_block=notifier_block,
            confluence_block=confluence_block,
            settle_seconds=report_settle_seconds,
            watermark_variable=report_watermark_variable,
            wait_for=[sync],
        ),
    )
    return conclude({"export": (export, []), "table-sync": (sync, ["export"]), "report": (report, ["table-sync"])})


def conclude(steps: dict[str, tuple[State[Any], list[str]]]) -> dict[str, Any] | State[Any]:
    """Give the never-run steps a final NotRunnable state; the results, or Failed.

    ``steps`` maps a step name to its final state and the names of its upstream steps, in dependency order.
    A step whose upstream did not complete is left by Prefect in ``Pending``/``NotReady``; it is given
    ``Cancelled``/``NotRunnable`` with a message naming the upstream, so nothing is left looking as if it
    might still run.
    """
    logger = get_run_logger()
    outcome: dict[str, str] = {}
    results: dict[str, Any] = {}
    for name, (state, upstreams) in steps.items():
        if state.is_completed():
            outcome[name] = "completed"
            results[name] = state.result()
            continue
        blocked = [u for u in upstreams if outcome.get(u) != "completed"]
        if blocked and not state.is_final():
            reason = f"skipped because upstream {blocked[0]} {outcome[blocked[0]]}"
            _set_task_state(state, Cancelled(name=NOT_RUNNABLE, message=reason))
            outcome[name] = "was not run"
            logger.warning("step %s %s", name, reason)
        else:
            outcome[name] = "failed" if state.is_failed() else (state.name or state.type.value).lower()
            logger.error("step %s: %s", name, state.message)
    summary = ", ".join(f"{name} {verdict}" for name, verdict in outcome.items())
    described = ", ".join(f"{name} {verdict}{_figures(results.get(name))}" for name, verdict in outcome.items())
    create_markdown_artifact(f"# Pipeline\n\n{described}", key="pipeline-summary", description=described)
    if all(verdict == "completed" for verdict in outcome.values()):
        logger.info("%s", summary)
        return results
    first = next(name for name, verdict in outcome.items() if verdict != "completed")
    return Failed(message=f"step {first} {outcome[first]}: {steps[first][0].message}; {summary}")


def _figures(result: Any) -> str:
    """A step's main figures in words, e.g. `` (29 issues)``; empty for a step without a result."""
    if not isinstance(result, dict):
        return ""
    if "issues" in result:
        return f" ({result['issues']} issues)"
    if "added" in result:
        return f" ({result['added']} added, {result['updated']} updated, {result.get('deleted', 0)} deleted)"
    if "runs" in result:
        return f" ({result['runs']} runs reported)"
    return ""


def _set_task_state(step: State[Any], state: State[Any], wait_seconds: float = 30.0) -> None:
    """Set a step's task run state; the server records a task run from its events, so a step that never
    ran may not be there yet: wait for it (a few hundred milliseconds, usually)."""
    assert step.state_details.task_run_id is not None
    deadline = time.monotonic() + wait_seconds
    with get_client(sync_client=True) as client:
        while True:
            try:
                client.set_task_run_state(step.state_details.task_run_id, state, force=True)
                return
            except PrefectHTTPStatusError as exc:
                if exc.response.status_code != 404 or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
