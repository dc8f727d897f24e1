"""Confluence attachments stand-in: the v1 ``child/attachment`` API of Cloud and Data Center, with versions.

What the real sites do (Confluence REST v1 ``AttachmentResource``; Atlassian's Cloud reference for
"Create or update attachments"; Data Center threads where ``PUT`` answers 405):

* ``GET  .../content/{id}/child/attachment?filename=&start=&limit=``: the page's attachments, each as
  attachment content (``id`` ``att…``, ``title`` = file name, ``version``, ``extensions.fileSize``,
  ``_links.download`` relative to the site base).
* ``POST .../content/{id}/child/attachment`` (multipart ``file``, optional ``comment``, ``minorEdit``):
  creates; a file name the page already has is 400 "Cannot add a new attachment with same file name as an
  existing attachment: …". Answers a list (``results``).
* ``PUT  .../content/{id}/child/attachment``: Cloud only, create **or** a new version of the attachment of
  that name; Data Center answers 405.
* ``POST .../content/{id}/child/attachment/{attachmentId}/data``: a new version; answers the attachment.
* Every upload needs ``X-Atlassian-Token: nocheck`` (or ``no-check``), else 403 "XSRF check failed"; it
  needs the page's edit right (403) on a page the caller may view (404).
* ``GET .../download/attachments/{pageId}/{fileName}?version=n``: the bytes (the latest without
  ``version``).
* Ids: ``att1015809`` on Cloud, a plain number on Data Center (as a Data Center server's answers show:
  ``"id": "227171484"``, ``_links.download`` ``/download/attachments/227171480/x.zip?version=1&
  modificationDate=…&api=v2``, ``extensions`` ``{mediaType, fileSize, comment}``).

Every version's bytes are kept, so tests compare what arrived with what was written.

Two settings of :class:`AttachmentStore` make the site misbehave, for tests:

* ``download_link``: how ``_links.download`` is written. Relative by default; since 2026-07-14 Atlassian
  answers may carry absolute URLs on the site or gateway URLs (``https://api.atlassian.com/ex/confluence/
  {cloudId}/wiki/download/…``), and a hostile server anything at all.
* ``upload_failures``: what the next uploads meet: ``"503"`` (refused before anything is stored, as a busy
  node answers) or ``"store then 503"`` (stored, then answered 503, as a gateway that timed out on a slow
  backend answers), one per upload.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from atlasflow.sandbox.confluence.http import ContentError, Endpoint
from atlasflow.sandbox.confluence.pages import ConfluenceSite
from atlasflow.sandbox.core import Mode, SandboxState, confluence_error

XSRF_VALUES = frozenset({"nocheck", "no-check"})
FIRST_ATTACHMENT_ID = 1015809
#: A cloud id that is not the sandbox's: gateway links of "another site".
OTHER_CLOUD_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
UploadFailure = Literal["503", "store then 503"]


@dataclass(frozen=True)
class AttachmentVersion:
    """One uploaded version: the bytes as they arrived."""

    number: int
    data: bytes
    media_type: str
    comment: str
    minor_edit: bool
    by: str
    when: datetime


@dataclass
class StoredAttachment:
    id: str
    page_id: str
    title: str
    versions: list[AttachmentVersion] = field(default_factory=list)


class AttachmentStore:
    """The attachments of every page (thread-safe)."""

    def __init__(self, id_prefix: str = "att") -> None:
        self._lock = threading.Lock()
        self._by_page: dict[str, dict[str, StoredAttachment]] = {}
        self._next_id = FIRST_ATTACHMENT_ID
        self.id_prefix = id_prefix  # Cloud ids read "att1015809", Data Center ids are plain numbers
        #: ``_links.download`` as a format string of ``path`` (relative to the site base), ``site`` (the site
        #: base URL), ``gateway`` (this site's gateway base, Cloud) and ``other_gateway`` (another site's).
        self.download_link = "{path}"
        #: What the next uploads meet, first first (see the module docstring).
        self.upload_failures: list[UploadFailure] = []

    def take_failure(self) -> UploadFailure | None:
        """The failure the next upload meets, if any (consumed)."""
        with self._lock:
            return self.upload_failures.pop(0) if self.upload_failures else None

    def on_page(self, page_id: str) -> list[StoredAttachment]:
        """The page's attachments, oldest first."""
        with self._lock:
            return list(self._by_page.get(page_id, {}).values())

    def named(self, page_id: str, title: str) -> StoredAttachment | None:
        with self._lock:
            return self._by_page.get(page_id, {}).get(title)

    def create(self, page_id: str, title: str, version: AttachmentVersion) -> StoredAttachment:
        """A new attachment; raises 400 when the page already has one of that name."""
        with self._lock:
            attachments = self._by_page.setdefault(page_id, {})
            if title in attachments:
                raise ContentError(
                    400, f"Cannot add a new attachment with same file name as an existing attachment: {title}"
                )
            stored = StoredAttachment(f"{self.id_prefix}{self._next_id}", page_id, title, [version])
            self._next_id += 1
            attachments[title] = stored
            return stored

    def add_version(self, attachment_id: str, version: AttachmentVersion, title: str | None = None) -> StoredAttachment:
        """The next version of an attachment; raises 404 for an unknown id."""
        with self._lock:
            for attachments in self._by_page.values():
                for stored in attachments.values():
                    if stored.id == attachment_id:
                        if title is not None and title != stored.title:
                            raise ContentError(400, "The file name of a new version must be the attachment's")
                        stored.versions.append(replace(version, number=len(stored.versions) + 1))
                        return stored
        raise ContentError(404, f"No attachment found with id: {attachment_id}")

    def create_or_update(self, page_id: str, title: str, version: AttachmentVersion) -> StoredAttachment:
        with self._lock:
            existing = self._by_page.get(page_id, {}).get(title)
        if existing is None:
            return self.create(page_id, title, version)
        return self.add_version(existing.id, version)


def _millis(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def download_path(stored: StoredAttachment, version: AttachmentVersion) -> str:
    """``_links.download`` as Confluence writes it: relative to the site base."""
    return (
        f"/download/attachments/{stored.page_id}/{quote(stored.title)}"
        f"?version={version.number}&modificationDate={_millis(version.when)}&api=v2"
    )


def attachment_json(
    mode: Mode, base: str, page_title: str, stored: StoredAttachment, download: str | None = None
) -> dict[str, object]:
    """An attachment as the v1 API answers it; ``download`` replaces the relative ``_links.download``."""
    current = stored.versions[-1]
    return {
        "id": stored.id,
        "type": "attachment",
        "status": "current",
        "title": stored.title,
        "version": {
            "by": {"type": "known", "displayName": current.by},
            "when": current.when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "message": current.comment,
            "number": current.number,
            "minorEdit": current.minor_edit,
        },
        "container": {
            "id": stored.page_id,
            "type": "page",
            "status": "current",
            "title": page_title,
            "_links": {"webui": f"/pages/viewpage.action?pageId={stored.page_id}"},
        },
        "metadata": {"mediaType": current.media_type, "comment": current.comment},
        "extensions": {"mediaType": current.media_type, "fileSize": len(current.data), "comment": current.comment},
        "_links": {
            "webui": f"/pages/viewpageattachments.action?pageId={stored.page_id}"
            f"&preview={quote(f'/{stored.page_id}/{stored.id}/{stored.title}', safe='')}",
            "download": download or download_path(stored, current),
            "self": f"{base}/rest/api/content/{stored.id}",
        },
    }


def attachment_routes(site: ConfluenceSite, store: AttachmentStore, state: SandboxState) -> list[Route]:
    """The attachment routes for ``state.mode``: under ``/wiki`` on Cloud, at the root on Data Center."""
    mode = state.mode
    root = "/wiki" if mode == "cloud" else ""
    prefix = f"{root}/rest/api/content/{{id}}/child/attachment"

    def base_of(request: Request) -> str:
        return str(request.base_url).rstrip("/") + root

    def links(request: Request) -> dict[str, str]:
        return {"base": base_of(request), "context": root}

    def described(request: Request, page_title: str, stored: StoredAttachment) -> dict[str, object]:
        """The attachment's JSON with ``_links.download`` written as ``store.download_link`` says."""
        server = str(request.base_url).rstrip("/")
        download = store.download_link.format(
            path=download_path(stored, stored.versions[-1]),
            site=base_of(request),
            gateway=f"{server}/ex/confluence/{state.cloud_id}{root}",
            other_gateway=f"{server}/ex/confluence/{OTHER_CLOUD_ID}{root}",
        )
        return attachment_json(mode, base_of(request), page_title, stored, download)

    async def listing(request: Request) -> Response:
        page_id = request.path_params["id"]
        view = site.view(page_id, state.account(request).username)
        wanted = request.query_params.get("filename")
        found = [a for a in store.on_page(page_id) if wanted is None or a.title == wanted]
        start = int(request.query_params.get("start", "0"))
        limit = int(request.query_params.get("limit", "50"))
        results = [described(request, view.current.title, a) for a in found[start : start + limit]]
        return JSONResponse(
            {"results": results, "start": start, "limit": limit, "size": len(results), "_links": links(request)}
        )

    async def upload(request: Request) -> tuple[str, str, AttachmentVersion]:
        """Checks the XSRF header and the edit right; (page title, file name, the version sent)."""
        if request.headers.get("x-atlassian-token", "").lower() not in XSRF_VALUES:
            raise _Xsrf()
        page_id = request.path_params["id"]
        account = state.account(request)
        view = site.view(page_id, account.username)
        site.check_edit(page_id, account)
        form = await request.form(max_part_size=1 << 30)
        part = form.get("file")
        if not isinstance(part, UploadFile) or not part.filename:
            raise ContentError(400, "At least one attachment must be supplied in the 'file' part")
        comment = form.get("comment")
        minor = form.get("minorEdit")
        version = AttachmentVersion(
            number=1,
            data=await part.read(),
            media_type=part.content_type or "application/octet-stream",
            comment=comment if isinstance(comment, str) else "",
            minor_edit=isinstance(minor, str) and minor.lower() == "true",
            by=account.display_name,
            when=datetime.now(UTC),
        )
        return view.current.title, part.filename, version

    def guarded(handler: Endpoint) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                response: Response = await handler(request)
            except _Xsrf:
                return PlainTextResponse("XSRF check failed", status_code=403)
            except ContentError as exc:
                return confluence_error(exc.status, exc.message)
            return response

        return endpoint

    async def create(request: Request) -> Response:
        title, name, version = await upload(request)
        failure = store.take_failure()
        if failure == "503":
            return _unavailable()
        stored = store.create(request.path_params["id"], name, version)
        return _unavailable() if failure else _listed(request, title, stored)

    async def create_or_update(request: Request) -> Response:
        if mode == "datacenter":
            return PlainTextResponse("Method Not Allowed", status_code=405)
        title, name, version = await upload(request)
        failure = store.take_failure()
        if failure == "503":
            return _unavailable()
        stored = store.create_or_update(request.path_params["id"], name, version)
        return _unavailable() if failure else _listed(request, title, stored)

    async def new_version(request: Request) -> Response:
        title, name, version = await upload(request)
        attachment_id = request.path_params["attachment"]
        if not any(a.id == attachment_id for a in store.on_page(request.path_params["id"])):
            raise ContentError(404, f"No attachment found with id: {attachment_id}")
        failure = store.take_failure()
        if failure == "503":
            return _unavailable()
        stored = store.add_version(attachment_id, version, title=name)
        return _unavailable() if failure else JSONResponse(described(request, title, stored))

    def _listed(request: Request, title: str, stored: StoredAttachment) -> Response:
        body = {"results": [described(request, title, stored)], "size": 1, "_links": links(request)}
        return JSONResponse(body)

    async def download(request: Request) -> Response:
        page_id, name = request.path_params["page"], request.path_params["name"]
        site.view(page_id, state.account(request).username)
        stored = store.named(page_id, name)
        if stored is None:
            return PlainTextResponse("Not Found", status_code=404)
        wanted = request.query_params.get("version")
        versions = [v for v in stored.versions if wanted is None or str(v.number) == wanted]
        if not versions:
            return PlainTextResponse("Not Found", status_code=404)
        version = versions[-1]
        return Response(
            version.data,
            media_type=version.media_type,
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(stored.title)}"},
        )

    return [
        Route(prefix, guarded(listing), methods=["GET"]),
        Route(prefix, guarded(create), methods=["POST"]),
        Route(prefix, guarded(create_or_update), methods=["PUT"]),
        Route(f"{prefix}/{{attachment}}/data", guarded(new_version), methods=["POST"]),
        Route(f"{root}/download/attachments/{{page}}/{{name}}", guarded(download), methods=["GET"]),
    ]


def _unavailable() -> Response:
    """A busy node or a gateway that gave up waiting: 503 with a plain body, no ``Retry-After``."""
    return PlainTextResponse("Service Unavailable", status_code=503)


class _Xsrf(Exception):
    """The upload came without ``X-Atlassian-Token: nocheck``."""
