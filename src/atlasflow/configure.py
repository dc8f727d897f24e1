"""Create or update atlasflow's blocks from a YAML file; secrets come from the environment only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from prefect.blocks.core import Block
from prefect.blocks.notifications import MattermostWebhook
from pydantic import SecretStr

from atlasflow.blocks import ConfluenceCredentials, JiraCredentials


class ConfigError(ValueError):
    """The configuration file is missing something or names an unset environment variable."""


def _secret(section: str, conf: dict[str, Any]) -> SecretStr:
    env = conf.get("token_env")
    if not env:
        raise ConfigError(f"{section}: 'token_env' must name the environment variable holding the token")
    value = os.environ.get(str(env))
    if not value:
        raise ConfigError(f"{section}: environment variable {env} is not set")
    return SecretStr(value)


def _atlassian(section: str, conf: dict[str, Any], cls: type[JiraCredentials | ConfluenceCredentials]) -> Block:
    if "url" not in conf:
        raise ConfigError(f"{section}: 'url' is required")
    return cls(
        url=conf["url"],
        username=conf.get("username") or None,
        token=_secret(section, conf),
        deployment=conf.get("deployment", "auto"),
        verify_tls=conf.get("verify_tls", True),
        timeout_seconds=conf.get("timeout_seconds", 30.0),
    )


def _mattermost(conf: dict[str, Any]) -> Block:
    if "hostname" not in conf:
        raise ConfigError("mattermost: 'hostname' is required")
    return MattermostWebhook(
        hostname=conf["hostname"],
        token=_secret("mattermost", conf),
        port=conf.get("port", 443 if conf.get("secure", True) else 8065),
        secure=conf.get("secure", True),
        botname=conf.get("botname", "atlasflow"),
        channels=conf.get("channels"),
        path=conf.get("path"),
    )


def build_blocks(config: dict[str, Any]) -> dict[str, Block]:
    """The blocks a configuration describes, by the name they are saved under."""
    blocks: dict[str, Block] = {}
    if "jira" in config:
        blocks[config["jira"].get("block", "jira")] = _atlassian("jira", config["jira"], JiraCredentials)
    if "confluence" in config:
        conf = config["confluence"]
        blocks[conf.get("block", "confluence")] = _atlassian("confluence", conf, ConfluenceCredentials)
    if "mattermost" in config:
        blocks[config["mattermost"].get("block", "mattermost")] = _mattermost(config["mattermost"])
    if not blocks:
        raise ConfigError("nothing to configure: expected a 'jira', 'confluence' or 'mattermost' section")
    return blocks


def configure(path: Path) -> list[str]:
    """Save (create or overwrite) every block the file describes; returns what was saved."""
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    saved = []
    for name, block in build_blocks(config).items():
        block.save(name, overwrite=True)
        saved.append(f"{block.get_block_type_slug()}/{name}")
    return saved
