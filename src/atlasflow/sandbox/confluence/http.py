"""Request plumbing shared by the Confluence routes: JSON bodies, paging parameters, timestamps, refusals."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from atlasflow.sandbox.core import Mode

Endpoint = Callable[[Request], Awaitable[Response]]

DEFAULT_LIMIT = 25


async def json_object(request: Request) -> dict[str, Any]:
    try:
        payload = json.loads(await request.body())
    except ValueError as exc:
        raise ContentError(400, f"Could not parse the request body as JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise ContentError(400, "The request body must be a JSON object.")
    return payload


def non_negative(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name, "")
    if not value:
        return default
    if not value.isdigit():
        raise ContentError(400, f"Invalid value for {name}: {value}")
    return int(value)


def timestamp(mode: Mode, at: datetime) -> str:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}"
    return stamp + ("Z" if mode == "cloud" else "+00:00")


class ContentError(Exception):
    """A request the content API refuses: rendered as the API's error body (:func:`refusing`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def refusing(handler: Endpoint, render: Callable[[int, str], Response]) -> Endpoint:
    """``handler`` with a :class:`ContentError` answered as ``render(status, message)`` (v1 or v2 shape)."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ContentError as exc:
            return render(exc.status, exc.message)

    return endpoint
