"""Expected failures end a run in one line; a bug, or a failure of Prefect's own API, keeps its traceback."""

from __future__ import annotations

import logging

import pytest
from prefect import flow, task

from atlasflow.errors import ApiError
from atlasflow.runtime.failures import RUN_LOGGERS, _NoTracebackForExpected, one_line_failures
from atlasflow.runtime.ratelimit import PrefectBusy


def raise_in_atlasflow(exc: str) -> None:
    """Raise ``exc`` from code whose module is atlasflow's (as a bug in atlasflow would raise it)."""
    exec(compile(f"raise {exc}", "/srv/atlasflow/formats/excel.py", "exec"), {"__name__": "atlasflow.formats.excel"})


@flow
@one_line_failures
def buggy() -> None:
    raise_in_atlasflow("ValueError('Invalid isoformat string: 2026-13-45')")


@flow
@one_line_failures
def refused() -> None:
    raise ApiError("Jira", "GET", "/rest/api/3/issue/DEMO-9", 404, "Issue does not exist or you do not have permission")


@task(retries=0)
def busy_prefect() -> None:
    raise PrefectBusy("the Prefect API is busy: POST /api/v2/concurrency_limits/increment")


@flow
@one_line_failures
def orchestrator_down() -> None:
    busy_prefect()


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info]


def test_a_bug_in_atlasflow_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    state = buggy(return_state=True)
    assert state.is_failed()
    assert state.message and "encountered an exception" in state.message, state.message
    assert any(isinstance(r.exc_info[1], ValueError) for r in tracebacks(caplog) if r.exc_info)


def test_an_api_error_fails_in_one_line_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    state = refused(return_state=True)
    assert state.is_failed()
    assert state.message == (
        "Jira answered 404 to GET /rest/api/3/issue/DEMO-9: Issue does not exist or you do not have permission"
    )
    assert tracebacks(caplog) == []


def test_prefect_busy_is_reported_as_the_failure_it_is(caplog: pytest.LogCaptureFixture) -> None:
    state = orchestrator_down(return_state=True)
    assert state.is_failed()
    assert state.message and "PrefectBusy" in state.message, state.message
    assert any(isinstance(r.exc_info[1], PrefectBusy) for r in tracebacks(caplog) if r.exc_info)


def test_a_run_installs_the_traceback_filter_once() -> None:
    refused(return_state=True)
    refused(return_state=True)
    for name in RUN_LOGGERS:
        assert sum(isinstance(f, _NoTracebackForExpected) for f in logging.getLogger(name).filters) == 1


def test_a_bad_parameter_fails_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    from atlasflow.flows.confluence_table_sync import confluence_table_sync
    from atlasflow.flows.report_results import report_results

    sync = confluence_table_sync(page_id=1, table=0, key_column="Key", return_state=True)
    assert sync.is_failed() and sync.message == "give exactly one of rows or source"
    report = report_results(confluence_page_id=1, max_rows=10, return_state=True)
    assert report.is_failed()
    assert report.message == "max_rows (at least 1) and archive_page_id go together: give both or neither"
    assert tracebacks(caplog) == []
