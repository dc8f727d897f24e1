"""``atlasflow configure``: blocks from a YAML file, secrets only from the environment, idempotent."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prefect.blocks.notifications import MattermostWebhook

from atlasflow.blocks import ConfluenceCredentials, JiraCredentials
from atlasflow.cli import main
from atlasflow.configure import ConfigError, configure

CONFIG = """
jira:
  block: cfg-jira
  url: https://acme.atlassian.net
  username: me@acme.com
  token_env: CFG_JIRA_TOKEN
confluence:
  block: cfg-confluence
  url: https://confluence.acme.com
  token_env: CFG_CONFLUENCE_TOKEN
mattermost:
  block: cfg-mattermost
  hostname: chat.acme.com
  token_env: CFG_HOOK
  channels: [reports]
"""


def test_blocks_are_created_then_updated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    monkeypatch.setenv("CFG_JIRA_TOKEN", "jira-secret-1")
    monkeypatch.setenv("CFG_CONFLUENCE_TOKEN", "pat-secret")
    monkeypatch.setenv("CFG_HOOK", "hooksecret")
    saved = configure(path)
    assert sorted(saved) == [
        "atlasflow-confluence-credentials/cfg-confluence",
        "atlasflow-jira-credentials/cfg-jira",
        "mattermost-webhook/cfg-mattermost",
    ]
    jira = JiraCredentials.load("cfg-jira")
    assert jira.resolved_deployment() == "cloud" and jira.token.get_secret_value() == "jira-secret-1"
    confluence = ConfluenceCredentials.load("cfg-confluence")
    assert confluence.username is None and confluence.resolved_deployment() == "datacenter"
    hook = MattermostWebhook.load("cfg-mattermost")
    assert (hook.secure, hook.port, hook.channels) == (True, 443, ["reports"])

    monkeypatch.setenv("CFG_JIRA_TOKEN", "jira-secret-2")
    configure(path)  # run again: updated in place, nothing duplicated
    assert JiraCredentials.load("cfg-jira").token.get_secret_value() == "jira-secret-2"


def test_a_missing_secret_is_named_and_nothing_is_saved(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("jira:\n  block: cfg-missing\n  url: https://jira.acme.com\n  token_env: CFG_NOT_SET_ANYWHERE\n")
    with pytest.raises(ConfigError, match="CFG_NOT_SET_ANYWHERE"):
        configure(path)
    assert main(["configure", "--file", str(path)]) == 2
    assert "CFG_NOT_SET_ANYWHERE" in capsys.readouterr().err
    with pytest.raises(ValueError, match="Unable to find block document"):
        JiraCredentials.load("cfg-missing")


@pytest.mark.parametrize("mode", ["cloud", "datacenter"])
def test_the_config_the_sandbox_prints_works_as_printed(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpers import running_site

    from atlasflow.flows.confluence_table_sync import read_confluence_table
    from atlasflow.sandbox.confluence import TEAM_ROSTER_ID

    with running_site(mode) as sb:
        config = sb.config_yaml()
        exports = dict(pair.split("=", 1) for pair in config.splitlines()[0].removeprefix("# export ").split())
        for name, value in exports.items():
            monkeypatch.setenv(name, value)
        path = tmp_path / "config.yaml"
        path.write_text(config)
        assert main(["configure", "--file", str(path)]) == 0  # replaces the blocks running_site saved

        rows = read_confluence_table(page_id=TEAM_ROSTER_ID)
        jira = JiraCredentials.load("jira").get_client()  # type: ignore[union-attr]
        try:
            assert jira.myself()
        finally:
            jira.close()
        posts = httpx.get(f"{sb.url}/_sandbox/mattermost/posts").json()
    assert rows and len(posts) == 1 and "read-confluence-table" in posts[0]["message"]


SERVICE_ACCOUNT = """
jira:
  url: https://acme.atlassian.net
  client_id_env: CFG_CLIENT_ID
  client_secret_env: CFG_CLIENT_SECRET
  cloud_id: 0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e
confluence:
  url: https://confluence.acme.com
  client_id: dc-client
  client_secret_env: CFG_DC_SECRET
"""


def test_service_account_client_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    from atlasflow.configure import build_blocks

    monkeypatch.setenv("CFG_CLIENT_ID", "cloud-client")
    monkeypatch.setenv("CFG_CLIENT_SECRET", "cloud-secret")
    monkeypatch.setenv("CFG_DC_SECRET", "dc-secret")
    blocks = build_blocks(yaml.safe_load(SERVICE_ACCOUNT))

    jira, confluence = blocks["jira"], blocks["confluence"]
    assert isinstance(jira, JiraCredentials) and isinstance(confluence, ConfluenceCredentials)
    assert jira.credential_kind() == confluence.credential_kind() == "oauth"
    assert jira.token is None and jira.client_id == "cloud-client"
    assert jira.cloud_id == "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
    assert jira.client_secret is not None and jira.client_secret.get_secret_value() == "cloud-secret"
    assert confluence.resolved_deployment() == "datacenter" and confluence.client_id == "dc-client"


def test_a_client_id_without_its_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from atlasflow.configure import build_blocks

    with pytest.raises(ConfigError, match="client_secret_env"):
        build_blocks({"jira": {"url": "https://acme.atlassian.net", "client_id": "x"}})
