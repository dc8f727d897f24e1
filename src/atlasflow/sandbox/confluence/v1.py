"""The v1 content API (Cloud and Data Center).

Cloud serves the API under ``/wiki/rest/api/...`` only, Data Center under ``/rest/api/...`` only (the other
prefix answers 404, as the real sites do). Routes:

* ``GET  .../rest/api/content/{id}?expand=...``: one page. Without ``expand`` the space, history and version
  are expanded (Confluence's documented default for a single piece of content), never the body.
* ``GET  .../rest/api/content?title=&spaceKey=&type=&expand=&start=&limit=``: a page of results.
* ``GET  .../rest/api/content/{id}/history``: the history with ``lastUpdated`` (what atlassian-python-api's
  ``update_page`` reads the version from).
* ``PUT  .../rest/api/content/{id}``: version-checked write (see :meth:`ConfluenceSite.put`).
* ``POST .../rest/api/content``: create a page.
"""

from __future__ import annotations

import base64
from collections.abc import Collection
from typing import Any
from urllib.parse import quote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from atlasflow.sandbox.confluence.http import (
    DEFAULT_LIMIT,
    Endpoint,
    json_object,
    non_negative,
    timestamp,
)
from atlasflow.sandbox.confluence.http import refusing as answer_refusals
from atlasflow.sandbox.confluence.pages import ConfluenceSite, PageSnapshot, PageVersion, Space
from atlasflow.sandbox.confluence.seed import HOME_PAGE_ID
from atlasflow.sandbox.confluence.users import user_json
from atlasflow.sandbox.core import Mode, SandboxState, confluence_error

WRITE_EXPAND = frozenset({"body", "body.storage", "version", "space", "history", "ancestors"})
"""What a PUT or POST answers with expanded."""


def _version_json(mode: Mode, base: str, v: PageVersion) -> dict[str, Any]:
    data: dict[str, Any] = {
        "by": user_json(mode, base, v.by, v.by_username),
        "when": timestamp(mode, v.when),
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
        "createdBy": user_json(mode, base, view.first.by, view.first.by_username),
        "createdDate": timestamp(mode, view.first.when),
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


def tiny_link(page_id: str) -> str:
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
        "tinyui": f"/x/{tiny_link(page_id)}",
        "collection": "/rest/api/content",
        "base": base,
    }
    data["_links"] = links
    return data


def _expansions(request: Request, default: str) -> set[str]:
    """The ``expand`` tokens, with the parents of dotted ones (``body.storage`` implies ``body``)."""
    tokens = {t.strip() for t in request.query_params.get("expand", default).split(",") if t.strip()}
    return tokens | {t.split(".", 1)[0] for t in tokens}


def confluence_routes(site: ConfluenceSite, state: SandboxState) -> list[Route]:
    """The content API routes for ``state.mode``: under ``/wiki`` on Cloud, at the root on Data Center."""
    mode = state.mode
    prefix = "/wiki/rest/api/content" if mode == "cloud" else "/rest/api/content"

    def base_of(request: Request) -> str:
        root = str(request.base_url).rstrip("/")
        return f"{root}/wiki" if mode == "cloud" else root

    def refusing(handler: Endpoint) -> Endpoint:
        return answer_refusals(handler, confluence_error)

    async def get_content(request: Request) -> Response:
        # ``status=historical&version=N`` reads an earlier version, as on Confluence (v1).
        version = non_negative(request, "version", 0) or None
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
        start = non_negative(request, "start", 0)
        limit = non_negative(request, "limit", DEFAULT_LIMIT)
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
        payload = await json_object(request)
        view = site.put(
            request.path_params["id"], state.account(request), payload, state.faults.take_concurrent_edit
        )
        return JSONResponse(_content_json(mode, base_of(request), view, WRITE_EXPAND))

    async def post_content(request: Request) -> Response:
        view = site.create(state.account(request), await json_object(request))
        return JSONResponse(_content_json(mode, base_of(request), view, WRITE_EXPAND))

    return [
        Route(prefix, refusing(list_content), methods=["GET"]),
        Route(prefix, refusing(post_content), methods=["POST"]),
        Route(f"{prefix}/", refusing(post_content), methods=["POST"]),
        Route(f"{prefix}/{{id}}", refusing(get_content), methods=["GET"]),
        Route(f"{prefix}/{{id}}", refusing(put_content), methods=["PUT"]),
        Route(f"{prefix}/{{id}}/history", refusing(get_history), methods=["GET"]),
    ]
