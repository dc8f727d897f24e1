"""Trust boundaries end to end: hostile servers and hostile inputs meet a flow through real HTTP."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client

from atlasflow.blocks import JiraCredentials
from atlasflow.flows.jira_export import jira_export
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.core import ALL_PERMISSIONS, Account, Faults

ECHOED = "tokFLOWECHO58e2RECOGNISABLE"


def test_an_echoed_token_reaches_no_state_log_or_chat_post(
    cloud_site: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cloud_site.state.accounts.append(Account("echo@example.com", ECHOED, "Echo", ALL_PERMISSIONS))
    JiraCredentials(url=cloud_site.jira_url, username="echo@example.com", token=ECHOED, deployment="cloud").save(
        "jira", overwrite=True
    )
    cloud_site.state.faults = Faults(echo_status=401, path_prefix="/rest/api/")
    state = jira_export(root_tickets=["DEMO-1"], output_dir=str(tmp_path), return_state=True)
    assert state.is_failed() and "401" in (state.message or "")
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)  # type: ignore[arg-type]
        logs = [entry.message for entry in client.read_logs()]
    seen = "\n".join([state.message or "", str(run.state.message if run.state else ""), caplog.text, *logs])
    seen += "\n".join(p.text for p in cloud_site.mattermost.posts)
    assert "Request rejected by gateway" in seen and cloud_site.mattermost.posts, "no echo, no post: proves nothing"
    basic = base64.b64encode(f"echo@example.com:{ECHOED}".encode()).decode()
    for spelling in (ECHOED, basic, basic.rstrip("=")):
        assert spelling not in seen
