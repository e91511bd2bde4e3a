"""Consume a service (one request, one answer, run in the warm process pool) and read its swagger document."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from fastapi import APIRouter, Request, Response
from pebble import ProcessExpired

from batchscore_server._batch import failure_result
from batchscore_server._contract import base_url
from batchscore_server._errors import ApiError
from batchscore_server._routes.deps import CurrentUser, ServerState, StoreDep, json_body, json_response
from batchscore_server._routes.views import service_of, spec_of, web_service
from batchscore_server._service_swagger import service_document
from batchscore_server._store import Store
from batchscore_server._types import InputError, decode_inputs

router = APIRouter(tags=["Consume"])
log = logging.getLogger(__name__)


def _failed(message: str) -> dict[str, Any]:
    """The answer of a consume that failed outside the service's code."""
    return {**failure_result(message), "outputFiles": {}}


_WORKER_DIED = "the worker process running this request died (crashed or was killed)"
_STOPPING = "stopped: the server is shutting down"


def _checked_spec(store: Store, name: str, version: str) -> tuple[dict[str, Any], float | None]:
    """The service version's spec and its own consumeTimeout (None: the server's default)."""
    row = service_of(store, name, version)
    return spec_of(store, row), row["definition"].get("consumeTimeout")


def _check_record(spec: dict[str, Any], record: Any) -> None:
    try:
        decode_inputs(spec["inputs"], record, "body")
    except InputError as error:
        raise ApiError(400, str(error), error.field) from None


async def _client_gone(request: Request) -> None:
    """Return once the client has disconnected (its body was read: ASGI's receive then reports only that)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


@router.post("/api/{name}/{version}")
async def consume_web_service(
    name: str, version: str, request: Request, user: CurrentUser, server: ServerState
) -> Response:
    """Run a service version once on the record in the body."""
    # Encoded in a thread: the answer carries the output files base64-encoded, up to the caps' tens of megabytes.
    return await json_response(await _consume(name, version, request, server))


async def _consume(name: str, version: str, request: Request, server: ServerState) -> dict[str, Any]:
    spec, service_timeout = await asyncio.to_thread(_checked_spec, server.store, name, version)
    record = await json_body(request, server.settings, server.settings.max_consume_body_bytes)
    await asyncio.to_thread(_check_record, spec, record)
    if server.stopping:  # the pool is closing or closed: a new one would outlive the server
        return _failed(_STOPPING)
    timeout = service_timeout or server.settings.consume_timeout_seconds
    future = await server.consume(spec, record, timeout, _client_gone(request))
    if future.cancelled():
        if server.stopping:
            return _failed(_STOPPING)
        log.info("consume of %s/%s stopped: its client disconnected", name, version)
        return _failed("stopped: the client disconnected")  # nobody reads it
    error = future.exception()
    if isinstance(error, TimeoutError):
        limit = "consumeTimeout" if service_timeout else "the server's consume timeout"
        return _failed(f"timed out: the execution ran longer than {limit} ({timeout:g} s); its process was killed")
    if isinstance(error, ProcessExpired | BrokenProcessPool):
        return _failed(_WORKER_DIED)
    result: dict[str, Any] = future.result()
    result.pop("initFailed", None)
    result.pop("retryable", None)  # a batch's business (itemRetries): not part of a reply
    return result


@router.get("/api/{name}/{version}/swagger.json")
async def get_web_service_swagger(
    name: str, version: str, request: Request, user: CurrentUser, store: StoreDep
) -> Response:
    """The OpenAPI document of one service version, naming this server as the caller reached it."""
    service = web_service(await asyncio.to_thread(service_of, store, name, version), user)
    document = await asyncio.to_thread(service_document, service, base_url(request))
    return await json_response(document)
