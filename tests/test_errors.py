"""One exception tree: every error atlasflow raises on purpose is an AtlasflowError, drawn in errors.py's docstring,
and "expected" (one line, no traceback) means exactly that."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import atlasflow
from atlasflow import errors
from atlasflow.errors import (
    ApiError,
    AtlasflowError,
    AuthenticationError,
    ConfigurationError,
    Conflict,
    NotFound,
    PermissionDenied,
    api_error,
)


def atlasflow_modules() -> list[str]:
    """Every installed module of atlasflow except the sandbox (a stand-in server, not atlasflow's own errors)."""
    names = [m.name for m in pkgutil.walk_packages(atlasflow.__path__, "atlasflow.")]
    return [n for n in names if not n.startswith("atlasflow.sandbox")]


def public_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in atlasflow_modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and not attr.startswith("_")
            ):
                found[f"{name}.{attr}"] = value
    return found


def test_every_public_exception_is_on_the_tree_and_drawn_in_its_docstring() -> None:
    from atlasflow.runtime.ratelimit import PrefectBusy

    found = public_exceptions()
    assert len(found) >= 25, sorted(found)
    outside = {q: c for q, c in found.items() if not issubclass(c, AtlasflowError)}
    # The orchestrator being busy is not an outcome atlasflow words: it keeps its traceback.
    assert outside == {"atlasflow.runtime.ratelimit.PrefectBusy": PrefectBusy}
    doc = errors.__doc__ or ""
    undrawn = sorted(q for q, c in found.items() if c is not PrefectBusy and f" {c.__name__}" not in doc)
    assert undrawn == []


def test_classes_that_were_value_or_runtime_errors_still_are() -> None:
    from atlasflow.configure import ConfigError
    from atlasflow.files import OutsideReportsFolder
    from atlasflow.flows.delivery import DeliveryError
    from atlasflow.flows.inbox_access import Rejected
    from atlasflow.flows.inbox_rules import RequestRefused
    from atlasflow.flows.shell_job import ShellCommandFailed, ShellTimeout
    from atlasflow.formats.sources import SourceError

    for cls in (ConfigError, OutsideReportsFolder, Rejected, RequestRefused, SourceError):
        assert issubclass(cls, ValueError) and issubclass(cls, ConfigurationError), cls
    for cls in (DeliveryError, ShellCommandFailed, ShellTimeout):
        assert issubclass(cls, RuntimeError) and issubclass(cls, errors.JobFailed), cls


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, AuthenticationError), (403, PermissionDenied), (404, NotFound), (409, Conflict), (400, ApiError)],
)
def test_a_final_refusal_is_the_kind_its_status_says(status: int, kind: type[ApiError]) -> None:
    error = api_error("Jira", "GET", "/rest/api/3/issue/X-1", status, "no")
    assert type(error) is kind
    assert str(error) == f"Jira answered {status} to GET /rest/api/3/issue/X-1: no"


def raised_in(module: str, exc: str) -> BaseException:
    """``exc`` raised by code whose module is ``module`` (as a bug in that module would raise it)."""
    with pytest.raises(BaseException) as caught:
        exec(compile(f"raise {exc}", f"/srv/{module.replace('.', '/')}.py", "exec"), {"__name__": module})
    return caught.value


def test_expected_is_isinstance_not_where_it_was_raised() -> None:
    from atlasflow.runtime.failures import is_expected
    from atlasflow.runtime.ratelimit import PrefectBusy

    assert is_expected(ApiError("Jira", "GET", "/rest/api/3/search/jql", 400, "bad JQL"))
    assert is_expected(ConfigurationError("give a project key"))
    # a plain ValueError from atlasflow's own code is a bug: its traceback is kept
    assert not is_expected(raised_in("atlasflow.flows.report_results", "ValueError('Invalid isoformat string')"))
    assert not is_expected(raised_in("atlasflow.formats.excel", "KeyError('Summary')"))
    # the Prefect API answering 503 is not an outcome atlasflow words, wherever it was noticed
    assert not is_expected(PrefectBusy("the Prefect API is busy: POST /api/v2/concurrency_limits/increment"))


def test_importing_atlasflow_changes_no_logger() -> None:
    """The filter that drops tracebacks of expected failures is installed by a run, not by an import."""
    code = (
        "import logging, pkgutil, importlib, atlasflow\n"
        "for m in pkgutil.walk_packages(atlasflow.__path__, 'atlasflow.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(sum(len(logging.getLogger(n).filters) for n in ('prefect.task_runs', 'prefect.flow_runs')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "0"


def test_a_channel_reference_without_a_team_is_a_configuration_error() -> None:
    from atlasflow.clients.http import ApiClient
    from atlasflow.clients.mattermost import MattermostClient

    client = MattermostClient(ApiClient("Mattermost", "http://127.0.0.1:9"))  # refused before any request
    with pytest.raises(ConfigurationError, match="give team-name/channel-name"):
        client.channel("reports")
