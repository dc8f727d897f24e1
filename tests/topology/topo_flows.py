"""Tiny flows the topology test deploys: they record when they ran, in which process, and can be killed."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.events import emit_event
from prefect.runtime import flow_run

from atlasflow.runtime.hooks import mark_ended


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


def late_heartbeat(flow: Any, run: Any, state: Any) -> None:
    """A heartbeat stamped after the run's final state, as a real run's last heartbeat is when it is sent
    while the final state is being proposed (the race behind crash detection firing for finished runs)."""
    emit_event(
        event="prefect.flow-run.heartbeat",
        resource={"prefect.resource.id": f"prefect.flow-run.{run.id}", "prefect.resource.name": run.name},
    )


@flow(name="topo-finisher", on_completion=[late_heartbeat, mark_ended])
def finisher() -> str:
    """Completes; its hooks send the late heartbeat, then atlasflow's end event (as every job's hooks do)."""
    return "done"


@flow(name="topo-finisher-unprotected", on_completion=[late_heartbeat])
def finisher_unprotected() -> str:
    """The control: the same late heartbeat and no end event, as a flow without atlasflow's hooks."""
    return "done"


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
