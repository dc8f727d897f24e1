"""Deliver a file a job produced to the people who read it: a Confluence page, a Mattermost channel, storage.

Every destination asked for is tried, each on its own; a failure of one never stops the others. What
arrived is answered as links a person can open; what failed is raised afterwards, naming each destination
and why, so the run (and its notification) says so.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from prefect import get_run_logger
from prefect.blocks.core import Block
from prefect.filesystems import WritableFileSystem

from atlasflow.blocks import confluence_client, mattermost_client
from atlasflow.errors import JobFailed
from atlasflow.runtime.tasks import remote_task

#: Object-storage blocks whose ``write_path`` answers a key inside a bucket: (URL scheme, bucket field).
_BUCKETS = {
    "s3-bucket": ("s3", "bucket_name"),
    "gcs-bucket": ("gs", "bucket"),
    "azure-blob-storage-container": ("az", "container_name"),
}


@dataclass(frozen=True)
class Destinations:
    """Where a file goes; nothing set = it stays where it was written.

    Attributes:
        attach_to_page: Confluence page id: the file becomes (a new version of) an attachment.
        confluence_block: ``ConfluenceCredentials`` block for the page.
        post_to_channel: Mattermost ``team-name/channel-name`` or channel id: posted as a file.
        mattermost_block: ``MattermostBot`` block for the channel.
        storage_block: Any Prefect writable filesystem block, as ``slug/name``.
    """

    attach_to_page: str | None = None
    confluence_block: str = "confluence"
    post_to_channel: str | None = None
    mattermost_block: str = "mattermost-bot"
    storage_block: str | None = None

    def __bool__(self) -> bool:
        return bool(self.attach_to_page or self.post_to_channel or self.storage_block)


@dataclass(frozen=True)
class Parcel:
    """One file to deliver.

    Attributes:
        path: The file as written.
        stable_name: Its name on a page: the same for every run of the same job scope, so each run adds a
            version rather than a file.
        folder: Folder in the storage block (stable per scope); the file keeps its own, timestamped, name.
        message: The chat post's text (already made inert by the caller).
        comment: The attachment version's comment.
    """

    path: Path
    stable_name: str
    folder: str
    message: str
    comment: str = ""

    @property
    def media_type(self) -> str:
        return mimetypes.guess_type(self.path.name)[0] or "application/octet-stream"


@dataclass
class DeliveryReport:
    """Links to what arrived, in the order tried, and a line per destination that failed."""

    delivered: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def openable(self) -> str | None:
        """The first delivered link a browser opens (http or https)."""
        return next((link for link in self.delivered if link.startswith(("https://", "http://"))), None)

    def raise_for_failures(self) -> None:
        """Raises:
        DeliveryError: Some destination failed (the others were delivered)."""
        if self.failures:
            done = f"; delivered: {', '.join(self.delivered)}" if self.delivered else "; nothing was delivered"
            raise DeliveryError("delivery failed: " + "; ".join(self.failures) + done)


class DeliveryError(JobFailed, RuntimeError):
    """At least one destination did not get the file (the message says which and why)."""


@remote_task(timeout_seconds=1800)
def attach_to_confluence(parcel: Parcel, page_id: str, block: str) -> str:
    """Upload the file as (a new version of) the page's attachment ``stable_name``; its download link."""
    client = confluence_client(block)
    try:
        attachment = client.upload_attachment(
            page_id, parcel.stable_name, parcel.path.read_bytes(), parcel.media_type, parcel.comment
        )
    finally:
        client.close()
    get_run_logger().info("attached %s version %d to page %s", attachment.title, attachment.version, page_id)
    return attachment.download_url


@remote_task(timeout_seconds=1800)
def post_to_mattermost(parcel: Parcel, channel: str, block: str) -> str:
    """Post the file with its message; the post's permalink."""
    client = mattermost_client(block)
    try:
        found = client.channel(channel)
        file_id = client.upload(found, parcel.path.name, parcel.path.read_bytes(), parcel.media_type)
        return client.post(found, parcel.message, [file_id])
    finally:
        client.close()


@remote_task(timeout_seconds=1800)
def write_to_storage(parcel: Parcel, block: str) -> str:
    """Write the file to ``folder/<its name>`` in a filesystem block; where it is."""
    storage = Block.load(block)
    if not isinstance(storage, WritableFileSystem):
        raise TypeError(f"block {block!r} is not a writable filesystem block")
    written = cast(str, storage.write_path(f"{parcel.folder}/{parcel.path.name}", parcel.path.read_bytes()))
    return storage_url(storage, str(written))


def storage_url(storage: Block, written: str) -> str:
    """The location a filesystem block's ``write_path`` answered, as a URL (``s3://bucket/key``, ``file://``)."""
    if "://" in written:
        return written
    scheme, bucket_field = _BUCKETS.get(storage.get_block_type_slug(), ("", ""))
    bucket = getattr(storage, bucket_field, None) if bucket_field else None
    if scheme and bucket:
        return f"{scheme}://{bucket}/{written.lstrip('/')}"
    path = Path(written)
    return path.as_uri() if path.is_absolute() else written


def deliver(parcel: Parcel, destinations: Destinations) -> DeliveryReport:
    """Try every destination (Confluence, Mattermost, storage, in that order); failures are collected."""
    report = DeliveryReport()
    d = destinations
    if d.attach_to_page:
        _attempt(
            report,
            f"Confluence page {d.attach_to_page}",
            attach_to_confluence,
            parcel,
            d.attach_to_page,
            d.confluence_block,
        )
    if d.post_to_channel:
        _attempt(
            report,
            f"Mattermost channel {d.post_to_channel}",
            post_to_mattermost,
            parcel,
            d.post_to_channel,
            d.mattermost_block,
        )
    if d.storage_block:
        _attempt(report, f"storage block {d.storage_block}", write_to_storage, parcel, d.storage_block)
    return report


def _attempt(report: DeliveryReport, what: str, send: Callable[..., str], *args: object) -> None:
    logger = get_run_logger()
    try:
        link = send(*args)
    except Exception as exc:
        logger.error("delivery to %s failed: %s", what, exc)
        report.failures.append(f"{what}: {exc}")
        return
    logger.info("delivered to %s: %s", what, link)
    report.delivered.append(link)
