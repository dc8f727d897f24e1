"""Entry point for `prefect.yaml` (not installed): the flows live in :mod:`atlasflow.flows.jira_export`."""

from atlasflow.flows.jira_export import jira_export

__all__ = ["jira_export"]
