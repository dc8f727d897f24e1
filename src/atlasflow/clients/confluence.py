"""Confluence REST client: read a page's storage body, write it version-checked.

The block's URL is the site base: ``https://acme.atlassian.net/wiki`` on Cloud, ``https://confluence.acme.com``
on Data Center. Cloud pages are read and written through REST API v2 (``/api/v2/pages/{id}``), which scoped
tokens and service accounts must use (the gateway refuses them v1 content); Data Center has the v1 content
API only (``/rest/api/content``). Paths are relative to the site URL; :attr:`ConfluenceClient.api` routes
them (site or gateway), so anything else built on it (attachments, still v1 on both) goes the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, Literal, TypeVar

import httpx

from atlasflow.clients.auth import site_link
from atlasflow.clients.http import ApiClient, error_detail, retry_decision
from atlasflow.errors import ApiError, Conflict, TransientError

T = TypeVar("T")

EXPAND = "body.storage,version,space"
#: Uploads are multipart form posts, which Confluence's XSRF protection refuses without this header.
NO_XSRF_CHECK = {"X-Atlassian-Token": "nocheck"}
Deployment = Literal["cloud", "datacenter"]


@dataclass(frozen=True)
class Page:
    """A page as read: its version is what a write must increment."""

    id: str
    title: str
    version: int
    body: str
    space_key: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Page:
        return cls(
            id=str(data["id"]),
            title=str(data.get("title", "")),
            version=int(data["version"]["number"]),
            body=str(data["body"]["storage"]["value"]),
            space_key=(data.get("space") or {}).get("key"),
        )

    @classmethod
    def from_v2_json(cls, data: dict[str, Any], space_key: str | None = None) -> Page:
        """A page from a v2 answer (``body-format=storage``); v2 names the space by id only."""
        return cls(
            id=str(data["id"]),
            title=str(data.get("title", "")),
            version=int(data["version"]["number"]),
            body=str(data["body"]["storage"]["value"]),
            space_key=space_key,
        )


@dataclass(frozen=True)
class Attachment:
    """An attachment as uploaded: ``download_url`` opens this version, on the site URL people use."""

    id: str
    title: str
    version: int
    size: int
    download_url: str


@dataclass(frozen=True)
class PageAtVersion:
    """One version of a page: its body and its author (Cloud: account id, name empty; DC: username, name)."""

    number: int
    body: str
    author: str
    author_name: str


class VersionConflict(Conflict):
    """Someone else wrote the page between our read and our write (409)."""


@dataclass(frozen=True)
class EditOutcome(Generic[T]):
    """What :meth:`ConfluenceClient.edit_page` did.

    Attributes:
        page: The page as it now is (as written, or as read when nothing changed).
        result: What the edit function returned alongside the body, from the attempt that counted.
        written: Whether a new version was written.
        attempts: Reads it took (more than one after concurrent edits).
    """

    page: Page
    result: T
    written: bool
    attempts: int


class ConfluenceClient:
    """Talks to one Confluence site.

    Args:
        api: An authenticated :class:`ApiClient` for the site.
        deployment: ``cloud`` (pages through v2) or ``datacenter`` (v1).
        links: Turns a path or URL the server answered into the link people open, raising ``ValueError``
            when it leads elsewhere; default :func:`~atlasflow.clients.auth.site_link` on ``api.base_url``
            (:meth:`~atlasflow.clients.auth.AtlassianAuth.people_link` also maps this site's gateway URLs).
    """

    def __init__(
        self, api: ApiClient, deployment: Deployment = "datacenter", links: Callable[[str], str] | None = None
    ) -> None:
        self.api = api
        self.deployment = deployment
        self.links = links or partial(site_link, api.base_url)

    @property
    def requests_made(self) -> int:
        return self.api.requests_made

    def close(self) -> None:
        self.api.close()

    def get_page(self, page_id: str) -> Page:
        """Read a page with its storage body and version.

        Raises:
            NotFound: 404 when the page does not exist or may not be seen.
        """
        if self.deployment == "cloud":
            return Page.from_v2_json(self.api.get_json(f"/api/v2/pages/{page_id}", {"body-format": "storage"}))
        return Page.from_json(self.api.get_json(f"/rest/api/content/{page_id}", {"expand": EXPAND}))

    def page_version(self, page_id: str, number: int) -> PageAtVersion:
        """A page's storage body as of version ``number``, with who wrote that version.

        Cloud reads ``GET /api/v2/pages/{id}?version=N`` (the author as an account id); Data Center reads
        ``GET /rest/api/content/{id}?status=historical&version=N`` (the author's username and name).
        """
        if self.deployment == "cloud":
            params = {"version": number, "body-format": "storage"}
            data = self.api.get_json(f"/api/v2/pages/{page_id}", params)
            account = str(data["version"]["authorId"])
            return PageAtVersion(int(data["version"]["number"]), str(data["body"]["storage"]["value"]), account, "")
        params = {"status": "historical", "version": number, "expand": "body.storage,version"}
        data = self.api.get_json(f"/rest/api/content/{page_id}", params)
        by = data["version"].get("by") or {}
        author = str(by.get("username") or by.get("userKey") or "")
        name = str(by.get("displayName") or author)
        return PageAtVersion(int(data["version"]["number"]), str(data["body"]["storage"]["value"]), author, name)

    def display_names(self, account_ids: list[str]) -> dict[str, str]:
        """Cloud: display names by account id (``POST /api/v2/users-bulk``); unknown ids are left out."""
        if not account_ids:
            return {}
        body = self.api.post_json("/api/v2/users-bulk", {"accountIds": account_ids}, idempotent=True)
        return {str(u["accountId"]): str(u.get("displayName") or u.get("publicName") or "") for u in body["results"]}

    def find_page(self, space_key: str, title: str) -> Page | None:
        """The page titled ``title`` in the space ``space_key``, if there is one."""
        if self.deployment == "cloud":
            spaces = self.api.get_json("/api/v2/spaces", {"keys": space_key}).get("results") or []
            if not spaces:
                return None
            params = {"space-id": spaces[0]["id"], "title": title, "body-format": "storage"}
            pages = self.api.get_json("/api/v2/pages", params).get("results") or []
            return Page.from_v2_json(pages[0], space_key) if pages else None
        body = self.api.get_json("/rest/api/content", {"spaceKey": space_key, "title": title, "expand": EXPAND})
        results = body.get("results") or []
        return Page.from_json(results[0]) if results else None

    def put_page(self, page: Page, body: str, message: str = "") -> Page:
        """Write ``body`` as the version after ``page.version``.

        Raises:
            VersionConflict: The page moved on since ``page`` was read.
        """
        version = {"number": page.version + 1, "message": message}
        if self.deployment == "cloud":
            path = f"/api/v2/pages/{page.id}"
            payload: dict[str, Any] = {
                "id": page.id,
                "status": "current",
                "title": page.title,
                "body": {"representation": "storage", "value": body},
                "version": version,
            }
        else:
            path = f"/rest/api/content/{page.id}"
            payload = {
                "id": page.id,
                "type": "page",
                "title": page.title,
                "version": version,
                "body": {"storage": {"value": body, "representation": "storage"}},
            }
        response = self.api.request("PUT", path, json=payload, ok=(409,))
        if response.status_code == 409:
            raise VersionConflict("Confluence", "PUT", path, 409, self.api.scrub(error_detail(response)))
        written = self.api.decode(response)
        number = int(written["version"]["number"])
        return Page(page.id, str(written.get("title", page.title)), number, body, page.space_key)

    def edit_page(
        self,
        page_id: str,
        edit: Callable[[Page], tuple[str | None, T]],
        *,
        message: str = "",
        attempts: int = 5,
    ) -> EditOutcome[T]:
        """Read, edit and write a page without losing anyone else's edit.

        ``edit`` gets the page as read and returns ``(new body or None when nothing changes, result)``.
        On a version conflict the page is read again and ``edit`` runs again on the newer page.

        Raises:
            VersionConflict: Still conflicting after ``attempts`` reads.
        """
        for attempt in range(1, attempts + 1):
            page = self.get_page(page_id)
            body, result = edit(page)
            if body is None or body == page.body:
                return EditOutcome(page, result, written=False, attempts=attempt)
            try:
                return EditOutcome(self.put_page(page, body, message), result, written=True, attempts=attempt)
            except VersionConflict:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def upload_attachment(
        self, page_id: str, file_name: str, content: bytes, media_type: str, comment: str = ""
    ) -> Attachment:
        """Attach ``content`` to a page as ``file_name``: a new version when the page already has that file.

        Cloud creates or updates by name with one ``PUT .../child/attachment``; Data Center answers that 405
        and takes ``POST .../child/attachment`` for a new file and ``POST .../{attachmentId}/data`` for a new
        version. Uploads are minor edits, so page watchers are not notified of each one.

        Every upload adds a version, so one whose outcome is unknown (5xx, a connection lost after sending) is
        not simply sent again: the page's attachment of that name is read first, and a version newer than the
        one read before the upload, of ``content``'s size, is taken as this upload. Only otherwise is the file
        sent again, up to the client's retry policy's attempts.

        Raises:
            ApiError: The page does not exist, may not be edited, or refused the file; or the download
                link the server answered does not lead to the site.
        """
        path = f"/rest/api/content/{page_id}/child/attachment"
        before = self._named(path, file_name)
        for attempt in range(1, self.api.retry.attempts + 1):
            try:
                return self._upload(path, before, file_name, content, media_type, comment)
            except ApiError as failure:
                if attempt == self.api.retry.attempts or not _outcome_unknown(failure):
                    raise
            after = self._named(path, file_name)
            if after is not None and _is_new_version(before, after, len(content)):
                return self._attachment(after, "GET", path)
            time.sleep(self.api.retry.delay(attempt, None))
        raise AssertionError("unreachable")

    def _named(self, path: str, file_name: str) -> dict[str, Any] | None:
        """The page's attachment called ``file_name`` as listed (``path`` is the page's attachments), if any."""
        results = self.api.get_json(path, {"filename": file_name})["results"]
        return dict(results[0]) if results else None

    def _upload(
        self, path: str, before: dict[str, Any] | None, file_name: str, content: bytes, media_type: str, comment: str
    ) -> Attachment:
        """One upload, sent once (a failed one is looked for before sending it again)."""
        fields = {"comment": comment, "minorEdit": "true"}
        files = {"file": (file_name, content, media_type)}
        if self.deployment == "cloud":
            response = self.api.request("PUT", path, files=files, data=fields, headers=NO_XSRF_CHECK, idempotent=False)
            return self._attachment(self.api.decode(response)["results"][0], "PUT", path)
        target = f"{path}/{before['id']}/data" if before else path
        response = self.api.request("POST", target, files=files, data=fields, headers=NO_XSRF_CHECK, idempotent=False)
        body = self.api.decode(response)
        return self._attachment(body if before else body["results"][0], "POST", target)

    def _attachment(self, data: dict[str, Any], method: str, path: str) -> Attachment:
        """An attachment from its JSON; its download link must lead to the site (``method path`` answered it)."""
        try:
            download_url = self.links(str(data["_links"]["download"]))
        except ValueError as exc:
            raise ApiError("Confluence", method, path, None, f"download link refused: {exc}") from None
        return Attachment(
            id=str(data["id"]),
            title=str(data["title"]),
            version=int(data["version"]["number"]),
            size=_size(data),
            download_url=download_url,
        )


def _size(data: dict[str, Any]) -> int:
    return int((data.get("extensions") or {}).get("fileSize") or 0)


def _is_new_version(before: dict[str, Any] | None, after: dict[str, Any], size: int) -> bool:
    """Whether ``after`` (the attachment as listed now) holds an upload of ``size`` bytes made since ``before``."""
    newer = before is None or int(after["version"]["number"]) > int(before["version"]["number"])
    return newer and _size(after) == size


def _outcome_unknown(failure: ApiError) -> bool:
    """Whether the server may have carried out the request that failed so (5xx, connection lost after sending)."""
    if isinstance(failure, TransientError):  # a refusal (429) or a connection never made, retried to the end
        return False
    cause = failure.__cause__
    if isinstance(cause, httpx.HTTPError):
        return retry_decision(failure.method, cause, idempotent=True) == "retry"
    return failure.status is not None and retry_decision(failure.method, failure.status, idempotent=True) == "retry"
