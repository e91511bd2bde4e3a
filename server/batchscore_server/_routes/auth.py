"""Authentication: log in, renew and revoke refresh tokens."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from batchscore_server import _validation
from batchscore_server._errors import ApiError
from batchscore_server._routes.deps import ServerState, json_body

router = APIRouter(tags=["Authentication"])


@router.post("/login")
async def login(request: Request, server: ServerState) -> dict[str, Any]:
    """Trade a user name and password for an access and a refresh token."""
    body = await json_body(request, server.settings, server.settings.max_small_body_bytes)
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object", "body")
    for field, limit in (("username", 256), ("password", 1024)):
        if not isinstance(body.get(field), str) or not body[field]:
            raise ApiError(400, f"{field} is required", field)
        if len(body[field]) > limit:
            raise ApiError(400, f"{field} must have at most {limit} characters", field)
    return await asyncio.to_thread(server.auth.login, body["username"], body["password"])


@router.post("/login/refreshToken")
async def renew_token(request: Request, server: ServerState) -> dict[str, Any]:
    """Trade a refresh token for a new pair (the old one stops working)."""
    body = await json_body(request, server.settings, server.settings.max_small_body_bytes)
    if not isinstance(body, dict) or not isinstance(body.get("refreshToken"), str) or not body["refreshToken"]:
        raise ApiError(400, "refreshToken is required", "refreshToken")
    return await asyncio.to_thread(server.auth.renew, _validation.refresh_token(body["refreshToken"]))


@router.delete("/login/refreshToken")
async def revoke_refresh_token(refreshToken: Annotated[str, Query(min_length=1)], server: ServerState) -> Response:
    """Revoke a refresh token (and the access tokens issued with it)."""
    await asyncio.to_thread(server.auth.revoke, _validation.refresh_token(refreshToken))
    return Response(status_code=200)
