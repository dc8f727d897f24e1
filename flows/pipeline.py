"""Entry point for `prefect.yaml` (not installed): the flows live in :mod:`atlasflow.flows.pipeline`."""

from atlasflow.flows.pipeline import pipeline

__all__ = ["pipeline"]
