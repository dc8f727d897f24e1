"""Start latency of deployed runs: scheduled → running, on a real server with a process worker.

A Prefect server (SQLite, its own PREFECT_HOME) and ``atlasflow setup``; the sandbox holds the pages.
Runs alternate between the baseline deployment (a flow importing Prefect only) and a real atlasflow job
(``read-confluence-table``, one Confluence request), one at a time so nothing waits for a pool slot.
For each run: scheduled → Pending (the worker noticed it: polling) and Pending → Running (the flow-run
process started, imported its flow module and loaded its flow). The atlasflow figure is compared with
the baseline's, measured in the same run.

Target: a deployed atlasflow run starts within 1.5× the baseline's scheduled → running time, and importing
its flow module adds at most a quarter of Prefect's own import time (both relative: on a loaded machine
every import is slower).
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RUNS_EACH = 6
QUERY_SECONDS = 2  # the worker's polling interval for this bench (PREFECT_WORKER_QUERY_SECONDS; default 10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise TimeoutError(f"timed out waiting for {what}")


def healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def finished(client: Any, run_id: Any) -> Any:
    run = client.read_flow_run(run_id)
    return run if run.state and run.state.is_final() else None


def phases(client: Any, run_id: Any) -> tuple[float, float]:
    """(scheduled → Pending, Pending → Running) of a finished run, in seconds."""
    states = {s.type.value: s.timestamp for s in client.read_flow_run_states(run_id)}
    run = client.read_flow_run(run_id)
    scheduled = run.expected_start_time
    return (states["PENDING"] - scheduled).total_seconds(), (states["RUNNING"] - states["PENDING"]).total_seconds()


def import_seconds(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip())


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="atlasflow-bench-start-"))
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=api,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",
        DO_NOT_TRACK="1",
        ATLASFLOW_HOME=str(ROOT),
        PREFECT_WORKER_QUERY_SECONDS=str(QUERY_SECONDS),
        ATLASFLOW_NOTIFY="failures",
    )
    prefect = str(Path(sys.executable).with_name("prefect"))
    processes: list[subprocess.Popen[bytes]] = []
    log = open(home / "processes.log", "wb")  # noqa: SIM115 - closed in finally
    try:
        processes.append(
            subprocess.Popen(
                [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        wait_until(lambda: healthy(api), 180, "the server")
        os.environ.update({k: v for k, v in env.items() if k.startswith(("PREFECT_", "ATLASFLOW_"))})
        from prefect.client.orchestration import get_client
        from prefect.deployments import run_deployment

        from atlasflow.demo import save_sandbox_blocks
        from atlasflow.sandbox.app import Sandbox

        subprocess.run(
            [sys.executable, "-m", "atlasflow.cli", "setup", "--crash-after", "0"],
            env=env,
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
        subprocess.run(
            [prefect, "--no-prompt", "deploy", "--all", "--prefect-file", "bench/start_latency.prefect.yaml"],
            env=env,
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
        with Sandbox(mode="cloud") as sb:
            save_sandbox_blocks(sb, prefix="")
            processes.append(
                subprocess.Popen(
                    [prefect, "worker", "start", "--pool", "atlasflow", "--name", "bench"],
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            figures: dict[str, list[tuple[float, float]]] = {"baseline": [], "read-table": []}
            names = {"baseline": "bench-baseline/baseline", "read-table": "read-confluence-table/read-table"}
            with get_client(sync_client=True) as client:
                for i in range(RUNS_EACH * 2):
                    kind = "baseline" if i % 2 == 0 else "read-table"
                    run = run_deployment(names[kind], timeout=0)
                    done = wait_until(lambda run_id=run.id: finished(client, run_id), 180, f"{kind} run {i}")
                    if not done.state.is_completed():
                        raise RuntimeError(f"{kind} run ended {done.state.name}: {done.state.message}")
                    if i >= 2:  # the first of each warms the worker's caches
                        figures[kind].append(phases(client, run.id))
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
    imports = {m: import_seconds(m) for m in ("prefect", "atlasflow.flows.confluence_table_sync")}
    shutil.rmtree(home, ignore_errors=True)

    def median(kind: str, index: int | None = None) -> float:
        values = [sum(p) if index is None else p[index] for p in figures[kind]]
        return statistics.median(values)

    base, ours = median("baseline"), median("read-table")
    print(f"worker polling every {QUERY_SECONDS} s; {len(figures['read-table'])} runs each after one warm-up")
    for kind in figures:
        print(
            f"{kind:>10}: scheduled → running {median(kind):.1f} s "
            f"(scheduled → pending {median(kind, 0):.1f} s, pending → running {median(kind, 1):.1f} s; "
            f"max {max(sum(p) for p in figures[kind]):.1f} s)"
        )
    extra = imports["atlasflow.flows.confluence_table_sync"] - imports["prefect"]
    print(f"import: prefect {imports['prefect']:.1f} s, atlasflow flow module {extra:+.1f} s on top")
    ratio = ours / base if base else float("inf")
    share = extra / imports["prefect"]
    ok = ratio <= 1.5 and share <= 0.25
    print(
        f"atlasflow / baseline start latency: {ratio:.2f}× (target ≤ 1.5×); atlasflow's import {share:.0%} of "
        f"Prefect's (target ≤ 25%): {'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
