"""The scaled-out topology under load: ``prefect server start --workers 2`` (two API processes) and
``prefect server services start`` sharing PostgreSQL and Redis (prefect-redis messaging, causal ordering,
lease storage and docket), ``atlasflow setup --pool-limit 3``, three process workers, and 300 runs of a
small job (``shell-job``) submitted at once across the high, medium and low queues; then the report.

Shown: every run ends Completed; never more than 3 run at once; whenever a slot frees, the run that takes
it comes from the highest-priority queue that still has one waiting; the report's Results table gains
exactly 300 rows; no run is started twice; a worker machine lost mid-way (worker and flow-run process
killed) loses nothing: its run is marked Crashed by the heartbeat automation and retried once (the UI's
Retry), on the workers that remain. Printed: throughput and scheduling-delay percentiles.

Run with ``make load`` (marker ``load``; not part of ``make test``). ``ATLASFLOW_LOAD_RUNS`` changes the
number of runs (default 300). Needs PostgreSQL (``ATLASFLOW_TEST_PG``, else its own: see ``pg_server``) and
Redis on 127.0.0.1:6379 (``ATLASFLOW_LOAD_REDIS_DB``, default 11, is flushed).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from uuid import UUID

import pytest
import yaml
from pg_server import Postgres
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.states import Scheduled
from test_topology import (
    REPO_ROOT,
    Topology,
    _healthy,
    free_port,
    heartbeat_seen,
    prefect_cli,
    wait_until,
)

from atlasflow.formats.confluence_tables import read_table
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.confluence import JOB_RESULTS_ID
from atlasflow.server_setup import QUEUES, ensure_crash_detection

pytestmark = pytest.mark.load

RUNS = int(os.environ.get("ATLASFLOW_LOAD_RUNS", "300"))
POOL_LIMIT = 3
WORKERS = 3
#: Each worker's share of the pool limit (``prefect worker start --limit``): the pool limit is applied when
#: workers poll, and two workers polling in the same instant can both take its last slot.
WORKER_LIMIT = POOL_LIMIT // WORKERS
REDIS_DB = int(os.environ.get("ATLASFLOW_LOAD_REDIS_DB", "11"))
#: API processes of ``prefect server start --workers N`` (the services run in a process of their own).
API_WORKERS = int(os.environ.get("ATLASFLOW_LOAD_API_WORKERS", "2"))
HEARTBEAT_SECONDS = 30
CRASH_AFTER_SECONDS = 45
#: The job each run does: record which run started, and when (a run started twice shows twice).
COMMAND = 'echo "$PREFECT__FLOW_RUN_ID $(date +%s.%N)" >> "{starts}"'
#: The victim records its start too, then (the first time only) waits to be killed with its machine.
VICTIM = COMMAND + ' && if [ ! -e "{marker}" ]; then touch "{marker}"; sleep 3600; fi'


def redis_env() -> dict[str, str]:
    """prefect-redis for everything the API processes and the services must share."""
    return {
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_HOST": "127.0.0.1",
        "PREFECT_REDIS_MESSAGING_PORT": "6379",
        "PREFECT_REDIS_MESSAGING_DB": str(REDIS_DB),
        "PREFECT_SERVER_DOCKET_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
    }


def flush_redis() -> None:
    import redis

    try:
        redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_timeout=5).flushdb()
    except redis.RedisError as exc:
        pytest.fail(f"the load test needs Redis on 127.0.0.1:6379: {exc}")


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory, postgres: Postgres) -> Iterator[Topology]:
    """Fresh database and Redis db, two API processes and the services, setup with pool limit 3."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    root = tmp_path_factory.mktemp("load")
    database = f"atlasflow_load_{secrets.token_hex(4)}"
    flush_redis()
    try:
        postgres.create_database(database)
    except (TimeoutError, OSError) as exc:
        pytest.fail(f"cannot create a database on {postgres.origin} (trust auth, may create databases): {exc}")
    port = free_port()
    topo = Topology.under(root, database, port)
    try:
        server_env = {
            **topo.env,
            **redis_env(),
            "PREFECT_API_DATABASE_CONNECTION_URL": postgres.url(database, "postgresql+asyncpg"),
            "PREFECT_SERVER_UI_ENABLED": "false",
            # Migrated once, below: API processes that each migrate a fresh database race to create tables.
            "PREFECT_SERVER_DATABASE_MIGRATE_ON_START": "false",
        }
        topo.run([prefect_cli(), "server", "database", "upgrade", "-y"], env=server_env, timeout=300)
        server = topo.spawn(
            "server",
            [
                prefect_cli(),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(API_WORKERS),
            ]
            + (["--no-services"] if API_WORKERS == 1 else []),
            {**server_env, "PYTHONUNBUFFERED": "1"},
        )
        wait_until(lambda: server.poll() is not None or _healthy(topo.api_url), 180, "the API's /api/health")
        if server.poll() is not None:
            pytest.fail(f"prefect server exited {server.returncode}:\n{(topo.logs / 'server.log').read_text()[-3000:]}")
        topo.spawn("services", [prefect_cli(), "server", "services", "start"], {**server_env, "PYTHONUNBUFFERED": "1"})
        topo.run([sys.executable, "-m", "atlasflow.cli", "setup", "--pool-limit", str(POOL_LIMIT)])
        with temporary_settings(updates={PREFECT_API_URL: topo.api_url}):
            with get_client(sync_client=True) as client:
                ensure_crash_detection(client, CRASH_AFTER_SECONDS)
            yield topo
    finally:
        for name in [n for n in topo.processes if n not in ("server", "services")]:
            topo.stop(name)
        topo.kill_recorded_flow_processes()
        _kill_flow_processes(topo)
        topo.stop("services")
        topo.stop("server")
        postgres.drop_database(database)


def deploy(topo: Topology) -> dict[str, UUID]:
    """Deployments ``shell-job/load-<queue>`` on each queue, via ``prefect deploy``; ids by queue."""
    starts = topo.records / "starts.log"
    spec = {
        "name": "atlasflow-load",
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO_ROOT)}}],
        "deployments": [
            {
                "name": f"load-{queue}",
                "entrypoint": "flows/shell_job.py:shell_job",
                "parameters": {"command": COMMAND.format(starts=starts), "retries": 0},
                "work_pool": {"name": "atlasflow", "work_queue_name": queue},
            }
            for queue in QUEUES
        ],
    }
    path = topo.home / "load-prefect.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    topo.run([prefect_cli(), "--no-prompt", "deploy", "--all", "--prefect-file", str(path)], timeout=300)
    with get_client(sync_client=True) as client:
        found = {d.name: d.id for d in client.read_deployments()}
    return {queue: found[f"load-{queue}"] for queue in QUEUES}


def all_runs(client: SyncPrefectClient, deployments: dict[str, UUID]) -> list[FlowRun]:
    runs: list[FlowRun] = []
    ids = DeploymentFilter(id=DeploymentFilterId(any_=list(deployments.values())))
    while True:
        page = client.read_flow_runs(deployment_filter=ids, limit=200, offset=len(runs))
        runs.extend(page)
        if len(page) < 200:
            return runs


def _flow_processes(topo: Topology, run_id: UUID | None = None) -> list[int]:
    """Pids of this topology's flow-run processes (and their shells), optionally of one run only."""
    server = f"PREFECT_API_URL={topo.api_url}\0".encode()
    wanted = f"PREFECT__FLOW_RUN_ID={run_id}".encode() if run_id else b"PREFECT__FLOW_RUN_ID="
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if wanted in environ and server in environ:
            found.append(int(proc.name))
    return found


def _kill_flow_processes(topo: Topology) -> None:
    for pid in _flow_processes(topo):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _ancestors(pid: int) -> set[int]:
    seen: set[int] = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return seen


def running_intervals(states: list[State]) -> list[tuple[datetime, datetime]]:
    """(entered Running, left Running) of each attempt."""
    ordered = sorted(states, key=lambda s: s.timestamp)
    intervals = []
    for state, after in itertools.pairwise(ordered):
        if state.type == StateType.RUNNING:
            intervals.append((state.timestamp, after.timestamp))
    return intervals


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def test_300_runs_across_the_queues_with_a_lost_worker(scaled: Topology) -> None:
    deployments = deploy(scaled)
    starts = scaled.records / "starts.log"
    marker = scaled.records / "victim.marker"
    victim_queue = "medium"
    queue_of: dict[UUID, str] = {}
    victim: UUID | None = None
    with get_client(sync_client=True) as client:  # everything queued before any worker runs
        queues = itertools.cycle(["low", "medium", "high"])
        for n in range(RUNS):
            queue = next(queues)
            parameters = {}
            if victim is None and queue == victim_queue and n >= RUNS // 2:
                parameters = {"command": VICTIM.format(starts=starts, marker=marker)}
            run = client.create_flow_run_from_deployment(deployments[queue], parameters=parameters or None)
            queue_of[run.id] = queue
            if parameters:
                victim = run.id
    assert victim is not None
    submitted = time.time()
    workers = [f"worker-{n}" for n in range(1, WORKERS + 1)]
    for name in workers:
        scaled.start_worker(name, limit=WORKER_LIMIT)

    # The victim's machine is lost mid-way: its worker and its flow-run process.
    wait_until(lambda: marker.exists(), 1800, "the victim run to start")
    victim_pids = wait_until(lambda: _flow_processes(scaled, victim), 60, "the victim's flow-run process")
    # Only a run that has sent a heartbeat can be found dead by the automation.
    wait_until(lambda: heartbeat_seen(victim), HEARTBEAT_SECONDS * 4, "the victim's first heartbeat", every=2)
    lineage = set().union(*(_ancestors(pid) for pid in victim_pids))
    lost = next((w for w in workers if scaled.processes[w].pid in lineage), workers[0])
    scaled.kill_group(lost)
    for pid in victim_pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    def victim_state() -> StateType | None:
        with get_client(sync_client=True) as client:
            return client.read_flow_run(victim).state_type

    wait_until(
        lambda: victim_state() == StateType.CRASHED,
        CRASH_AFTER_SECONDS + HEARTBEAT_SECONDS * 3,
        "the victim to be marked Crashed",
        every=2,
    )
    print(f"victim marked Crashed {time.monotonic() - killed:.0f} s after its machine was lost")
    # The machine is replaced once its run is known lost: until then that run holds its pool slot.
    scaled.start_worker(f"{lost}-replacement", limit=WORKER_LIMIT)

    def settled() -> list[FlowRun] | None:
        with get_client(sync_client=True) as client:
            runs = all_runs(client, deployments)
        return runs if all(r.state and r.state.is_final() for r in runs) else None

    ended = wait_until(settled, 1800, "every run to end", every=5)
    # The lost machine's runs (the victim, and any run its worker was starting) are retried once: the UI's
    # Retry, the same run scheduled again.
    crashed = {r.id for r in ended if r.state_type == StateType.CRASHED}
    with get_client(sync_client=True) as client:
        for run_id in crashed:
            client.set_flow_run_state(run_id, Scheduled(), force=True)
    runs = wait_until(
        lambda: (r := settled()) is not None and all(x.state_type == StateType.COMPLETED for x in r) and r,
        600,
        "the retries",
        every=2,
    )

    # Every run ended Completed; the lost machine's runs after exactly one retry, every other run once.
    assert len(runs) == RUNS
    assert Counter(r.state_type for r in runs) == {StateType.COMPLETED: RUNS}
    assert victim in crashed and len(crashed) <= 1 + 1  # the victim, and at most the one its worker was starting
    assert {r.id: r.run_count for r in runs if r.run_count != 1} == dict.fromkeys(crashed, 2)
    started = Counter(line.split()[0] for line in starts.read_text().splitlines())
    assert {str(r.id) for r in runs} == set(started) and started[str(victim)] == 2
    assert all(count == 1 for run_id, count in started.items() if UUID(run_id) not in crashed)

    with get_client(sync_client=True) as client:
        history = {r.id: client.read_flow_run_states(r.id) for r in runs}

    # Never more than the pool limit running at once (as the server recorded the states).
    edges = sorted(
        (moment, step)
        for states in history.values()
        for begin, end in running_intervals(states)
        for moment, step in ((begin, 1), (end, -1))
    )
    running, most, busiest = 0, 0, edges[0][0] if edges else None
    for moment, step in edges:
        running += step
        if running > most:
            most, busiest = running, moment
    overlapping = [
        f"{queue_of[run_id]} {run_id}{' (victim)' if run_id == victim else ''}: {begin:%H:%M:%S.%f}-{end:%H:%M:%S.%f}"
        for run_id, states in history.items()
        for begin, end in running_intervals(states)
        if busiest is not None and begin <= busiest < end
    ]
    assert most <= POOL_LIMIT, f"{most} running at {busiest}: " + "; ".join(overlapping)

    # A slot goes to the highest-priority queue that has a run waiting: the order in which runs left
    # Scheduled (took a slot) is high, then medium, then low (all were waiting from the start).
    def claimed(run_id: UUID) -> datetime:
        return min(s.timestamp for s in history[run_id] if s.type == StateType.PENDING)

    order = sorted((r.id for r in runs), key=claimed)
    priorities = [QUEUES[queue_of[run_id]] for run_id in order]
    assert priorities == sorted(priorities), [queue_of[r] for r in order]

    # The report writes each run once into the Results table.
    with Sandbox(mode="cloud") as sb:
        from atlasflow.demo import save_sandbox_blocks
        from atlasflow.flows.report_results import report_results

        save_sandbox_blocks(sb, prefix="load-")
        assert sb.confluence is not None
        before = len(read_table(sb.confluence.page(JOB_RESULTS_ID).body, "Results").rows)
        report = report_results(
            confluence_page_id=JOB_RESULTS_ID,
            notifier_block=None,
            confluence_block="load-confluence",
            watermark_variable="atlasflow_load_watermark",
            settle_seconds=0,
        )
        rows = read_table(sb.confluence.page(JOB_RESULTS_ID).body, "Results").rows
    assert len(rows) - before == RUNS == report["added"]
    assert {row["Run ID"] for row in rows} >= {str(r.id) for r in runs}

    # The figures.
    first = min(claimed(r.id) for r in runs)
    last = max(r.end_time for r in runs if r.end_time)
    minutes = (last - first).total_seconds() / 60
    ends = sorted(end for states in history.values() for _begin, end in running_intervals(states))
    handoffs = []  # slot freed (a run ended) -> the next run took it
    for run_id in order[POOL_LIMIT:]:
        if run_id in crashed:
            continue
        took = claimed(run_id)
        freed = [end for end in ends if end <= took]
        if freed:
            handoffs.append((took - freed[-1]).total_seconds())
    waits = [(claimed(r.id) - r.created).total_seconds() for r in runs if r.created]
    print(
        f"{RUNS} runs, pool limit {POOL_LIMIT}, {WORKERS} process workers, {API_WORKERS} API process(es) + services, "
        f"PostgreSQL + Redis: {RUNS / minutes:.1f} runs/minute over {minutes:.1f} min "
        f"(submitted {time.time() - submitted:.0f} s ago)"
    )
    print(
        "slot handoff delay (a run ends -> the next takes its slot): "
        f"p50 {percentile(handoffs, 0.5):.2f} s, p90 {percentile(handoffs, 0.9):.2f} s, "
        f"p99 {percentile(handoffs, 0.99):.2f} s, max {max(handoffs):.2f} s; queue wait: "
        f"p50 {statistics.median(waits):.0f} s, max {max(waits):.0f} s"
    )
