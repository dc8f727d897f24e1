"""Confluence REST (v1 content API) client: read a page's storage body, write it version-checked.

The block's URL is the site base: ``https://acme.atlassian.net/wiki`` on Cloud, ``https://confluence.acme.com``
on Data Center; the content API sits at ``/rest/api/content`` below both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from atlasflow.clients.http import ApiClient, AtlassianError

T = TypeVar("T")

EXPAND = "body.storage,version,space"
#: Uploads are multipart form posts, which Confluence's XSRF protection refuses without this header.
NO_XSRF_CHECK = {"X-Atlassian-Token": "nocheck"}


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


@dataclass(frozen=True)
class Attachment:
    """An attachment as uploaded: ``download_url`` opens this version, on the site URL people use."""

    id: str
    title: str
    version: int
    size: int
    download_url: str


class VersionConflict(AtlassianError):
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
    """Talks to one Confluence site."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self._attachments_by_post = False  # set once a Data Center site has refused PUT (405)

    @property
    def requests_made(self) -> int:
        return self.api.requests_made

    def close(self) -> None:
        self.api.close()

    def get_page(self, page_id: str) -> Page:
        """Read a page with its storage body and version.

        Raises:
            AtlassianError: 404 when the page does not exist or may not be seen.
        """
        return Page.from_json(self.api.get_json(f"/rest/api/content/{page_id}", {"expand": EXPAND}))

    def find_page(self, space_key: str, title: str) -> Page | None:
        body = self.api.get_json(
            "/rest/api/content", {"spaceKey": space_key, "title": title, "expand": EXPAND}
        )
        results = body.get("results") or []
        return Page.from_json(results[0]) if results else None

    def put_page(self, page: Page, body: str, message: str = "") -> Page:
        """Write ``body`` as the version after ``page.version``.

        Raises:
            VersionConflict: The page moved on since ``page`` was read.
        """
        path = f"/rest/api/content/{page.id}"
        payload = {
            "id": page.id,
            "type": "page",
            "title": page.title,
            "version": {"number": page.version + 1, "message": message},
            "body": {"storage": {"value": body, "representation": "storage"}},
        }
        response = self.api.request("PUT", path, json=payload, ok=(409,))
        if response.status_code == 409:
            raise VersionConflict("Confluence", "PUT", path, 409, self.api.scrub(response.text[:300]))
        return Page.from_json({**self.api.decode(response), "body": {"storage": {"value": body}}})

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

        Raises:
            AtlassianError: The page does not exist, may not be edited, or refused the file.
        """
        path = f"/rest/api/content/{page_id}/child/attachment"
        fields = {"comment": comment, "minorEdit": "true"}
        files = {"file": (file_name, content, media_type)}
        if not self._attachments_by_post:
            response = self.api.request("PUT", path, files=files, data=fields, headers=NO_XSRF_CHECK, ok=(405,))
            if response.status_code != 405:
                return self._attachment(self.api.decode(response)["results"][0])
            self._attachments_by_post = True
        existing = self.api.get_json(path, {"filename": file_name})["results"]
        if existing:
            target = f"{path}/{existing[0]['id']}/data"
            body = self.api.decode(
                self.api.request("POST", target, files=files, data=fields, headers=NO_XSRF_CHECK, idempotent=False)
            )
            return self._attachment(body)
        response = self.api.request("POST", path, files=files, data=fields, headers=NO_XSRF_CHECK, idempotent=False)
        return self._attachment(self.api.decode(response)["results"][0])

    def _attachment(self, data: dict[str, Any]) -> Attachment:
        return Attachment(
            id=str(data["id"]),
            title=str(data["title"]),
            version=int(data["version"]["number"]),
            size=int((data.get("extensions") or {}).get("fileSize") or 0),
            download_url=self.api.base_url + str(data["_links"]["download"]),
        )
