"""Confluence stand-in: pages in storage format behind the v1 content API.

Cloud serves the API under ``/wiki/rest/api/...`` only, Data Center under ``/rest/api/...`` only (the other
prefix answers 404, as the real sites do). Routes:

* ``GET  .../rest/api/content/{id}?expand=...``: one page. Without ``expand`` the space, history and version
  are expanded (Confluence's documented default for a single piece of content), never the body.
* ``GET  .../rest/api/content?title=&spaceKey=&type=&expand=&start=&limit=``: a page of results.
* ``GET  .../rest/api/content/{id}/history``: the history with ``lastUpdated`` (what atlassian-python-api's
  ``update_page`` reads the version from).
* ``PUT  .../rest/api/content/{id}``: version-checked write (see :meth:`ConfluenceSite.put`).
* ``POST .../rest/api/content``: create a page.

Demo site (:meth:`ConfluenceSite.demo`): space ``REP`` "Reporting" (id 98305); every page is a child of the
space home page, so ``ancestors`` holds one entry. Ids are stable (module constants):

* 557057 ``HOME_PAGE_ID`` "Reporting Home": text; the parent of all the others.
* 557058 ``EXPORT_SUMMARY_ID`` "Jira export summary": an info panel; table 0 under "Exported tickets" (Key,
  Summary, Status, Assignee; a status macro in every Status cell, a user link); table 1 under "Totals by
  status" (Status, Count); table 2 inside an ``expand`` macro (Field, Source); ``&nbsp;``; a code macro whose
  CDATA holds ``<table> not a table </table>``.
* 557059 ``JOB_RESULTS_ID`` "Job results": heading "Results" over a header-only table Run ID, Job, State,
  Started, Duration, Summary.
* 557060 ``JOB_INBOX_ID`` "Job inbox": table Request, Job, Parameters, Priority, Run ID, State with REQ-1
  ``jira_export`` ``{"root_tickets": ["DEMO-1"]}`` high; REQ-2 ``confluence_table_sync``
  ``{"table": 0, "key_column": "Key", "rows": [...]}`` (adds DAN to the page its deployment names) medium;
  REQ-3 unknown job ``send_fax`` ``{}`` low; REQ-4
  ``jira_export`` with broken JSON, medium. Run ID and State are empty.
* 557061 ``TEAM_ROSTER_ID`` "Team roster": table Key, Name, Role, Team with keys ALI, BOB, CAR.
* 557062 ``NO_TABLES_ID`` "No tables here": headings, paragraphs, a list.
* 557063 ``BROKEN_PAGE_ID`` "Broken page": a table with an unclosed ``<td>`` and no ``</table>``.
* 557064 ``RESTRICTED_PAGE_ID`` "Salary bands (restricted)": a table; only demo@example.com may view or edit.

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

import base64
import hashlib
import json
import threading
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from atlasflow.sandbox.core import Account, Mode, SandboxState, confluence_error, default_accounts
from atlasflow.sandbox.identity import account_id

SPACE_KEY = "REP"
SPACE_NAME = "Reporting"
SPACE_ID = 98305

HOME_PAGE_ID = "557057"
EXPORT_SUMMARY_ID = "557058"
JOB_RESULTS_ID = "557059"
JOB_INBOX_ID = "557060"
TEAM_ROSTER_ID = "557061"
NO_TABLES_ID = "557062"
BROKEN_PAGE_ID = "557063"
RESTRICTED_PAGE_ID = "557064"

SPACE_EDIT_PERMISSION = "EDIT_ISSUES"
"""Holding this permission stands for Confluence's space permission "Add/Edit pages"."""

COLLEAGUE = "Colleague"
COLLEAGUE_EDIT = "<p>Edited concurrently by Colleague (version {number})</p>"
"""The paragraph the concurrent-edit fault inserts; ``{number}`` is the version the colleague writes."""

Endpoint = Callable[[Request], Awaitable[Response]]

WRITE_EXPAND = frozenset({"body", "body.storage", "version", "space", "history", "ancestors"})
"""What a PUT or POST answers with expanded."""

MISSING_VERSION = "Must supply an incremented version when updating Content. No version supplied."
TITLE_TAKEN = "A page with this title already exists: A page already exists with the same TITLE in this space"
PAGE_CLASS = "class com.atlassian.confluence.pages.Page"
DEFAULT_LIMIT = 25


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


class ContentError(Exception):
    """A request the content API refuses: rendered as a Confluence v1 error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
                _account_id(v.by_username): (v.by_username, v.by) for p in self._pages.values() for v in p.versions
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
        space_key = _object(payload.get("space")).get("key")
        ancestors = payload.get("ancestors")
        parent = _object(ancestors[-1]) if isinstance(ancestors, list) and ancestors else {}
        parent_id = str(parent["id"]) if "id" in parent else None
        message = _object(payload.get("version")).get("message")
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

    # -- the demo site ----------------------------------------------------------------------------------

    @classmethod
    def demo(cls, mode: Mode) -> ConfluenceSite:
        """The demo site: space ``REP`` with the pages listed in the module docstring, at stable ids.

        ``mode`` decides how user links are written in storage (``ri:account-id`` on Cloud, ``ri:userkey`` on
        Data Center).
        """
        site = cls()
        site.add_space(SPACE_KEY, SPACE_NAME)
        user_ref = _user_ref(mode, "demo@example.com")
        home = site.add_page("Reporting Home", _HOME)
        pages = [
            ("Jira export summary", _export_summary(user_ref), None),
            ("Job results", _JOB_RESULTS, None),
            ("Job inbox", _JOB_INBOX, None),
            ("Team roster", _TEAM_ROSTER, None),
            ("No tables here", _NO_TABLES, None),
            ("Broken page", _BROKEN, None),
            ("Salary bands (restricted)", _RESTRICTED, frozenset({"demo@example.com"})),
        ]
        for title, body, only in pages:
            site.add_page(title, body, viewers=only, editors=only, parent_id=home)
        return site


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _storage_value(payload: dict[str, Any]) -> str:
    storage = _object(payload.get("body")).get("storage")
    if not isinstance(storage, dict) or not isinstance(storage.get("value"), str):
        raise ContentError(
            400, "The sandbox stores bodies in storage representation only: body.storage.value."
        )
    representation = storage.get("representation", "storage")
    if representation != "storage":
        raise ContentError(400, f"Unsupported body representation {representation!r}: use storage.")
    return str(storage["value"])


# -- JSON rendering ---------------------------------------------------------------------------------------


def _account_id(username: str) -> str:
    return account_id(username)  # the same person's id in the sandbox's Jira


def _user_key(username: str) -> str:
    return hashlib.md5(username.encode()).hexdigest()


def _user_ref(mode: Mode, username: str) -> str:
    if mode == "cloud":
        return f'<ri:user ri:account-id="{_account_id(username)}" />'
    return f'<ri:user ri:userkey="{_user_key(username)}" />'


def _when(mode: Mode, at: datetime) -> str:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}"
    return stamp + ("Z" if mode == "cloud" else "+00:00")


def _user_json(mode: Mode, base: str, display_name: str, username: str) -> dict[str, Any]:
    if mode == "cloud":
        account_id = _account_id(username)
        return {
            "type": "known",
            "accountId": account_id,
            "accountType": "atlassian",
            "email": "",
            "publicName": display_name,
            "profilePicture": {
                "path": f"/wiki/aa-avatar/{account_id}",
                "width": 48,
                "height": 48,
                "isDefault": False,
            },
            "displayName": display_name,
            "isExternalCollaborator": False,
            "isGuest": False,
            "locale": "en_US",
            "accountStatus": "active",
            "_expandable": {"operations": "", "personalSpace": ""},
            "_links": {"self": f"{base}/rest/api/user?accountId={account_id}"},
        }
    key = _user_key(username)
    return {
        "type": "known",
        "username": username,
        "userKey": key,
        "profilePicture": {
            "path": "/images/icons/profilepics/default.svg",
            "width": 48,
            "height": 48,
            "isDefault": True,
        },
        "displayName": display_name,
        "_links": {"self": f"{base}/rest/api/user?key={key}"},
        "_expandable": {"status": ""},
    }


def _version_json(mode: Mode, base: str, v: PageVersion) -> dict[str, Any]:
    data: dict[str, Any] = {
        "by": _user_json(mode, base, v.by, v.by_username),
        "when": _when(mode, v.when),
        "message": v.message,
        "number": v.number,
        "minorEdit": v.minor_edit,
    }
    if mode == "cloud":
        data |= {
            "friendlyWhen": v.when.strftime("%b %d, %Y"),
            "ncsStepVersion": str(v.number),
            "ncsStepVersionSource": "ncs-ack",
            "confRev": f"confluence$content${v.page_id}.{v.number}",
            "contentTypeModified": False,
            "_expandable": {"collaborators": "", "content": f"/rest/api/content/{v.page_id}"},
        }
    else:
        data |= {"hidden": False, "_expandable": {"content": f"/rest/api/content/{v.page_id}"}}
    data["_links"] = {"self": f"{base}/rest/api/content/{v.page_id}/version/{v.number}"}
    return data


def _space_json(mode: Mode, base: str, space: Space) -> dict[str, Any]:
    data: dict[str, Any] = {"id": space.id, "key": space.key}
    if mode == "cloud":
        data["alias"] = space.key
    data |= {
        "name": space.name,
        "type": "global",
        "status": "current",
        "_expandable": {
            "settings": f"/rest/api/space/{space.key}/settings",
            "metadata": "",
            "operations": "",
            "lookAndFeel": f"/rest/api/settings/lookandfeel?spaceKey={space.key}",
            "identifiers": "",
            "permissions": "",
            **({"roles": ""} if mode == "cloud" else {}),
            "icon": "",
            "description": "",
            "theme": f"/rest/api/space/{space.key}/theme",
            "history": "",
            "homepage": f"/rest/api/content/{HOME_PAGE_ID}",
        },
        "_links": {
            "webui": f"/spaces/{space.key}" if mode == "cloud" else f"/display/{space.key}",
            "self": f"{base}/rest/api/space/{space.key}",
        },
    }
    return data


def _history_json(mode: Mode, base: str, view: PageSnapshot, last_updated: bool) -> dict[str, Any]:
    page_id = view.current.page_id
    expandable = {"lastUpdated": "", "previousVersion": "", "contributors": "", "nextVersion": ""}
    data: dict[str, Any] = {
        "latest": True,
        "createdBy": _user_json(mode, base, view.first.by, view.first.by_username),
        "createdDate": _when(mode, view.first.when),
    }
    if last_updated:
        data["lastUpdated"] = _version_json(mode, base, view.current)
        del expandable["lastUpdated"]
    data["_expandable"] = expandable
    data["_links"] = {"self": f"{base}/rest/api/content/{page_id}/history"}
    return data


def _body_json(mode: Mode, view: PageSnapshot, storage: bool) -> dict[str, Any]:
    expandable = dict.fromkeys(
        ["editor", "view", "export_view", "styled_view", "storage", "anonymous_export_view"], ""
    )
    if mode == "cloud":
        expandable |= dict.fromkeys(["atlas_doc_format", "dynamic", "editor2"], "")
    data: dict[str, Any] = {}
    if storage:
        del expandable["storage"]
        data["storage"] = {"value": view.current.body, "representation": "storage"}
        if mode == "cloud":
            data["storage"]["embeddedContent"] = []
        data["storage"]["_expandable"] = {"content": f"/rest/api/content/{view.current.page_id}"}
    data["_expandable"] = expandable
    return data


def _tiny(page_id: str) -> str:
    raw = int(page_id).to_bytes(8, "little").rstrip(b"\0")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _content_json(mode: Mode, base: str, view: PageSnapshot, expand: Collection[str]) -> dict[str, Any]:
    """A page as the v1 content API renders it, with the requested properties expanded."""
    current = view.current
    page_id, key = current.page_id, view.space.key
    data: dict[str, Any] = {"id": page_id, "type": "page", "status": "current", "title": current.title}
    if "space" in expand:
        data["space"] = _space_json(mode, base, view.space)
    if "history" in expand:
        data["history"] = _history_json(mode, base, view, "history.lastUpdated" in expand)
    if "version" in expand:
        data["version"] = _version_json(mode, base, current)
    if "ancestors" in expand:
        data["ancestors"] = [
            _content_json(mode, base, PageSnapshot(a, a, view.space, ()), set()) for a in view.ancestors
        ]
    if "body" in expand:
        data["body"] = _body_json(mode, view, "body.storage" in expand)
    if mode == "cloud":
        data["macroRenderedOutput"] = {}
        data["extensions"] = {"position": int(page_id) % 10_000}
    else:
        data["extensions"] = {"position": "none"}
    expandable: dict[str, str] = {
        "childTypes": "",
        "container": f"/rest/api/space/{key}",
        "metadata": "",
        "operations": "",
        "children": f"/rest/api/content/{page_id}/child",
        "restrictions": f"/rest/api/content/{page_id}/restriction/byOperation",
        "history": f"/rest/api/content/{page_id}/history",
        "ancestors": "",
        "body": "",
        "version": "",
        "descendants": f"/rest/api/content/{page_id}/descendant",
        "space": f"/rest/api/space/{key}",
    }
    if mode == "cloud":
        expandable |= {"schedulePublishInfo": "", "schedulePublishDate": ""}
    data["_expandable"] = {k: v for k, v in expandable.items() if k not in expand}
    links: dict[str, str] = {}
    if mode == "cloud":
        links |= {
            "editui": f"/pages/resumedraft.action?draftId={page_id}",
            "webui": f"/spaces/{key}/pages/{page_id}/{quote_plus(current.title)}",
            "edituiv2": f"/spaces/{key}/pages/edit-v2/{page_id}",
            "context": "/wiki",
        }
    else:
        links |= {
            "webui": f"/pages/viewpage.action?pageId={page_id}",
            "edit": f"/pages/resumedraft.action?draftId={page_id}",
            "context": "",
        }
    links |= {
        "self": f"{base}/rest/api/content/{page_id}",
        "tinyui": f"/x/{_tiny(page_id)}",
        "collection": "/rest/api/content",
        "base": base,
    }
    data["_links"] = links
    return data


def _expansions(request: Request, default: str) -> set[str]:
    """The ``expand`` tokens, with the parents of dotted ones (``body.storage`` implies ``body``)."""
    tokens = {t.strip() for t in request.query_params.get("expand", default).split(",") if t.strip()}
    return tokens | {t.split(".", 1)[0] for t in tokens}


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        payload = json.loads(await request.body())
    except ValueError as exc:
        raise ContentError(400, f"Could not parse the request body as JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise ContentError(400, "The request body must be a JSON object.")
    return payload


def _non_negative(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name, "")
    if not value:
        return default
    if not value.isdigit():
        raise ContentError(400, f"Invalid value for {name}: {value}")
    return int(value)


def confluence_routes(site: ConfluenceSite, state: SandboxState) -> list[Route]:
    """The content API routes for ``state.mode``: under ``/wiki`` on Cloud, at the root on Data Center."""
    mode = state.mode
    prefix = "/wiki/rest/api/content" if mode == "cloud" else "/rest/api/content"

    def base_of(request: Request) -> str:
        root = str(request.base_url).rstrip("/")
        return f"{root}/wiki" if mode == "cloud" else root

    def refusing(handler: Endpoint) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                response: Response = await handler(request)
            except ContentError as exc:
                return confluence_error(exc.status, exc.message)
            return response

        return endpoint

    async def get_content(request: Request) -> Response:
        # ``status=historical&version=N`` reads an earlier version, as on Confluence (v1).
        version = _non_negative(request, "version", 0) or None
        view = site.view(request.path_params["id"], state.account(request).username, version)
        return JSONResponse(
            _content_json(mode, base_of(request), view, _expansions(request, "space,history,version"))
        )

    async def get_history(request: Request) -> Response:
        view = site.view(request.path_params["id"], state.account(request).username)
        return JSONResponse(_history_json(mode, base_of(request), view, last_updated=True))

    async def list_content(request: Request) -> Response:
        params = request.query_params
        content_type = params.get("type", "page")
        start = _non_negative(request, "start", 0)
        limit = _non_negative(request, "limit", DEFAULT_LIMIT)
        views = (
            []
            if content_type != "page"
            else site.search(state.account(request).username, params.get("title"), params.get("spaceKey"))
        )
        base, expand = base_of(request), _expansions(request, "")
        results = [_content_json(mode, base, v, expand) for v in views[start : start + limit]]
        links = {
            "base": base,
            "context": "/wiki" if mode == "cloud" else "",
            "self": f"{base}/rest/api/content",
        }
        if start + limit < len(views):
            links["next"] = f"/rest/api/content?start={start + limit}&limit={limit}"
        return JSONResponse(
            {"results": results, "start": start, "limit": limit, "size": len(results), "_links": links}
        )

    async def put_content(request: Request) -> Response:
        payload = await _json_object(request)
        view = site.put(
            request.path_params["id"], state.account(request), payload, state.faults.take_concurrent_edit
        )
        return JSONResponse(_content_json(mode, base_of(request), view, WRITE_EXPAND))

    async def post_content(request: Request) -> Response:
        view = site.create(state.account(request), await _json_object(request))
        return JSONResponse(_content_json(mode, base_of(request), view, WRITE_EXPAND))

    return [
        Route(prefix, refusing(list_content), methods=["GET"]),
        Route(prefix, refusing(post_content), methods=["POST"]),
        Route(f"{prefix}/", refusing(post_content), methods=["POST"]),
        Route(f"{prefix}/{{id}}", refusing(get_content), methods=["GET"]),
        Route(f"{prefix}/{{id}}", refusing(put_content), methods=["PUT"]),
        Route(f"{prefix}/{{id}}/history", refusing(get_history), methods=["GET"]),
    ]


# -- REST API v2 (Cloud): /wiki/api/v2 ---------------------------------------------------------------------

V2_CODES = {
    400: "INVALID_REQUEST_PARAMETER",
    401: "UNAUTHORIZED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "CONFLICT",
}


def v2_error(status: int, title: str) -> JSONResponse:
    """A v2-shaped error: ``{"errors": [{"status", "code", "title", "detail"}]}``."""
    error = {"status": status, "code": V2_CODES.get(status, "ERROR"), "title": title, "detail": None}
    return JSONResponse({"errors": [error]}, status_code=status)


def _v2_page_json(base: str, view: PageSnapshot, body_format: str | None) -> dict[str, Any]:
    """A page as ``GET /wiki/api/v2/pages/{id}`` renders it (``body`` only with ``body-format=storage``)."""
    current, first = view.current, view.first
    page_id, key = current.page_id, view.space.key
    parent = view.ancestors[-1] if view.ancestors else None
    return {
        "parentType": "page" if parent else None,
        "parentId": parent.page_id if parent else None,
        "spaceId": str(view.space.id),
        "ownerId": _account_id(first.by_username),
        "lastOwnerId": None,
        "createdAt": _when("cloud", first.when),
        "authorId": _account_id(first.by_username),
        "position": int(page_id) % 10_000,
        "version": {
            "number": current.number,
            "message": current.message,
            "minorEdit": current.minor_edit,
            "authorId": _account_id(current.by_username),
            "createdAt": _when("cloud", current.when),
        },
        "body": {"storage": {"representation": "storage", "value": current.body}} if body_format else {},
        "status": "current",
        "title": current.title,
        "id": page_id,
        "_links": {
            "editui": f"/pages/resumedraft.action?draftId={page_id}",
            "webui": f"/spaces/{key}/pages/{page_id}/{quote_plus(current.title)}",
            "edituiv2": f"/spaces/{key}/pages/edit-v2/{page_id}",
            "tinyui": f"/x/{_tiny(page_id)}",
            "base": base,
        },
    }


def _v2_space_json(base: str, space: Space) -> dict[str, Any]:
    return {
        "id": str(space.id),
        "key": space.key,
        "name": space.name,
        "type": "global",
        "status": "current",
        "homepageId": HOME_PAGE_ID,
        "_links": {"webui": f"/spaces/{space.key}", "base": base},
    }


def _body_format(request: Request) -> str | None:
    value = request.query_params.get("body-format")
    if value not in (None, "storage"):
        raise ContentError(400, f"The sandbox serves body-format=storage only, not {value!r}.")
    return value


def _v2_put_payload(page_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A v2 ``PUT /pages/{id}`` body as the v1 write it amounts to (checked as Confluence checks it)."""
    if str(payload.get("id", "")) != page_id:
        raise ContentError(400, "The id in the body must match the page id of the path.")
    if payload.get("status") != "current":
        raise ContentError(400, "status is required and must be 'current' to publish.")
    if not isinstance(payload.get("title"), str) or not payload["title"]:
        raise ContentError(400, "title is required.")
    body = _object(payload.get("body"))
    if body.get("representation") != "storage" or not isinstance(body.get("value"), str):
        raise ContentError(400, "body must be {representation: 'storage', value: ...} in the sandbox.")
    version = _object(payload.get("version"))
    return {
        "title": payload["title"],
        "version": version,
        "body": {"storage": {"value": body["value"], "representation": "storage"}},
    }


def confluence_v2_routes(site: ConfluenceSite, state: SandboxState) -> list[Route]:
    """``/wiki/api/v2``: pages (read, list by space and title, version-checked write) and spaces by key."""
    prefix = "/wiki/api/v2"

    def base_of(request: Request) -> str:
        return str(request.base_url).rstrip("/") + "/wiki"

    def refusing(handler: Endpoint) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                response: Response = await handler(request)
            except ContentError as exc:
                return v2_error(exc.status, exc.message)
            return response

        return endpoint

    async def get_page(request: Request) -> Response:
        body_format = _body_format(request)
        version = _non_negative(request, "version", 0) or None  # a previously published version
        view = site.view(request.path_params["id"], state.account(request).username, version)
        return JSONResponse(_v2_page_json(base_of(request), view, body_format))

    async def users_bulk(request: Request) -> Response:
        """``POST /wiki/api/v2/users-bulk``: users by account id (unknown ids are left out)."""
        payload = await _json_object(request)
        ids = payload.get("accountIds")
        if not isinstance(ids, list) or not ids:
            raise ContentError(400, "accountIds must be a non-empty list")
        known = site.authors()
        results = [
            {
                "accountId": account_id,
                "accountType": "atlassian",
                "accountStatus": "active",
                "displayName": known[account_id][1],
                "publicName": known[account_id][1],
                "isExternalCollaborator": False,
                "email": "",
                "timeZone": "Etc/UTC",
                "profilePicture": {"path": f"/wiki/aa-avatar/{account_id}", "width": 48, "height": 48},
            }
            for account_id in dict.fromkeys(str(i) for i in ids)
            if account_id in known
        ]
        return JSONResponse({"results": results, "_links": {"base": base_of(request)}})

    async def put_page(request: Request) -> Response:
        page_id = request.path_params["id"]
        payload = _v2_put_payload(page_id, await _json_object(request))
        view = site.put(page_id, state.account(request), payload, state.faults.take_concurrent_edit)
        return JSONResponse(_v2_page_json(base_of(request), view, "storage"))

    async def list_pages(request: Request) -> Response:
        body_format = _body_format(request)
        raw_ids = [i for v in request.query_params.getlist("space-id") for i in v.split(",") if i]
        if not all(i.isdigit() for i in raw_ids):
            raise ContentError(400, f"Invalid space-id: {raw_ids}")
        title = request.query_params.get("title")
        views = site.search(state.account(request).username, title, None, [int(i) for i in raw_ids])
        limit = _non_negative(request, "limit", DEFAULT_LIMIT)
        base = base_of(request)
        return JSONResponse(
            {"results": [_v2_page_json(base, v, body_format) for v in views[:limit]], "_links": {"base": base}}
        )

    async def list_spaces(request: Request) -> Response:
        keys = [k for v in request.query_params.getlist("keys") for k in v.split(",") if k]
        base = base_of(request)
        return JSONResponse({"results": [_v2_space_json(base, s) for s in site.spaces(keys)], "_links": {"base": base}})

    return [
        Route(f"{prefix}/pages", refusing(list_pages), methods=["GET"]),
        Route(f"{prefix}/pages/{{id}}", refusing(get_page), methods=["GET"]),
        Route(f"{prefix}/pages/{{id}}", refusing(put_page), methods=["PUT"]),
        Route(f"{prefix}/spaces", refusing(list_spaces), methods=["GET"]),
        Route(f"{prefix}/users-bulk", refusing(users_bulk), methods=["POST"]),
    ]


# -- demo page bodies (storage format, shaped after the real samples) -------------------------------------


def _table(local_id: str, widths: list[int], header: list[str], rows: list[list[str]]) -> str:
    cols = "".join(f'<col style="width: {w}.0px;" />' for w in widths)
    head = "".join(f"<th><p><strong>{h}</strong></p></th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<table data-layout="default" ac:local-id="{local_id}"><colgroup>{cols}</colgroup>'
        f"<tbody><tr>{head}</tr>{body}</tbody></table>"
    )


def _cell(content: str) -> str:
    return "<p />" if not content else content if content.startswith("<p") else f"<p>{content}</p>"


def _macro(name: str, macro_id: str, inner: str) -> str:
    opening = f'<ac:structured-macro ac:name="{name}" ac:schema-version="1" ac:macro-id="{macro_id}">'
    return f"{opening}{inner}</ac:structured-macro>"


def _parameter(name: str, value: str) -> str:
    return f'<ac:parameter ac:name="{name}">{value}</ac:parameter>'


def _status(title: str, colour: str, macro_id: str) -> str:
    return (
        "<p>" + _macro("status", macro_id, _parameter("title", title) + _parameter("colour", colour)) + "</p>"
    )


_HOME = (
    "<p>Reports written by the atlasflow jobs. Each child page is kept up to date by one job; "
    "edit the tables only where a page says so.</p>"
)


def _export_summary(user_ref: str) -> str:
    tickets = _table(
        "5f0c2a7e-3b1d-4c8a-9e61-0a4d2b7c9e10",
        [120, 340, 140, 160],
        ["Key", "Summary", "Status", "Assignee"],
        [
            [
                "DEMO-1",
                "Quarterly export",
                _status("In Progress", "Blue", "0b7e7f54-6a1e-4c3b-8d52-1f0e9a3c2b01"),
                f"<p><ac:link>{user_ref}</ac:link></p>",
            ],
            [
                "DEMO-2",
                "Fix &amp; verify totals",
                _status("Done", "Green", "0b7e7f54-6a1e-4c3b-8d52-1f0e9a3c2b02"),
                "<p>Unassigned</p>",
            ],
            [
                "DEMO-3",
                "Export hierarchy&nbsp;to Excel",
                _status("To Do", "Grey", "0b7e7f54-6a1e-4c3b-8d52-1f0e9a3c2b03"),
                "<p>Unassigned</p>",
            ],
        ],
    )
    totals = _table(
        "8c1d4e2f-6a7b-4c9d-8e0f-1a2b3c4d5e6f",
        [200, 120],
        ["Status", "Count"],
        [["To Do", "1"], ["In Progress", "1"], ["Done", "1"]],
    )
    fields = _table(
        "c3d2e1f0-9a8b-4c7d-8e6f-5a4b3c2d1e0f",
        [180, 300],
        ["Field", "Source"],
        [["Key", "issue key"], ["Summary", "fields.summary"], ["Status", "fields.status.name"]],
    )
    info = _macro(
        "info",
        "bb3c4149-8cc9-4d4b-9402-87f8b6c7918e",
        "<ac:rich-text-body><p>This page is written by the <strong>jira_export</strong> job. "
        "Edit the text, not the tables.</p></ac:rich-text-body>",
    )
    expand = _macro(
        "expand",
        "4a1b2c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        _parameter("title", "Exported fields") + f"<ac:rich-text-body>{fields}</ac:rich-text-body>",
    )
    code = _macro(
        "code",
        "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
        _parameter("language", "xml")
        + "<ac:plain-text-body><![CDATA[<table> not a table </table>]]></ac:plain-text-body>",
    )
    return (
        f"<h1>Jira export summary</h1>{info}<p />"
        f"<h2>Exported tickets</h2>{tickets}<p>&nbsp;</p>"
        f"<h2>Totals by status</h2>{totals}"
        f"<h2>Details</h2>{expand}"
        f'<p>Last export:&nbsp;<time datetime="2026-11-27" /></p>{code}'
    )


_JOB_RESULTS = (
    "<p>Finished job runs, one row per run, written by the reporting flow.</p>"
    "<h2>Results</h2>"
    + _table(
        "d4e5f6a7-b8c9-4d0e-8f1a-2b3c4d5e6f70",
        [300, 160, 110, 190, 100, 400],
        ["Run ID", "Job", "State", "Started", "Duration", "Summary"],
        [],
    )
)

_JOB_INBOX = (
    "<p>Add a row to request a job run. The inbox flow starts it and fills in Run ID and State.</p>"
    + _table(
        "e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a81",
        [90, 200, 360, 90, 300, 110],
        ["Request", "Job", "Parameters", "Priority", "Run ID", "State"],
        [
            ["REQ-1", "jira_export", '{"root_tickets": ["DEMO-1"]}', "high", "", ""],
            [
                "REQ-2",
                "confluence_table_sync",
                '{"table": 0, "key_column": "Key", '
                '"rows": [{"Key": "DAN", "Name": "Dan", "Role": "QA", "Team": "Payments"}]}',
                "medium",
                "",
                "",
            ],
            ["REQ-3", "send_fax", "{}", "low", "", ""],
            ["REQ-4", "jira_export", '{"root_tickets": ["DEMO-2"', "medium", "", ""],
        ],
    )
)

_TEAM_ROSTER = "<p>Who is on the reporting team.</p>" + _table(
    "f6a7b8c9-d0e1-4f2a-8b3c-4d5e6f7a8b92",
    [90, 220, 200, 160],
    ["Key", "Name", "Role", "Team"],
    [
        ["ALI", "Alice Andersen", "Data engineer", "Platform"],
        ["BOB", "Bob Brown", "Analyst", "Finance"],
        ["CAR", "Carla Costa", "Team lead", "Platform"],
    ],
)

_NO_TABLES = (
    "<h2>About</h2><p>This page has text only: no table for a job to read or write.</p>"
    "<ul><li><p>First point</p></li><li><p>Second point</p></li></ul>"
    '<p>Contact: <a href="mailto:reporting@example.com">reporting@example.com</a></p>'
)

_BROKEN = (
    "<h2>Broken</h2><p>Storage damaged by a bad import: a cell and the table are never closed.</p>"
    "<table><tbody><tr><th><p>Key</p></th><th><p>Value</p></th></tr>"
    "<tr><td><p>A-1</p><td><p>unclosed cell</p></tr>"
    "<tr><td><p>A-2</p></td><td><p>second</p></td></tr></tbody>"
    "<p>Text after the table</p>"
)

_RESTRICTED = "<p>Restricted to Demo Admin.</p>" + _table(
    "a7b8c9d0-e1f2-4a3b-8c4d-5e6f7a8b9ca3",
    [120, 160],
    ["Band", "Range"],
    [["B1", "40k-50k"], ["B2", "50k-65k"]],
)
