"""Flow tests: one Prefect test harness for the session, blocks pointing at a fresh sandbox per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import running_site
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.testing.utilities import prefect_test_harness

from atlasflow.sandbox.app import Sandbox


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
