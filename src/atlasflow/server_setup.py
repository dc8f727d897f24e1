"""``atlasflow setup``: the work pool, priority queues, the shared Jira rate limit, crashed-run detection and
the block types.

Idempotent: running it again brings an existing installation to the same settings. After it,
``prefect deploy --all`` (the deployments of ``prefect.yaml``) and ``prefect worker start --pool atlasflow``
on each worker machine are the whole production setup.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prefect.blocks.notifications import MattermostWebhook
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, PREFECT_CLIENT_RETRY_EXTRA_CODES, temporary_settings
from prefect.workers.process import ProcessWorker

from atlasflow.blocks import ConfluenceCredentials, JiraCredentials, MattermostBot
from atlasflow.runtime.hooks import ENDED_EVENT
from atlasflow.runtime.ratelimit import JIRA_RATE_LIMIT, prefect_retry_budget

POOL = "atlasflow"
POOL_TYPE = "process"
#: Queue name → priority (1 is served first): HIGH, MEDIUM, LOW.
QUEUES = {"high": 1, "medium": 2, "low": 3}
#: The automation that marks a flow run Crashed when its heartbeats stop (its worker machine died).
CRASH_AUTOMATION = "atlasflow: crash runs whose heartbeats stopped"
#: Events after which a run's missing heartbeats are expected: it ended, or it was paused or suspended.
#: A run's last heartbeat can race its final state (sent while the final state is being proposed, it is
#: stamped after it), which would open a new silent window on a finished run; atlasflow's jobs therefore
#: emit ``ENDED_EVENT`` from their state hooks, after the final state is recorded.
QUIET_EVENTS = [
    ENDED_EVENT,
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Cancelled",
    "prefect.flow-run.Crashed",
    "prefect.flow-run.TimedOut",
    "prefect.flow-run.Paused",
    "prefect.flow-run.Suspended",
]
#: Retries of every Prefect API call a flow-run process makes (Prefect's client waits 2, 4, 8 ... s between
#: attempts, each within ±20 % jitter): six retries wait about two minutes in all (:func:`api_retry_budget`).
API_RETRIES = 6
#: What Prefect's client retries besides its own 408, 429, 502, 503 (and connection errors, once it has
#: connected): 500 and 504, what a Prefect server answers while its database is unreachable.
API_RETRY_CODES = (500, 502, 503, 504)


def api_retry_budget() -> float:
    """Seconds a flow run keeps retrying a failing Prefect API call (jitter aside) before it gives up."""
    return prefect_retry_budget(API_RETRIES)


def flow_run_env() -> dict[str, str]:
    """The environment every flow run of the pool starts with (its base job template's ``env`` default, which
    a deployment's ``job_variables.env`` extends key by key): Prefect API calls that fail with a 5xx or a
    connection error are retried for about :func:`api_retry_budget` seconds, so a short outage of the
    Prefect server or of its database is waited out. A run that gives up ends Failed and posts its end
    through its state hooks when the API answers within another such budget; after a longer outage its
    final state cannot be recorded, and the crashed-run automation (:func:`crash_automation`) ends it."""
    return {
        "PREFECT_CLIENT_MAX_RETRIES": str(API_RETRIES),
        "PREFECT_CLIENT_RETRY_EXTRA_CODES": ",".join(map(str, API_RETRY_CODES)),
    }


@contextmanager
def flow_run_settings() -> Iterator[None]:
    """This process's Prefect API calls retried as a flow run's of the pool are (:func:`flow_run_env`): for the
    ``atlasflow`` command, whose flow runs run in its own process. Settings asking for more are kept."""
    retries = max(PREFECT_CLIENT_MAX_RETRIES.value(), API_RETRIES)
    codes = {*PREFECT_CLIENT_RETRY_EXTRA_CODES.value(), *API_RETRY_CODES}
    with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: retries, PREFECT_CLIENT_RETRY_EXTRA_CODES: codes}):
        yield


def pool_job_template(template: dict[str, Any]) -> dict[str, Any]:
    """``template`` (a process pool's base job template) with :func:`flow_run_env` in its ``env`` default;
    other variables an operator set there are kept."""
    wanted = copy.deepcopy(template)
    env = wanted.setdefault("variables", {}).setdefault("properties", {}).setdefault("env", {"type": "object"})
    env["default"] = {**(env.get("default") or {}), **flow_run_env()}
    return wanted


@dataclass(frozen=True)
class SetupOptions:
    """Settings of an installation.

    Attributes:
        pool_limit: Runs at once across the pool.
        jira_requests_per_second: Shared rate of Jira API calls across every flow and worker.
        crash_after_seconds: A running flow run that has sent no heartbeat for this long is marked Crashed.
            Flow runs send one every ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds (180 by default, 30 at
            least), set in the workers' environment; give at least twice that. ``0`` = no detection.
    """

    pool_limit: int = 3
    jira_requests_per_second: float = 10.0
    crash_after_seconds: int = 600


def setup(options: SetupOptions) -> list[str]:
    """Create or update everything; returns what was done, one line each.

    Raises:
        ValueError: A setting out of range, or a pool named ``atlasflow`` that is not a process pool.
    """
    if options.pool_limit < 1:
        raise ValueError("pool_limit must be >= 1")
    if options.jira_requests_per_second <= 0:
        raise ValueError("jira_requests_per_second must be > 0")
    done: list[str] = []
    with get_client(sync_client=True) as client:
        done += ensure_pool(client, options.pool_limit)
        done += ensure_queues(client)
        done += ensure_rate_limit(client, options.jira_requests_per_second)
        done += ensure_crash_detection(client, options.crash_after_seconds)
    for block in (JiraCredentials, ConfluenceCredentials, MattermostWebhook, MattermostBot):
        block.register_type_and_schema()
        done.append(f"block type {block.get_block_type_slug()} registered")
    return done


def ensure_pool(client: SyncPrefectClient, limit: int) -> list[str]:
    """The process work pool with its concurrency limit and its flow runs' environment (:func:`flow_run_env`)."""
    retries = f"Prefect API calls of flow runs retried for ~{api_retry_budget():.0f} s"
    try:
        pool = client.read_work_pool(POOL)
    except ObjectNotFound:
        client.create_work_pool(
            WorkPoolCreate(
                name=POOL,
                type=POOL_TYPE,
                base_job_template=pool_job_template(ProcessWorker.get_default_base_job_template()),
                concurrency_limit=limit,
                description="atlasflow jobs: queues high, medium, low",
            )
        )
        return [f"work pool {POOL} created ({POOL_TYPE}), concurrency limit {limit}, {retries}"]
    if pool.type != POOL_TYPE:
        raise ValueError(f"work pool {POOL} exists with type {pool.type!r}, not {POOL_TYPE!r}: remove or rename it")
    template = pool_job_template(pool.base_job_template or ProcessWorker.get_default_base_job_template())
    client.update_work_pool(POOL, WorkPoolUpdate(concurrency_limit=limit, base_job_template=template))
    return [f"work pool {POOL}: concurrency limit {limit}, {retries}"]


def ensure_queues(client: SyncPrefectClient) -> list[str]:
    """The priority queues; other queues of the pool (``default``) are left alone, served after them."""
    for name, priority in QUEUES.items():
        try:
            queue = client.read_work_queue_by_name(name, work_pool_name=POOL)
            client.update_work_queue(queue.id, priority=priority)
        except ObjectNotFound:
            client.create_work_queue(
                name, priority=priority, work_pool_name=POOL, description=f"atlasflow {name.upper()} priority"
            )
    # Priorities are unique in a pool: the server moved any other queue out of the way. Report what is.
    queues = sorted(client.read_work_queues(work_pool_name=POOL), key=lambda q: q.priority)
    return [f"queue {POOL}/{q.name}: priority {q.priority}" for q in queues]


def ensure_rate_limit(client: SyncPrefectClient, per_second: float) -> list[str]:
    """The global limit every Jira request takes a slot of; slots free at ``per_second``.

    The limit (burst) is the rate rounded up, so rates below 1 per second work too (0.5 = one request
    every two seconds).
    """
    burst = max(1, math.ceil(per_second))
    client.upsert_global_concurrency_limit_by_name(JIRA_RATE_LIMIT, limit=burst, slot_decay_per_second=per_second)
    return [f"rate limit {JIRA_RATE_LIMIT}: {per_second:g} Jira request(s) per second (burst {burst})"]


def crash_automation(crash_after_seconds: int) -> AutomationCore:
    """A proactive trigger: a flow run that sent a heartbeat and then, for ``crash_after_seconds``, neither
    another heartbeat nor a final (or paused) state is set Crashed, so its pool slot is freed and it is
    reported."""
    trigger = EventTrigger(
        match={"prefect.resource.id": "prefect.flow-run.*"},
        after={"prefect.flow-run.heartbeat"},
        expect={"prefect.flow-run.heartbeat", *QUIET_EVENTS},
        for_each={"prefect.resource.id"},
        posture=Posture.Proactive,
        threshold=1,
        within=timedelta(seconds=crash_after_seconds),
    )
    action = ChangeFlowRunState(
        name="Crashed",
        state=StateType.CRASHED,
        force=False,
        message=f"No heartbeat for {crash_after_seconds} s: the process running this flow run is gone "
        "(worker machine lost or process killed).",
    )
    return AutomationCore(
        name=CRASH_AUTOMATION,
        description="Marks flow runs Crashed when their heartbeats stop (set up by atlasflow setup).",
        trigger=trigger,
        actions=[action],
    )


def ensure_crash_detection(client: SyncPrefectClient, crash_after_seconds: int) -> list[str]:
    """Create, update or (with 0) disable the crashed-run automation."""
    existing: list[Any] = client.read_automations_by_name(CRASH_AUTOMATION)
    if crash_after_seconds <= 0:
        for automation in existing:
            client.pause_automation(automation.id)
        return ["crashed-run detection: off" + (" (automation paused)" if existing else "")]
    if crash_after_seconds <= 30:
        raise ValueError("crash_after_seconds must be more than 30 (heartbeats come every 30 s at the most often)")
    wanted = crash_automation(crash_after_seconds)
    if existing:
        client.update_automation(existing[0].id, wanted)
        for duplicate in existing[1:]:
            client.delete_automation(duplicate.id)
    else:
        client.create_automation(wanted)
    return [f"crashed-run detection: a running flow run silent for {crash_after_seconds} s is marked Crashed"]
