"""Prefect blocks: what atlasflow connects to."""

from atlasflow.blocks.credentials import ConfluenceCredentials, JiraCredentials, confluence_client, jira_client
from atlasflow.blocks.mattermost import MattermostBot, mattermost_client

__all__ = [
    "ConfluenceCredentials",
    "JiraCredentials",
    "MattermostBot",
    "confluence_client",
    "jira_client",
    "mattermost_client",
]
