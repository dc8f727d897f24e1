"""The end-of-run post: which runs post (the policy), what the post says, and sending it through a block.

Every piece of run-supplied text in a post is made inert, and the text is scrubbed of every secret a client
of this process holds and of the notification block's own.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prefect import Flow
from prefect.blocks.abstract import NotificationBlock
from prefect.blocks.core import Block
from prefect.client.schemas.objects import FlowRun, State
from prefect.settings import PREFECT_UI_URL
from prefect.variables import Variable
from pydantic import SecretStr

from atlasflow.clients.http import redact, scrub, secret_forms
from atlasflow.formats.messages import describe_figures, fit_post, inert

log = logging.getLogger("atlasflow.notify")

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
STATE_ICONS = {"COMPLETED": "✅", "FAILED": "❌", "CRASHED": "💥", "CANCELLED": "⛔", "TIMEDOUT": "⏱️"}

#: ``did_nothing(result)`` of a job: its completed run did nothing worth a post under the ``changes`` policy.
Quiet = Callable[[Any], bool]


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


def scrub_block_secrets(text: str, block: Block) -> str:
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
        log.warning("notification failed: %s: %s", type(exc).__name__, scrub_block_secrets(str(exc), notifier))
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
