"""Flow tests: one Prefect test harness for the session, blocks pointing at a fresh sandbox per test."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest
from helpers import running_site
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.testing.utilities import prefect_test_harness

from atlasflow.flows.confluence_table_sync import confluence_table_sync
from atlasflow.flows.jira_export import jira_export
from atlasflow.runtime.ratelimit import JIRA_RATE_LIMIT
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.confluence import TEAM_ROSTER_ID
from atlasflow.server_setup import POOL, SetupOptions, setup


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    with (
        prefect_test_harness(server_startup_timeout=180),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


@pytest.fixture(params=["cloud", "datacenter"])
def site(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    with running_site(request.param) as sb:
        yield sb


@pytest.fixture
def cloud_site() -> Iterator[Sandbox]:
    with running_site("cloud") as sb:
        yield sb


@pytest.fixture
def dc_site() -> Iterator[Sandbox]:
    with running_site("datacenter") as sb:
        yield sb


@pytest.fixture(scope="module")
def inbox_deployments() -> Iterator[dict[str, UUID]]:
    """The pool and queues as ``atlasflow setup`` makes them, and the deployments the default job map names, by
    ``flow-name/deployment-name``."""
    setup(SetupOptions(pool_limit=3))
    ids = {
        "jira-export/demo-export": jira_export.to_deployment(
            name="demo-export",
            work_pool_name=POOL,
            work_queue_name="medium",
            parameters={"output_dir": "reports"},
        ).apply(),
        "confluence-table-sync/table-sync": confluence_table_sync.to_deployment(
            name="table-sync",
            work_pool_name=POOL,
            work_queue_name="medium",
            parameters={"page_id": TEAM_ROSTER_ID, "table": 0},
        ).apply(),
    }
    yield ids
    with get_client(sync_client=True) as client:  # later tests must not be rate limited by this module's setup
        client.delete_global_concurrency_limit_by_name(JIRA_RATE_LIMIT)
