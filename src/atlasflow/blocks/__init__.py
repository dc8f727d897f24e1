"""Prefect blocks: what atlasflow connects to."""

from atlasflow.blocks.credentials import ConfluenceCredentials, JiraCredentials, confluence_client, jira_client

__all__ = ["ConfluenceCredentials", "JiraCredentials", "confluence_client", "jira_client"]
