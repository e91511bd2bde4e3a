"""The dashboard: a read-only web page at ``/`` over the API's data, behind the API's own login.

Outside the contract (``include_in_schema=False``). A browser logs in with a form; the server answers with the
access token of ``POST /login`` in an HttpOnly, SameSite=Strict cookie and checks it exactly as it checks a
``Bearer`` header, so the page sees what the API would show the same user. Its refresh token goes in a second
cookie sent only to the logout, which revokes it (and so the access token). SameSite=Strict keeps other sites'
pages from sending either cookie. The pages are Jinja2 templates rendered with autoescape; the overview's few
lines of script poll ``/dashboard/batches.json`` and write the counts with ``textContent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

import jinja2
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from batchscore_server import _validation
from batchscore_server._auth import User
from batchscore_server._errors import ApiError, not_found
from batchscore_server._routes import dashboard_data
from batchscore_server._routes.batch import _row_of
from batchscore_server._routes.deps import ServerState, json_response, read_body
from batchscore_server._state import Server

router = APIRouter(include_in_schema=False)

SESSION_COOKIE = "batchscore_session"
REFRESH_COOKIE = "batchscore_refresh"
LOGOUT_PATH = "/dashboard/logout"
LOGIN_FAILED = "Wrong user name or password."
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent.parent / "templates" / "dashboard"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


async def cookie_user(request: Request, server: Server) -> User | None:
    """The user whose access token the session cookie holds; None without one, or when it no longer passes."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    header = f"Bearer {token}"
    known = server.auth.remembered(header)
    if known is not None:
        return known
    try:
        return await asyncio.to_thread(server.auth.authenticate, header)
    except ApiError:
        return None


def _render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page: ``template`` rendered (autoescaped), its script allowed by a nonce and nothing else."""
    nonce = secrets.token_urlsafe(16)
    body = _TEMPLATES.get_template(template).render(nonce=nonce, **context)
    policy = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; connect-src 'self'; "
        "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    headers = {"Content-Security-Policy": policy, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    return HTMLResponse(body, status_code=status, headers=headers)


def _login_form(message: str | None = None, status: int = 200, username: str = "") -> HTMLResponse:
    return _render("login.html", status, message=message, username=username)


async def _page(request: Request, server: Server, build: Callable[[User], dict[str, Any]], template: str) -> Response:
    """A logged-in page (the login form without a session): ``build``'s data, read in a thread, rendered there too."""
    user = await cookie_user(request, server)
    if user is None:
        return _login_form(status=401 if request.url.path != "/" else 200)

    def render() -> HTMLResponse:
        try:
            return _render(template, user=user, **build(user))
        except ApiError as error:
            return _render("error.html", error.status, user=user, message=error.message)

    return await asyncio.to_thread(render)


@router.get("/")
async def overview(request: Request, server: ServerState) -> Response:
    """Services with their inputs and outputs, and the newest batches with live counts."""

    def build(user: User) -> dict[str, Any]:
        return {"services": dashboard_data.services(server), "batches": dashboard_data.batches(server, user)}

    return await _page(request, server, build, "index.html")


@router.get("/dashboard/batches.json")
async def batches_json(request: Request, server: ServerState) -> Response:
    """The overview's batches as JSON (the summaries of ``GET /batches``), polled by the page; 401 without a session."""
    user = await cookie_user(request, server)
    if user is None:
        raise ApiError(401, "log in to the dashboard first", SESSION_COOKIE)
    return await json_response({"batches": await asyncio.to_thread(dashboard_data.batches, server, user)})


@router.get("/dashboard/batches/{name}/{version}/{executionId}")
async def batch_page(
    name: str,
    version: str,
    executionId: str,
    request: Request,
    server: ServerState,
    after: Annotated[int, Query(ge=-1, le=2**31 - 1)] = -1,
) -> Response:
    """One batch: its counts, a page of its failed rows with their errors (``after``: the last index shown), files."""

    def build(user: User) -> dict[str, Any]:
        return dashboard_data.batch(server, user, name, version, executionId, after)

    return await _page(request, server, build, "batch.html")


@router.get("/dashboard/batches/{name}/{version}/{executionId}/{index}/files/{fileName}")
async def download(
    name: str, version: str, executionId: str, index: int, fileName: str, request: Request, server: ServerState
) -> Response:
    """A file a row made, as ``GET .../files/{fileName}`` serves it, for the session's user."""
    user = await cookie_user(request, server)
    if user is None:
        raise ApiError(401, "log in to the dashboard first", SESSION_COOKIE)
    _validation.check(_validation.FILE_NAME_PATTERN, fileName, "fileName", "plain file name")

    def file() -> Path | None:
        _row_of(server.store, name, version, executionId, index, user)
        return server.store.row_file(executionId, index, fileName)

    path = await asyncio.to_thread(file)
    if path is None:
        raise not_found(f"file {fileName} of record {index}", "fileName")
    return FileResponse(path, media_type="application/octet-stream", filename=fileName)


@router.post("/dashboard/login")
async def login(request: Request, server: ServerState) -> Response:
    """Check the form's user name and password as ``POST /login`` does; set the session cookies, or show the form."""
    raw = await read_body(request, server.settings.max_small_body_bytes)
    form = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=10)
    username = (form.get("username") or [""])[0]
    password = (form.get("password") or [""])[0]
    if not username or not password or len(username) > 256 or len(password) > 1024:
        return _login_form(LOGIN_FAILED, 401, username[:256])
    try:
        pair = await asyncio.to_thread(server.auth.login, username, password)
    except ApiError:
        return _login_form(LOGIN_FAILED, 401, username)
    response = RedirectResponse("/", status_code=303)
    secure = request.url.scheme == "https"
    age = int(pair["expires_in"])
    for name, value, path in (
        (SESSION_COOKIE, pair["access_token"], "/"),
        (REFRESH_COOKIE, pair["refresh_token"], LOGOUT_PATH),
    ):
        response.set_cookie(name, value, max_age=age, path=path, secure=secure, httponly=True, samesite="strict")
    return response


@router.post(LOGOUT_PATH)
async def logout(request: Request, server: ServerState) -> Response:
    """End the session: revoke its refresh token (and so its access token) and clear both cookies."""
    refresh = request.cookies.get(REFRESH_COOKIE)
    if refresh:
        with contextlib.suppress(ApiError):  # revoked or expired already: the cookies go all the same
            await asyncio.to_thread(server.auth.revoke, _validation.refresh_token(refresh))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    response.delete_cookie(REFRESH_COOKIE, path=LOGOUT_PATH, httponly=True, samesite="strict")
    return response
