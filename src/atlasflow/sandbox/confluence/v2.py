"""The v2 API (Cloud, ``/wiki/api/v2``): pages (read, list by space and title, version-checked write), spaces
by key, and users in bulk; errors in the v2 shape."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from atlasflow.sandbox.confluence.http import (
    DEFAULT_LIMIT,
    ContentError,
    Endpoint,
    json_object,
    non_negative,
    timestamp,
)
from atlasflow.sandbox.confluence.http import refusing as answer_refusals
from atlasflow.sandbox.confluence.pages import ConfluenceSite, PageSnapshot, Space, as_object
from atlasflow.sandbox.confluence.seed import HOME_PAGE_ID
from atlasflow.sandbox.confluence.users import cloud_account_id
from atlasflow.sandbox.confluence.v1 import tiny_link
from atlasflow.sandbox.core import SandboxState

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
        "ownerId": cloud_account_id(first.by_username),
        "lastOwnerId": None,
        "createdAt": timestamp("cloud", first.when),
        "authorId": cloud_account_id(first.by_username),
        "position": int(page_id) % 10_000,
        "version": {
            "number": current.number,
            "message": current.message,
            "minorEdit": current.minor_edit,
            "authorId": cloud_account_id(current.by_username),
            "createdAt": timestamp("cloud", current.when),
        },
        "body": {"storage": {"representation": "storage", "value": current.body}} if body_format else {},
        "status": "current",
        "title": current.title,
        "id": page_id,
        "_links": {
            "editui": f"/pages/resumedraft.action?draftId={page_id}",
            "webui": f"/spaces/{key}/pages/{page_id}/{quote_plus(current.title)}",
            "edituiv2": f"/spaces/{key}/pages/edit-v2/{page_id}",
            "tinyui": f"/x/{tiny_link(page_id)}",
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
    body = as_object(payload.get("body"))
    if body.get("representation") != "storage" or not isinstance(body.get("value"), str):
        raise ContentError(400, "body must be {representation: 'storage', value: ...} in the sandbox.")
    version = as_object(payload.get("version"))
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
        return answer_refusals(handler, v2_error)

    async def get_page(request: Request) -> Response:
        body_format = _body_format(request)
        version = non_negative(request, "version", 0) or None  # a previously published version
        view = site.view(request.path_params["id"], state.account(request).username, version)
        return JSONResponse(_v2_page_json(base_of(request), view, body_format))

    async def users_bulk(request: Request) -> Response:
        """``POST /wiki/api/v2/users-bulk``: users by account id (unknown ids are left out)."""
        payload = await json_object(request)
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
        payload = _v2_put_payload(page_id, await json_object(request))
        view = site.put(page_id, state.account(request), payload, state.faults.take_concurrent_edit)
        return JSONResponse(_v2_page_json(base_of(request), view, "storage"))

    async def list_pages(request: Request) -> Response:
        body_format = _body_format(request)
        raw_ids = [i for v in request.query_params.getlist("space-id") for i in v.split(",") if i]
        if not all(i.isdigit() for i in raw_ids):
            raise ContentError(400, f"Invalid space-id: {raw_ids}")
        title = request.query_params.get("title")
        views = site.search(state.account(request).username, title, None, [int(i) for i in raw_ids])
        limit = non_negative(request, "limit", DEFAULT_LIMIT)
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
