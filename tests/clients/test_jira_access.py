"""Asking Jira what another account may see (user/permission/search), as the job inbox does before a run."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from atlasflow.blocks import JiraCredentials
from atlasflow.clients.jira import JiraClient
from atlasflow.clients.jira_access import may_browse, projects_of
from atlasflow.errors import ApiError
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.identity import account_id


def client_as(sb: Sandbox, username: str, token: str) -> JiraClient:
    user = {"username": username} if sb.mode == "cloud" else {}
    # No shared rate limit: it lives on a Prefect server, which these HTTP-only tests do not start.
    credentials = JiraCredentials(url=sb.jira_url, deployment=sb.mode, token=SecretStr(token), rate_limit=None, **user)
    return credentials.get_client()


def account(sb: Sandbox, username: str) -> str:
    return account_id(username) if sb.mode == "cloud" else username


def test_jira_says_which_projects_that_very_account_may_browse(sandbox: Sandbox) -> None:
    with client_as(sandbox, "demo@example.com", "sandbox-token") as client:
        assert may_browse(client, account(sandbox, "demo@example.com"), "SECRET")
        assert may_browse(client, account(sandbox, "viewer@example.com"), "DEMO")
        assert not may_browse(client, account(sandbox, "viewer@example.com"), "SECRET")
        # Data Center matches a username as a prefix ("viewer" finds viewer@example.com): only the name counts.
        assert not may_browse(client, account(sandbox, "viewer"), "DEMO")
        assert not may_browse(client, account(sandbox, "nobody@example.com"), "DEMO")
        assert projects_of(client, ["DEMO-1", "OPS-1"]) == {"DEMO", "OPS"}
        with pytest.raises(ApiError, match="404"):  # unknown or hidden from the service account
            may_browse(client, account(sandbox, "viewer@example.com"), "NOPE")


def test_an_account_without_administer_jira_cannot_ask(sandbox: Sandbox) -> None:
    with client_as(sandbox, "viewer@example.com", "viewer-token") as client, pytest.raises(ApiError, match="403"):
        may_browse(client, account(sandbox, "demo@example.com"), "DEMO")
