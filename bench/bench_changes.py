"""What the "Changes" sheet costs: a 100,000-issue export with and without comparing to the previous one.

Both kinds of run (the fastest of ``--repeat`` each) walk the same generated tree on the sandbox (5 ms
latency per request) and write the workbook;
the compared run also builds this export's snapshot, loads the previous one, diffs them, writes the
"Changes" sheet and saves the new snapshot. Target: at most 10% more wall time.

    python bench/bench_changes.py [--total 100000] [--latency-ms 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from bench_export import client_for

from atlasflow.formats.changes import describe_changes, diff_snapshots
from atlasflow.reports.sheets import write_export_workbook
from atlasflow.reports.snapshots import SnapshotStore, build_snapshot
from atlasflow.reports.tree import Node, TreeWalker
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.core import Faults
from atlasflow.sandbox.jira import JiraSite

TARGET = 0.10


def export(sb: Sandbox, out: Path, store: SnapshotStore | None) -> tuple[float, str]:
    """(seconds, change summary) of one export of ``BIG-1``; with a store, compared to its snapshot."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as reader:
        loading = reader.submit(store.load, "bench") if store else None  # as the flow: read while Jira is walked
        client = client_for(sb)
        walker = TreeWalker(client, {})
        nodes = [Node(i) for i in walker.fetch_keys(["BIG-1"])]
        seen, frontier = {n.key for n in nodes}, nodes
        while frontier:
            frontier = walker.children(frontier, seen)
            nodes.extend(frontier)
        client.close()
        previous = loading.result() if loading else None
    rows = walker.rows(nodes)
    changes, summary = None, "not compared"
    if store is not None:
        snapshot = build_snapshot(rows, [])
        if previous is not None:
            changes = diff_snapshots(previous, snapshot)
            summary = describe_changes(changes)
    write_export_workbook(
        out / f"export-{time.monotonic_ns()}.xlsx",
        rows,
        extra_columns=[],
        query="roots BIG-1",
        generated_at=datetime.now(UTC),
        browse_url=sb.jira_url + "/browse/",
        changes=changes,
    )
    if store is not None:
        store.save("bench", snapshot)
    return time.perf_counter() - started, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind; the fastest counts")
    args = parser.parse_args()
    site = JiraSite.generated("cloud", total=args.total, depth=3)
    with Sandbox(mode="cloud", jira=site) as sb, tempfile.TemporaryDirectory() as tmp:
        sb.state.faults = Faults(latency_ms=args.latency_ms)
        out, store = Path(tmp), SnapshotStore(directory=Path(tmp) / "snapshots")
        export(sb, out, store)  # the previous export of the scope
        for n in range(1, args.total // 10 + 1, 10):  # move ~1% of the issues on
            site.update_issue(f"BIG-{n + 1}", status="Done")
        plain_runs, compared_runs = [], []
        for _ in range(args.repeat):  # interleaved, so drift of the machine hits both kinds alike
            plain_runs.append(export(sb, out, None)[0])
            compared_runs.append(export(sb, out, store))
        plain = min(plain_runs)
        compared, summary = min(compared_runs)
    ratio = compared / plain - 1
    print(f"{args.total} issues, {args.latency_ms} ms latency per request")
    print(f"export without comparing: {plain:7.2f} s")
    print(f"export with Changes:      {compared:7.2f} s ({summary})")
    print(f"overhead: {ratio:.1%}  target <= {TARGET:.0%}  {'PASS' if ratio <= TARGET else 'FAIL'}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
