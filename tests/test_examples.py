"""The examples run as a reader runs them.

* ``python examples/trigger_from_python.py`` (direct mode: its own sandbox, Prefect's temporary server) exits 0
  and every step prints what it did; the numbers agree with one another and with the sandbox's data.
* ``examples/trigger_from_cli.sh`` runs against a stand-in ``prefect`` on PATH that records each command and
  answers like ``--watch`` does: every deployment it starts exists in ``prefect.yaml``, every parameter it passes
  is one the flow takes, and what it announces about exit statuses is what it then prints.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import openpyxl
import yaml

from atlasflow.sandbox.jira.site import JiraSite

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = REPO_ROOT / "examples"


def example_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a reader's shell: no Prefect API (the example starts a temporary server), a Prefect
    home of its own, the reports folder in the working directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ATLASFLOW_"))}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        DO_NOT_TRACK="1",
    )
    return env


def low_priority_ops_keys() -> set[str]:
    """What ``project = OPS AND priority = Low`` matches on the sandbox's Cloud site (the example's bulk update)."""
    site = JiraSite.demo("cloud")
    return {key for key, issue in site.issues.items() if issue.project == "OPS" and issue.priority == "Low"}


def test_trigger_from_python_direct_mode_runs_every_step(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "trigger_from_python.py")],
        cwd=tmp_path,
        env=example_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)

    assert lines["permissions"] == "BROWSE_PROJECTS=granted, EDIT_ISSUES=granted, DELETE_ISSUES=granted"
    low = low_priority_ops_keys()
    assert low, "the sandbox has low-priority OPS issues to update"
    assert lines["bulk update, dry run"] == f"would update {len(low)} of {len(low)}; refusal: None"
    assert lines["bulk update"] == f"updated {len(low)} of {len(low)}, failed 0"
    assert lines["delete, dry run"] == (
        "3 matched; refusal: the JQL matches 3 issue(s) but confirm_count is 0 "
        "(check the list a dry run shows, then pass confirm_count=3)"
    )
    assert lines["delete"] == "deleted 3, failed 0"
    state, _, message = lines["delete OPS-1"].partition(" - ")
    assert state == "Failed" and "OPS-1" in message and "sub-task" in message, lines["delete OPS-1"]

    workbook = Path(lines["workbook"])
    assert workbook.is_file() and workbook.is_relative_to(tmp_path / "reports"), workbook
    sheet = openpyxl.load_workbook(workbook, read_only=True).worksheets[0]
    keys = {str(cell) for row in sheet.iter_rows(values_only=True) for cell in row if cell}
    assert "DEMO-1" in keys


STUB_PREFECT = '''#!{python}
"""A stand-in for the prefect CLI: records argv, answers ``deployment run`` with a UUID line and, with --watch,
the exit status the --watch of the real CLI gives for the state named in $STUB_STATES (JSON: deployment -> 0/1)."""
import json, os, sys
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:3] == ["deployment", "run"]:
    print("Created flow run 'stub'.\\nUUID: 00000000-0000-0000-0000-000000000001")
    if "--watch" in sys.argv:
        sys.exit(json.loads(os.environ["STUB_STATES"]).get(sys.argv[3], 0))
'''


def deployment_parameters() -> dict[str, set[str]]:
    """``flow/deployment`` of prefect.yaml -> the parameter names its flow takes."""
    from prefect.flows import load_flow_from_entrypoint

    out: dict[str, set[str]] = {}
    for deployment in yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"]:
        flow = load_flow_from_entrypoint(str(REPO_ROOT / deployment["entrypoint"]))
        out[f"{flow.name}/{deployment['name']}"] = set(flow.parameters.properties)
    return out


def parameters_of(argv: list[str]) -> dict[str, Any]:
    """The parameters a ``prefect deployment run`` command line passes (``--params`` JSON, then each ``--param``,
    a JSON value or, when not JSON, a plain string, as the real CLI reads them)."""
    params: dict[str, Any] = {}
    for flag, value in itertools.pairwise(argv):
        if flag == "--params":
            params.update(json.loads(value))
    for flag, value in itertools.pairwise(argv):
        if flag == "--param":
            key, _, raw = value.partition("=")
            try:
                params[key] = json.loads(raw)
            except json.JSONDecodeError:
                params[key] = raw
    return params


def test_trigger_from_cli_starts_real_deployments_and_says_what_happened(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("prefect", "python"):
        stub = bin_dir / name
        stub.write_text(STUB_PREFECT.format(python=sys.executable))
        stub.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    missing_permission = "jira-permissions-check/permissions-check"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "STUB_LOG": str(log),
        "STUB_STATES": json.dumps({missing_permission: 1}),
    }
    done = subprocess.run(
        ["bash", str(EXAMPLES / "trigger_from_cli.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr

    calls = [json.loads(line) for line in log.read_text().splitlines()]
    started = [argv for argv in calls if argv[:2] == ["deployment", "run"]]
    known = deployment_parameters()
    assert [argv[2] for argv in started] == [
        "jira-export/demo-export",
        "jira-permissions-check/permissions-check",
        "jira-bulk-update/bulk-update",
        "jira-delete-issues/guarded-delete",
    ]
    for argv in started:
        assert set(parameters_of(argv)) <= known[argv[2]], argv
    bulk = parameters_of(started[2])
    assert bulk["jql"] == 'project = "OPS" AND priority = Low' and bulk["dry_run"] is True

    # The run the stub failed is reported as failed, the others as completed: the script reports what it saw.
    statuses = re.findall(r"^(\S+): --watch exited (\d+)", done.stdout, flags=re.MULTILINE)
    assert statuses == [
        ("jira-export/demo-export", "0"),
        ("jira-permissions-check/permissions-check", "1"),
        ("jira-bulk-update/bulk-update", "0"),
    ], done.stdout
    assert "fails (exit 1)" not in done.stdout
    assert ["flow-run", "watch", "00000000-0000-0000-0000-000000000001", "--timeout", "900"] in calls
