"""Read a job run back through the Prefect API: state, message, table artifacts, and the return value.

    python examples/read_results.py 0f7c...-flow-run-id
    python examples/read_results.py --latest jira-bulk-update

Artifacts are the dependable record: they live in the Prefect database, so any machine that can reach the
API can read them. The return value is only readable where the run's result was persisted and its
storage is reachable (by default: local files of the machine that ran it), so it is shown when possible.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowFilter, FlowFilterName
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort


def latest_run(flow_name: str) -> FlowRun:
    """The most recently started run of a flow, e.g. ``jira-bulk-update``."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
    if not runs:
        raise SystemExit(f"no runs of flow {flow_name!r}")
    return runs[0]


def wait_for(flow_run_id: UUID, timeout: float = 900, every: float = 2) -> FlowRun:
    """Poll a run until it is final (Completed, Failed, Crashed, Cancelled) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(flow_run_id)
            if run.state is not None and run.state.is_final():
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"flow run {flow_run_id} still {run.state_name} after {timeout} s")
            time.sleep(every)


def table_artifacts(flow_run_id: UUID) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """``key -> (description, rows)`` of every table artifact the run created."""
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    found = {}
    for artifact in artifacts:
        if artifact.type == "table" and artifact.key:
            data = artifact.data
            rows = json.loads(data) if isinstance(data, str) else data
            found[artifact.key] = (artifact.description or "", rows)
    return found


def show(run: FlowRun, rows: int = 10) -> None:
    """Print what a run did."""
    state = run.state
    print(f"run {run.name} ({run.id}): {run.state_name}")
    if state is not None and state.message:
        print(f"  message: {state.message}")
    for key, (description, table) in table_artifacts(run.id).items():
        print(f"  artifact {key}: {description}")
        for row in table[:rows]:
            print("    " + " | ".join(f"{k}={v}" for k, v in row.items()))
        if len(table) > rows:
            print(f"    ... {len(table) - rows} more rows")
    if state is not None and state.is_completed():
        try:
            print(f"  result: {state.result()}")
        except Exception as exc:  # not persisted (the default), or stored where this machine cannot read
            print(f"  return value not readable here ({type(exc).__name__}); the artifacts hold the outcome")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("flow_run_id", nargs="?", type=UUID)
    parser.add_argument("--latest", metavar="FLOW_NAME", help="the latest run of this flow instead")
    parser.add_argument("--wait", action="store_true", help="wait until the run is final")
    args = parser.parse_args()
    if not args.flow_run_id and not args.latest:
        parser.error("give a flow run id or --latest FLOW_NAME")
    run_id = args.flow_run_id or latest_run(args.latest).id
    with get_client(sync_client=True) as client:
        run = wait_for(run_id) if args.wait else client.read_flow_run(run_id)
    show(run)


if __name__ == "__main__":
    main()
