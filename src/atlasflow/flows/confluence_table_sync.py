"""Confluence tables as data: read a page's table; upsert rows into it by key without damaging the page."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from atlasflow.blocks import confluence_client
from atlasflow.clients.confluence import ConfluenceClient, Page
from atlasflow.errors import ConfigurationError
from atlasflow.files import input_file
from atlasflow.formats.confluence_tables import MergeResult, merge_rows, read_table
from atlasflow.formats.sources import FormulaMode, read_rows
from atlasflow.runtime.failures import one_line_failures
from atlasflow.runtime.hooks import job_hooks
from atlasflow.runtime.params import PageId, page_key, table_ref
from atlasflow.runtime.tasks import opaque, remote_task


@remote_task(timeout_seconds=600)
def upsert_table(
    client: ConfluenceClient,
    page_id: str,
    table: int | str,
    key_column: str,
    rows: list[dict[str, Any]],
    columns: list[str] | None,
    delete_missing: bool,
    dry_run: bool,
) -> tuple[MergeResult, Page, bool, int]:
    """Merge rows into the page's table; write only when something changed (never in a dry run).

    A concurrent edit between our read and write makes the write fail with 409: the page is read again
    and the rows merged into the newer version, so neither edit is lost.
    """

    def edit(page: Page) -> tuple[str | None, MergeResult]:
        merged = merge_rows(page.body, table, key_column, rows, columns=columns, delete_missing=delete_missing)
        return (None if dry_run or not merged.changed else merged.storage), merged

    outcome = client.edit_page(page_id, edit, message="atlasflow table sync")
    return outcome.result, outcome.page, outcome.written, outcome.attempts


def changed_nothing(result: dict[str, Any]) -> bool:
    """A sync that found nothing to change: nothing to post (``changes`` policy)."""
    return not (result.get("added") or result.get("updated") or result.get("deleted"))


@flow(name="confluence-table-sync", **job_hooks(did_nothing=changed_nothing))
@one_line_failures
def confluence_table_sync(
    page_id: PageId,
    table: int | str,
    key_column: str,
    rows: list[dict[str, Any]] | None = None,
    source: str | None = None,
    columns: list[str] | None = None,
    delete_missing: bool = False,
    dry_run: bool = False,
    confluence_block: str = "confluence",
    sheet: str | None = None,
    encoding: str | None = None,
    formulas: FormulaMode = "refuse",
) -> dict[str, Any]:
    """Upsert rows into a table on a Confluence page by a key column.

    Args:
        page_id: The page.
        table: Which table: its index on the page (0 = first) or the heading/text just above it.
        key_column: Header of the column whose values identify rows.
        rows: The rows to upsert, as ``{column: value}``.
        source: Or an .xlsx/.csv file inside the reports folder (:mod:`atlasflow.files`) to read them from
            (e.g. a Jira export workbook).
        columns: Only write these columns (default: every input column the table has).
        delete_missing: Delete table rows whose key is not in the input.
        dry_run: Compute and show the diff, write nothing.
        confluence_block: Name of a saved ``ConfluenceCredentials`` block.
        sheet: With an .xlsx source, the sheet to read (default: the first).
        encoding: With a .csv source, its text encoding (default UTF-8; e.g. ``cp1252``).
        formulas: With an .xlsx source, formula cells are ``"refuse"``-d (naming the cells) or their
            ``"cached"`` values (saved by Excel) are used.

    Returns:
        Counts of added, updated and deleted rows, whether a version was written, the page version.
    """
    logger = get_run_logger()
    if (rows is None) == (source is None):
        raise ConfigurationError("give exactly one of rows or source")
    page_id = page_key(page_id)
    if rows is not None:
        data = rows
    else:
        data = read_rows(input_file(str(source), "source"), sheet=sheet, encoding=encoding, formulas=formulas)
    table = table_ref(table)
    client = confluence_client(confluence_block)
    try:
        merged, page, written, attempts = upsert_table(
            client, page_id, table, key_column, opaque(data), columns, delete_missing, dry_run
        )
    finally:
        client.close()
    verb = "would change" if dry_run else ("changed" if written else "no change to")
    create_markdown_artifact(
        f"# Table sync of page {page_id} ({'dry run' if dry_run else 'applied'})\n\n{merged.diff_markdown()}",
        key="confluence-table-sync-diff",
        description=f"{verb} table {table!r} on page {page_id}",
    )
    logger.info(
        "%s table %r on page %s: %d added, %d updated, %d deleted (version %d, %d read(s))",
        verb,
        table,
        page_id,
        len(merged.added),
        len(merged.updated),
        len(merged.deleted),
        page.version,
        attempts,
    )
    return {
        "page_id": page_id,
        "added": len(merged.added),
        "updated": len(merged.updated),
        "deleted": len(merged.deleted),
        "written": written,
        "dry_run": dry_run,
        "version": page.version,
    }


@remote_task(timeout_seconds=300)
def fetch_page(client: ConfluenceClient, page_id: str) -> Page:
    return client.get_page(page_id)


@flow(name="read-confluence-table", **job_hooks())
@one_line_failures
def read_confluence_table(
    page_id: PageId, table: int | str = 0, confluence_block: str = "confluence"
) -> list[dict[str, str]]:
    """A table of a Confluence page as rows of ``{header: cell text}``, also shown as a table artifact."""
    page_id = page_key(page_id)
    table = table_ref(table)
    client = confluence_client(confluence_block)
    try:
        page = fetch_page(client, page_id)
    finally:
        client.close()
    parsed = read_table(page.body, table)
    create_table_artifact(
        [dict(r) for r in parsed.rows] or [dict.fromkeys(parsed.header, "")],
        key="confluence-table",
        description=f"Table {table!r} of page {page_id} ({page.title}), version {page.version}",
    )
    get_run_logger().info("read %d row(s) × %d column(s) from page %s", len(parsed.rows), len(parsed.header), page_id)
    return [dict(r) for r in parsed.rows]
