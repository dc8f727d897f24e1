"""Orchestration flows in the test harness against the sandbox: the pipeline, the job inbox, shell jobs.

Deployments here live in the harness's server on the ``atlasflow`` pool (created by ``deployments.setup``);
no worker runs, so started runs stay Scheduled: enough to see that they were created once, on the right
queue, with the right parameters. Running them on real workers is tests/topology's job.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun, StateType, TaskRun

from atlasflow.flows.job_inbox import (
    DEFAULT_JOB_MAP,
    PRIORITY_QUEUES,
    REQUESTER_TAG,
    Rejected,
    idempotency_key,
    parse_request,
    request_text,
    run_job_inbox,
    start,
)
from atlasflow.flows.pipeline import NOT_RUNNABLE, pipeline
from atlasflow.flows.shell_job import shell_job
from atlasflow.formats.confluence_tables import read_table
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.confluence import EXPORT_SUMMARY_ID, JOB_INBOX_ID, JOB_RESULTS_ID
from atlasflow.server_setup import QUEUES

# --------------------------------------------------------------------------------------------------
# Pipeline


def table(sb: Sandbox, page_id: str, which: int | str) -> list[dict[str, str]]:
    assert sb.confluence is not None
    return read_table(sb.confluence.page(page_id).body, which).rows


def task_runs(flow_run_id: UUID) -> dict[str, TaskRun]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id]))
        )
    steps = {r.name.rsplit("-", 1)[0]: r for r in runs}  # "export-fe1"; subflows have task runs of their own
    return {name: steps[name] for name in ("export", "table-sync", "report") if name in steps}


def child_flow_runs(flow_run_id: UUID) -> list[FlowRun]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
        )


def pipeline_args(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "page_id": EXPORT_SUMMARY_ID,
        "table": "Exported tickets",
        "columns": ["Summary", "Status"],
        "report_page_id": JOB_RESULTS_ID,
        "report_table": "Results",
        "report_watermark_variable": f"test_pipeline_{tmp_path.name}".lower().replace("-", "_"),
        "notifier_block": None,
        "root_tickets": ["DEMO-1"],
        "output_dir": str(tmp_path),
        **overrides,
    }


def test_pipeline_runs_export_then_sync_then_report(cloud_site: Sandbox, tmp_path: Path) -> None:
    state = pipeline(**pipeline_args(tmp_path), return_state=True)

    assert state.is_completed(), state.message
    result = state.result()
    assert set(result) == {"export", "table-sync", "report"}
    assert Path(result["export"]["path"]).is_file()
    assert result["table-sync"]["added"] > 0 and result["table-sync"]["written"]
    keys = {row["Key"] for row in table(cloud_site, EXPORT_SUMMARY_ID, "Exported tickets")}
    assert {"DEMO-2", "DEMO-3"} <= keys
    # The report ran after both: their runs are in the results table.
    reported = {row["Run ID"]: row["Job"] for row in table(cloud_site, JOB_RESULTS_ID, "Results")}
    children = {str(r.id): r for r in child_flow_runs(state.state_details.flow_run_id)}  # type: ignore[arg-type]
    jobs = {str(r.id) for r in children.values() if r.state and r.state.is_completed()}
    assert {reported[run_id] for run_id in jobs if run_id in reported} == {
        "jira-export",
        "confluence-table-sync",
    }
    steps = task_runs(state.state_details.flow_run_id)  # type: ignore[arg-type]
    assert {name: run.state_type for name, run in steps.items()} == dict.fromkeys(
        ["export", "table-sync", "report"], StateType.COMPLETED
    )


def test_a_failed_upstream_stops_the_steps_after_it(cloud_site: Sandbox, tmp_path: Path) -> None:
    assert cloud_site.confluence is not None
    before = cloud_site.confluence.page(EXPORT_SUMMARY_ID).number
    results_before = table(cloud_site, JOB_RESULTS_ID, "Results")

    state = pipeline(**pipeline_args(tmp_path, root_tickets=["NOPE-404"]), return_state=True)

    assert state.type == StateType.FAILED
    assert state.message and state.message.startswith("step export failed")
    assert "NOPE-404" in state.message and "table-sync was not run" in state.message
    steps = task_runs(state.state_details.flow_run_id)  # type: ignore[arg-type]
    assert steps["export"].state_type == StateType.FAILED
    for name in ("table-sync", "report"):
        skipped = steps[name].state
        assert skipped is not None and skipped.type == StateType.CANCELLED and skipped.name == NOT_RUNNABLE
        assert skipped.message and skipped.message.startswith("skipped because upstream")
    assert steps["table-sync"].state and "upstream export failed" in (steps["table-sync"].state.message or "")
    assert steps["report"].state and "upstream table-sync" in (steps["report"].state.message or "")
    # Only the export ran as a job; nothing was written.
    names = {r.name for r in child_flow_runs(state.state_details.flow_run_id)}  # type: ignore[arg-type]
    assert len(names) == 1
    assert cloud_site.confluence.page(EXPORT_SUMMARY_ID).number == before
    assert table(cloud_site, JOB_RESULTS_ID, "Results") == results_before


# --------------------------------------------------------------------------------------------------
# Job inbox


def runs_of(deployment_id: UUID) -> list[FlowRun]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id={"any_": [deployment_id]})  # type: ignore[arg-type]
        )


def inbox_rows(sb: Sandbox) -> dict[str, dict[str, str]]:
    return {row["Request"]: row for row in table(sb, JOB_INBOX_ID, 0)}


def test_inbox_starts_each_request_once_on_its_priority_queue(
    site: Sandbox, inbox_deployments: dict[str, UUID]
) -> None:
    export_runs_before = {r.id for r in runs_of(inbox_deployments["jira-export/demo-export"])}

    first = run_job_inbox(page_id=JOB_INBOX_ID)

    assert first["started"] == 2 and first["rejected"] == 2 and first["not_started"] == 0
    rows = inbox_rows(site)
    runs = {r.id: r for d in inbox_deployments.values() for r in runs_of(d)}
    req1, req2 = runs[UUID(rows["REQ-1"]["Run ID"])], runs[UUID(rows["REQ-2"]["Run ID"])]
    assert req1.work_queue_name == "high" and req1.parameters["root_tickets"] == ["DEMO-1"]
    assert req1.deployment_id == inbox_deployments["jira-export/demo-export"]
    asked = request_text(rows["REQ-1"])
    assert req1.idempotency_key == idempotency_key(site.confluence_url, JOB_INBOX_ID, "REQ-1", asked)
    assert req2.work_queue_name == "medium" and req2.parameters["page_id"] == "557061"
    assert req2.deployment_id == inbox_deployments["confluence-table-sync/table-sync"]
    assert rows["REQ-1"]["State"] == rows["REQ-2"]["State"] == "Scheduled · requested by Demo Admin"
    assert f"{REQUESTER_TAG}Demo Admin" in req1.tags
    # Bad rows stay, with the reason, and no run.
    assert rows["REQ-3"]["Run ID"] == "" and rows["REQ-3"]["State"].startswith("Rejected: unknown job 'send_fax'")
    assert rows["REQ-4"]["Run ID"] == "" and rows["REQ-4"]["State"].startswith(
        "Rejected: Parameters are not valid JSON"
    )

    assert site.confluence is not None
    version = site.confluence.page(JOB_INBOX_ID).number
    second = run_job_inbox(page_id=JOB_INBOX_ID)

    assert second["started"] == 0 and second["already_started"] == 2 and second["rejected"] == 2
    assert inbox_rows(site) == rows
    assert site.confluence.page(JOB_INBOX_ID).number == version  # nothing changed, nothing written
    export_runs = {r.id for r in runs_of(inbox_deployments["jira-export/demo-export"])} - export_runs_before
    assert export_runs == {req1.id}


def test_inbox_after_a_crash_before_the_write_back_reuses_the_run(
    cloud_site: Sandbox, inbox_deployments: dict[str, UUID]
) -> None:
    row = inbox_rows(cloud_site)["REQ-1"]
    request = parse_request(row, DEFAULT_JOB_MAP)
    # A previous inbox run started REQ-1 and died before writing the Run ID into the page.
    lost_id = start(cloud_site.confluence_url, JOB_INBOX_ID, request).run_id
    assert inbox_rows(cloud_site)["REQ-1"]["Run ID"] == ""

    result = run_job_inbox(page_id=JOB_INBOX_ID)

    assert inbox_rows(cloud_site)["REQ-1"]["Run ID"] == lost_id
    assert result["started"] == 1 and result["already_started"] == 1  # REQ-2 started here; REQ-1 found
    with get_client(sync_client=True) as client:
        same_key = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["demo-export"])),
            flow_filter=FlowFilter(name=FlowFilterName(any_=["jira-export"])),
        )
    key = idempotency_key(cloud_site.confluence_url, JOB_INBOX_ID, "REQ-1", request.asked)
    assert [r.id for r in same_key if r.idempotency_key == key] == [UUID(lost_id)]


def test_inbox_marks_a_missing_deployment_and_refreshes_states(
    dc_site: Sandbox, inbox_deployments: dict[str, UUID]
) -> None:
    job_map = {
        "jira_export": "jira-export/no-such-deployment",
        "confluence_table_sync": "confluence-table-sync/table-sync",
    }

    result = run_job_inbox(page_id=JOB_INBOX_ID, job_map=job_map)

    rows = inbox_rows(dc_site)
    assert result["started"] == 1 and result["rejected"] == 3
    assert rows["REQ-1"]["State"] == "Rejected: no deployment 'jira-export/no-such-deployment' on this Prefect server"
    # The run finishes elsewhere (here: set by hand); the next inbox run shows its new state in the row.
    with get_client(sync_client=True) as client:
        from prefect.states import Cancelled

        client.set_flow_run_state(rows["REQ-2"]["Run ID"], Cancelled(), force=True)
    refreshed = run_job_inbox(page_id=JOB_INBOX_ID, job_map=job_map)
    assert refreshed["refreshed"] == 1 and refreshed["started"] == 0
    assert inbox_rows(dc_site)["REQ-2"]["State"] == "Cancelled · requested by Demo Admin"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"Job": "send_fax", "Parameters": "{}", "Priority": "low"}, "unknown job 'send_fax'"),
        ({"Job": "jira_export", "Parameters": '{"a": ', "Priority": "low"}, "Parameters are not valid JSON"),
        (
            {"Job": "jira_export", "Parameters": "[1, 2]", "Priority": "low"},
            "must be a JSON object, not list",
        ),
        ({"Job": "jira_export", "Parameters": "{}", "Priority": "urgent"}, "unknown priority 'urgent'"),
    ],
)
def test_bad_requests_are_rejected_with_their_reason(row: dict[str, str], reason: str) -> None:
    with pytest.raises(Rejected, match=reason):
        parse_request({"Request": "R", **row}, DEFAULT_JOB_MAP)


def test_requests_read_loosely() -> None:
    request = parse_request({"Request": "R", "Job": " Jira-Export ", "Parameters": "", "Priority": ""}, DEFAULT_JOB_MAP)
    assert request.deployment == "jira-export/demo-export" and request.parameters == {"max_depth": 10}  # the cap
    assert request.queue == "medium"
    assert set(PRIORITY_QUEUES.values()) == set(QUEUES)


# --------------------------------------------------------------------------------------------------
# Shell jobs


def test_shell_job_returns_exit_code_and_last_lines(tmp_path: Path) -> None:
    result = shell_job(
        'echo one; echo two >&2; echo "$GREETING from $(pwd)"', cwd=str(tmp_path), env={"GREETING": "hello"}
    )
    assert result["exit_code"] == 0
    assert result["output"] == ["one", "two", f"hello from {tmp_path}"]


def test_shell_job_fails_with_the_exit_code(tmp_path: Path) -> None:
    state = shell_job("echo about to fail; exit 3", retries=0, return_state=True)
    assert state.type == StateType.FAILED
    assert state.message and "exited with code 3" in state.message and "about to fail" in state.message


def test_shell_job_retries_a_failed_command(tmp_path: Path) -> None:
    marker = tmp_path / "tried"
    command = f'if [ -e "{marker}" ]; then echo second try; else touch "{marker}"; echo first try; exit 1; fi'
    result = shell_job(command, retries=1, retry_delay_seconds=0)
    assert result["output"] == ["second try"]


def test_shell_job_times_out_and_stops_the_process_tree(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    started = time.monotonic()
    state = shell_job(f'echo started; sleep 60 & echo $! > "{pid_file}"; wait', timeout_seconds=1, return_state=True)
    assert time.monotonic() - started < 20
    assert state.type == StateType.FAILED and state.name == "TimedOut"
    assert state.message and "timed out after 1 s" in state.message
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the command's child process outlived the timeout"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
