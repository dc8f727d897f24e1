"""What every atlasflow job shares: transient-only retries and an end-of-run notification."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar, cast, get_type_hints
from uuid import UUID

from prefect import Flow, Task, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.blocks.core import Block
from prefect.blocks.notifications import NotificationBlock
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import FlowRun, State, TaskRun
from prefect.events import emit_event
from prefect.settings import PREFECT_RESULTS_PERSIST_BY_DEFAULT, PREFECT_UI_URL
from prefect.states import Failed
from prefect.utilities.annotations import quote
from prefect.variables import Variable
from pydantic import SecretStr

from atlasflow.clients.http import TransientError, redact, scrub, secret_forms
from atlasflow.formats.messages import describe_figures, fit_post, inert

log = logging.getLogger("atlasflow.notify")
T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

#: Prefect Variable (or environment variable ATLASFLOW_NOTIFIER) naming the notification block to use,
#: as ``block-type-slug/block-name``, e.g. ``mattermost-webhook/mattermost``.
NOTIFIER_VARIABLE = "atlasflow_notifier"
NOTIFIER_ENV = "ATLASFLOW_NOTIFIER"
#: Which runs post their end: ``always``; ``changes`` (the default: every run that did not complete, and
#: completed runs that did something, e.g. not an inbox run that started nothing); ``failures`` (only runs
#: that did not complete). Set by the Prefect Variable or environment variable, or per deployment by a
#: tag ``notify:<policy>``.
NOTIFY_VARIABLE = "atlasflow_notify"
NOTIFY_ENV = "ATLASFLOW_NOTIFY"
NOTIFY_POLICIES = ("always", "changes", "failures")
DEFAULT_NOTIFY = "changes"
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
STATE_ICONS = {"COMPLETED": "✅", "FAILED": "❌", "CRASHED": "💥", "CANCELLED": "⛔", "TIMEDOUT": "⏱️"}


#: Built-in errors that atlasflow raises on purpose with a clear message (when raised in its own code).
_DELIBERATE = (ValueError, LookupError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
#: ... but never these, which are bugs wherever they come from.
_BUGS = (KeyError, IndexError, UnicodeError, AttributeError, TypeError)


def is_expected(exc: BaseException) -> bool:
    """Whether ``exc`` is an error atlasflow reports on purpose (an API's refusal, a bad parameter, a missing
    file): its message is the whole story. Anything else is a bug and keeps its traceback."""
    if isinstance(exc, _BUGS):
        return False
    if type(exc).__module__.startswith("atlasflow."):
        return True
    if not isinstance(exc, _DELIBERATE) or exc.__traceback__ is None:
        return False
    frame = exc.__traceback__
    while frame.tb_next is not None:
        frame = frame.tb_next
    # By module, not by file path: a checkout named atlasflow holds Prefect's own files in its .venv.
    return str(frame.tb_frame.f_globals.get("__name__", "")).partition(".")[0] == "atlasflow"


def reason(exc: BaseException) -> str:
    """The one-line reason of an expected failure, as the API or atlasflow worded it."""
    return " ".join(str(exc).split())[:2000] or type(exc).__name__


class _NoTracebackForExpected(logging.Filter):
    """Drops the traceback Prefect logs with a failed task or flow when the error is an expected one: the
    log line keeps the reason, a failed run's page shows it without 60 lines of Prefect's stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and is_expected(record.exc_info[1]):
            record.exc_info = None
            record.exc_text = None
        return True


for _name in ("prefect.task_runs", "prefect.flow_runs"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _NoTracebackForExpected) for f in _logger.filters):
        _logger.addFilter(_NoTracebackForExpected())


def one_line_failures(fn: Callable[P, R]) -> Callable[P, R]:
    """Flow function decorator (under ``@flow``): an expected error ends the run ``Failed`` with its one-line
    reason as the state message (not "Flow run encountered an exception: …"); other errors are raised as
    they are.

    The flow function's annotations are resolved here, in its own module: Prefect validates parameters
    against the wrapper, which lives in this module and could not resolve the flow module's names.
    """
    fn.__annotations__ = get_type_hints(fn, include_extras=True)

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not is_expected(exc):
                raise
            return cast(R, Failed(message=reason(exc), data=exc))

    return run


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


#: A Confluence page id as a flow parameter: ``557058`` and ``"557058"`` are the same page (the CLI's
#: ``--param page_id=557058`` sends a number).
PageId = int | str


def page_key(page_id: PageId) -> str:
    """A page id parameter as the text the API uses.

    Raises:
        ValueError: Not a page id (digits only).
    """
    text = str(page_id).strip()
    if not text.isdigit() or isinstance(page_id, bool):
        raise ValueError(f"a Confluence page id is a number, not {page_id!r}")
    return text


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


class Progress:
    """A progress artifact of the current run, shown (as a bar with a line of text) on its page in the UI."""

    def __init__(self, description: str) -> None:
        self.id = cast(UUID, create_progress_artifact(0.0, description=description))  # sync in a sync flow

    def update(self, percent: float, description: str) -> None:
        """Move the bar to ``percent`` (0–100) and say where the job is."""
        update_progress_artifact(self.id, min(100.0, max(0.0, percent)), description=description)


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
    params = describe_figures(flow_run.parameters or {})
    if params:
        lines.append("Parameters: " + params)
    if state.is_completed():
        result = state.result(raise_on_failure=False)
        figures = describe_figures(result) if isinstance(result, dict) else ""
        if figures:
            lines.append("Figures: " + figures)
    elif state.message:
        lines.append("Reason: " + inert(state.message, 2000))
    ui = PREFECT_UI_URL.value()
    if ui:
        lines.append(f"Details: {ui.rstrip('/')}/runs/flow-run/{flow_run.id}")
    return subject, fit_post("\n".join(lines), limit=16_000)


def _redact(text: str, block: Block) -> str:
    """``text`` scrubbed (whole tokens, every echoed spelling) of the secrets ``block`` holds."""
    forms: set[str] = set()
    for value in block.model_dump().values():
        if isinstance(value, SecretStr):
            forms |= secret_forms(value.get_secret_value())
    return scrub(text, forms)


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


def notify_policy(tags: list[str]) -> str:
    """A run's notification policy: its ``notify:<policy>`` tag, else the Variable/env setting."""
    for tag in tags:
        if tag.startswith("notify:") and tag[7:] in NOTIFY_POLICIES:
            return tag[7:]
    configured = os.environ.get(NOTIFY_ENV) or Variable.get(NOTIFY_VARIABLE, default=None) or DEFAULT_NOTIFY
    if str(configured) not in NOTIFY_POLICIES:
        log.warning("%s=%r is not one of %s; using %s", NOTIFY_VARIABLE, configured, NOTIFY_POLICIES, DEFAULT_NOTIFY)
        return DEFAULT_NOTIFY
    return str(configured)


#: ``did_nothing(result)`` of a job: its completed run did nothing worth a post under the ``changes`` policy.
Quiet = Callable[[Any], bool]


def should_post(policy: str, state: State[Any], did_nothing: Quiet | None) -> bool:
    """Whether a run ending in ``state`` posts under ``policy``; runs that did not complete always do."""
    if not state.is_completed():
        return True
    if policy == "failures":
        return False
    if policy == "always" or did_nothing is None:
        return True
    return not did_nothing(state.result(raise_on_failure=False))


def notify_end(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any], did_nothing: Quiet | None = None) -> None:
    """State hook: post how the run ended. A failing notification is logged, never raised."""
    try:
        reference = notifier_reference()
        if not reference:
            log.info("no notifier configured (%s); not posting", NOTIFIER_VARIABLE)
            return
        policy = notify_policy(flow_run.tags or [])
        if not should_post(policy, state, did_nothing):
            log.info("nothing to notify (policy %s)", policy)
            return
        subject, body = job_message(flow, flow_run, state)
    except Exception as exc:
        log.warning("notification skipped: %s: %s", type(exc).__name__, exc)
        return
    post(reference, subject, body)


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
