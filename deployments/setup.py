"""``atlasflow setup``: the work pool, priority queues, the shared Jira rate limit and the block types.

Idempotent: running it again brings an existing installation to the same settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect.blocks.notifications import MattermostWebhook
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.exceptions import ObjectNotFound
from prefect.workers.process import ProcessWorker

from blocks import ConfluenceCredentials, JiraCredentials
from blocks.credentials import JIRA_RATE_LIMIT

POOL = "atlasflow"
#: Queue name → priority (1 is served first), as the original HIGH/MEDIUM/LOW queue.
QUEUES = {"high": 1, "medium": 2, "low": 3}


@dataclass(frozen=True)
class SetupOptions:
    """Settings of an installation.

    Attributes:
        pool_limit: Runs at once across the pool (the original ``max_task_threads``).
        jira_requests_per_second: Shared rate of Jira API calls across every flow and worker.
    """

    pool_limit: int = 3
    jira_requests_per_second: float = 10.0


def setup(options: SetupOptions) -> list[str]:
    """Create or update everything; returns what was done, one line each."""
    done: list[str] = []
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(POOL)
            client.update_work_pool(POOL, WorkPoolUpdate(concurrency_limit=options.pool_limit))
            done.append(f"work pool {POOL}: concurrency limit {options.pool_limit}")
        except ObjectNotFound:
            client.create_work_pool(
                WorkPoolCreate(
                    name=POOL,
                    type="process",
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                    concurrency_limit=options.pool_limit,
                    description="atlasflow jobs",
                )
            )
            done.append(f"work pool {POOL} created (process), concurrency limit {options.pool_limit}")
        for name, priority in QUEUES.items():
            try:
                queue = client.read_work_queue_by_name(name, work_pool_name=POOL)
                client.update_work_queue(queue.id, priority=priority)
            except ObjectNotFound:
                client.create_work_queue(name, priority=priority, work_pool_name=POOL)
            done.append(f"queue {POOL}/{name}: priority {priority}")
        rate = max(1, round(options.jira_requests_per_second))
        client.upsert_global_concurrency_limit_by_name(JIRA_RATE_LIMIT, limit=rate, slot_decay_per_second=rate)
        done.append(f"rate limit {JIRA_RATE_LIMIT}: {rate} Jira request(s) per second")
    for block in (JiraCredentials, ConfluenceCredentials, MattermostWebhook):
        block.register_type_and_schema()
        done.append(f"block type {block.get_block_type_slug()} registered")
    return done
