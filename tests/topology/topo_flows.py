"""Tiny flows the topology test deploys: they record when they ran, in which process, and can be killed."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run


@flow(name="topo-sleeper")
def sleeper(label: str, seconds: float, record_dir: str, crash_marker: str | None = None) -> str:
    """Record start (with pid), sleep, record end.

    With ``crash_marker``: the first run (no marker file yet) creates the marker and sleeps an hour, to be
    killed; a rerun finds the marker and finishes at once.
    """
    record = Path(record_dir) / f"{label}.json"
    started = time.time()
    long_sleep = False
    if crash_marker:
        marker = Path(crash_marker)
        long_sleep = not marker.exists()
        marker.touch()
    entry = {"label": label, "start": started, "pid": os.getpid(), "flow_run_id": str(flow_run.id)}
    _write(record, entry)
    time.sleep(3600 if long_sleep else seconds)
    _write(record, {**entry, "end": time.time()})
    return label


def _write(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


@flow(name="topo-upstream")
def upstream(record_dir: str) -> str:
    """Deployment A of the trigger chain."""
    _write(Path(record_dir) / "upstream.json", {"label": "upstream", "start": time.time(), "end": time.time()})
    return "A"


@flow(name="topo-downstream")
def downstream(record_dir: str) -> str:
    """Deployment B: runs when an A run completes (a deployment trigger)."""
    _write(
        Path(record_dir) / "downstream.json",
        {"label": "downstream", "start": time.time(), "end": time.time()},
    )
    return "B"
