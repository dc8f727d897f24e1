"""Automatic garbage collection paused while a large search streams in.

A 100,000-issue export decodes some 300,000 containers that live until the workbook is written. Each
time they grow by a quarter, CPython's cyclic collector walks all of them (0.2–0.4 s at that size) with
the GIL held, so every fetch thread stops reading its socket meanwhile: four such pauses cost a
100,000-issue fetch about a second and left the shared rate limit idle. Decoded JSON holds no reference
cycles, so nothing is collected late but the cycles other code makes meanwhile; they are collected once
the last search ends (or the tree arranged from it: :meth:`atlasflow.reports.tree.TreeWalker.forest`).

The pause is process-wide (``gc.disable``): searches running at once in several threads share it, and
collection resumes only if it was on when the first began.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Pause:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holders = 0
        self.resume = False

    def enter(self) -> None:
        with self.lock:
            if self.holders == 0:
                self.resume = gc.isenabled()
                gc.disable()
            self.holders += 1

    def leave(self) -> None:
        with self.lock:
            self.holders -= 1
            if self.holders == 0 and self.resume:
                gc.enable()


_PAUSE = _Pause()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Automatic garbage collection off inside (nested and concurrent uses count; see the module)."""
    _PAUSE.enter()
    try:
        yield
    finally:
        _PAUSE.leave()
