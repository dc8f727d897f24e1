"""Day-to-day settings that need no server: the report trigger, crashed-run detection, page ids, the CLI."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

from atlasflow.cli import main
from atlasflow.runtime.hooks import ENDED_EVENT, JOB_FLOWS, UNREPORTED_WHEN_COMPLETED
from atlasflow.runtime.params import page_key
from atlasflow.server_setup import crash_automation

ROOT = Path(__file__).resolve().parents[1]


def report_trigger() -> dict[str, Any]:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    report = next(d for d in spec["deployments"] if d["name"] == "hourly-report")
    return dict(report["triggers"][0])


def test_the_report_runs_after_every_final_state_of_every_job_but_the_inbox() -> None:
    trigger = report_trigger()
    assert set(trigger["expect"]) == {
        f"prefect.flow-run.{s}" for s in ("Completed", "Failed", "Crashed", "Cancelled", "TimedOut")
    }
    flows = next(r for r in trigger["match_related"] if r["prefect.resource.role"] == "flow")
    assert set(flows["prefect.resource.name"]) == set(JOB_FLOWS) - set(UNREPORTED_WHEN_COMPLETED)
    # Debounced: one report per window, started late enough to include every end of the window.
    settle = 30
    assert trigger["posture"] == "Reactive" and trigger["within"] > 0
    assert trigger["schedule_after"] - settle >= trigger["within"]


def test_crash_detection_expects_the_end_event_of_a_run() -> None:
    trigger = crash_automation(600).trigger
    assert ENDED_EVENT in trigger.expect  # type: ignore[attr-defined]
    assert "prefect.flow-run.TimedOut" in trigger.expect  # type: ignore[attr-defined]
    assert trigger.after == {"prefect.flow-run.heartbeat"}  # type: ignore[attr-defined]


@pytest.mark.parametrize(("given", "key"), [(557058, "557058"), ("557058", "557058"), (" 42 ", "42")])
def test_page_ids_are_numbers_or_text(given: int | str, key: str) -> None:
    assert page_key(given) == key


@pytest.mark.parametrize("given", ["DEMO", "", "12a", True, -3])
def test_a_bad_page_id_is_refused(given: Any) -> None:
    with pytest.raises(ValueError, match="page id is a number"):
        page_key(given)


@pytest.mark.parametrize("command", [["setup"], ["configure", "--file", "CONFIG"]])
def test_an_unreachable_server_is_one_line(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("jira: {url: 'https://jira.example.com', token_env: T}\n")
    monkeypatch.setenv("T", "secret-token")
    args = [str(config) if a == "CONFIG" else a for a in command]
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api", PREFECT_CLIENT_MAX_RETRIES: 0}):
        assert main(args) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"atlasflow {command[0]}: server not reachable at http://127.0.0.1:9/api, is it running?")
    assert "\n" not in err and "Traceback" not in err


def test_flow_modules_import_no_heavy_library_they_do_not_need_at_once() -> None:
    """Every deployed run imports its flow module first: pandas (seconds) only where a file is read."""
    import subprocess
    import sys

    code = (
        "import sys, atlasflow.flows.pipeline, atlasflow.flows.job_inbox, atlasflow.flows.jira_maintenance;"
        "print(sorted(m for m in ('pandas', 'openpyxl', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def page_parameters() -> list[tuple[Any, str]]:
    from atlasflow.flows.confluence_table_sync import confluence_table_sync, read_confluence_table
    from atlasflow.flows.job_inbox import run_job_inbox
    from atlasflow.flows.pipeline import pipeline
    from atlasflow.flows.report_results import report_results

    return [
        (read_confluence_table, "page_id"),
        (confluence_table_sync, "page_id"),
        (run_job_inbox, "page_id"),
        (report_results, "confluence_page_id"),
        (pipeline, "page_id"),
        (pipeline, "report_page_id"),
    ]


@pytest.mark.parametrize("value", [557058, "557058"])
def test_every_page_id_parameter_accepts_a_number_or_text(value: int | str) -> None:
    """What ``prefect deployment run … --param page_id=557058`` checks before it creates the run."""
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.schema_tools.validation import validate

    for flow, name in page_parameters():
        schema = parameter_schema(flow.fn).model_dump_for_openapi()
        validate({name: value}, {**schema, "required": []}, raise_on_error=True)


def test_every_flow_validates_its_parameters() -> None:
    """Prefect builds a model of the flow function's parameters on every run; it must resolve every type."""
    from prefect.exceptions import ParameterTypeError

    from atlasflow.flows import jira_maintenance, shell_job
    from atlasflow.flows.jira_export import jira_export

    flows = [f for f, _ in page_parameters()] + [
        jira_export,
        jira_maintenance.jira_permissions_check,
        jira_maintenance.jira_bulk_update,
        jira_maintenance.jira_delete_issues,
        shell_job.shell_job,
    ]
    for flow in flows:
        with contextlib.suppress(ParameterTypeError):  # a required parameter missing: the model was built
            flow.validate_parameters({})
