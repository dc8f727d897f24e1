"""Entry point for `prefect.yaml` (not installed): the flows live in :mod:`atlasflow.flows.jira_maintenance`."""

from atlasflow.flows.jira_maintenance import jira_bulk_update, jira_delete_issues, jira_permissions_check

__all__ = ["jira_bulk_update", "jira_delete_issues", "jira_permissions_check"]
