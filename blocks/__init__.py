"""Prefect blocks: what atlasflow connects to."""

from blocks.credentials import ConfluenceCredentials, JiraCredentials

__all__ = ["ConfluenceCredentials", "JiraCredentials"]
