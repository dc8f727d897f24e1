"""Helpers shared by the flow tests (imported as ``helpers``: pytest puts this folder on the path)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from openpyxl import load_workbook
from prefect.variables import Variable

from atlasflow.demo import save_sandbox_blocks
from atlasflow.runtime.notify import NOTIFIER_VARIABLE
from atlasflow.sandbox.app import Sandbox


@contextmanager
def running_site(mode: str, sandbox: Sandbox | None = None) -> Iterator[Sandbox]:
    """A running sandbox (fresh unless given) with blocks ``jira``, ``confluence``, ``mattermost`` on it."""
    with sandbox or Sandbox(mode=mode) as sb:  # type: ignore[arg-type]
        save_sandbox_blocks(sb, prefix="")
        Variable.set(NOTIFIER_VARIABLE, "mattermost-webhook/mattermost", overwrite=True)
        yield sb


def fresh_watermark() -> str:
    """A new report watermark variable set to now: a report on it covers the runs that end from here on, not
    every run of the session's Prefect server (hundreds, in whatever order the tests ran)."""
    name = f"wm_{uuid.uuid4().hex[:8]}"
    Variable.set(name, datetime.now(UTC).isoformat(), overwrite=True)
    return name


def sheet_rows(path: str, sheet: str) -> list[dict[str, Any]]:
    """A sheet's rows as ``{header: value}``."""
    rows = list(load_workbook(path, read_only=True)[sheet].iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def workbook_data(path: str) -> dict[str, list[dict[str, Any]]]:
    """The issue sheets of an export workbook."""
    return {s: sheet_rows(path, s) for s in ("Root Issues", "Child Issues")}
