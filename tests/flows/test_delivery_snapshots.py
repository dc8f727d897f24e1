"""A Jira change is never hidden from readers: the "previous" snapshot is the last one that reached a reader.

Each test changes Jira after a delivered export, then makes the next delivery fail (a refused upload or post)
or kills the run during it (SIGKILL while the upload or the post is in flight), and checks that the next
delivered workbook's Changes sheet still reports the change.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import sheet_rows
from prefect.filesystems import LocalFileSystem
from prefect.settings import PREFECT_API_URL

from atlasflow.flows.jira_export import jira_export
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.confluence import EXPORT_SUMMARY_ID
from atlasflow.sandbox.core import Faults

RENAMED = "Renamed while the delivery failed"
#: The request that puts the workbook in front of readers, per destination (the sandbox's path, any mode).
SENDS = {"page": "/child/attachment", "channel": "/api/v4/posts"}
STALL_SECONDS = 3.0


def destinations(*which: str) -> dict[str, Any]:
    where = {"page": {"attach_to_page": EXPORT_SUMMARY_ID}, "channel": {"post_to_channel": "acme/reports"}}
    return {k: v for name in which for k, v in where[name].items()}


def export(tmp_path: Path, *which: str, **kwargs: Any) -> Any:
    """An export of DEMO-1 delivered to ``which``, with a local copy in ``tmp_path`` to read back."""
    return jira_export(root_tickets=["DEMO-1"], output_dir=str(tmp_path), **destinations(*which), **kwargs)


def changed_fields(result: dict[str, Any]) -> dict[str, set[str]]:
    """The Changes sheet of an export as {key: {field or "new" / "gone"}}."""
    found: dict[str, set[str]] = {}
    for row in sheet_rows(result["path"], "Changes"):
        found.setdefault(row["Key"], set()).add(row["Field"] if row["Change"] == "changed" else row["Change"])
    return found


def rename(sb: Sandbox) -> None:
    """The Jira change that readers must be told about."""
    assert sb.jira is not None
    sb.jira.update_issue("DEMO-3", summary=RENAMED)


def sent(sb: Sandbox, destination: str) -> tuple[str, str]:
    """(method, path) of the last request that delivered to ``destination``."""
    entry = next(e for e in reversed(sb.state.log.entries) if SENDS[destination] in e.path and e.method != "GET")
    return entry.method, entry.path


@pytest.mark.parametrize("destination", ["page", "channel"])
def test_a_change_made_before_a_failed_delivery_is_reported_by_the_next_one(
    cloud_site: Sandbox, tmp_path: Path, destination: str
) -> None:
    export(tmp_path, destination)
    _, path = sent(cloud_site, destination)
    rename(cloud_site)
    cloud_site.state.faults = Faults(echo_status=400, path_prefix=path)

    failed = export(tmp_path, destination, return_state=True)

    assert failed.is_failed() and "nothing was delivered" in (failed.message or "")
    cloud_site.state.faults = Faults()
    after = export(tmp_path, destination)
    assert changed_fields(after) == {"DEMO-3": {"summary"}}
    assert after["changes"] != "no changes"


def test_a_delivery_that_reached_one_destination_is_not_reported_again(cloud_site: Sandbox, tmp_path: Path) -> None:
    """At least one reader got the change: the next workbook starts from there (a rule of "every
    destination" would report it again, and again, while one channel stays broken)."""
    export(tmp_path, "page", "channel")
    rename(cloud_site)
    cloud_site.state.faults = Faults(echo_status=400, path_prefix=sent(cloud_site, "channel")[1])

    partly = export(tmp_path, "page", "channel", return_state=True)

    assert partly.is_failed() and "delivered: " in (partly.message or "")
    cloud_site.state.faults = Faults()
    assert export(tmp_path, "page", "channel")["changes"] == "no changes"


@pytest.mark.parametrize("destination", ["page", "channel"])
def test_a_run_killed_during_delivery_leaves_the_change_for_the_next_run(
    cloud_site: Sandbox, tmp_path: Path, destination: str
) -> None:
    """SIGKILL while the upload (page) or the post (channel) is in flight; snapshots in a block, as another
    machine would share them. The held request still completes on the server, so readers may see the change
    twice: better twice than never."""
    LocalFileSystem(basepath=str(tmp_path / "snapshots")).save("snapshots", overwrite=True)
    block = {"snapshot_block": "local-file-system/snapshots"}
    export(tmp_path, destination, **block)
    method, path = sent(cloud_site, destination)
    rename(cloud_site)
    cloud_site.state.faults = Faults(stall=f"{method} {path}", stall_seconds=STALL_SECONDS)
    code = (
        "from atlasflow.flows.jira_export import jira_export\n"
        f"jira_export(root_tickets=['DEMO-1'], output_dir={str(tmp_path / 'killed')!r}, "
        f"snapshot_block={block['snapshot_block']!r}, **{destinations(destination)!r})\n"
    )
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    process = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    try:
        assert cloud_site.state.faults.stalled.wait(timeout=120), f"the export never reached {method} {path}"
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    time.sleep(STALL_SECONDS + 0.5)  # the held request completes on the server, as it would after a client died
    assert list((tmp_path / "killed").glob("*.xlsx")), "the killed run had not written its workbook"

    after = export(tmp_path, destination, **block)
    assert changed_fields(after) == {"DEMO-3": {"summary"}}
