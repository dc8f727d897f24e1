"""The jobs with each credential kind the team did not use before: a scoped API token through the gateway,
Cloud and Data Center service accounts. Links in what people read always point at the site."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import running_site
from openpyxl import load_workbook

from atlasflow.demo import SandboxAuth, save_sandbox_blocks
from atlasflow.flows.confluence_table_sync import confluence_table_sync
from atlasflow.flows.jira_export import jira_export
from atlasflow.sandbox.confluence import TEAM_ROSTER_ID


@pytest.mark.parametrize(
    ("mode", "auth"), [("cloud", "scoped"), ("cloud", "oauth"), ("datacenter", "oauth")], ids=lambda v: str(v)
)
def test_export_and_table_sync_with_every_credential_kind(mode: str, auth: SandboxAuth, tmp_path: Path) -> None:
    with running_site(mode) as sb:
        save_sandbox_blocks(sb, prefix="", auth=auth)
        export = jira_export(root_tickets=["DEMO-1"], output_dir=str(tmp_path), compare_to=None)
        sync = confluence_table_sync(
            page_id=TEAM_ROSTER_ID, table=0, key_column="Key", rows=[{"Key": "DAN", "Name": "Dan"}]
        )
        requested = {e.path for e in sb.state.log.entries}
        site = sb.url

    links = [
        cell.hyperlink.target
        for row in load_workbook(export["path"])["Child Issues"].iter_rows()
        for cell in row
        if cell.hyperlink is not None
    ]
    assert export["issues"] > 0 and sync["added"] == 1
    assert links and all(link.startswith(f"{site}/browse/") for link in links)
    through_gateway = any(p.startswith("/ex/") for p in requested)
    assert through_gateway == (mode == "cloud")
