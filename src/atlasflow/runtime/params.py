"""Flow parameter types shared by the jobs, as the UI and the CLI send them."""

from __future__ import annotations

from atlasflow.errors import ConfigurationError

#: A Confluence page id as a flow parameter: ``557058`` and ``"557058"`` are the same page (the CLI's
#: ``--param page_id=557058`` sends a number).
PageId = int | str


def page_key(page_id: PageId) -> str:
    """A page id parameter as the text the API uses.

    Raises:
        ConfigurationError: Not a page id (digits only).
    """
    text = str(page_id).strip()
    if not text.isdigit() or isinstance(page_id, bool):
        raise ConfigurationError(f"a Confluence page id is a number, not {page_id!r}")
    return text


def table_ref(table: int | str) -> int | str:
    """A table parameter as given in the UI or CLI: ``"0"`` means the first table, other text a heading."""
    return int(table) if isinstance(table, str) and table.strip().isdigit() else table
