"""Day-to-day settings that need no server: the report trigger, crashed-run detection, page ids, the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

from atlasflow.cli import main
from atlasflow.deployments.setup import crash_automation
from atlasflow.flows.common import ENDED_EVENT, JOB_FLOWS, UNREPORTED_WHEN_COMPLETED, page_key

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
    monkeypatch.setenv("T", "secret")
    args = [str(config) if a == "CONFIG" else a for a in command]
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api", PREFECT_CLIENT_MAX_RETRIES: 0}):
        assert main(args) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"atlasflow {command[0]}: server not reachable at http://127.0.0.1:9/api, is it running?")
    assert "\n" not in err and "Traceback" not in err
