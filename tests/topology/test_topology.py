"""The production topology, for real: ``prefect server start`` on a fresh PostgreSQL database, ``atlasflow
setup``, ``prefect deploy``, process workers started with ``prefect worker start --pool atlasflow``.

Shown here:

* priorities: with the pool limit at 1, runs waiting on ``high`` start before runs queued earlier on ``low``;
* the pool limit: no two runs ever overlap (recorded by the flows themselves, and by the server);
* crashed runs: a run whose worker machine dies (worker and flow-run process killed) is marked Crashed by
  the heartbeat automation ``atlasflow setup`` creates, and a rerun of it on a new worker succeeds; a
  completed run whose last heartbeat is stamped after its final state is never touched (its end event),
  while a control run without the end event is fired on;
* events: a deployment with the production ``prefect.yaml``'s trigger runs when another one completes;
* the real ``prefect.yaml``: every deployment deploys (entrypoints import, queues exist) with its schedules
  and trigger, and ``atlasflow setup`` run again changes nothing.

The test flows (``topo_flows.py``) sleep and record when they ran; no sandbox is needed.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from pg_server import Postgres
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter, EventResourceFilter
from prefect.states import Scheduled

from atlasflow.flows.job_inbox import DEFAULT_JOB_MAP
from atlasflow.server_setup import POOL, QUEUES, ensure_crash_detection, ensure_pool

pytestmark = pytest.mark.topology

# --- the topology: database, server, workers --------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
#: Heartbeats as often as Prefect allows, and the crashed-run automation just above that.
HEARTBEAT_SECONDS = 30
CRASH_AFTER_SECONDS = 45


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@dataclass
class Topology:
    """The running server and the processes started for it; ``env`` points a subprocess at the server."""

    api_url: str
    home: Path
    logs: Path
    records: Path
    database: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def under(cls, root: Path, database: str, port: int) -> Topology:
        """A topology whose server will listen on ``port`` of 127.0.0.1, its files in new folders of ``root``."""
        topo = cls(f"http://127.0.0.1:{port}/api", root / "prefect-home", root / "logs", root / "records", database)
        for directory in (topo.home, topo.logs, topo.records):
            directory.mkdir()
        return topo

    @property
    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        return {
            **base,
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "ATLASFLOW_HOME": str(REPO_ROOT),
            "TOPO_RECORD_DIR": str(self.records),
        }

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start a process in its own session (pid = process-group id), output to ``logs/<name>.log``."""
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - the process owns it
        process = subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            env=env or self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes[name] = process
        return process

    def run(self, args: list[str], timeout: float = 120, env: dict[str, str] | None = None) -> str:
        """Run a command against the server; fail with its output when it fails."""
        done = subprocess.run(
            args, cwd=REPO_ROOT, env=env or self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            pytest.fail(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done.stdout

    def start_worker(self, name: str, limit: int | None = None) -> subprocess.Popen[bytes]:
        """A process worker on the pool; ``limit``: the most flow runs it runs at once (``--limit``)."""
        env = {
            **self.env,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS),
        }
        return self.spawn(
            name,
            [prefect_cli(), "worker", "start", "--pool", "atlasflow", "--name", name, "--type", "process"]
            + (["--limit", str(limit)] if limit else []),
            env,
        )

    def kill_group(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def stop(self, name: str, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds."""
        process = self.processes.get(name)
        if process is None or process.poll() is not None:
            _reap_group(process)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        _reap_group(process)

    def record(self, label: str) -> dict[str, Any] | None:
        path = self.records / f"{label}.json"
        try:
            return dict(json.loads(path.read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def kill_recorded_flow_processes(self) -> None:
        """Flow-run processes run in sessions of their own: stop any the tests left (by recorded pid)."""
        for path in self.records.glob("*.json"):
            pid = json.loads(path.read_text()).get("pid")
            if pid and _is_flow_process(int(pid)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(os.getpgid(int(pid)), signal.SIGKILL)


def _reap_group(process: subprocess.Popen[bytes] | None) -> None:
    """Children left in the group (the leader already gone) are killed too."""
    if process is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def _is_flow_process(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"prefect" in cmdline


def prefect_cli() -> str:
    return str(Path(sys.executable).with_name("prefect"))


def load_yaml(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, postgres: Postgres) -> Iterator[Topology]:
    """Fresh database (with ``pg_trgm``) on the ``postgres`` fixture's server, ``prefect server start`` on it,
    ``atlasflow setup --pool-limit 1``, no worker yet."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    root = tmp_path_factory.mktemp("topology")
    database = f"atlasflow_topo_{secrets.token_hex(4)}"
    try:
        postgres.create_database(database)
    except Exception as exc:
        pytest.fail(f"cannot create a database on {postgres.origin} (trust auth, may create databases): {exc}")
    port = free_port()
    topo = Topology.under(root, database, port)
    try:
        server_env = {
            **topo.env,
            "PREFECT_API_DATABASE_CONNECTION_URL": postgres.url(database, "postgresql+asyncpg"),
            "PREFECT_SERVER_UI_ENABLED": "false",
        }
        server = topo.spawn(
            "server",
            [prefect_cli(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            server_env,
        )
        wait_until(lambda: server.poll() is not None or _healthy(topo.api_url), 120, "the server's /api/health")
        if server.poll() is not None:
            log = (topo.logs / "server.log").read_text()[-3000:]
            pytest.fail(f"prefect server exited {server.returncode}:\n{log}")
        topo.run([sys.executable, "-m", "atlasflow.cli", "setup", "--pool-limit", "1"])
        with temporary_settings(updates={PREFECT_API_URL: topo.api_url}):
            yield topo
    finally:
        for name in [n for n in topo.processes if n != "server"]:
            topo.stop(name)
        topo.kill_recorded_flow_processes()
        topo.stop("server")
        postgres.drop_database(database)


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


# --- the tests -------------------------------------------------------------------------------------

PRODUCTION_YAML = REPO_ROOT / "prefect.yaml"
#: Deployment names the examples and the job inbox start by name.
NAMED_ELSEWHERE = {
    "jira-export/demo-export",
    "jira-bulk-update/bulk-update",
    "jira-delete-issues/guarded-delete",
    "jira-permissions-check/permissions-check",
    "report-results/hourly-report",
    *DEFAULT_JOB_MAP.values(),
}


def production_trigger(upstream_flow: str) -> dict[str, Any]:
    """The report's trigger from the real prefect.yaml, pointed at another flow and without delay."""
    spec = load_yaml(PRODUCTION_YAML)
    report = next(d for d in spec["deployments"] if d["name"] == "hourly-report")
    trigger = copy.deepcopy(report["triggers"][0])
    for related in trigger["match_related"]:
        if related.get("prefect.resource.role") == "flow":
            related["prefect.resource.name"] = upstream_flow
    trigger.update(name="topology: downstream after upstream", schedule_after=0)
    return dict(trigger)


@pytest.fixture(scope="module")
def deployed(topology: Topology) -> Topology:
    """The test deployments (tests/topology/prefect.yaml + the production trigger), via ``prefect deploy``."""
    spec = load_yaml(HERE / "prefect.yaml")
    for deployment in spec["deployments"]:
        if deployment["name"] == "downstream":
            deployment["triggers"] = [production_trigger("topo-upstream")]
    path = topology.home / "topology-prefect.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    topology.run([prefect_cli(), "--no-prompt", "deploy", "--all", "--prefect-file", str(path)])
    with get_client(sync_client=True) as client:
        ensure_crash_detection(client, CRASH_AFTER_SECONDS)
    return topology


def start(deployment: str, **parameters: Any) -> FlowRun:
    """Create a run of a deployment, not waiting for it."""
    run: FlowRun = run_deployment(deployment, parameters=parameters, timeout=0)  # type: ignore[assignment]
    return run


def read_run(run_id: UUID) -> FlowRun:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id)


def final(run_id: UUID) -> FlowRun | None:
    run = read_run(run_id)
    return run if run.state and run.state.is_final() else None


def one_worker(topology: Topology, name: str) -> None:
    """Exactly one worker running: the one named (started if needed)."""
    for other in [n for n in topology.processes if n.startswith("worker") and n != name]:
        topology.stop(other)
    process = topology.processes.get(name)
    if process is None or process.poll() is not None:
        topology.start_worker(name)


def test_high_queue_runs_first_and_pool_limit_holds(deployed: Topology) -> None:
    labels = {"L1": "low", "L2": "low", "H1": "high", "H2": "high"}
    runs: dict[str, FlowRun] = {}
    for label, queue in labels.items():  # queued in this order, while no worker is running
        runs[label] = start(f"topo-sleeper/{queue}", label=label, seconds=1)
        time.sleep(0.05)
    assert {label: run.work_queue_name for label, run in runs.items()} == labels

    one_worker(deployed, "worker-1")
    done: dict[str, FlowRun] = {}
    for label, run in runs.items():
        done[label] = wait_until(functools.partial(final, run.id), 240, f"run {label}")

    assert {label: run.state_type for label, run in done.items()} == dict.fromkeys(runs, StateType.COMPLETED)
    records = {label: deployed.record(label) or {} for label in runs}
    assert all("end" in r for r in records.values()), records
    order = sorted(records, key=lambda label: float(records[label]["start"]))
    assert order[:2] == ["H1", "H2"] and set(order[2:]) == {"L1", "L2"}, order
    # Pool limit 1: never two at once, as the flows recorded it and as the server saw it.
    recorded = sorted((float(r["start"]), float(r["end"])) for r in records.values())
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(recorded)), recorded
    served = sorted((r.start_time, r.end_time) for r in done.values() if r.start_time and r.end_time)
    assert len(served) == len(done)
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(served)), served


def heartbeat_seen(run_id: UUID) -> bool:
    events = EventFilter(
        event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
        resource=EventResourceFilter(id=[f"prefect.flow-run.{run_id}"]),
    )
    with get_client(sync_client=True) as client:
        return bool(client.read_events(filter=events, limit=1).events)


@pytest.mark.timeout(600)
def test_crash_detection_marks_a_lost_run_and_never_a_completed_one(deployed: Topology) -> None:
    """A run whose worker machine is lost ends Crashed and reruns; in the same automation window, a completed
    run whose last heartbeat was stamped after its final state is left alone thanks to atlasflow's end event,
    while the control run (the same late heartbeat, no end event) shows the window would have fired."""
    with get_client(sync_client=True) as client:
        ensure_pool(client, 3)  # the lost run holds its slot until it is marked: let the others go on
    one_worker(deployed, "worker-2")
    marker = deployed.records / "victim.marker"
    victim = start("topo-sleeper/victim", label="V", seconds=1, crash_marker=str(marker))
    protected, control = start("topo-finisher/protected"), start("topo-finisher-unprotected/unprotected")
    record = wait_until(lambda: deployed.record("V"), 180, "the victim run to start")
    for run in (protected, control):
        done = wait_until(lambda run_id=run.id: final(run_id), 180, "the finisher runs")
        assert done.state_type == StateType.COMPLETED, done.state
    wait_until(lambda: heartbeat_seen(victim.id), 60, "the victim's first heartbeat at the server")

    # The worker machine is lost: the worker, and the flow-run process (which has a session of its own).
    deployed.kill_group("worker-2")
    os.killpg(os.getpgid(int(record["pid"])), signal.SIGKILL)
    killed = time.monotonic()
    assert read_run(victim.id).state_type == StateType.RUNNING  # nobody left to say otherwise
    deployed.start_worker("worker-3")

    crashed = wait_until(lambda: final(victim.id), CRASH_AFTER_SECONDS + 90, "the run to be marked Crashed")
    assert crashed.state_type == StateType.CRASHED, crashed.state
    assert crashed.state and "No heartbeat" in (crashed.state.message or "")
    print(f"marked Crashed {time.monotonic() - killed:.0f} s after the kill")
    fired = wait_until(lambda: crash_actions(control.id), 90, "the control's misfire")
    assert "prefect.automation.action.triggered" in fired
    ended = read_run(protected.id).end_time
    assert ended is not None
    time.sleep(max(0.0, (ended - datetime.now(UTC)).total_seconds() + CRASH_AFTER_SECONDS + 15))
    assert crash_actions(protected.id) == []  # its silent window has passed, untouched
    assert read_run(protected.id).state_type == read_run(control.id).state_type == StateType.COMPLETED

    # A rerun (the UI's Retry: the same run scheduled again) succeeds on the new worker.
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(victim.id, Scheduled(), force=True)
    rerun = wait_until(lambda: final(victim.id), 120, "the rerun")
    assert rerun.state_type == StateType.COMPLETED, rerun.state
    assert rerun.run_count >= 2
    assert "end" in (deployed.record("V") or {})


def crash_actions(run_id: UUID) -> list[str]:
    """The crashed-run automation's actions aimed at a run (``prefect.automation.action.*`` events)."""
    events = EventFilter(
        event=EventNameFilter(prefix=["prefect.automation.action."]),
        related=EventRelatedFilter(id=[f"prefect.flow-run.{run_id}"]),
    )
    with get_client(sync_client=True) as client:
        return [e.event for e in client.read_events(filter=events, limit=50).events]


def test_deployment_trigger_runs_downstream_when_upstream_completes(deployed: Topology) -> None:
    one_worker(deployed, "worker-3")
    upstream = start("topo-upstream/upstream")
    done = wait_until(lambda: final(upstream.id), 120, "the upstream run")
    assert done.state_type == StateType.COMPLETED

    def downstream_completed() -> FlowRun | None:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["topo-downstream"])))
        return next((r for r in runs if r.state and r.state.is_completed()), None)

    downstream = wait_until(downstream_completed, 120, "the triggered downstream run")
    assert downstream.created_by and downstream.created_by.type == "AUTOMATION"
    assert downstream.start_time and done.end_time and downstream.start_time >= done.end_time
    ran = deployed.record("downstream") or {}
    assert ran.get("start", 0) >= (deployed.record("upstream") or {})["end"]


def test_production_prefect_yaml_deploys_and_setup_is_idempotent(deployed: Topology) -> None:
    for name in [n for n in deployed.processes if n.startswith("worker")]:
        deployed.stop(name)  # the real deployments have schedules: no worker may run them here
    output = deployed.run([prefect_cli(), "--no-prompt", "deploy", "--all"], timeout=240)
    spec = load_yaml(PRODUCTION_YAML)
    names = {d["name"] for d in spec["deployments"]}
    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows()}
        found = {f"{flows[d.flow_id]}/{d.name}": d for d in client.read_deployments() if d.name in names}
        automations = client.read_automations()
        queues_before = sorted((q.name, q.priority) for q in client.read_work_queues(work_pool_name=POOL))
    assert len(found) == len(spec["deployments"]), output[-2000:]
    assert set(found) >= NAMED_ELSEWHERE
    assert {d.work_pool_name for d in found.values()} == {POOL}
    assert {d.work_queue_name for d in found.values()} <= set(QUEUES)
    crons = {name: [getattr(s.schedule, "cron", None) for s in d.schedules] for name, d in found.items()}
    assert {name: c for name, c in crons.items() if c} == {
        "report-results/hourly-report": ["0 * * * *"],
        "jira-export/nightly-export": ["0 2 * * *"],
        "run-job-inbox/job-inbox": ["*/5 * * * *"],
    }
    report = found["report-results/hourly-report"]
    triggers = [a for a in automations if any(getattr(x, "deployment_id", None) == report.id for x in a.actions)]
    assert len(triggers) == 1
    assert getattr(triggers[0].trigger, "expect", None) == {
        f"prefect.flow-run.{state}" for state in ("Completed", "Failed", "Crashed", "Cancelled", "TimedOut")
    }

    again = deployed.run([sys.executable, "-m", "atlasflow.cli", "setup", "--pool-limit", "1"])
    assert "queue atlasflow/high: priority 1" in again
    with get_client(sync_client=True) as client:
        queues_after = sorted((q.name, q.priority) for q in client.read_work_queues(work_pool_name=POOL))
        pool = client.read_work_pool(POOL)
        automation_names = [a.name for a in client.read_automations()]
    assert queues_before == queues_after and pool.concurrency_limit == 1
    assert len(automation_names) == len(set(automation_names))  # nothing created twice
