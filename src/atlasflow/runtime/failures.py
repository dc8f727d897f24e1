"""Expected failure or bug: an expected one ends the run in one line, a bug keeps its traceback.

*Expected* is ``isinstance(exc, AtlasflowError)`` (:mod:`atlasflow.errors`) or one of the few foreign
exceptions in :data:`FOREIGN_EXPECTED`; never decided by the raising module's name or a traceback frame.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast, get_type_hints

from prefect.states import Failed

from atlasflow.errors import AtlasflowError

P = ParamSpec("P")
R = TypeVar("R")

#: Exceptions atlasflow does not define that are still an outcome to report in one line, each with why.
FOREIGN_EXPECTED: dict[type[BaseException], str] = {
    FileNotFoundError: "a path the run was given, or a file it reads by one, does not exist: the message names it",
    PermissionError: "the worker may not read or write a path the run was given: the message names it",
    IsADirectoryError: "a path the run was given names a folder where a file is needed: the message names it",
    NotADirectoryError: "a path the run was given runs through a file where a folder is needed",
}
#: Loggers that log a failed task's or flow's exception with its traceback.
RUN_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")


def is_expected(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure atlasflow reports on purpose (an API's refusal, a bad parameter, a job's
    failed outcome): its message is the whole story. Anything else is a bug, or a failure of something
    atlasflow relies on (Prefect's API, a library), and keeps its traceback."""
    return isinstance(exc, (AtlasflowError, *FOREIGN_EXPECTED))


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


def quiet_expected_tracebacks() -> None:
    """Make Prefect's run loggers (:data:`RUN_LOGGERS`) log expected failures without a traceback.

    Idempotent; called by every job run (:func:`one_line_failures`), never on import.
    """
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoTracebackForExpected) for f in logger.filters):
            logger.addFilter(_NoTracebackForExpected())


def one_line_failures(fn: Callable[P, R]) -> Callable[P, R]:
    """Flow function decorator (under ``@flow``): an expected error ends the run ``Failed`` with its one-line
    reason as the state message (not "Flow run encountered an exception: …"); other errors are raised as
    they are, traceback and all. The run's expected task failures are logged without traceback
    (:func:`quiet_expected_tracebacks`).

    The flow function's annotations are resolved here, in its own module: Prefect validates parameters
    against the wrapper, which lives in this module and could not resolve the flow module's names.
    """
    fn.__annotations__ = get_type_hints(fn, include_extras=True)

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        quiet_expected_tracebacks()
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not is_expected(exc):
                raise
            return cast(R, Failed(message=reason(exc), data=exc))

    return run
