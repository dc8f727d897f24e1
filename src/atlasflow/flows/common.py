"""What every atlasflow job shares: transient-only retries and an end-of-run notification."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar, cast

from prefect import Flow, Task, task
from prefect.blocks.core import Block
from prefect.blocks.notifications import NotificationBlock
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import FlowRun, State, TaskRun
from prefect.settings import PREFECT_UI_URL
from prefect.utilities.annotations import quote
from prefect.variables import Variable
from pydantic import SecretStr

from atlasflow.clients.http import TransientError, redact
from atlasflow.formats.messages import describe_figures, fit_post, inert

log = logging.getLogger("atlasflow.notify")
T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

#: Prefect Variable (or environment variable ATLASFLOW_NOTIFIER) naming the notification block to use,
#: as ``block-type-slug/block-name``, e.g. ``mattermost-webhook/mattermost``.
NOTIFIER_VARIABLE = "atlasflow_notifier"
NOTIFIER_ENV = "ATLASFLOW_NOTIFIER"
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
STATE_ICONS = {"COMPLETED": "✅", "FAILED": "❌", "CRASHED": "💥", "CANCELLED": "⛔", "TIMEDOUT": "⏱️"}


def transient_only(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry condition: only failures that survived the client's own transient retries."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:
        return False
    return False


def opaque(value: T) -> T:
    """``value`` hidden from Prefect's parameter introspection.

    Prefect visits every element of a task's arguments (to track dependencies); for thousands of issues
    or rows that costs more than the work itself.
    """
    return cast(T, quote(value))


def table_ref(table: int | str) -> int | str:
    """A table parameter as given in the UI or CLI: ``"0"`` means the first table, other text a heading."""
    return int(table) if isinstance(table, str) and table.strip().isdigit() else table


def remote_task(timeout_seconds: int, retry_delay_seconds: int = 5) -> Callable[[Callable[P, R]], Task[P, R]]:
    """Decorator for a task that talks to Jira or Confluence: retried (twice) only for transient failures
    that outlived the client's own retries, never cached, bounded in time.
    """
    return task(
        retries=2,
        retry_delay_seconds=retry_delay_seconds,
        retry_condition_fn=transient_only,
        cache_policy=NONE,
        timeout_seconds=timeout_seconds,
    )


def notifier_reference() -> str | None:
    """The configured notification block, as ``slug/name``, if any."""
    configured = os.environ.get(NOTIFIER_ENV) or Variable.get(NOTIFIER_VARIABLE, default=None)
    return str(configured) if configured else None


def job_message(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> tuple[str, str]:
    """(subject, body) of a job's end-of-run post; every piece of run-supplied text is made inert."""
    state_name = (state.name or state.type.value).upper().replace(" ", "")
    icon = STATE_ICONS.get(state_name, STATE_ICONS.get(state.type.value, "ℹ️"))
    duration = ""
    if flow_run.start_time:
        duration = f" in {(datetime.now(UTC) - flow_run.start_time).total_seconds():.1f} s"
    subject = f"{icon} atlasflow {inert(flow.name, 80)}: {inert(state.name, 40)}{duration}"
    lines = [f"Run: {inert(flow_run.name, 80)}"]
    params = {k: v for k, v in (flow_run.parameters or {}).items() if v not in (None, [], {}, "")}
    if params:
        lines.append("Parameters: " + describe_figures(params))
    if state.is_completed():
        result = state.result(raise_on_failure=False)
        if isinstance(result, dict):
            lines.append("Figures: " + describe_figures(result))
    elif state.message:
        lines.append("Reason: " + inert(state.message, 2000))
    ui = PREFECT_UI_URL.value()
    if ui:
        lines.append(f"Details: {ui.rstrip('/')}/runs/flow-run/{flow_run.id}")
    return subject, fit_post("\n".join(lines), limit=16_000)


def _redact(text: str, block: Block) -> str:
    for value in block.model_dump().values():
        if isinstance(value, SecretStr) and value.get_secret_value():
            text = text.replace(value.get_secret_value(), "***")
    return text


def post(reference: str, subject: str, body: str) -> bool:
    """Post through the notification block ``reference`` (``slug/name``).

    The text is scrubbed of every secret a client of this process holds (an echoed token in a failure
    reason stays out of the chat). A failure is logged (with the block's secrets redacted) and answered
    ``False``, never raised: a job's outcome does not depend on its notification.
    """
    try:
        notifier = Block.load(reference)
    except Exception as exc:
        log.warning("notification skipped: %s: %s", type(exc).__name__, exc)
        return False
    if not isinstance(notifier, NotificationBlock):
        log.warning("block %s is not a notification block; not posting", reference)
        return False
    try:
        with notifier.raise_on_failure():
            notifier.notify(redact(body), redact(subject))  # type: ignore[unused-coroutine]
    except Exception as exc:
        log.warning("notification failed: %s: %s", type(exc).__name__, _redact(str(exc), notifier))
        return False
    return True


def notify_end(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """State hook: post how the run ended. A failing notification is logged, never raised."""
    try:
        reference = notifier_reference()
    except Exception as exc:
        log.warning("notification skipped: %s: %s", type(exc).__name__, exc)
        return
    if not reference:
        log.info("no notifier configured (%s); not posting", NOTIFIER_VARIABLE)
        return
    try:
        subject, body = job_message(flow, flow_run, state)
    except Exception as exc:
        log.warning("notification skipped: %s: %s", type(exc).__name__, exc)
        return
    post(reference, subject, body)


def job_hooks() -> dict[str, Any]:
    """Flow keyword arguments giving a job its end-of-run notification in every final state."""
    hooks = [notify_end]
    return {
        "on_completion": hooks,
        "on_failure": hooks,
        "on_crashed": hooks,
        "on_cancellation": hooks,
    }
