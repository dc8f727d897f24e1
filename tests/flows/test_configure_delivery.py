"""``atlasflow configure`` for deliveries: the Mattermost bot and a storage block of any filesystem type."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.blocks.core import Block
from prefect.filesystems import LocalFileSystem

from atlasflow.blocks import MattermostBot
from atlasflow.configure import ConfigError, configure

CONFIG = """
mattermost_bot:
  block: cfg-bot
  url: https://chat.acme.com
  team: acme
  token_env: CFG_BOT_TOKEN
storage:
  block: cfg-exports
  type: {type}
  settings:
{settings}
"""
S3 = """    bucket_name: acme-reports
    bucket_folder: atlasflow
    credentials:
      aws_access_key_id: AKIAEXAMPLE
      aws_secret_access_key_env: CFG_AWS_SECRET
      region_name: eu-west-1"""


def write(tmp_path: Path, type_: str, settings: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(type=type_, settings=settings))
    return path


def test_bot_and_local_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFG_BOT_TOKEN", "bot-secret")
    saved = configure(write(tmp_path, "local-file-system", f"    basepath: {tmp_path / 'store'}"))
    assert sorted(saved) == ["atlasflow-mattermost-bot/cfg-bot", "local-file-system/cfg-exports"]
    bot = MattermostBot.load("cfg-bot")
    assert (bot.url, bot.team, bot.token.get_secret_value()) == ("https://chat.acme.com", "acme", "bot-secret")
    assert LocalFileSystem.load("cfg-exports").basepath == str(tmp_path / "store")


def test_s3_bucket_with_its_secret_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFG_BOT_TOKEN", "bot-secret")
    monkeypatch.setenv("CFG_AWS_SECRET", "aws-secret")
    configure(write(tmp_path, "s3-bucket", S3))
    bucket = Block.load("s3-bucket/cfg-exports")
    assert (bucket.bucket_name, bucket.bucket_folder) == ("acme-reports", "atlasflow")
    assert bucket.credentials.aws_secret_access_key.get_secret_value() == "aws-secret"
    assert "aws-secret" not in (tmp_path / "config.yaml").read_text()


def test_storage_mistakes_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFG_BOT_TOKEN", "bot-secret")
    monkeypatch.delenv("CFG_AWS_SECRET", raising=False)
    with pytest.raises(ConfigError, match="CFG_AWS_SECRET is not set"):
        configure(write(tmp_path, "s3-bucket", S3))
    with pytest.raises(ConfigError, match="unknown block type 'ftp-thing'"):
        configure(write(tmp_path, "ftp-thing", "    x: 1"))
    with pytest.raises(ConfigError, match="not a writable filesystem"):
        configure(write(tmp_path, "mattermost-webhook", "    hostname: x"))
    with pytest.raises(ConfigError, match="bucket_name"):
        configure(write(tmp_path, "s3-bucket", "    bucket_folder: x"))
