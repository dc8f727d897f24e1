"""Stage "snapshot": a report's snapshots kept between runs, beside the reports or in any file store.

The store is a local directory or anything with ``read_path``/``write_path`` (:class:`FileStore`: a Prefect
filesystem block is one, loaded by name in :mod:`atlasflow.flows.snapshots`); no Prefect here.

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

import gzip
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import orjson

from atlasflow.clients.gcpause import gc_paused
from atlasflow.formats.changes import Snapshot, snapshot_of
from atlasflow.formats.records import ExportRow

SNAPSHOT_DIR = ".atlasflow-snapshots"


class FileStore(Protocol):
    """Where snapshots go when not in a local directory (a Prefect ``WritableFileSystem`` block is one)."""

    def read_path(self, path: str) -> Any: ...

    def write_path(self, path: str, content: bytes) -> Any: ...


def build_snapshot(rows: Iterable[ExportRow], extra_columns: Sequence[str]) -> Snapshot:
    """The snapshot of ``rows``, built under the GC pause (:mod:`atlasflow.clients.gcpause`): hundreds of
    thousands of small acyclic dicts, whose allocations would otherwise trigger collections over the run."""
    with gc_paused():
        return {row.key: snapshot_of(row, extra_columns) for row in rows}


def _encode(snapshot: Snapshot) -> bytes:
    """Compact JSON: the field names once, then each issue's values in that order."""
    fields = tuple(next(iter(snapshot.values()), {}))
    with gc_paused():
        issues = {
            key: list(values.values()) if tuple(values) == fields else [values.get(name) for name in fields]
            for key, values in snapshot.items()
        }
        payload = {"format": 2, "fields": fields, "issues": issues}
        text = orjson.dumps(payload)
    return gzip.compress(text, compresslevel=1)


def _decode(data: bytes) -> Snapshot:
    with gc_paused():
        payload = orjson.loads(gzip.decompress(data))
        fields = payload["fields"]
        return {key: dict(zip(fields, values, strict=True)) for key, values in payload["issues"].items()}


@dataclass(frozen=True)
class SnapshotStore:
    """Reads and writes snapshots in a local directory or a :class:`FileStore`."""

    directory: Path | None = None
    block: FileStore | None = None

    @classmethod
    def beside(cls, output_dir: str) -> SnapshotStore:
        """The store in :data:`SNAPSHOT_DIR` of ``output_dir``."""
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
            self.block.write_path(self._name(scope), data)
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
