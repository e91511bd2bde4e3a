"""The FastAPI application: every operation of ``openapi/batchscore.yaml``, and nothing else.

Routes parse bodies themselves (size limit, NaN refused, errors naming the field) rather than through pydantic
models: the contract, not code, is the source of truth, and is served as-is at ``/swagger.json``. The routes live
in ``_routes`` (one router per resource), their SQL in ``_store``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from batchscore_server import _db, _retention, _startup
from batchscore_server._errors import ApiError
from batchscore_server._routes import api_routes, include_routes, webhooks
from batchscore_server._routes.deps import SafeJSONResponse
from batchscore_server._settings import Settings
from batchscore_server._startup import StartupProgress
from batchscore_server._state import Server
from batchscore_server._store import NUL_MESSAGE, STORAGE_FULL_MESSAGE, disk_full, holds_nul

__all__ = ["Server", "create_app"]


def create_app(settings: Settings) -> FastAPI:
    """Build the application for ``settings`` (the Dask cluster and the pool start with the app's lifespan)."""
    server = Server(settings)
    server.store.webhook_payload = webhooks.event_payload(server)
    startup = StartupProgress()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Everything is closed however far the start got (a stage failed, or the start was canceled): what was
        # left running (a Dask cluster, pool processes) outlived the server and broke the interpreter's exit.
        sweep: asyncio.Task[None] | None = None
        if server.engine.dialect.name != "sqlite":
            # The blocking calls of requests (asyncio.to_thread) mostly wait for the database's answers there, the
            # GIL released: the default 6 threads (2 cores) left polls queueing for a thread at 400 polls/s (P9-pg).
            # As many as the engine's pool has connections; SQLite's calls hold the GIL, more threads would only
            # queue for it.
            asyncio.get_running_loop().set_default_executor(
                ThreadPoolExecutor(max_workers=_db.POOL_SIZE + _db.POOL_OVERFLOW, thread_name_prefix="requests")
            )
        try:
            with startup.stage(_startup.DATABASE):
                # Other replicas' receipts may be arriving: only those whose replica died go then.
                every = not settings.shared_database
                await asyncio.to_thread(server.store.remove_unfinished_receipts, every)
                # Webhooks need only the database: pending ones go out while the cluster starts.
                await server.webhooks.start()
            with startup.stage(_startup.DASK_CLUSTER):
                await server.batches.start()
            with startup.stage(_startup.CONSUME_POOL):
                await server.warm_pool()
            startup.current = _startup.HTTP
            sweep = asyncio.create_task(
                _retention.sweep_forever(server.store, server.batches.replica_id), name="retention-sweep"
            )
            yield
        finally:
            if sweep is not None:
                sweep.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweep
            await server.webhooks.close()
            await server.batches.close()
            await _off_loop(server.close_pool)
            await _off_loop(server.engine.dispose)
            server.data_dir_lock.release()

    app = FastAPI(
        title="batchscore",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        default_response_class=SafeJSONResponse,
    )
    app.state.server = server
    app.state.startup = startup  # read by the embedded server to name the stage a failed start was in
    _install_error_handlers(app)
    include_routes(app)
    return app


async def _off_loop(close: Callable[[], None]) -> None:
    """Run a blocking close step in a thread, or here when the loop's executor is already shut down.

    A server stopped while its loop is being torn down (a canceled start) has no default executor left; closing
    on the loop then is better than leaving pool processes and database files open.
    """
    try:
        await asyncio.to_thread(close)
    except RuntimeError:
        close()


def _error_response(error: ApiError) -> JSONResponse:
    return SafeJSONResponse(error.body(), status_code=error.status, headers=error.headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OSError)
    @app.exception_handler(sqlite3.Error)
    @app.exception_handler(sa.exc.DBAPIError)
    async def storage_full(_request: Request, error: Exception) -> JSONResponse:
        # A full disk is the contract's 507 on every route; any other such error goes on to the backstop below (500).
        if holds_nul(error):  # a name or text field with U+0000, which PostgreSQL's text refuses: the caller's doing
            return _error_response(ApiError(400, NUL_MESSAGE))
        if not disk_full(error):
            raise error
        return _error_response(ApiError(507, STORAGE_FULL_MESSAGE))

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, error: ApiError) -> JSONResponse:
        return _error_response(error)

    @app.exception_handler(Exception)
    async def unexpected_error(_request: Request, _error: Exception) -> JSONResponse:
        # A backstop: a defect still answers the contract's Error, not Starlette's plain text. Starlette logs the
        # exception with its traceback after this answer is sent.
        return _error_response(ApiError(500, "internal server error: the server's log has the details"))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {"loc": ("request",), "msg": "invalid request"}
        field = ".".join(str(part) for part in first["loc"][1:]) or str(first["loc"][0])
        return _error_response(ApiError(400, f"{field}: {first['msg']}", field))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 404:
            parameter = _encoded_separator_parameter(app, request)
            if parameter is not None:
                # Routing saw the decoded path, where an encoded "/" split one parameter in two: say which one.
                return _error_response(
                    ApiError(400, f"{parameter} must not contain an encoded slash or backslash", parameter)
                )
        field = "path" if error.status_code in (404, 405) else None
        headers = dict(error.headers or {})
        if error.status_code == 405:
            # Starlette names only the first matching route's methods; a path served by several routes (GET and
            # DELETE on one path) must list them all.
            headers["Allow"] = ", ".join(_allowed_methods(app, request))
        return _error_response(ApiError(error.status_code, str(error.detail), field, headers))


_ENCODED_SEPARATORS = ("%2f", "%5c")


def _encoded_separator_parameter(app: FastAPI, request: Request) -> str | None:
    """The path parameter that holds an encoded slash or backslash in the raw path, if any."""
    raw = request.scope.get("raw_path", b"").decode("latin-1").split("?")[0]
    segments = raw.split("/")
    offending = next(
        (i for i, part in enumerate(segments) if any(s in part.lower() for s in _ENCODED_SEPARATORS)), None
    )
    if offending is None:
        return None
    for route in api_routes(app):
        template = route.path.split("/")
        if len(template) != len(segments) or not template[offending].startswith("{"):
            continue
        literal_match = all(
            t.startswith("{") or t == part for t, part in zip(template[:offending], segments[:offending], strict=True)
        )
        if literal_match:
            return template[offending].strip("{}")
    return None


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    methods: set[str] = set()
    for route in api_routes(app):
        if route.matches(request.scope)[0] != Match.NONE:
            methods.update(route.methods or ())
    return sorted(methods)
