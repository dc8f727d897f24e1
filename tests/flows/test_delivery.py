"""Delivering the export workbook: a Confluence attachment, a Mattermost file post, a storage block."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prefect.artifacts import Artifact
from prefect.filesystems import LocalFileSystem
from pydantic import SecretStr

from atlasflow.blocks import MattermostBot
from atlasflow.files import reports_root
from atlasflow.flows.delivery import DeliveryError
from atlasflow.flows.jira_export import jira_export
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.confluence import EXPORT_SUMMARY_ID
from atlasflow.sandbox.mattermost import DEMO_CHANNELS

DEMO = ("demo@example.com", "sandbox-token")


def storage(tmp_path: Path) -> str:
    LocalFileSystem(basepath=str(tmp_path / "store")).save("exports", overwrite=True)
    return "local-file-system/exports"


def test_two_runs_one_attachment_two_versions_two_posts_two_files(site: Sandbox, tmp_path: Path) -> None:
    where = {
        "attach_to_page": int(EXPORT_SUMMARY_ID),  # the CLI sends a number
        "post_to_channel": "acme/reports",
        "storage_block": storage(tmp_path),
    }
    first = jira_export(root_tickets=["DEMO-1"], **where)
    second = jira_export(root_tickets=["DEMO-1"], **where)

    stored = sorted((tmp_path / "store" / "jira-export-roots-DEMO-1").iterdir())
    assert len(stored) == 2
    written = [p.read_bytes() for p in stored]
    assert written[0] != written[1]  # each run's own workbook (its time stamp differs)
    [attachment] = site.attachments.on_page(EXPORT_SUMMARY_ID)
    assert attachment.title == "jira-export-roots-DEMO-1.xlsx"
    assert [v.data for v in attachment.versions] == written
    posts = [p for p in site.mattermost.posts if p.source == "api"]
    assert [p.channel for p in posts] == [DEMO_CHANNELS[0].id] * 2
    files = site.mattermost.files
    assert [[files[i].data for i in p.file_ids] for p in posts] == [[written[0]], [written[1]]]
    assert "Jira export" in posts[0].message and "29 issues" in posts[0].message

    for run, result in enumerate((first, second)):
        download, permalink, location = result["delivered"]
        assert download.startswith(site.confluence_url + "/download/attachments/")
        assert httpx.get(download, auth=DEMO).content == written[run]
        assert permalink == f"{site.url}/acme/pl/{posts[run].id}"
        assert location == stored[run].as_uri()
        assert result["path"] is None  # no local copy unless output_dir is asked for
    assert not list(reports_root().glob("jira-export-roots-DEMO-1-*.xlsx"))
    artifact = Artifact.get("jira-export-workbook")
    assert artifact is not None and f"({second['delivered'][0]})" in str(artifact.data)


def test_a_failed_destination_fails_the_run_after_the_others(cloud_site: Sandbox, tmp_path: Path) -> None:
    cloud_site.mattermost.max_file_size = 2000  # the workbook is larger
    state = jira_export(
        root_tickets=["DEMO-1"],
        attach_to_page=EXPORT_SUMMARY_ID,
        post_to_channel="acme/reports",
        storage_block=storage(tmp_path),
        output_dir=str(tmp_path / "kept"),
        return_state=True,
    )

    assert state.is_failed()
    with pytest.raises(DeliveryError) as failure:
        state.result()
    message = str(failure.value)
    assert "Mattermost channel acme/reports" in message and "larger than the server accepts" in message
    # the other destinations were delivered all the same, and the local copy asked for is kept
    assert len(cloud_site.attachments.on_page(EXPORT_SUMMARY_ID)) == 1
    assert len(list((tmp_path / "store" / "jira-export-roots-DEMO-1").iterdir())) == 1
    assert len(list((tmp_path / "kept").glob("*.xlsx"))) == 1
    notice = [p for p in cloud_site.mattermost.posts if p.source == "webhook"]
    assert notice and "larger than the server accepts" in notice[-1].message
    assert "Mattermost channel acme/reports" in notice[-1].message


def test_any_writable_filesystem_block(tmp_path: Path) -> None:
    """RemoteFileSystem (fsspec: memory://, smb://, sftp:// …) takes the file under the scope folder."""
    from prefect.filesystems import RemoteFileSystem

    from atlasflow.flows.delivery import Parcel, write_to_storage

    RemoteFileSystem(basepath="memory://atlasflow-delivery").save("mem", overwrite=True)
    workbook = tmp_path / "jira-export-x-20260101-000000.xlsx"
    workbook.write_bytes(b"workbook bytes")
    parcel = Parcel(workbook, "jira-export-x.xlsx", "jira-export-x", "message")

    where = write_to_storage.fn(parcel, "remote-file-system/mem")

    assert where == "memory://atlasflow-delivery/jira-export-x/jira-export-x-20260101-000000.xlsx"
    block = RemoteFileSystem.load("mem")
    assert block.read_path("jira-export-x/jira-export-x-20260101-000000.xlsx") == b"workbook bytes"
    MattermostBot(url="https://chat.acme.com", token=SecretStr("bot-token-0123")).save("not-storage", overwrite=True)
    with pytest.raises(TypeError, match="not a writable filesystem block"):
        write_to_storage.fn(parcel, "atlasflow-mattermost-bot/not-storage")


def test_storage_locations_as_urls(tmp_path: Path) -> None:
    from prefect_aws import S3Bucket

    from atlasflow.flows.delivery import storage_url

    bucket = S3Bucket(bucket_name="acme-reports")
    assert storage_url(bucket, "atlasflow/x/a.xlsx") == "s3://acme-reports/atlasflow/x/a.xlsx"
    local = LocalFileSystem(basepath=str(tmp_path))
    assert storage_url(local, str(tmp_path / "a.xlsx")) == (tmp_path / "a.xlsx").as_uri()
    assert storage_url(local, "smb://host/share/a.xlsx") == "smb://host/share/a.xlsx"
