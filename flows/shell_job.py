"""Entry point for `prefect.yaml` (not installed): the flows live in :mod:`atlasflow.flows.shell_job`."""

from atlasflow.flows.shell_job import shell_job

__all__ = ["shell_job"]
