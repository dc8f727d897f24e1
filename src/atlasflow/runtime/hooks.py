"""What every job's flow shares: its state hooks (end-of-run post, end event), its result policy, and the
registry of job flows the reporting flow reads."""

from __future__ import annotations

import logging
from typing import Any

from prefect import Flow
from prefect.client.schemas.objects import FlowRun, State
from prefect.events import emit_event
from prefect.settings import PREFECT_RESULTS_PERSIST_BY_DEFAULT

from atlasflow.runtime.notify import Quiet, notify_end

log = logging.getLogger("atlasflow.notify")

#: Flows whose runs the reporting flow writes into the results table (not the reporting flow itself).
JOB_FLOWS = [
    "jira-export",
    "confluence-table-sync",
    "read-confluence-table",
    "jira-permissions-check",
    "jira-bulk-update",
    "jira-delete-issues",
    "shell-job",
    "run-job-inbox",
    "atlasflow-pipeline",
]
#: Flows whose completed runs are not rows of the results table: the inbox's work is the runs it starts.
UNREPORTED_WHEN_COMPLETED = ["run-job-inbox"]
#: Emitted by every job run once its final state is recorded, after any heartbeat it sent: the crashed-run
#: automation expects it, so a heartbeat racing the final state never makes a finished run look silent.
ENDED_EVENT = "atlasflow.flow-run.ended"


def mark_ended(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """State hook: emit :data:`ENDED_EVENT` for the run (it follows every heartbeat the run sent)."""
    try:
        emit_event(
            event=ENDED_EVENT,
            resource={"prefect.resource.id": f"prefect.flow-run.{flow_run.id}", "prefect.resource.name": flow_run.name},
            payload={"state": state.name},
        )
    except Exception as exc:
        log.warning("end event not sent: %s: %s", type(exc).__name__, exc)


def job_hooks(did_nothing: Quiet | None = None, completed_post: bool = True) -> dict[str, Any]:
    """Flow keyword arguments every job shares: its end-of-run notification in every final state, and no
    persisted (pickled) results unless Prefect's ``results.persist_by_default`` asks for them.

    Args:
        did_nothing: Tells from a completed run's result that it did nothing notifiable (an inbox run that
            started nothing, a sync that changed nothing): then, under the ``changes`` policy, no post.
        completed_post: ``False`` for a job that posts its own outcome (the report's digest): only its runs
            that did not complete post through the hook.
    """

    def notify(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
        notify_end(flow, flow_run, state, did_nothing)

    hooks = [mark_ended, notify]
    return {
        "on_completion": hooks if completed_post else [mark_ended],
        "on_failure": hooks,
        "on_crashed": hooks,
        "on_cancellation": hooks,
        "persist_result": bool(PREFECT_RESULTS_PERSIST_BY_DEFAULT.value()),
    }
