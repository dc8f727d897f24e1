"""Flow tests: one Prefect test harness for the session, blocks pointing at a fresh sandbox per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect.blocks.notifications import MattermostWebhook
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.testing.utilities import prefect_test_harness
from prefect.variables import Variable

from blocks import ConfluenceCredentials, JiraCredentials
from flows.common import NOTIFIER_VARIABLE
from sandbox.app import Sandbox

DEMO_USER = "demo@example.com"
DEMO_TOKEN = "sandbox-token"


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    with (
        prefect_test_harness(server_startup_timeout=180),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


def save_blocks(sb: Sandbox, *, token: str = DEMO_TOKEN) -> None:
    JiraCredentials(
        url=sb.jira_url, username=DEMO_USER, token=token, deployment=sb.mode, timeout_seconds=10
    ).save("jira", overwrite=True)
    ConfluenceCredentials(
        url=sb.confluence_url, username=DEMO_USER, token=token, deployment=sb.mode, timeout_seconds=10
    ).save("confluence", overwrite=True)
    port = int(sb.url.rsplit(":", 1)[1])
    MattermostWebhook(hostname="127.0.0.1", port=port, token=sb.mattermost.hook_token, secure=False).save(
        "mattermost", overwrite=True
    )


def start_site(mode: str) -> Iterator[Sandbox]:
    """A fresh sandbox with saved blocks named ``jira``, ``confluence`` and ``mattermost`` pointing at it."""
    with Sandbox(mode=mode) as sb:  # type: ignore[arg-type]
        save_blocks(sb)
        Variable.set(NOTIFIER_VARIABLE, "mattermost-webhook/mattermost", overwrite=True)
        yield sb


@pytest.fixture(params=["cloud", "datacenter"])
def site(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    yield from start_site(request.param)


@pytest.fixture
def cloud_site() -> Iterator[Sandbox]:
    yield from start_site("cloud")


@pytest.fixture
def dc_site() -> Iterator[Sandbox]:
    yield from start_site("datacenter")
