"""Shared fixtures: sandboxes on real local HTTP, and one Prefect test harness per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from atlasflow.sandbox.app import Sandbox

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT / "tests" / "samples"


@pytest.fixture(scope="session", autouse=True)
def reports_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reports folder of the session: pytest's temporary base, so every ``tmp_path`` lies inside it."""
    from atlasflow.files import REPORTS_ROOT_ENV

    root = tmp_path_factory.getbasetemp().resolve()
    os.environ[REPORTS_ROOT_ENV] = str(root)
    return root


@pytest.fixture(params=["cloud", "datacenter"])
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """A fresh sandbox per test, once in Cloud and once in Data Center mode."""
    from atlasflow.sandbox.app import Sandbox

    with Sandbox(mode=request.param) as sb:
        yield sb


@pytest.fixture
def cloud_sandbox() -> Iterator[Sandbox]:
    from atlasflow.sandbox.app import Sandbox

    with Sandbox(mode="cloud") as sb:
        yield sb


@pytest.fixture
def dc_sandbox() -> Iterator[Sandbox]:
    from atlasflow.sandbox.app import Sandbox

    with Sandbox(mode="datacenter") as sb:
        yield sb


@pytest.fixture(scope="session")
def samples() -> Path:
    """The recorded Atlassian/Mattermost response samples (``tests/samples``, sources in SOURCES.md)."""
    if not SAMPLES.is_dir():
        pytest.fail(f"reference samples not found at {SAMPLES}")
    return SAMPLES


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long topology tests first: with ``make test``'s two workers one of them starts on those while the
    other works through the rest, instead of both waiting for them at the end."""
    items.sort(key=lambda item: not item.nodeid.startswith("tests/topology/"))
