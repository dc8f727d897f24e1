"""Confluence attachments over real HTTP: the product client against the stand-in, Cloud and Data Center."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx
import pytest

from atlasflow.blocks import ConfluenceCredentials
from atlasflow.clients.confluence import ConfluenceClient
from atlasflow.clients.http import ApiClient
from atlasflow.demo import SandboxAuth, sandbox_credentials
from atlasflow.errors import ApiError
from atlasflow.sandbox.confluence import EXPORT_SUMMARY_ID, RESTRICTED_PAGE_ID

if TYPE_CHECKING:
    from atlasflow.sandbox.app import Sandbox

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DEMO = ("demo@example.com", "sandbox-token")


def logged(sb: Sandbox, prefix: str, count: int) -> list[tuple[str, str, int]]:
    """The requests below ``prefix``, once ``count`` are logged (an entry lands just after its answer)."""
    deadline = time.monotonic() + 5
    while len(entries := sb.state.log.matching(prefix)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return [(e.method, e.path, e.status) for e in entries]


def client(sb: Sandbox, auth: tuple[str, str] = DEMO) -> ConfluenceClient:
    return ConfluenceClient(ApiClient("Confluence", sb.confluence_url, auth=auth), sb.mode)


def test_two_uploads_are_one_attachment_with_two_versions(sandbox: Sandbox) -> None:
    confluence = client(sandbox)
    first = confluence.upload_attachment(EXPORT_SUMMARY_ID, "report.xlsx", b"run one", XLSX, "run 1")
    second = confluence.upload_attachment(EXPORT_SUMMARY_ID, "report.xlsx", b"run two", XLSX, "run 2")

    assert first.id == second.id and (first.version, second.version) == (1, 2)
    [stored] = sandbox.attachments.on_page(EXPORT_SUMMARY_ID)
    assert [v.data for v in stored.versions] == [b"run one", b"run two"]
    assert [v.comment for v in stored.versions] == ["run 1", "run 2"]
    assert all(v.minor_edit and v.media_type == XLSX for v in stored.versions)
    # the download link is on the site URL and opens exactly that version
    assert second.download_url.startswith(sandbox.confluence_url + "/download/attachments/")
    with httpx.Client(auth=DEMO) as http:
        assert http.get(first.download_url).content == b"run one"
        assert http.get(second.download_url).content == b"run two"


def test_cloud_updates_by_name_with_one_put(cloud_sandbox: Sandbox) -> None:
    confluence = client(cloud_sandbox)
    for body in (b"a", b"b"):
        confluence.upload_attachment(EXPORT_SUMMARY_ID, "r.xlsx", body, XLSX)
    calls = logged(cloud_sandbox, "/wiki/rest/api/content/", 4)
    # each upload first reads the version it replaces: how a 5xx'd upload is later recognised as done
    base = f"/wiki/rest/api/content/{EXPORT_SUMMARY_ID}/child/attachment"
    assert calls == [("GET", base, 200), ("PUT", base, 200)] * 2


def test_data_center_refuses_put_and_versions_through_data(dc_sandbox: Sandbox) -> None:
    confluence = client(dc_sandbox)
    for body in (b"a", b"b", b"c"):
        confluence.upload_attachment(EXPORT_SUMMARY_ID, "r.xlsx", body, XLSX)
    [stored] = dc_sandbox.attachments.on_page(EXPORT_SUMMARY_ID)
    base = f"/rest/api/content/{EXPORT_SUMMARY_ID}/child/attachment"
    calls = logged(dc_sandbox, base, 6)
    assert calls == [
        ("GET", base, 200),
        ("POST", base, 200),
        ("GET", base, 200),
        ("POST", f"{base}/{stored.id}/data", 200),
        ("GET", base, 200),
        ("POST", f"{base}/{stored.id}/data", 200),
    ]
    assert [v.data for v in stored.versions] == [b"a", b"b", b"c"]


def test_data_center_answers_put_with_405(dc_sandbox: Sandbox) -> None:
    url = f"{dc_sandbox.confluence_url}/rest/api/content/{EXPORT_SUMMARY_ID}/child/attachment"
    headers = {"X-Atlassian-Token": "nocheck"}
    with httpx.Client(auth=DEMO) as http:
        assert http.put(url, files={"file": ("x.xlsx", b"x", XLSX)}, headers=headers).status_code == 405


@pytest.mark.parametrize("auth", ["scoped", "oauth"])
def test_uploads_through_the_gateway_link_to_the_site(cloud_sandbox: Sandbox, auth: SandboxAuth) -> None:
    confluence = ConfluenceCredentials(url=cloud_sandbox.confluence_url, **sandbox_credentials(cloud_sandbox, auth))
    uploaded = confluence.get_client().upload_attachment(EXPORT_SUMMARY_ID, "r.xlsx", b"via gateway", XLSX)
    through_gateway = logged(cloud_sandbox, "/ex/confluence/", 1)
    assert through_gateway[-1][0] == "PUT"
    assert through_gateway[-1][1].endswith(f"/wiki/rest/api/content/{EXPORT_SUMMARY_ID}/child/attachment")
    assert uploaded.download_url.startswith(cloud_sandbox.confluence_url + "/download/attachments/")
    [stored] = cloud_sandbox.attachments.on_page(EXPORT_SUMMARY_ID)
    assert stored.versions[-1].data == b"via gateway"


def test_wire_rules(sandbox: Sandbox) -> None:
    url = f"{sandbox.confluence_url}/rest/api/content/{EXPORT_SUMMARY_ID}/child/attachment"
    file = {"file": ("x.xlsx", b"x", XLSX)}
    with httpx.Client(auth=DEMO) as http:
        refused = http.post(url, files=file)
        assert (refused.status_code, refused.text) == (403, "XSRF check failed")
        assert http.post(url, files=file, headers={"X-Atlassian-Token": "no-check"}).status_code == 200
        again = http.post(url, files=file, headers={"X-Atlassian-Token": "nocheck"})
        assert again.status_code == 400
        assert "same file name as an existing attachment: x.xlsx" in again.json()["message"]
        listed = http.get(url, params={"filename": "x.xlsx"}).json()
        assert [a["title"] for a in listed["results"]] == ["x.xlsx"]
        assert listed["results"][0]["extensions"]["fileSize"] == 1


def test_refusals_are_clear(sandbox: Sandbox) -> None:
    viewer = client(sandbox, ("viewer@example.com", "viewer-token"))
    with pytest.raises(ApiError, match=r"403.*not permitted to create attachments"):
        viewer.upload_attachment(EXPORT_SUMMARY_ID, "r.xlsx", b"x", XLSX)
    with pytest.raises(ApiError, match="404"):
        viewer.upload_attachment(RESTRICTED_PAGE_ID, "r.xlsx", b"x", XLSX)
    with pytest.raises(ApiError, match="404"):
        client(sandbox).upload_attachment("999999", "r.xlsx", b"x", XLSX)
    assert sandbox.attachments.on_page(EXPORT_SUMMARY_ID) == []
