"""Where a report's snapshots are kept, by the flow's parameters: a Prefect filesystem block, or beside the reports.

The snapshots themselves (format, the rule for when one is saved) are :mod:`atlasflow.reports.snapshots`.
"""

from __future__ import annotations

from prefect.blocks.core import Block
from prefect.filesystems import WritableFileSystem

from atlasflow.reports.snapshots import SnapshotStore


def snapshot_store(output_dir: str, snapshot_block: str | None) -> SnapshotStore:
    """The store in ``snapshot_block`` (a Prefect writable filesystem block, ``slug/name``) when given, else in
    the snapshot folder of ``output_dir``.

    Raises:
        TypeError: When ``snapshot_block`` is not a writable filesystem block.
    """
    if snapshot_block:
        block = Block.load(snapshot_block)
        if not isinstance(block, WritableFileSystem):
            raise TypeError(f"snapshot block {snapshot_block!r} is not a writable filesystem block")
        return SnapshotStore(block=block)
    return SnapshotStore.beside(output_dir)
