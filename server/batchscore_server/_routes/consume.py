"""Consume a service (one request, one answer, run in the warm process pool) and read its swagger document."""

from __future__ import annotations

import asyncio
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from fastapi import APIRouter, Request, Response

from batchscore_server import _worker
from batchscore_server._contract import base_url
from batchscore_server._errors import ApiError
from batchscore_server._routes.deps import CurrentUser, ServerState, StoreDep, json_body, json_response
from batchscore_server._routes.views import service_of, spec_of, web_service
from batchscore_server._service_swagger import service_document
from batchscore_server._store import Store
from batchscore_server._types import InputError, decode_inputs

router = APIRouter(tags=["Consume"])

_WORKER_DIED = {
    "success": False,
    "errorMessage": "the worker process running this request died (crashed or was killed)",
    "consoleOutput": "",
    "changedFiles": [],
    "outputParameters": {},
    "outputFiles": {},
}


def _checked_spec(store: Store, name: str, version: str) -> dict[str, Any]:
    return spec_of(store, service_of(store, name, version))


def _check_record(spec: dict[str, Any], record: Any) -> None:
    try:
        decode_inputs(spec["inputs"], record, "body")
    except InputError as error:
        raise ApiError(400, str(error), error.field) from None


@router.post("/api/{name}/{version}")
async def consume_web_service(
    name: str, version: str, request: Request, user: CurrentUser, server: ServerState
) -> dict[str, Any]:
    """Run a service version once on the record in the body."""
    spec = await asyncio.to_thread(_checked_spec, server.store, name, version)
    record = await json_body(request, server.settings, server.settings.max_consume_body_bytes)
    await asyncio.to_thread(_check_record, spec, record)
    loop = asyncio.get_running_loop()
    try:
        result: dict[str, Any] = await loop.run_in_executor(
            server.pool(), _worker.consume, spec, record, str(server.settings.scratch_dir)
        )
    except BrokenProcessPool:
        server.reset_pool()
        return dict(_WORKER_DIED)
    result.pop("initFailed", None)
    return result


@router.get("/api/{name}/{version}/swagger.json")
async def get_web_service_swagger(
    name: str, version: str, request: Request, user: CurrentUser, store: StoreDep
) -> Response:
    """The OpenAPI document of one service version, naming this server as the caller reached it."""
    service = web_service(await asyncio.to_thread(service_of, store, name, version), user)
    document = await asyncio.to_thread(service_document, service, base_url(request))
    return await json_response(document)
