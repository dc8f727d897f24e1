"""Entry point for `prefect.yaml` (not installed): the flows live in :mod:`atlasflow.flows.job_inbox`."""

from atlasflow.flows.job_inbox import run_job_inbox

__all__ = ["run_job_inbox"]
