"""Run every benchmark in this folder, one after the other; exit non-zero if any missed its target."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = [
    "bench_export.py",
    "bench_excel.py",
    "bench_changes.py",
    "bench_confluence_tables.py",
    "bench_start_latency.py",
]


def main() -> int:
    here = Path(__file__).parent
    failed = []
    for name in BENCHES:
        print(f"=== {name}", flush=True)
        if subprocess.run([sys.executable, str(here / name)], check=False).returncode != 0:
            failed.append(name)
    print("all benchmarks met their targets" if not failed else f"missed targets: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
