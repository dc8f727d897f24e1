"""Entry point for `prefect.yaml` (not installed): the flows live in :mod:`atlasflow.flows.confluence_table_sync`."""

from atlasflow.flows.confluence_table_sync import confluence_table_sync, read_confluence_table

__all__ = ["confluence_table_sync", "read_confluence_table"]
