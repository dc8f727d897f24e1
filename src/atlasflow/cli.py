"""The ``atlasflow`` command."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx


def _api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value() or "the ephemeral local server")


def _server_reachable(command: str, run: Callable[[], int]) -> int:
    """``run()``, with the Prefect server's connection and auth errors as one line each (exit status 3)."""
    from prefect.exceptions import PrefectHTTPStatusError

    try:
        return run()
    except httpx.TransportError as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        print(f"atlasflow {command}: server not reachable at {_api_url()}, is it running? ({reason})", file=sys.stderr)
    except PrefectHTTPStatusError as exc:
        status = exc.response.status_code
        hint = " (check PREFECT_API_AUTH_STRING / PREFECT_API_KEY)" if status in (401, 403) else ""
        print(f"atlasflow {command}: the server at {_api_url()} answered {status}{hint}", file=sys.stderr)
    return 3


def _sandbox(args: argparse.Namespace) -> int:
    from atlasflow.sandbox.app import Sandbox

    sb = Sandbox(mode=args.mode, port=args.port).start()
    config = sb.config_yaml()
    if args.config:
        Path(args.config).write_text(config, encoding="utf-8")
    print(
        f"atlasflow sandbox ({args.mode}) on {sb.url}; Mattermost posts received: {sb.url}/_sandbox/mattermost/posts\n"
        f"config.yaml for `atlasflow configure --file` (set the two variables of its first line):\n\n{config}",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sb.stop()
    return 0


def _configure(args: argparse.Namespace) -> int:
    from atlasflow.configure import ConfigError, configure

    def run() -> int:
        for saved in configure(Path(args.file)):
            print(f"saved block {saved}")
        return 0

    try:
        return _server_reachable("configure", run)
    except (ConfigError, OSError) as exc:
        print(f"atlasflow configure: {exc}", file=sys.stderr)
        return 2


def _demo(args: argparse.Namespace) -> int:
    from atlasflow.demo import run_demo

    return run_demo(Path(args.output_dir), mode=args.mode, auth=args.auth)


def _setup(args: argparse.Namespace) -> int:
    from atlasflow.server_setup import SetupOptions, setup

    options = SetupOptions(
        pool_limit=args.pool_limit, jira_requests_per_second=args.jira_rate, crash_after_seconds=args.crash_after
    )

    def run() -> int:
        for line in setup(options):
            print(line)
        return 0

    try:
        return _server_reachable("setup", run)
    except ValueError as exc:
        print(f"atlasflow setup: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atlasflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sandbox", help="serve the local Jira/Confluence/Mattermost sandbox on 127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--mode", choices=["cloud", "datacenter"], default="cloud")
    p.add_argument("--config", help="also write the printed config.yaml to this file")
    p.set_defaults(func=_sandbox)

    p = sub.add_parser("configure", help="create or update blocks from a YAML file (secrets from the environment)")
    p.add_argument("--file", required=True)
    p.set_defaults(func=_configure)

    p = sub.add_parser("demo", help="run export, table sync and report end to end on the sandbox")
    p.add_argument("--output-dir", default="out/demo")
    p.add_argument("--mode", choices=["cloud", "datacenter"], default="cloud")
    p.add_argument(
        "--auth",
        choices=["token", "scoped", "oauth"],
        default=None,
        help="credential kind: token (classic API token; Data Center: PAT), scoped (through the gateway), "
        "oauth (service account); default $ATLASFLOW_SANDBOX_AUTH or token",
    )
    p.set_defaults(func=_demo)

    p = sub.add_parser("setup", help="create/update the work pool, priority queues, rate limit, block types")
    p.add_argument("--pool-limit", type=int, default=3, help="runs at once in the pool (default 3)")
    p.add_argument("--jira-rate", type=float, default=10.0, help="Jira requests per second, shared (default 10)")
    p.add_argument(
        "--crash-after",
        type=int,
        default=600,
        help="mark a running flow run Crashed after this many seconds without a heartbeat; 0 = off",
    )
    p.set_defaults(func=_setup)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.func is _sandbox:  # no Prefect
        return int(args.func(args))
    from atlasflow.server_setup import flow_run_settings

    with flow_run_settings():
        return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
