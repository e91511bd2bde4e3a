"""The FastAPI application: every operation of ``openapi/batchscore.yaml``, and nothing else.

Routes parse bodies themselves (size limit, NaN refused, errors naming the field) rather than through pydantic
models: the contract, not code, is the source of truth, and is served as-is at ``/swagger.json``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import yaml
from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from swagger_ui_bundle import swagger_ui_path

from batchscore_server import _db, _ingest, _startup, _validation, _worker
from batchscore_server._auth import Authenticator, Role, User, load_or_create_secret
from batchscore_server._batch import FINAL_STATES, UNFINISHED_STATES, BatchEngine
from batchscore_server._errors import ApiError, not_found
from batchscore_server._service_swagger import service_document
from batchscore_server._settings import Settings
from batchscore_server._startup import StartupProgress
from batchscore_server._types import InputError, decode_inputs

CONTRACT_PATH = Path(__file__).resolve().parent.parent.parent / "openapi" / "batchscore.yaml"
POLL_HINT_SECONDS = 1
YOUNG_BATCH_SECONDS = 0.5


def poll_hint(batch: Any, now: float) -> int:
    """The ``Retry-After`` for a poll of an unfinished batch.

    ``POLL_HINT_SECONDS``, or 0 when the batch may be done sooner: at the rate its rows have finished so far, or,
    before any has, in its first ``YOUNG_BATCH_SECONDS`` (a small batch is often done before its first second
    is out). The client then sees the end without waiting out a whole second; the SDK keeps a floor between polls.
    """
    finished_rows = batch["complete_count"] + batch["failed_count"]
    elapsed = now - batch["created"]
    if elapsed <= 0:
        return POLL_HINT_SECONDS  # a clock behind the creation time: nothing to go by
    if finished_rows <= 0:
        return 0 if elapsed < YOUNG_BATCH_SECONDS else POLL_HINT_SECONDS
    left = batch["total"] - finished_rows - batch["canceled_count"]
    return 0 if left * elapsed / finished_rows < POLL_HINT_SECONDS else POLL_HINT_SECONDS


def _result_json(index: int, state: str, result: str) -> str:
    """A row's stored result (a JSON object's text) with its ``index`` and ``itemState`` added in front."""
    head = f'{{"index":{int(index)},"itemState":{json.dumps(state)}'
    return f"{head}}}" if result.strip() == "{}" else f"{head},{result.lstrip()[1:]}"


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


class Server:
    """What the routes share: settings, database, tokens, the batch engine and the consume pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        for directory in (settings.artifacts_dir, settings.objects_dir, settings.scratch_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.engine = _db.create_engine(settings.database_path)
        self.auth = Authenticator(
            self.engine,
            load_or_create_secret(settings.data_dir),
            settings.access_token_seconds,
            settings.refresh_token_seconds,
        )
        self.batches = BatchEngine(settings, self.engine)
        self._pool: ProcessPoolExecutor | None = None

    def pool(self) -> ProcessPoolExecutor:
        """The warm consume pool (rebuilt after a worker died)."""
        if self._pool is None:
            # spawn: the server process runs threads (uvicorn, Dask client); forking it is unsafe.
            self._pool = ProcessPoolExecutor(max_workers=self.settings.workers, mp_context=get_context("spawn"))
        return self._pool

    async def warm_pool(self) -> None:
        """Start the consume pool's processes now, so the first consume does not pay for interpreter start-up."""
        loop = asyncio.get_running_loop()
        pool = self.pool()
        await asyncio.gather(*(loop.run_in_executor(pool, time.sleep, 0) for _ in range(self.settings.workers)))

    def reset_pool(self) -> None:
        """Drop a broken pool; the next consume builds a new one."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close_pool(self) -> None:
        """Stop the consume pool."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def create_app(settings: Settings) -> FastAPI:
    """Build the application for ``settings`` (the Dask cluster and the pool start with the app's lifespan)."""
    server = Server(settings)
    startup = StartupProgress()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Everything is closed however far the start got (a stage failed, or the start was canceled): what was
        # left running (a Dask cluster, pool processes) outlived the server and broke the interpreter's exit.
        try:
            with startup.stage(_startup.DATABASE):
                await asyncio.to_thread(_ingest.remove_unfinished_receipts, server.engine)
            with startup.stage(_startup.DASK_CLUSTER):
                await server.batches.start()
            with startup.stage(_startup.CONSUME_POOL):
                await server.warm_pool()
            startup.current = _startup.HTTP
            yield
        finally:
            await server.batches.close()
            server.close_pool()
            server.engine.dispose()

    app = FastAPI(title="batchscore", openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.server = server
    app.state.startup = startup  # read by the embedded server to name the stage a failed start was in
    _install_error_handlers(app)
    _install_routes(app, server)
    return app


def _error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, error: ApiError) -> JSONResponse:
        return _error_response(error)

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
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
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
    for route in app.routes:
        if isinstance(route, APIRoute) and route.matches(request.scope)[0] != Match.NONE:
            methods.update(route.methods or ())
    return sorted(methods)


async def _read_body(request: Request, limit: int) -> bytes:
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


def _install_routes(app: FastAPI, server: Server) -> None:
    settings = server.settings
    engine = server.engine

    async def user_of(request: Request) -> User:
        return await asyncio.to_thread(server.auth.authenticate, request.headers.get("authorization"))

    async def json_body(request: Request) -> Any:
        return _validation.parse_json(await _read_body(request, settings.max_body_bytes))

    def service_row(conn: sa.Connection, name: str, version: str) -> Any:
        _validation.check(_validation.NAME_PATTERN, name, "name", "service name")
        _validation.check(_validation.NAME_PATTERN, version, "version", "service version")
        row = (
            conn.execute(sa.select(_db.services).where(_db.services.c.name == name, _db.services.c.version == version))
            .mappings()
            .first()
        )
        if row is None:
            raise not_found(f"service {name} version {version}", "version")
        return row

    def web_service(row: Any, user: User) -> dict[str, Any]:
        definition = row["definition"]
        may_write = user.is_owner or (user.role is Role.CONTRIBUTOR and row["owner"] == user.name)
        service = {
            "name": row["name"],
            "version": row["version"],
            "versionPublishedBy": row["owner"],
            "creationTime": _iso(row["created"]),
            "runtimeType": "Python",
            "code": definition["code"],
            "initCode": definition.get("initCode", ""),
            "description": definition.get("description", ""),
            "operationId": definition.get("operationId") or "consume",
            "inputParameterDefinitions": definition.get("inputParameterDefinitions", []),
            "outputParameterDefinitions": definition.get("outputParameterDefinitions", []),
            "outputFileNames": definition.get("outputFileNames", []),
            "myPermissionOnService": "read/write" if may_write else "read only",
        }
        if definition.get("snapshotId"):
            service["snapshotId"] = definition["snapshotId"]
        return service

    def spec_of(row: Any) -> dict[str, Any]:
        definition = row["definition"]
        objects = settings.objects_dir / "services" / row["name"] / row["version"] / str(row["revision"])
        return {
            "key": f"{row['name']}/{row['version']}/{row['revision']}/{row['created']}",
            "code": definition["code"],
            "initCode": definition.get("initCode", ""),
            "inputs": [(d["name"], d["type"]) for d in definition.get("inputParameterDefinitions", [])],
            "outputs": [(d["name"], d["type"]) for d in definition.get("outputParameterDefinitions", [])],
            "outputFileNames": definition.get("outputFileNames", []),
            "snapshotDir": str(objects) if objects.exists() else None,
        }

    def copy_snapshot(conn: sa.Connection, user: User, snapshot_id: str, target: Path) -> None:
        snapshot = conn.execute(sa.select(_db.snapshots).where(_db.snapshots.c.id == snapshot_id)).mappings().first()
        if snapshot is None or not (user.is_owner or snapshot["owner"] == user.name):
            raise ApiError(422, f"snapshot {snapshot_id} does not exist", "snapshotId")
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(settings.objects_dir / "snapshots" / snapshot_id, target)

    # -- status and contract ---------------------------------------------------------------------------------

    @app.get("/status")
    async def status() -> dict[str, Any]:
        with engine.connect() as conn:
            conn.execute(sa.select(1))
        workers = await server.batches.worker_count()
        return {
            "statusCode": "pass" if workers else "warn",
            "details": {"version": _version()},
            "components": {
                "database": {"statusCode": "pass", "details": {"type": "sqlite"}, "components": {}},
                "cluster": {
                    "statusCode": "pass" if workers else "warn",
                    "details": {"workers": workers, "scheduler": server.batches.scheduler_address},
                    "components": {},
                },
            },
        }

    # -- authentication --------------------------------------------------------------------------------------

    @app.post("/login")
    async def login(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object", "body")
        for field, limit in (("username", 256), ("password", 1024)):
            if not isinstance(body.get(field), str) or not body[field]:
                raise ApiError(400, f"{field} is required", field)
            if len(body[field]) > limit:
                raise ApiError(400, f"{field} must have at most {limit} characters", field)
        return await asyncio.to_thread(server.auth.login, body["username"], body["password"])

    @app.post("/login/refreshToken")
    async def renew_token(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("refreshToken"), str) or not body["refreshToken"]:
            raise ApiError(400, "refreshToken is required", "refreshToken")
        return server.auth.renew(_validation.refresh_token(body["refreshToken"]))

    @app.delete("/login/refreshToken")
    async def revoke_refresh_token(refreshToken: Annotated[str, Query(min_length=1)]) -> Response:
        server.auth.revoke(_validation.refresh_token(refreshToken))
        return Response(status_code=200)

    # -- services --------------------------------------------------------------------------------------------

    @app.get("/services")
    async def get_all_web_services(request: Request) -> list[dict[str, Any]]:
        user = await user_of(request)
        with engine.connect() as conn:
            rows = conn.execute(sa.select(_db.services).order_by(_db.services.c.seq)).mappings().all()
        return [web_service(row, user) for row in rows]

    @app.get("/services/{name}")
    async def get_all_web_service_versions_by_name(name: str, request: Request) -> list[dict[str, Any]]:
        user = await user_of(request)
        _validation.check(_validation.NAME_PATTERN, name, "name", "service name")
        with engine.connect() as conn:
            rows = (
                conn.execute(sa.select(_db.services).where(_db.services.c.name == name).order_by(_db.services.c.seq))
                .mappings()
                .all()
            )
        return [web_service(row, user) for row in rows]

    async def publish(name: str, version: str, request: Request) -> Response:
        user = await user_of(request)
        _validation.check(_validation.NAME_PATTERN, name, "name", "service name")
        _validation.check(_validation.NAME_PATTERN, version, "version", "service version")
        if user.role is Role.READER:
            raise ApiError(403, "role Reader may not publish services", "name")
        definition = _validation.service_definition(await json_body(request), partial=False)
        definition["runtimeType"] = "Python"
        with engine.begin() as conn:
            owners = set(conn.execute(sa.select(_db.services.c.owner).where(_db.services.c.name == name)).scalars())
            if owners and not user.is_owner and owners != {user.name}:
                raise ApiError(403, f"service {name} belongs to another user", "name")
            exists = conn.execute(
                sa.select(sa.func.count()).where(_db.services.c.name == name, _db.services.c.version == version)
            ).scalar_one()
            if exists:
                raise ApiError(
                    409, f"service {name} version {version} exists already; use PATCH to update it", "version"
                )
            if definition.get("snapshotId"):
                target = settings.objects_dir / "services" / name / version / "1"
                copy_snapshot(conn, user, definition["snapshotId"], target)
            seq = conn.execute(sa.select(sa.func.coalesce(sa.func.max(_db.services.c.seq), 0))).scalar_one() + 1
            conn.execute(
                sa.insert(_db.services).values(
                    name=name,
                    version=version,
                    owner=user.name,
                    created=time.time(),
                    seq=seq,
                    revision=1,
                    definition=definition,
                )
            )
        return JSONResponse(version, status_code=201, headers={"Location": f"/services/{name}/{version}"})

    @app.post("/services/{name}")
    async def publish_web_service(name: str, request: Request) -> Response:
        return await publish(name, str(uuid.uuid4()), request)

    @app.post("/services/{name}/{version}")
    async def publish_web_service_version(name: str, version: str, request: Request) -> Response:
        return await publish(name, version, request)

    @app.get("/services/{name}/{version}")
    async def get_web_service_version(name: str, version: str, request: Request) -> list[dict[str, Any]]:
        user = await user_of(request)
        with engine.connect() as conn:
            return [web_service(service_row(conn, name, version), user)]

    def require_write(row: Any, user: User) -> None:
        if user.is_owner:
            return
        if user.role is Role.READER:
            raise ApiError(403, "role Reader may not change services", "name")
        if row["owner"] != user.name:
            raise ApiError(403, f"service {row['name']} belongs to another user", "name")

    @app.patch("/services/{name}/{version}")
    async def patch_web_service_version(name: str, version: str, request: Request) -> Response:
        user = await user_of(request)
        with engine.begin() as conn:
            row = service_row(conn, name, version)
            require_write(row, user)
            changes = _validation.service_definition(await json_body(request), partial=True)
            revision = row["revision"] + 1
            objects = settings.objects_dir / "services" / name / version
            if changes.get("snapshotId"):
                copy_snapshot(conn, user, changes["snapshotId"], objects / str(revision))
            elif (objects / str(row["revision"])).exists():
                shutil.copytree(objects / str(row["revision"]), objects / str(revision))
            conn.execute(
                sa.update(_db.services)
                .where(_db.services.c.name == name, _db.services.c.version == version)
                .values(definition={**row["definition"], **changes}, revision=revision)
            )
        return JSONResponse(version)

    @app.delete("/services/{name}/{version}")
    async def delete_web_service_version(name: str, version: str, request: Request) -> Response:
        user = await user_of(request)
        with engine.begin() as conn:
            row = service_row(conn, name, version)
            require_write(row, user)
            conn.execute(sa.delete(_db.services).where(_db.services.c.name == name, _db.services.c.version == version))
            running = (
                conn.execute(
                    sa.select(_db.batches.c.id).where(
                        _db.batches.c.name == name,
                        _db.batches.c.version == version,
                        _db.batches.c.state.in_(UNFINISHED_STATES),
                    )
                )
                .scalars()
                .all()
            )
        reason = f"service {name} version {version} was deleted while the batch ran"
        for batch_id in running:
            await server.batches.cancel(batch_id, fail_reason=reason)
        shutil.rmtree(settings.objects_dir / "services" / name / version, ignore_errors=True)
        return Response(status_code=200)

    # -- sessions and snapshots ------------------------------------------------------------------------------

    def session_dir(session_id: str) -> Path:
        return settings.objects_dir / "sessions" / session_id

    def session_of(conn: sa.Connection, session_id: str, user: User) -> Any:
        _validation.check(_validation.ID_PATTERN, session_id, "id", "session id")
        row = conn.execute(sa.select(_db.sessions).where(_db.sessions.c.id == session_id)).mappings().first()
        if row is None or not (user.is_owner or row["owner"] == user.name):
            raise not_found(f"session {session_id}", "id")
        return row

    @app.post("/sessions")
    async def create_session(request: Request) -> Response:
        user = await user_of(request)
        body = _validation.string_fields(await json_body(request), {"name": 256, "snapshotId": 64, "runtimeType": 16})
        runtime = body.get("runtimeType", "Python")
        if runtime.lower() != "python":
            raise ApiError(422, f"runtimeType {runtime!r} is not supported; batchscore runs Python", "runtimeType")
        session_id = str(uuid.uuid4())
        with engine.begin() as conn:
            if "snapshotId" in body:
                _validation.check(_validation.ID_PATTERN, body["snapshotId"], "snapshotId", "snapshot id")
                copy_snapshot(conn, user, body["snapshotId"], session_dir(session_id))
            conn.execute(
                sa.insert(_db.sessions).values(
                    id=session_id, owner=user.name, name=body.get("name"), created=time.time()
                )
            )
        session_dir(session_id).mkdir(parents=True, exist_ok=True)
        return JSONResponse({"sessionId": session_id}, status_code=201)

    @app.delete("/sessions/{id}")
    async def close_session(id: str, request: Request) -> Response:
        user = await user_of(request)
        with engine.begin() as conn:
            session_of(conn, id, user)
            conn.execute(sa.delete(_db.sessions).where(_db.sessions.c.id == id))
        shutil.rmtree(session_dir(id), ignore_errors=True)
        return Response(status_code=200)

    @app.get("/sessions/{id}/workspace")
    async def list_workspace_objects(id: str, request: Request) -> list[str]:
        user = await user_of(request)
        with engine.connect() as conn:
            session_of(conn, id, user)
        return sorted(path.name for path in session_dir(id).iterdir())

    @app.post("/sessions/{id}/workspace/{objectName}")
    async def set_workspace_object(id: str, objectName: str, request: Request) -> Response:
        user = await user_of(request)
        _validation.check(_validation.IDENTIFIER_PATTERN, objectName, "objectName", "Python identifier")
        with engine.connect() as conn:
            session_of(conn, id, user)
        data = await _read_body(request, settings.max_body_bytes)
        if not data:
            raise ApiError(400, "the body must hold the pickled object", "body")
        (session_dir(id) / objectName).write_bytes(data)
        return Response(status_code=200)

    @app.post("/sessions/{id}/snapshot")
    async def create_snapshot(id: str, request: Request) -> Response:
        user = await user_of(request)
        body = _validation.string_fields(await json_body(request), {"name": 256})
        snapshot_id = str(uuid.uuid4())
        with engine.begin() as conn:
            session_of(conn, id, user)
            target = settings.objects_dir / "snapshots" / snapshot_id
            shutil.copytree(session_dir(id), target)
            size = sum(path.stat().st_size for path in target.iterdir())
            conn.execute(
                sa.insert(_db.snapshots).values(
                    id=snapshot_id,
                    owner=user.name,
                    name=body.get("name"),
                    created=time.time(),
                    content_size=size,
                )
            )
        return JSONResponse({"snapshotId": snapshot_id}, status_code=201)

    @app.get("/snapshots")
    async def list_snapshots(request: Request) -> list[dict[str, Any]]:
        user = await user_of(request)
        query = sa.select(_db.snapshots).order_by(_db.snapshots.c.created)
        if not user.is_owner:
            query = query.where(_db.snapshots.c.owner == user.name)
        with engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {
                "id": r["id"],
                "name": r["name"] or "",
                "owner": r["owner"],
                "creationTime": _iso(r["created"]),
                "contentSize": r["content_size"],
            }
            for r in rows
        ]

    @app.delete("/snapshots/{id}")
    async def delete_snapshot(id: str, request: Request) -> Response:
        user = await user_of(request)
        _validation.check(_validation.ID_PATTERN, id, "id", "snapshot id")
        with engine.begin() as conn:
            row = conn.execute(sa.select(_db.snapshots).where(_db.snapshots.c.id == id)).mappings().first()
            if row is None:
                raise not_found(f"snapshot {id}", "id")
            if not (user.is_owner or row["owner"] == user.name):
                raise ApiError(403, f"snapshot {id} belongs to another user", "id")
            conn.execute(sa.delete(_db.snapshots).where(_db.snapshots.c.id == id))
        shutil.rmtree(settings.objects_dir / "snapshots" / id, ignore_errors=True)
        return Response(status_code=200)

    # -- consume ---------------------------------------------------------------------------------------------

    @app.post("/api/{name}/{version}")
    async def consume_web_service(name: str, version: str, request: Request) -> dict[str, Any]:
        await user_of(request)
        with engine.connect() as conn:
            row = service_row(conn, name, version)
        spec = spec_of(row)
        record = await json_body(request)
        try:
            decode_inputs(spec["inputs"], record, "body")
        except InputError as error:
            raise ApiError(400, str(error), error.field) from None
        loop = asyncio.get_running_loop()
        try:
            result: dict[str, Any] = await loop.run_in_executor(
                server.pool(), _worker.consume, spec, record, str(settings.scratch_dir)
            )
        except BrokenProcessPool:
            server.reset_pool()
            return {
                "success": False,
                "errorMessage": "the worker process running this request died (crashed or was killed)",
                "consoleOutput": "",
                "changedFiles": [],
                "outputParameters": {},
                "outputFiles": {},
            }
        result.pop("initFailed", None)
        return result

    @app.get("/api/{name}/{version}/swagger.json")
    async def get_web_service_swagger(name: str, version: str, request: Request) -> dict[str, Any]:
        user = await user_of(request)
        with engine.connect() as conn:
            service = web_service(service_row(conn, name, version), user)
        return service_document(service, CONTRACT_PATH)

    # -- batch -----------------------------------------------------------------------------------------------

    def batch_of(conn: sa.Connection, name: str, version: str, execution_id: str, user: User) -> Any:
        _validation.check(_validation.NAME_PATTERN, name, "name", "service name")
        _validation.check(_validation.NAME_PATTERN, version, "version", "service version")
        _validation.check(_validation.ID_PATTERN, execution_id, "executionId", "execution id")
        row = (
            conn.execute(
                sa.select(_db.batches).where(
                    _db.batches.c.id == execution_id, _db.batches.c.name == name, _db.batches.c.version == version
                )
            )
            .mappings()
            .first()
        )
        if row is None or row["state"] == _ingest.RECEIVING or not (user.is_owner or row["owner"] == user.name):
            raise not_found(f"batch execution {execution_id}", "executionId")
        return row

    def summary(batch: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "batchExecutionId": batch["id"],
            "name": batch["name"],
            "version": batch["version"],
            "state": batch["state"],
            "completedItemCount": batch["complete_count"] + batch["failed_count"],
            "totalItemCount": batch["total"],
            "failedItemCount": batch["failed_count"],
            "runningItemCount": server.batches.running_count(batch["id"]),
            "canceledItemCount": batch["canceled_count"],
            "parallelCount": batch["parallel_count"],
            "createdBy": batch["owner"],
            "creationTime": _iso(batch["created"]),
        }
        if batch["item_timeout"] is not None:
            body["itemTimeout"] = batch["item_timeout"]
        if batch["completed"] is not None:
            body["completionTime"] = _iso(batch["completed"])
        if batch["error_message"]:
            body["errorMessage"] = batch["error_message"]
        return body

    def read_status(
        name: str,
        version: str,
        execution_id: str,
        user: User,
        partial: bool | None,
        after: int | None,
        page: int | None,
    ) -> tuple[bytes, int | None]:
        rows = _db.batch_rows.c
        # Results as the JSON text the workers made: spliced into the reply, never parsed here.
        result_text = sa.type_coerce(rows.result, sa.Text)
        with engine.connect() as conn:
            batch = batch_of(conn, name, version, execution_id, user)
            body = summary(batch)
            finished = batch["state"] in FINAL_STATES
            if partial is False and not finished:
                selected: list[Any] = []
                cursor = after or 0
                has_more = False
            elif after is None:
                selected = list(
                    conn.execute(
                        sa.select(rows.idx, rows.state, result_text, rows.seq)
                        .where(rows.batch_id == execution_id, rows.seq.is_not(None))
                        .order_by(rows.idx)
                    )
                )
                cursor = batch["last_seq"]
                has_more = False
            else:
                query = (
                    sa.select(rows.idx, rows.state, result_text, rows.seq)
                    .where(rows.batch_id == execution_id, rows.seq > after)
                    .order_by(rows.seq)
                )
                fetched = list(conn.execute(query.limit(page + 1 if page else None)))
                has_more = page is not None and len(fetched) > page
                selected = fetched[:page] if page else fetched
                cursor = selected[-1].seq if selected else after
        body["cursor"] = str(cursor)
        body["hasMore"] = has_more
        results = ",".join(_result_json(row[0], row[1], row[2]) for row in selected)
        head = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        text = f'{head[:-1]},"batchExecutionResults":[{results}]}}'
        return text.encode(), None if finished else poll_hint(batch, time.time())

    @app.post("/api/{name}/{version}/batch")
    async def start_batch_execution(
        name: str,
        version: str,
        request: Request,
        parallel_count: Annotated[str | None, Query(alias="parallelCount")] = None,
        item_timeout: Annotated[str | None, Query(alias="itemTimeout")] = None,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> Response:
        user = await user_of(request)
        parallel = _validation.positive_number(parallel_count, "parallelCount", integer=True, maximum=2**31 - 1)
        timeout = _validation.positive_number(item_timeout, "itemTimeout", integer=False, maximum=86400)
        if idempotency_key is not None and not 0 < len(idempotency_key) <= 255:
            raise ApiError(400, "Idempotency-Key must have 1 to 255 characters", "Idempotency-Key")
        with engine.connect() as conn:
            service = service_row(conn, name, version)
        spec = spec_of(service)
        media_type = _validation.batch_media_type(request.headers.get("content-type", ""))
        batch_id = str(uuid.uuid4())
        batch: dict[str, Any] = {
            "id": batch_id,
            "name": name,
            "version": version,
            "owner": user.name,
            "created": time.time(),
            "parallel_count": min(int(parallel or 10), settings.max_parallel_count),
            "item_timeout": timeout,
            "idempotency_key": idempotency_key,
            "request_hash": "",  # known once the body has arrived
            "spec": spec,
            "last_seq": 0,
        }

        def hash_of_request(body_sha256: str) -> str:
            # The body's own bytes are hashed: a retry of a request sends the same ones.
            return hashlib.sha256(
                json.dumps([name, version, parallel_count, item_timeout, media_type, body_sha256]).encode()
            ).hexdigest()

        try:
            received = await _ingest.receive_batch(
                request, settings.max_body_bytes, engine, batch, media_type, spec["inputs"]
            )
        except _ingest.DuplicateIdempotencyKey as taken:
            # A batch has this key: this is its retry (answered as the first time), another request, or a copy
            # of it still being received.
            earlier = idempotent_earlier(user, idempotency_key, hash_of_request(str(taken.args[0])))
            if earlier is None:
                raise ApiError(
                    409,
                    "a request with this Idempotency-Key is being received",
                    "Idempotency-Key",
                    headers={"Retry-After": "1"},
                ) from None
            return earlier
        try:
            await asyncio.to_thread(
                _ingest.open_batch, engine, batch_id, received.total, hash_of_request(received.sha256)
            )
        except BaseException:
            await asyncio.to_thread(_db.delete_batch, engine, batch_id)
            raise
        server.batches.launch(batch_id)
        return _started(batch_id, name, version, received.total)

    def idempotent_earlier(user: User, idempotency_key: str | None, request_hash: str) -> Response | None:
        """The answer to a repeated request, or ``None`` when the Idempotency-Key is new (or there is none).

        Raises:
            ApiError: 409 when the key was used for another request.

        """
        if idempotency_key is None:
            return None
        with engine.connect() as conn:
            earlier = (
                conn.execute(
                    sa.select(_db.batches).where(
                        _db.batches.c.owner == user.name, _db.batches.c.idempotency_key == idempotency_key
                    )
                )
                .mappings()
                .first()
            )
        if earlier is None or earlier["state"] == _ingest.RECEIVING:
            return None
        if earlier["request_hash"] != request_hash:
            raise ApiError(409, "this Idempotency-Key was used with another request", "Idempotency-Key")
        return _started(earlier["id"], earlier["name"], earlier["version"], earlier["total"])

    @app.get("/api/{name}/{version}/batch")
    async def get_batch_executions(name: str, version: str, request: Request) -> list[str]:
        user = await user_of(request)
        with engine.connect() as conn:
            service_row(conn, name, version)
            query = sa.select(_db.batches.c.id).where(
                _db.batches.c.name == name,
                _db.batches.c.version == version,
                _db.batches.c.state != _ingest.RECEIVING,
            )
            if not user.is_owner:
                query = query.where(_db.batches.c.owner == user.name)
            return list(conn.execute(query.order_by(_db.batches.c.created)).scalars())

    @app.get("/api/{name}/{version}/batch/{executionId}")
    async def get_batch_execution_status(
        name: str,
        version: str,
        executionId: str,
        request: Request,
        show_partial_results: Annotated[bool | None, Query(alias="showPartialResults")] = None,
        show_partial_result: Annotated[bool | None, Query(alias="showPartialResult")] = None,
        since: Annotated[str | None, Query()] = None,
        limit: Annotated[str | None, Query()] = None,
    ) -> Response:
        user = await user_of(request)
        page = _validation.positive_number(limit, "limit", integer=True, maximum=100000)
        after: int | None = None
        if since is not None:
            if not since.isdigit() or len(since) > 18:
                raise ApiError(400, "since must be a cursor from an earlier response (or 0)", "since")
            after = int(since)
        if after is None and page is not None:
            after = 0
        partial = show_partial_results if show_partial_results is not None else show_partial_result
        # The reads run in a worker thread: on the event loop they would hold up every other poll and the batch
        # engine while SQLite works.
        body, hint = await asyncio.to_thread(
            read_status, name, version, executionId, user, partial, after, int(page) if page else None
        )
        headers = {} if hint is None else {"Retry-After": str(hint)}
        return Response(body, media_type="application/json", headers=headers)

    @app.delete("/api/{name}/{version}/batch/{executionId}")
    async def cancel_and_delete_batch_execution(
        name: str, version: str, executionId: str, request: Request
    ) -> list[str]:
        user = await user_of(request)
        with engine.connect() as conn:
            batch = batch_of(conn, name, version, executionId, user)
        if batch["state"] not in FINAL_STATES:
            await server.batches.cancel(executionId)
            await server.batches.wait(executionId)
        await asyncio.to_thread(_db.delete_batch, engine, executionId)
        await asyncio.to_thread(shutil.rmtree, settings.artifacts_dir / executionId, ignore_errors=True)
        return [executionId]

    @app.post("/api/{name}/{version}/batch/{executionId}/cancel")
    async def cancel_batch_execution(name: str, version: str, executionId: str, request: Request) -> dict[str, Any]:
        user = await user_of(request)
        with engine.connect() as conn:
            batch = batch_of(conn, name, version, executionId, user)
        if batch["state"] in ("complete", "failed"):
            raise ApiError(409, f"the batch is {batch['state']} already; there is nothing to cancel", "executionId")
        if batch["state"] != "canceled":
            await server.batches.cancel(executionId)
            await server.batches.wait(executionId)
        with engine.connect() as conn:
            return summary(batch_of(conn, name, version, executionId, user))

    @app.post("/api/{name}/{version}/batch/{executionId}/retry")
    async def retry_batch_execution(name: str, version: str, executionId: str, request: Request) -> Response:
        user = await user_of(request)
        with engine.begin() as conn:
            batch = batch_of(conn, name, version, executionId, user)
            if batch["state"] not in FINAL_STATES:
                raise ApiError(409, "the batch is still running; retry it once it has finished", "executionId")
            rows = _db.batch_rows.c
            retried = conn.execute(
                sa.update(_db.batch_rows)
                .where(rows.batch_id == executionId, rows.state.in_(("failed", "canceled")))
                .values(state="pending", result=None, seq=None)
            ).rowcount
            if not retried:
                raise ApiError(409, "no row failed or was canceled; there is nothing to retry", "executionId")
            conn.execute(
                sa.update(_db.batches)
                .where(_db.batches.c.id == executionId)
                .values(state="pending", completed=None, error_message=None, failed_count=0, canceled_count=0)
            )
            body = summary(batch_of(conn, name, version, executionId, user))
        server.batches.launch(executionId)
        return JSONResponse(body, status_code=202)

    def row_directory(name: str, version: str, execution_id: str, index: int, user: User) -> Path:
        if not 0 <= index <= 2**31 - 1:
            raise ApiError(400, "index must be a record position from 0 to 2147483647", "index")
        with engine.connect() as conn:
            batch = batch_of(conn, name, version, execution_id, user)
        if index >= batch["total"]:
            raise not_found(f"record {index} of batch execution {execution_id}", "index")
        return settings.artifacts_dir / execution_id / str(index)

    @app.get("/api/{name}/{version}/batch/{executionId}/{index}/files")
    async def get_batch_execution_files(
        name: str, version: str, executionId: str, index: int, request: Request
    ) -> list[str]:
        user = await user_of(request)
        directory = row_directory(name, version, executionId, index, user)
        if not directory.is_dir():
            return []
        return sorted(path.name for path in directory.iterdir() if path.is_file() and not path.is_symlink())

    @app.get("/api/{name}/{version}/batch/{executionId}/{index}/files/{fileName}")
    async def get_batch_execution_file(
        name: str, version: str, executionId: str, index: int, fileName: str, request: Request
    ) -> Response:
        user = await user_of(request)
        _validation.check(_validation.FILE_NAME_PATTERN, fileName, "fileName", "plain file name")
        directory = row_directory(name, version, executionId, index, user)
        path = directory / fileName
        # Confined to the row's directory: the name pattern forbids separators, and links are never followed out.
        if path.is_symlink() or not path.is_file() or path.resolve().parent != directory.resolve():
            raise not_found(f"file {fileName} of record {index}", "fileName")
        return FileResponse(path, media_type="application/octet-stream", filename=fileName)

    @app.get("/swagger.json")
    async def contract_document() -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load(CONTRACT_PATH.read_text(encoding="utf-8"))
        return loaded

    # Interactive docs for the contract, with Swagger UI's assets from an installed package: these machines are
    # offline, so nothing may come from a CDN.
    app.mount("/docs/static", StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get("/docs", response_class=HTMLResponse)
    async def interactive_docs() -> str:
        return _DOCS_PAGE


_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>batchscore API</title>
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "/swagger.json", dom_id: "#swagger-ui", deepLinking: true});
  </script>
</body>
</html>
"""


def _started(batch_id: str, name: str, version: str, total: int) -> JSONResponse:
    return JSONResponse(
        {
            "batchExecutionId": batch_id,
            "BatchExecutionId": batch_id,
            "name": name,
            "version": version,
            "totalItemCount": total,
        },
        status_code=202,
        headers={"Location": f"/api/{name}/{version}/batch/{batch_id}"},
    )


def _version() -> str:
    from importlib.metadata import version

    return version("batchscore")
