"""A PostgreSQL outage under the Prefect server while an export runs (issue 27, item 5).

``prefect server start`` reaches its fresh PostgreSQL database through a TCP proxy in this test; a process
worker runs a deployed Jira export against the sandbox. While the export is fetching, the proxy is cut:
every connection to PostgreSQL is reset and new ones are refused (accepted and reset at once), so the server
answers the run's API calls with 500 or 503 until the proxy is restored.

* An outage shorter than the flow-run processes' retry budget (the work pool's environment, made by
  ``atlasflow setup``): the run waits it out, completes and delivers its workbook.
* The Prefect server itself stopped and started again mid-export: the run completes and delivers too.
* An outage longer than that budget (``load``: minutes): the run gives up, ends Failed or Crashed and its
  end is posted to the chat; it never stays Running.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import yaml
from pg_server import Postgres
from prefect.client.schemas.objects import FlowRun, StateType
from test_topology import REPO_ROOT, Topology, _healthy, final, free_port, prefect_cli, start, wait_until

from atlasflow.demo import save_sandbox_blocks
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.confluence import EXPORT_SUMMARY_ID
from atlasflow.server_setup import api_retry_budget

pytestmark = pytest.mark.topology

#: The outage the issue measured: about 30 s.
SHORT_OUTAGE = 30.0
#: Every request of the export is this much slower, so the run is still fetching when the outage starts.
LATENCY_MS = 150
DEPLOYMENT = "jira-export/outage-export"
SEARCH = "GET /rest/api/3/search/jql"
#: Prefect's client jitter (``PREFECT_CLIENT_RETRY_JITTER_FACTOR``): each back-off is up to this much longer.
JITTER = 0.2


class PgProxy:
    """A TCP proxy to PostgreSQL on its own event loop (a thread), which can be cut and restored.

    Cut: every open connection is reset, and every new one is accepted and reset at once (counted in
    :attr:`refused`), as when the database host restarts.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.up = True
        self.refused = 0
        self._open: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-proxy", daemon=True)

    def start(self) -> PgProxy:
        self._thread.start()
        if not self._ready.wait(10):
            pytest.fail("the PostgreSQL proxy did not start")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()

    async def _accept(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        if not self.up:
            self.refused += 1
            client.transport.abort()
            return
        try:
            server_reader, server = await asyncio.open_connection(*self.target)
        except OSError:
            client.transport.abort()
            return
        self._open |= {client, server}
        try:
            await asyncio.gather(self._pipe(client_reader, server), self._pipe(server_reader, client))
        finally:
            for writer in (client, server):
                self._open.discard(writer)
                writer.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()

    def _cut(self) -> None:
        self.up = False
        for writer in list(self._open):
            writer.transport.abort()

    def cut(self) -> None:
        """Reset every connection and refuse new ones, from now on."""
        self._loop.call_soon_threadsafe(self._cut)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "up", True)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@dataclass
class Stage:
    """The server behind the proxy, a worker, the sandbox the export talks to."""

    topology: Topology
    proxy: PgProxy
    sandbox: Sandbox
    server_args: list[str]
    server_env: dict[str, str]

    def start_server(self) -> None:
        """``prefect server start`` (again), waiting until it answers."""
        server = self.topology.spawn("server", self.server_args, self.server_env)
        wait_until(lambda: server.poll() is not None or _healthy(self.topology.api_url), 120, "the server's health")
        if server.poll() is not None:
            log = (self.topology.logs / "server.log").read_text()[-3000:]
            pytest.fail(f"prefect server exited {server.returncode}:\n{log}")


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory, postgres: Postgres) -> Iterator[Stage]:
    """A fresh database behind a proxy, ``prefect server start`` on it, ``atlasflow setup``, the export deployed,
    the sandbox's blocks saved, one process worker."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    root = tmp_path_factory.mktemp("outage")
    database = f"atlasflow_outage_{secrets.token_hex(4)}"
    try:
        postgres.create_database(database)
    except (TimeoutError, OSError) as exc:
        pytest.fail(f"cannot create a database on {postgres.origin} (trust auth, may create databases): {exc}")
    proxy = PgProxy(postgres.host, postgres.port).start()
    api_port = free_port()
    topo = Topology.under(root, database, api_port)
    sandbox = Sandbox(mode="cloud").start()
    try:
        server_env = {
            **topo.env,
            "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://{postgres.user}@127.0.0.1:{proxy.port}/{database}",
            "PREFECT_SERVER_UI_ENABLED": "false",
        }
        args = [prefect_cli(), "server", "start", "--host", "127.0.0.1", "--port", str(api_port)]
        stage = Stage(topo, proxy, sandbox, args, server_env)
        stage.start_server()
        topo.run([sys.executable, "-m", "atlasflow.cli", "setup", "--pool-limit", "1"])
        with temporary_settings(updates={PREFECT_API_URL: topo.api_url}):
            save_sandbox_blocks(sandbox, prefix="outage-")
            deploy_export(topo)
            # Prefect's default poll interval (10 s): a worker polling every second gives up after ~45 s of
            # failed polls (its service loop's error threshold) and takes its running flow runs down with it.
            topo.spawn("worker", [prefect_cli(), "worker", "start", "--pool", "atlasflow", "--type", "process"])
            yield stage
    finally:
        proxy.restore()
        for name in [n for n in topo.processes if n != "server"]:
            topo.stop(name)
        topo.stop("server")
        sandbox.stop()
        proxy.close()
        postgres.drop_database(database)


def deploy_export(topo: Topology) -> None:
    """The export of DEMO-1, attached to a sandbox page, on the pool ``atlasflow setup`` made (via ``prefect
    deploy``); the deployment's own environment only names the notifier."""
    spec = {
        "name": "atlasflow-outage",
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO_ROOT)}}],
        "deployments": [
            {
                "name": "outage-export",
                "entrypoint": "flows/jira_export.py:jira_export",
                "parameters": {
                    "root_tickets": ["DEMO-1"],
                    "include_links": True,
                    "jira_block": "outage-jira",
                    "confluence_block": "outage-confluence",
                    "attach_to_page": EXPORT_SUMMARY_ID,
                },
                "work_pool": {
                    "name": "atlasflow",
                    "work_queue_name": "medium",
                    "job_variables": {"env": {"ATLASFLOW_NOTIFIER": "mattermost-webhook/outage-mattermost"}},
                },
            }
        ],
    }
    path = topo.home / "outage-prefect.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    topo.run([prefect_cli(), "--no-prompt", "deploy", "--all", "--prefect-file", str(path)], timeout=240)


def export_through(stage: Stage, interrupt: Callable[[], None]) -> FlowRun:
    """Start the export; once it is fetching (a search held for 2 s), ``interrupt()`` the Prefect server.

    Returns the run once it has ended (or fails the test if it never does).
    """
    faults = stage.sandbox.state.faults
    faults.latency_ms = LATENCY_MS
    faults.stall, faults.stall_seconds = SEARCH, 2.0
    faults.stalled.clear()
    run = start(DEPLOYMENT)
    if not faults.stalled.wait(180):
        pytest.fail("the export never reached its first search")
    began = time.monotonic()
    interrupt()
    ended = wait_until(lambda: final(run.id), api_retry_budget() * 3 + 120, "the run to end", every=2)
    print(f"run ended {ended.state_type} {time.monotonic() - began:.0f} s after the interruption began")
    return ended


def database_outage(stage: Stage, seconds: float) -> Callable[[], None]:
    """Cut PostgreSQL from the server for ``seconds``, then restore it."""

    def outage() -> None:
        refused = stage.proxy.refused
        stage.proxy.cut()
        time.sleep(seconds)
        stage.proxy.restore()
        print(f"outage: {seconds:.0f} s, {stage.proxy.refused - refused} database connections refused")
        assert stage.proxy.refused > refused  # the server did try its database meanwhile

    return outage


def delivered(stage: Stage) -> int:
    """Workbook versions attached to the export's page so far."""
    return sum(len(a.versions) for a in stage.sandbox.attachments.on_page(EXPORT_SUMMARY_ID))


def posts_about(stage: Stage, run: FlowRun) -> list[str]:
    """The chat posts (webhook) that name this run."""
    texts = [f"{p.message} {p.attachments}" for p in stage.sandbox.mattermost.posts]
    return [t for t in texts if run.name in t]


def test_a_short_database_outage_is_waited_out(stage: Stage) -> None:
    """30 s without PostgreSQL mid-export: the run completes and delivers its workbook."""
    before = delivered(stage)
    ended = export_through(stage, database_outage(stage, SHORT_OUTAGE))
    assert ended.state_type == StateType.COMPLETED, ended.state
    assert delivered(stage) == before + 1  # the workbook, once
    posted = wait_until(lambda: posts_about(stage, ended), 60, "the run's end posted")
    assert "Completed" in posted[0], posted


def test_a_server_restart_mid_run_is_waited_out(stage: Stage) -> None:
    """The Prefect server stopped and started again mid-export: the run completes and delivers."""
    before = delivered(stage)

    def restart() -> None:
        stage.topology.stop("server")
        stage.start_server()

    ended = export_through(stage, restart)
    assert ended.state_type == StateType.COMPLETED, ended.state
    assert delivered(stage) == before + 1


@pytest.mark.load
def test_a_long_database_outage_ends_the_run_and_says_so(stage: Stage) -> None:
    """An outage longer than the retry budget: the run ends Failed or Crashed, and its end is posted."""
    ended = export_through(stage, database_outage(stage, api_retry_budget() * (1 + JITTER) + 30))
    assert ended.state_type in (StateType.FAILED, StateType.CRASHED), ended.state
    posted = wait_until(lambda: posts_about(stage, ended), 60, "the run's end posted")
    assert ended.state is not None and ended.state.name in posted[0], posted
