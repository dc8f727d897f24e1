"""One GC pause for the whole report pipeline: building a snapshot never ends a search's pause early."""

from __future__ import annotations

import gc
from collections.abc import Iterator

from atlasflow.clients.gcpause import gc_paused
from atlasflow.formats.records import ExportRow
from atlasflow.reports.snapshots import build_snapshot


def test_a_snapshot_built_while_a_search_begins_leaves_the_search_paused() -> None:
    """A search (another thread, in production) pauses collection while a snapshot is being built; the
    snapshot ends first. Collection must stay off until the search ends, then come back on."""
    assert gc.isenabled()
    search = gc_paused()

    def rows() -> Iterator[ExportRow]:
        search.__enter__()  # the search begins while the snapshot is being built
        yield ExportRow(key="DEMO-1", summary="one", type="Story", status="Open")

    try:
        snapshot = build_snapshot(rows(), [])
        assert list(snapshot) == ["DEMO-1"]
        assert not gc.isenabled(), "the snapshot ended the search's pause"
    finally:
        search.__exit__(None, None, None)
    assert gc.isenabled()
