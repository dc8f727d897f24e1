"""The ``atlasflow`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _sandbox(args: argparse.Namespace) -> int:
    from atlasflow.sandbox.app import Sandbox

    sb = Sandbox(mode=args.mode, port=args.port)
    print(f"atlasflow sandbox ({args.mode}) on http://127.0.0.1:{args.port}", flush=True)
    sb.serve_forever()
    return 0


def _configure(args: argparse.Namespace) -> int:
    from atlasflow.configure import ConfigError, configure

    try:
        for saved in configure(Path(args.file)):
            print(f"saved block {saved}")
    except (ConfigError, OSError) as exc:
        print(f"atlasflow configure: {exc}", file=sys.stderr)
        return 2
    return 0


def _demo(args: argparse.Namespace) -> int:
    from atlasflow.demo import run_demo

    return run_demo(Path(args.output_dir), mode=args.mode)


def _setup(args: argparse.Namespace) -> int:
    from atlasflow.deployments.setup import SetupOptions, setup

    try:
        options = SetupOptions(
            pool_limit=args.pool_limit, jira_requests_per_second=args.jira_rate, crash_after_seconds=args.crash_after
        )
        for line in setup(options):
            print(line)
    except ValueError as exc:
        print(f"atlasflow setup: {exc}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atlasflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sandbox", help="serve the local Jira/Confluence/Mattermost sandbox on 127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--mode", choices=["cloud", "datacenter"], default="cloud")
    p.set_defaults(func=_sandbox)

    p = sub.add_parser("configure", help="create or update blocks from a YAML file (secrets from the environment)")
    p.add_argument("--file", required=True)
    p.set_defaults(func=_configure)

    p = sub.add_parser("demo", help="run export, table sync and report end to end on the sandbox")
    p.add_argument("--output-dir", default="out/demo")
    p.add_argument("--mode", choices=["cloud", "datacenter"], default="cloud")
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
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
