"""The baseline of ``bench_start_latency.py``: a deployed flow that imports Prefect and nothing else."""

from __future__ import annotations

from prefect import flow


@flow(name="bench-baseline")
def baseline() -> str:
    """Does nothing: what a deployed run costs before any job code."""
    return "ok"
