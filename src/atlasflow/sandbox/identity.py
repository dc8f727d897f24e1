"""Where Atlassian says who you are: the cloud-id lookup and the OAuth 2.0 token endpoints.

Cloud:

* ``GET /_edge/tenant_info`` (no credentials) → ``{"cloudId": "..."}``: the id that gateway URLs carry.
* ``POST /oauth/token`` stands for ``https://auth.atlassian.com/oauth/token``: the client-credentials grant of
  a service account (JSON or form body: ``grant_type=client_credentials``, ``client_id``, ``client_secret``)
  → ``{"access_token", "expires_in", "token_type": "Bearer", "scope"}``; the token is valid through the
  gateway only (see :class:`~atlasflow.sandbox.core.SandboxMiddleware`).

Data Center:

* ``POST /rest/oauth2/latest/token`` (form-encoded, same grant) → a Bearer token valid at the site; no
  refresh token.

Tokens live :attr:`TokenIssuer.ttl_seconds <atlasflow.sandbox.core.TokenIssuer>` (default 3600) and can be
revoked all at once (``state.tokens.revoke_all()``), as rotating a credential does.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from atlasflow.sandbox.core import SandboxState

FORM = "application/x-www-form-urlencoded"
SCOPES = "read:jira-work write:jira-work read:page:confluence write:page:confluence"


def account_id(username: str) -> str:
    """The Cloud account id of a sandbox user: one Atlassian account across Jira and Confluence, as on Cloud."""
    return "5b10" + hashlib.sha1(username.encode()).hexdigest()[:20]


async def _grant(request: Request, json_allowed: bool) -> dict[str, Any] | None:
    """The token request's parameters, or ``None`` when the body is neither a form nor (where allowed) JSON."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type == FORM:
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    if json_allowed and content_type == "application/json":
        try:
            body = json.loads(raw)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None
    return None


def identity_routes(state: SandboxState) -> list[Route]:
    """tenant_info and the token endpoint of ``state.mode``."""
    cloud = state.mode == "cloud"

    async def tenant_info(request: Request) -> Response:
        return JSONResponse({"cloudId": state.cloud_id})

    async def token(request: Request) -> Response:
        grant = await _grant(request, json_allowed=cloud)
        if grant is None:
            return JSONResponse(
                {"error": "invalid_request", "error_description": "Malformed token request"}, status_code=400
            )
        if grant.get("grant_type") != "client_credentials":
            return JSONResponse(
                {"error": "unsupported_grant_type", "error_description": "Unsupported grant type"}, status_code=400
            )
        client = next(
            (
                c
                for c in state.oauth_clients
                if c.client_id == grant.get("client_id") and c.client_secret == grant.get("client_secret")
            ),
            None,
        )
        if client is None:
            error = "access_denied" if cloud else "invalid_client"
            return JSONResponse({"error": error, "error_description": "Unauthorized"}, status_code=401)
        ttl = int(state.tokens.ttl_seconds)
        body = {
            "access_token": state.tokens.issue(client.username),
            "expires_in": ttl,
            "token_type": "Bearer" if cloud else "bearer",
            "scope": str(grant.get("scope") or SCOPES),
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    if cloud:
        return [
            Route("/_edge/tenant_info", tenant_info, methods=["GET"]),
            Route("/oauth/token", token, methods=["POST"]),
        ]
    return [Route("/rest/oauth2/latest/token", token, methods=["POST"])]
