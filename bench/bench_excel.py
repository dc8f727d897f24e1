"""Benchmark the streaming Excel export against a naive pandas + openpyxl export.

Usage::

    python bench/bench_excel.py [--rows 100000] [--seed 7]

Each method runs in its own subprocess, which generates the same deterministic rows
itself and reports its wall time and its own peak RSS, so the memory figure is that
of the method including its data. Prints the figures, the ratios and PASS/FAIL
against the targets: ours at least 3x faster and at most 1/4 of the baseline's peak
memory, and diffing two snapshots of all rows within 10% of our export's time.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from atlasflow.formats.records import ExportRow

SPEEDUP_TARGET = 3.0
MEMORY_TARGET = 0.25
DIFF_TARGET = 0.10

EXTRA_COLUMNS = (
    "Story Points",
    "Sprint",
    "Labels",
    "Components",
    "Due date",
    "Team",
    "Fix Version",
    "Original Estimate (h)",
)  # 12 base columns + 8 extra = 20 columns

_VOCABULARY = (
    "api gateway timeout retry login page checkout cart payment invoice report export import "
    "dashboard widget cache database migration index query slow memory leak crash mobile ios "
    "android push notification email template locale translation accessibility contrast "
    "keyboard search filter sort pagination upload download permission role admin audit log "
    "metrics alert incident rollback deploy pipeline flaky test coverage refactor cleanup"
)
_WORDS = _VOCABULARY.split()
_STATUSES = ("To Do", "In Progress", "In Review", "Blocked", "Done", "Won't Do")
_TYPES = ("Story", "Task", "Bug", "Sub-task", "Spike")
_PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest", None)
_RELATIONS = ("sub-task", "child", "epic child", "blocks", "relates to", "is cloned by")
_ASSIGNEES = tuple(
    f"{first} {last}"
    for first in ("Ada", "Bo", "Chen", "Dana", "Eli", "Femi", "Gus")
    for last in ("Lovelace", "Novak", "Okafor", "Ruiz", "Sato", "Weber", "Young")
)


def generate_rows(count: int, seed: int) -> Iterator[ExportRow]:
    """Yield ``count`` deterministic rows: trees of one root (an Epic) and ~9 descendants."""
    rng = random.Random(seed)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    tree: list[tuple[str, int]] = []  # (key, level) of the current root's issues
    root = ""
    for number in range(1, count + 1):
        key = f"DEMO-{number}"
        created = start + timedelta(minutes=rng.randrange(0, 800_000))
        extra: dict[str, Any] = {
            "Story Points": rng.choice((1, 2, 3, 5, 8, 13, None)),
            "Sprint": f"Sprint {rng.randrange(1, 60)}",
            "Labels": rng.sample(_WORDS, rng.randrange(0, 4)),
            "Components": rng.sample(("Backend", "Frontend", "Mobile", "Data", "Infra"), rng.randrange(0, 3)),
            "Due date": created + timedelta(days=rng.randrange(1, 90)),
            "Team": rng.choice(("Atlas", "Boreal", "Cirrus", "Delta")),
            "Fix Version": f"{rng.randrange(1, 5)}.{rng.randrange(0, 20)}.0",
            "Original Estimate (h)": round(rng.uniform(0.5, 40), 1),
        }
        common: dict[str, Any] = {
            "key": key,
            "summary": " ".join(rng.choices(_WORDS, k=rng.randrange(4, 16))).capitalize(),
            "status": rng.choice(_STATUSES),
            "priority": rng.choice(_PRIORITIES),
            "assignee": rng.choice((*_ASSIGNEES, None)),
            "created": created,
            "updated": created + timedelta(minutes=rng.randrange(0, 100_000)),
            "extra": extra,
        }
        if not tree or rng.random() < 0.1:
            root, tree = key, [(key, 0)]
            yield ExportRow(type="Epic", **common)
            continue
        parent, parent_level = rng.choice(tree)
        level = parent_level + 1
        tree.append((key, level))
        relation = rng.choice(_RELATIONS)
        yield ExportRow(
            type=rng.choice(_TYPES), parent=parent, root=root, level=level, relation=relation, **common
        )


def _run_ours(count: int, seed: int, out: Path) -> None:
    from atlasflow.formats.excel import write_export_workbook

    write_export_workbook(
        out,
        generate_rows(count, seed),
        extra_columns=EXTRA_COLUMNS,
        query="project = DEMO AND issuetype = Epic (roots) and their descendants",
        generated_at=datetime.now(UTC),
        browse_url="https://acme.atlassian.net/browse/",
    )


def _run_pandas(count: int, seed: int, out: Path) -> None:
    import pandas as pd

    def naive(value: datetime | None) -> datetime | None:
        return value.astimezone(UTC).replace(tzinfo=None) if value else None

    records = []
    for row in generate_rows(count, seed):
        record: dict[str, Any] = {
            "Key": row.key,
            "Summary": row.summary,
            "Type": row.type,
            "Status": row.status,
            "Priority": row.priority,
            "Assignee": row.assignee,
            "Created": naive(row.created),
            "Updated": naive(row.updated),
            "Parent": row.parent,
            "Root": row.root,
            "Level": row.level,
            "Relation": row.relation,
        }
        for title in EXTRA_COLUMNS:
            value = row.extra.get(title)
            record[title] = (
                ", ".join(value)
                if isinstance(value, list)
                else naive(value)
                if isinstance(value, datetime)
                else value
            )
        records.append(record)
    pd.DataFrame(records).to_excel(out, engine="openpyxl", index=False, sheet_name="Issues")


def _child(method: str, count: int, seed: int, out: Path) -> None:
    """Run one method and print its figures as JSON; imports happen before the clock starts."""
    importlib.import_module("atlasflow.formats.excel" if method == "ours" else "pandas")
    cpu_before, started = _cpu_seconds(), time.perf_counter()
    (_run_ours if method == "ours" else _run_pandas)(count, seed, out)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_before
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    figures = {"seconds": seconds, "cpu": cpu, "peak_mb": peak_kb / 1024, "bytes": out.stat().st_size}
    print(json.dumps(figures))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure(method: str, count: int, seed: int, directory: Path) -> dict[str, float]:
    out = directory / f"{method}.xlsx"
    command = [sys.executable, __file__, "--child", method, "--rows", str(count), "--seed", str(seed)]
    result = subprocess.run([*command, "--out", str(out)], check=True, capture_output=True, text=True)
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def _measure_diff(count: int, seed: int) -> tuple[float, str]:
    """Time ``diff_snapshots`` on two snapshots of ``count`` issues, ~10% of them changed."""
    from atlasflow.formats.changes import describe_changes, diff_snapshots, snapshot_of

    old = {row.key: snapshot_of(row, EXTRA_COLUMNS) for row in generate_rows(count, seed)}
    rng = random.Random(seed + 1)
    new = {key: dict(values) for key, values in old.items()}
    keys = list(new)
    for key in rng.sample(keys, count // 10):
        values = new[key]
        values["status"] = rng.choice(_STATUSES)
        if rng.random() < 0.3:
            values["assignee"] = rng.choice(_ASSIGNEES)
        if rng.random() < 0.1 and values["parent"]:
            values["parent"] = rng.choice(keys)
    for key in rng.sample(keys, count // 100):
        del new[key]
    for number in range(count + 1, count + 1 + count // 100):
        new[f"DEMO-{number}"] = dict(old[rng.choice(keys)])
    started = time.perf_counter()
    report = diff_snapshots(old, new)
    seconds = time.perf_counter() - started
    return seconds, describe_changes(report)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", choices=("ours", "pandas"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.rows, args.seed, args.out)
        return

    started = time.perf_counter()
    roots = sum(row.level == 0 for row in generate_rows(args.rows, args.seed))
    generation = time.perf_counter() - started
    print(
        f"rows: {args.rows:,} ({roots:,} roots, {args.rows - roots:,} descendants), 20 columns; "
        f"generating them takes {generation:.2f} s, included in both timings"
    )
    with tempfile.TemporaryDirectory(prefix="bench-excel-") as directory:
        ours = _measure("ours", args.rows, args.seed, Path(directory))
        base = _measure("pandas", args.rows, args.seed, Path(directory))
    for name, figures in (
        ("ours   (formats.xlsx_stream)", ours),
        ("pandas (DataFrame.to_excel, openpyxl)", base),
    ):
        print(
            f"{name}: {figures['seconds']:.2f} s wall ({figures['cpu']:.2f} s CPU), "
            f"peak RSS {figures['peak_mb']:.0f} MB, "
            f"file {figures['bytes'] / 1e6:.1f} MB"
        )
    speedup = base["seconds"] / ours["seconds"]
    memory = ours["peak_mb"] / base["peak_mb"]
    print(
        f"speedup: {speedup:.1f}x wall, {base['cpu'] / ours['cpu']:.1f}x CPU "
        f"(target >= {SPEEDUP_TARGET:g}x wall) {_verdict(speedup >= SPEEDUP_TARGET)}"
    )
    print(
        f"memory: {memory:.2f} of the baseline's peak (target <= {MEMORY_TARGET:g}) "
        f"{_verdict(memory <= MEMORY_TARGET)}"
    )
    diff_seconds, description = _measure_diff(args.rows, args.seed)
    fraction = diff_seconds / ours["seconds"]
    print(
        f"diff_snapshots {args.rows:,} vs {args.rows:,} ({description.split(':')[0]}): {diff_seconds:.3f} s "
        f"= {fraction:.1%} of our export (target <= {DIFF_TARGET:.0%}) {_verdict(fraction <= DIFF_TARGET)}"
    )


if __name__ == "__main__":
    main()
