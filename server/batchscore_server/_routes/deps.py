"""The routes' dependencies, as ``Annotated`` aliases, and the helpers every router uses to read and answer."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from batchscore_server import _validation
from batchscore_server._auth import User
from batchscore_server._errors import ApiError
from batchscore_server._settings import Settings
from batchscore_server._state import Server
from batchscore_server._store import Store


# The dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in a thread, a hop for nothing here.
async def _server(request: Request) -> Server:
    server: Server = request.app.state.server
    return server


ServerState = Annotated[Server, Depends(_server)]


async def _store(server: ServerState) -> Store:
    return server.store


StoreDep = Annotated[Store, Depends(_store)]


async def _settings(server: ServerState) -> Settings:
    return server.settings


SettingsDep = Annotated[Settings, Depends(_settings)]


async def _current_user(request: Request, server: ServerState) -> User:
    # A token checked moments ago is answered from memory on the loop (no thread hop: most requests are polls
    # with the same token); otherwise the check, which reads the database, runs in a thread.
    header = request.headers.get("authorization")
    known = server.auth.remembered(header)
    return known if known is not None else await asyncio.to_thread(server.auth.authenticate, header)


CurrentUser = Annotated[User, Depends(_current_user)]


# FastAPI solves dependencies before it checks the operation's own parameters, and skips a dependency whose
# parameters fail: declaring them here keeps the answer to a malformed request a 400 before any 401, as it was
# when each handler authenticated in its body.
async def _user_of_row(request: Request, server: ServerState, index: int) -> User:
    return await _current_user(request, server)


RowUser = Annotated[User, Depends(_user_of_row)]
"""The caller of an operation on one batch row (``index`` checked first)."""


async def _user_of_poll(
    request: Request,
    server: ServerState,
    show_partial_results: Annotated[bool | None, Query(alias="showPartialResults")] = None,
    show_partial_result: Annotated[bool | None, Query(alias="showPartialResult")] = None,
) -> User:
    return await _current_user(request, server)


PollUser = Annotated[User, Depends(_user_of_poll)]
"""The caller of a poll (its boolean query parameters checked first)."""


async def read_body(request: Request, limit: int) -> bytes:
    """The whole request body, refused with 413 as soon as it is over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the body is over the limit of {limit} bytes", "body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body is over the limit of {limit} bytes", "body")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, settings: Settings, limit: int) -> Any:
    """The request body parsed as JSON by :func:`_validation.parse_json`, in a thread: a body may be megabytes.

    Args:
        request: The request.
        settings: The server's settings (``max_body_bytes`` caps ``limit``).
        limit: The operation's body limit, one of the settings' ``max_*_body_bytes``: a larger body is refused
            with 413 before it is parsed (parsing costs many times the body's size in memory).

    """
    raw = await read_body(request, min(limit, settings.max_body_bytes))
    return await asyncio.to_thread(_validation.parse_json, raw)


def encode_json(content: Any) -> bytes:
    r"""JSON as Starlette's JSONResponse renders it, except that a lone surrogate cannot fail the answer.

    Bodies with one are refused now, but one stored before (a service's description) made ``GET /services`` a
    500 for everyone: it is written as its JSON escape (``\ud800``), which any JSON reader reads back.
    """
    text = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
    return text.encode("utf-8", "backslashreplace")


class SafeJSONResponse(JSONResponse):
    """The app's JSON answers, encoded by :func:`encode_json`."""

    def render(self, content: Any) -> bytes:
        """The body's bytes."""
        return encode_json(content)


async def json_response(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer encoded in a thread (lists of services and documents run to hundreds of kilobytes)."""
    body = await asyncio.to_thread(encode_json, content)
    return Response(body, status_code=status_code, headers=headers, media_type="application/json")
