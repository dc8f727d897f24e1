"""Create or update atlasflow's blocks from a YAML file; secrets come from the environment only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from prefect.blocks.core import Block
from prefect.blocks.notifications import MattermostWebhook
from prefect.filesystems import WritableFileSystem
from prefect.plugins import load_prefect_collections
from prefect.utilities.dispatch import lookup_type
from pydantic import SecretStr, ValidationError

from atlasflow.blocks import ConfluenceCredentials, JiraCredentials, MattermostBot
from atlasflow.errors import ConfigurationError

#: A key of a storage block's settings ending in this names the environment variable holding the value.
ENV_SUFFIX = "_env"


class ConfigError(ConfigurationError):
    """The configuration file is missing something or names an unset environment variable."""


def _secret(section: str, conf: dict[str, Any], key: str = "token_env", what: str = "the token") -> SecretStr:
    env = conf.get(key)
    if not env:
        raise ConfigError(f"{section}: '{key}' must name the environment variable holding {what}")
    value = os.environ.get(str(env))
    if not value:
        raise ConfigError(f"{section}: environment variable {env} is not set")
    return SecretStr(value)


def _client_credentials(section: str, conf: dict[str, Any]) -> dict[str, Any]:
    """``client_id`` (as is, or from ``client_id_env``) and ``client_secret`` (from ``client_secret_env``)."""
    if not any(conf.get(k) for k in ("client_id", "client_id_env", "client_secret_env")):
        return {}
    client_id = conf.get("client_id") or _secret(section, conf, "client_id_env", "the client id").get_secret_value()
    secret = _secret(section, conf, "client_secret_env", "the client secret")
    return {"client_id": str(client_id), "client_secret": secret}


def _atlassian(section: str, conf: dict[str, Any], cls: type[JiraCredentials | ConfluenceCredentials]) -> Block:
    """An Atlassian block: e-mail + API token, a PAT (``token_env`` alone), or a service account's client
    credentials (``client_id``/``client_id_env`` + ``client_secret_env``)."""
    if "url" not in conf:
        raise ConfigError(f"{section}: 'url' is required")
    client = _client_credentials(section, conf)
    token = _secret(section, conf) if conf.get("token_env") or not client else None
    optional = {k: conf[k] for k in ("cloud_id", "gateway_url", "oauth_token_url") if conf.get(k)}
    try:
        return cls(
            url=conf["url"],
            username=conf.get("username") or None,
            token=token,
            deployment=conf.get("deployment", "auto"),
            verify_tls=conf.get("verify_tls", True),
            timeout_seconds=conf.get("timeout_seconds", 30.0),
            **client,
            **optional,
        )
    except ValueError as exc:  # pydantic's ValidationError; hide_input_in_errors keeps secrets out
        raise ConfigError(f"{section}: {exc}") from exc


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


def _mattermost_bot(conf: dict[str, Any]) -> Block:
    if "url" not in conf:
        raise ConfigError("mattermost_bot: 'url' is required")
    return MattermostBot(
        url=conf["url"],
        token=_secret("mattermost_bot", conf),
        team=conf.get("team"),
        verify_tls=conf.get("verify_tls", True),
        timeout_seconds=conf.get("timeout_seconds", 120.0),
    )


def _from_environment(section: str, settings: Any) -> Any:
    """``settings`` with every ``<field>_env: VAR`` replaced by ``<field>: <value of VAR>`` (at any depth)."""
    if not isinstance(settings, dict):
        return settings
    resolved: dict[str, Any] = {}
    for key, value in settings.items():
        if str(key).endswith(ENV_SUFFIX):
            found = os.environ.get(str(value))
            if not found:
                raise ConfigError(f"{section}: environment variable {value} is not set")
            resolved[str(key).removesuffix(ENV_SUFFIX)] = found
        else:
            resolved[str(key)] = _from_environment(section, value)
    return resolved


def _storage(conf: dict[str, Any]) -> Block:
    """Any Prefect writable filesystem block: ``type`` is its slug, ``settings`` its fields."""
    slug = conf.get("type")
    if not slug:
        raise ConfigError("storage: 'type' is required (local-file-system, remote-file-system, s3-bucket, ...)")
    load_prefect_collections()  # prefect-aws, prefect-gcp ... register their block types
    try:
        cls = lookup_type(Block, str(slug))
    except KeyError:
        raise ConfigError(f"storage: unknown block type {slug!r} (is its collection installed?)") from None
    if not issubclass(cls, WritableFileSystem):
        raise ConfigError(f"storage: {slug} is not a writable filesystem block type")
    try:
        return cls.model_validate(_from_environment("storage", conf.get("settings") or {}))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"storage: {slug}: {problems}") from None


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
    if "mattermost_bot" in config:
        blocks[config["mattermost_bot"].get("block", "mattermost-bot")] = _mattermost_bot(config["mattermost_bot"])
    if "storage" in config:
        blocks[config["storage"].get("block", "exports")] = _storage(config["storage"])
    if not blocks:
        raise ConfigError(
            "nothing to configure: expected a 'jira', 'confluence', 'mattermost', 'mattermost_bot' or 'storage' section"
        )
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
