"""Export snapshots kept between runs: beside the reports by default, or in a Prefect filesystem block.

A snapshot is keyed by the export's scope (roots / project / JQL, columns, depth, links), so only exports
of the same scope are compared.

The rule: the snapshot the next "Changes" sheet compares with is the last one that reached a reader, i.e.
it is saved only after its workbook was delivered to at least one destination (or, when none was asked
for, written). So a change is never hidden:

* a run that fails, or whose every delivery fails, leaves the stored snapshot as it was, and the next
  delivered workbook reports the change;
* a run killed after a delivery and before the save (or killed while an upload the server still completes
  is in flight) leaves it too: the next workbook reports the change again. Twice, never zero times;
* concurrent runs of one scope: the last save wins, and whichever it is was delivered with a Changes sheet
  against a snapshot that was itself delivered, so every change was in some delivered workbook; an older
  snapshot winning only makes the next workbook repeat changes;
* an export compared with a workbook or with nothing saves too: its readers saw that state;
* the same holds with a ``snapshot_block``; a local directory is replaced atomically, a block by its own
  ``write_path``.
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson
from prefect.blocks.core import Block
from prefect.filesystems import WritableFileSystem

from atlasflow.formats.changes import Snapshot, snapshot_of
from atlasflow.formats.records import ExportRow

SNAPSHOT_DIR = ".atlasflow-snapshots"


def scope_id(scope: dict[str, Any]) -> str:
    """A stable name for an export scope."""
    return hashlib.sha256(json.dumps(scope, sort_keys=True, default=str).encode()).hexdigest()[:20]


@contextmanager
def _allocating() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic containers.

    A snapshot of 100k issues is hundreds of thousands of dicts and lists; collections triggered by those
    allocations walk every live object of the run and double the time it takes.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def build_snapshot(rows: Iterable[ExportRow], extra_columns: Sequence[str]) -> Snapshot:
    with _allocating():
        return {row.key: snapshot_of(row, extra_columns) for row in rows}


def _encode(snapshot: Snapshot) -> bytes:
    """Compact JSON: the field names once, then each issue's values in that order."""
    fields = tuple(next(iter(snapshot.values()), {}))
    with _allocating():
        issues = {
            key: list(values.values()) if tuple(values) == fields else [values.get(name) for name in fields]
            for key, values in snapshot.items()
        }
        payload = {"format": 2, "fields": fields, "issues": issues}
        text = orjson.dumps(payload)
    return gzip.compress(text, compresslevel=1)


def _decode(data: bytes) -> Snapshot:
    with _allocating():
        payload = orjson.loads(gzip.decompress(data))
        fields = payload["fields"]
        return {key: dict(zip(fields, values, strict=True)) for key, values in payload["issues"].items()}


@dataclass(frozen=True)
class SnapshotStore:
    """Reads and writes snapshots in a local directory or a Prefect ``WritableFileSystem`` block."""

    directory: Path | None = None
    block: WritableFileSystem | None = None

    @classmethod
    def for_export(cls, output_dir: str, snapshot_block: str | None) -> SnapshotStore:
        if snapshot_block:
            block = Block.load(snapshot_block)
            if not isinstance(block, WritableFileSystem):
                raise TypeError(f"snapshot block {snapshot_block!r} is not a writable filesystem block")
            return cls(block=block)
        return cls(directory=Path(output_dir).resolve() / SNAPSHOT_DIR)

    def _name(self, scope: str) -> str:
        return f"{scope}.json.gz"

    def load(self, scope: str) -> Snapshot | None:
        """The last snapshot of ``scope``, or ``None`` when there is none yet."""
        if self.block is not None:
            try:
                data = self.block.read_path(self._name(scope))
            except (FileNotFoundError, ValueError, OSError):
                return None
            return _decode(cast(bytes, data))
        assert self.directory is not None
        path = self.directory / self._name(scope)
        return _decode(path.read_bytes()) if path.is_file() else None

    def save(self, scope: str, snapshot: Snapshot) -> None:
        """Replace the snapshot of ``scope`` (atomically for the local directory); call it only once the
        workbook built from ``snapshot`` reached a reader (the module's rule)."""
        data = _encode(snapshot)
        if self.block is not None:
            self.block.write_path(self._name(scope), data)  # type: ignore[unused-coroutine]
            return
        assert self.directory is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / self._name(scope)
        temporary = final.with_name(f".{final.name}.{secrets.token_hex(6)}.tmp")
        try:
            temporary.write_bytes(data)
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
