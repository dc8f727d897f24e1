"""Entry point for `prefect.yaml` (not installed): the flows live in :mod:`atlasflow.flows.report_results`."""

from atlasflow.flows.report_results import report_results

__all__ = ["report_results"]
