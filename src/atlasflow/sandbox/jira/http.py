"""Request and response plumbing of the sandbox Jira routes: JSON bodies, parameters, and Jira's error
answers (``errorMessages``/``errors``, and Data Center's 500 page)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.responses import Response

JSON_TYPE = "application/json;charset=UTF-8"


class BadRequest(Exception):
    """Answer 400 (or ``status``) with these Jira ``errorMessages`` and per-field ``errors``."""

    def __init__(self, *messages: str, status: int = 400, errors: dict[str, str] | None = None) -> None:
        super().__init__(*messages)
        self.messages = messages
        self.status = status
        self.errors = errors


def to_json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def respond(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=JSON_TYPE)


def int_param(params: dict[str, Any], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"The value '{raw}' is not valid for the parameter '{name}'.") from None


def list_param(raw: Any) -> list[str]:
    """``"a,b"``, ``["a", "b"]`` or ``None`` -> ``["a", "b"]``."""
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else str(raw).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def server_error(message: str) -> Response:
    """Jira Data Center's answer to an unhandled server-side failure (status 500)."""
    referral = uuid.uuid4()
    body = {
        "message": message,
        "status-code": 500,
        "stack-trace": f"Please contact your admin passing attached Log's referral number: {referral}",
    }
    return respond(to_json(body), 500)
