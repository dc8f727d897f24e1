"""Confluence pages in memory: spaces, pages with their full version history, who may view and edit them,
and the version-checked writes behind the routes.

Permissions: an account may view a page unless the page names its viewers; it may edit a page it can view
when it holds the space edit right and the page's editor list (if any) names it. The sandbox has one
permission vocabulary (:data:`sandbox.core.ALL_PERMISSIONS`); the space edit right is
:data:`SPACE_EDIT_PERMISSION`, so the read-only viewer account views every unrestricted page and edits none.
A page the account may not view answers 404, as Confluence does.

Concurrent-edit fault: when a PUT reaches an existing page the caller may view and
``state.faults.take_concurrent_edit()`` is true, a colleague ("Colleague") first writes a new version whose
body is the old body with :data:`COLLEAGUE_EDIT` (formatted with that new version number) inserted right
before the first ``<table`` or, without a table, appended at the end. Only then is the PUT evaluated: its
version is stale, so it gets 409.

Bodies are stored whole per version; every operation on a body is linear in its size (a 10 MB page works).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from atlasflow.sandbox.confluence.http import ContentError
from atlasflow.sandbox.confluence.seed import HOME_PAGE_ID, SPACE_ID, SPACE_KEY, build_demo
from atlasflow.sandbox.confluence.users import cloud_account_id
from atlasflow.sandbox.core import Account, Mode, default_accounts

SPACE_EDIT_PERMISSION = "EDIT_ISSUES"
"""Holding this permission stands for Confluence's space permission "Add/Edit pages"."""

COLLEAGUE = "Colleague"
COLLEAGUE_EDIT = "<p>Edited concurrently by Colleague (version {number})</p>"
"""The paragraph the concurrent-edit fault inserts; ``{number}`` is the version the colleague writes."""

MISSING_VERSION = "Must supply an incremented version when updating Content. No version supplied."
TITLE_TAKEN = "A page with this title already exists: A page already exists with the same TITLE in this space"
PAGE_CLASS = "class com.atlassian.confluence.pages.Page"


@dataclass(frozen=True)
class PageVersion:
    """One stored version of a page (the current record is the last one).

    Attributes:
        page_id: The page's id.
        number: Version number, from 1.
        title: Title as of this version.
        body: Storage-format body as of this version.
        when: When it was written (UTC).
        by: Display name of the author.
        by_username: Username of the author.
        message: Version comment.
        minor_edit: Whether the author marked it a minor edit.
    """

    page_id: str
    number: int
    title: str
    body: str
    when: datetime
    by: str
    by_username: str
    message: str = ""
    minor_edit: bool = False


@dataclass(frozen=True)
class Space:
    id: int
    key: str
    name: str


@dataclass
class _Page:
    id: str
    space: Space
    parent_id: str | None
    viewers: frozenset[str] | None
    editors: frozenset[str] | None
    versions: list[PageVersion] = field(default_factory=list)

    @property
    def current(self) -> PageVersion:
        return self.versions[-1]

    def may_view(self, username: str) -> bool:
        return self.viewers is None or username in self.viewers

    def may_edit(self, account: Account) -> bool:
        return (
            self.may_view(account.username)
            and SPACE_EDIT_PERMISSION in account.permissions
            and (self.editors is None or account.username in self.editors)
        )


@dataclass(frozen=True)
class PageSnapshot:
    """A consistent view of a page (its current and first versions, space and ancestors) for rendering."""

    current: PageVersion
    first: PageVersion
    space: Space
    ancestors: tuple[PageVersion, ...]


def _not_found(page_id: str) -> ContentError:
    return ContentError(404, f"No content found with id: ContentId{{id={page_id}}}")


def _username_of(display_name: str) -> str:
    """An editor's username: a sandbox account's (e.g. "Demo Admin"), else made from the name."""
    accounts = {a.display_name: a.username for a in default_accounts()}
    return accounts.get(display_name) or display_name.lower().replace(" ", ".")


class ConfluenceSite:
    """Thread-safe in-memory Confluence pages with full version history."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pages: dict[str, _Page] = {}
        self._spaces: dict[str, Space] = {}
        self._next_id = int(HOME_PAGE_ID)

    # -- Python API -------------------------------------------------------------------------------------

    def add_space(self, key: str, name: str) -> Space:
        """Create a space (or return the existing one with that key)."""
        with self._lock:
            return self._space(key, name)

    def add_page(
        self,
        title: str,
        body: str,
        space: str = SPACE_KEY,
        viewers: Iterable[str] | None = None,
        editors: Iterable[str] | None = None,
        parent_id: str | None = None,
    ) -> str:
        """Create a page (version 1, by "Demo Admin") and return its id.

        Args:
            title: Title, unique within the space.
            body: Storage-format body.
            space: Space key; an unknown key creates the space, named as its key.
            viewers: Usernames that may view the page (``None``: everyone).
            editors: Usernames that may edit it (``None``: everyone with the space edit right).
            parent_id: Parent page (``None``: a top-level page).

        Raises:
            ValueError: The title is taken in that space, or the parent does not exist.
        """
        with self._lock:
            return self._create(
                title,
                body,
                self._space(space, space),
                viewers=None if viewers is None else frozenset(viewers),
                editors=None if editors is None else frozenset(editors),
                parent_id=parent_id,
                by="Demo Admin",
                by_username="demo@example.com",
                message="",
            ).id

    def page(self, page_id: str) -> PageVersion:
        """The current version of a page.

        Raises:
            KeyError: No such page.
        """
        with self._lock:
            return self._pages[page_id].current

    def history(self, page_id: str) -> list[PageVersion]:
        """Every version of a page, oldest first.

        Raises:
            KeyError: No such page.
        """
        with self._lock:
            return list(self._pages[page_id].versions)

    def edit_page(self, page_id: str, body: str, by: str = COLLEAGUE) -> PageVersion:
        """Replace a page's body as another user would in the editor: writes the next version.

        Raises:
            KeyError: No such page.
        """
        with self._lock:
            page = self._pages[page_id]
            return self._write(page, page.current.title, body, by, _username_of(by), "", False)

    def find(self, title: str, space: str | None = None) -> str | None:
        """The id of the page with this title (in ``space`` when given), or ``None``."""
        with self._lock:
            return next(
                (
                    p.id
                    for p in self._pages.values()
                    if p.current.title == title and (space is None or p.space.key == space)
                ),
                None,
            )

    def spaces(self, keys: Collection[str]) -> list[Space]:
        """The spaces with these keys (all spaces when ``keys`` is empty)."""
        with self._lock:
            return [s for s in self._spaces.values() if not keys or s.key in keys]

    # -- operations behind the routes (each one atomic) -------------------------------------------------

    def view(self, page_id: str, username: str, version: int | None = None) -> PageSnapshot:
        """A snapshot of a page the user may view: as it is now, or as of an earlier ``version``.

        Raises:
            ContentError: 404 when there is no such page (or version) or the user may not view it.
        """
        with self._lock:
            page = self._pages.get(page_id)
            if page is None or not page.may_view(username):
                raise _not_found(page_id)
            snapshot = self._view(page)
            if version is None or version == page.current.number:
                return snapshot
            if not 1 <= version <= len(page.versions):
                raise _not_found(page_id)
            return PageSnapshot(page.versions[version - 1], snapshot.first, snapshot.space, snapshot.ancestors)

    def authors(self) -> dict[str, tuple[str, str]]:
        """Everyone who wrote a version of some page: Cloud account id → (username, display name)."""
        with self._lock:
            return {
                cloud_account_id(v.by_username): (v.by_username, v.by) for p in self._pages.values() for v in p.versions
            }

    def check_edit(self, page_id: str, account: Account) -> None:
        """Refuse unless ``account`` may edit the page (attachments need the same right).

        Raises:
            ContentError: 404 when the page cannot be viewed, 403 when it may not be edited.
        """
        with self._lock:
            page = self._pages.get(page_id)
            if page is None or not page.may_view(account.username):
                raise _not_found(page_id)
            if not page.may_edit(account):
                raise ContentError(403, f"User not permitted to create attachments for content: {page_id}")

    def search(
        self, username: str, title: str | None, space_key: str | None, space_ids: Collection[int] = ()
    ) -> list[PageSnapshot]:
        """Snapshots of the pages the user may view, filtered by exact title, space key and space ids."""
        with self._lock:
            return [
                self._view(p)
                for p in self._pages.values()
                if p.may_view(username)
                and (title is None or p.current.title == title)
                and (space_key is None or p.space.key == space_key)
                and (not space_ids or p.space.id in space_ids)
            ]

    def put(
        self,
        page_id: str,
        account: Account,
        payload: dict[str, Any],
        take_concurrent_edit: Callable[[], bool] = lambda: False,
    ) -> PageSnapshot:
        """Apply a v1 ``PUT /rest/api/content/{id}``.

        Checks, in order: the page exists and the caller may view it (404); then, when
        ``take_concurrent_edit()`` is true, the colleague writes a version first; a version number is
        supplied (400); the caller may edit (403); the number is the current one + 1 (409). Without a
        ``body`` the stored body is kept; without a ``title`` the title is kept.

        Raises:
            ContentError: The refusal, with Confluence's status and message.
        """
        with self._lock:
            page = self._pages.get(page_id)
            if page is None or not page.may_view(account.username):
                raise _not_found(page_id)
            if take_concurrent_edit():
                self._colleague_edit(page)
            version = payload.get("version")
            number = version.get("number") if isinstance(version, dict) else None
            if not isinstance(number, int) or isinstance(number, bool):
                raise ContentError(400, MISSING_VERSION)
            if not page.may_edit(account):
                raise ContentError(403, f"Could not update Content of type : {PAGE_CLASS} with id {page_id}")
            current = page.current.number
            if number != current + 1:
                raise ContentError(
                    409, f"Version must be incremented on update. Current version is: {current}"
                )
            assert isinstance(version, dict)
            body = _storage_value(payload) if "body" in payload else page.current.body
            title = payload.get("title") or page.current.title
            self._write(
                page,
                str(title),
                body,
                account.display_name,
                account.username,
                str(version.get("message") or ""),
                bool(version.get("minorEdit", False)),
            )
            return self._view(page)

    def create(self, account: Account, payload: dict[str, Any]) -> PageSnapshot:
        """Apply a v1 ``POST /rest/api/content`` for a page.

        Raises:
            ContentError: 400 for a bad request or a taken title, 403 without the space edit right, 404 for an
                unknown space or parent.
        """
        if payload.get("type", "page") != "page":
            raise ContentError(400, "The sandbox creates content of type page only.")
        title = payload.get("title")
        if not isinstance(title, str) or not title:
            raise ContentError(400, "Content title is required.")
        space_key = as_object(payload.get("space")).get("key")
        ancestors = payload.get("ancestors")
        parent = as_object(ancestors[-1]) if isinstance(ancestors, list) and ancestors else {}
        parent_id = str(parent["id"]) if "id" in parent else None
        message = as_object(payload.get("version")).get("message")
        body = _storage_value(payload) if "body" in payload else ""
        with self._lock:
            space = self._spaces.get(str(space_key))
            if space is None:
                raise ContentError(404, f"No space with key : {space_key}")
            if SPACE_EDIT_PERMISSION not in account.permissions:
                raise ContentError(403, f"Not permitted to create content in space {space.key}")
            parent_page = None if parent_id is None else self._pages.get(parent_id)
            if parent_id is not None and (parent_page is None or not parent_page.may_view(account.username)):
                raise _not_found(parent_id)
            page = self._create(
                title,
                body,
                space,
                viewers=None,
                editors=None,
                parent_id=parent_id,
                by=account.display_name,
                by_username=account.username,
                message=str(message or ""),
            )
            return self._view(page)

    # -- internals (call with the lock held) ------------------------------------------------------------

    def _space(self, key: str, name: str) -> Space:
        if key not in self._spaces:
            self._spaces[key] = Space(SPACE_ID + len(self._spaces), key, name)
        return self._spaces[key]

    def _create(
        self,
        title: str,
        body: str,
        space: Space,
        *,
        viewers: frozenset[str] | None,
        editors: frozenset[str] | None,
        parent_id: str | None,
        by: str,
        by_username: str,
        message: str,
    ) -> _Page:
        if any(p.space == space and p.current.title == title for p in self._pages.values()):
            raise ContentError(400, TITLE_TAKEN)
        if parent_id is not None and parent_id not in self._pages:
            raise ContentError(404, f"No content found with id: ContentId{{id={parent_id}}}")
        page = _Page(str(self._next_id), space, parent_id, viewers, editors)
        self._next_id += 1
        self._pages[page.id] = page
        self._write(page, title, body, by, by_username, message, False)
        return page

    def _write(
        self, page: _Page, title: str, body: str, by: str, by_username: str, message: str, minor_edit: bool
    ) -> PageVersion:
        version = PageVersion(
            page_id=page.id,
            number=len(page.versions) + 1,
            title=title,
            body=body,
            when=datetime.now(UTC),
            by=by,
            by_username=by_username,
            message=message,
            minor_edit=minor_edit,
        )
        page.versions.append(version)
        return version

    def _colleague_edit(self, page: _Page) -> None:
        body = page.current.body
        paragraph = COLLEAGUE_EDIT.format(number=page.current.number + 1)
        at = body.find("<table")
        edited = body + paragraph if at < 0 else body[:at] + paragraph + body[at:]
        self._write(page, page.current.title, edited, COLLEAGUE, _username_of(COLLEAGUE), "", False)

    def _view(self, page: _Page) -> PageSnapshot:
        ancestors: list[PageVersion] = []
        parent_id = page.parent_id
        while parent_id is not None:
            parent = self._pages[parent_id]
            ancestors.append(parent.current)
            parent_id = parent.parent_id
        return PageSnapshot(page.current, page.versions[0], page.space, tuple(reversed(ancestors)))

    @classmethod
    def demo(cls, mode: Mode) -> ConfluenceSite:
        """The demo site of :mod:`atlasflow.sandbox.confluence.seed`, at stable ids.

        ``mode`` decides how user links are written in storage (``ri:account-id`` on Cloud, ``ri:userkey`` on
        Data Center).
        """
        site = cls()
        build_demo(site, mode)
        return site


def as_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _storage_value(payload: dict[str, Any]) -> str:
    storage = as_object(payload.get("body")).get("storage")
    if not isinstance(storage, dict) or not isinstance(storage.get("value"), str):
        raise ContentError(
            400, "The sandbox stores bodies in storage representation only: body.storage.value."
        )
    representation = storage.get("representation", "storage")
    if representation != "storage":
        raise ContentError(400, f"Unsupported body representation {representation!r}: use storage.")
    return str(storage["value"])
