"""Services: list, publish, read, update and delete service versions."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from batchscore_server import _publish_check, _validation
from batchscore_server._auth import Role, User
from batchscore_server._errors import ApiError
from batchscore_server._routes.consume import _client_gone
from batchscore_server._routes.deps import CurrentUser, ServerState, SettingsDep, StoreDep, json_body, json_response
from batchscore_server._routes.views import service_of, web_service
from batchscore_server._store import Store

router = APIRouter(tags=["Services"])


@router.get("/services")
async def get_all_web_services(user: CurrentUser, store: StoreDep) -> Response:
    """Every service version, in publication order."""
    rows = await asyncio.to_thread(store.services)
    return await json_response([web_service(row, user) for row in rows])


@router.get("/services/{name}")
async def get_all_web_service_versions_by_name(name: str, user: CurrentUser, store: StoreDep) -> Response:
    """Every version of one service, in publication order."""
    _validation.check(_validation.NAME_PATTERN, name, "name", "service name")
    rows = await asyncio.to_thread(store.services, name)
    return await json_response([web_service(row, user) for row in rows])


async def _check_starts(
    server: ServerState, request: Request, user: User, definition: dict[str, Any], snapshot_id: str | None, row: Any
) -> None:
    """Refuse (422) a definition whose service cannot start: its snapshot ``snapshot_id`` (or ``row``'s objects)."""
    if snapshot_id:
        objects = await asyncio.to_thread(server.store.snapshot_objects, user.name, user.is_owner, snapshot_id)
    elif row is not None:
        objects = server.store.service_objects(row["name"], row["version"], row["revision"])
    else:
        objects = None
    await _publish_check.check_starts(server, definition, objects, _client_gone(request))


async def _publish(
    name: str, version: str, request: Request, user: User, store: StoreDep, settings: SettingsDep, server: ServerState
) -> Response:
    _validation.check(_validation.NAME_PATTERN, name, "name", "service name")
    _validation.check(_validation.NAME_PATTERN, version, "version", "service version")
    if user.role is Role.READER:
        raise ApiError(403, "role Reader may not publish services", "name")
    definition = _validation.service_definition(
        await json_body(request, settings, settings.max_service_body_bytes), partial=False
    )
    definition["runtimeType"] = "Python"
    await _check_starts(server, request, user, definition, definition.get("snapshotId"), None)
    await asyncio.to_thread(store.publish_service, user.name, user.is_owner, name, version, definition)
    return JSONResponse(version, status_code=201, headers={"Location": f"/services/{name}/{version}"})


@router.post("/services/{name}")
async def publish_web_service(
    name: str, request: Request, user: CurrentUser, store: StoreDep, settings: SettingsDep, server: ServerState
) -> Response:
    """Publish a service under a new (random) version."""
    return await _publish(name, str(uuid.uuid4()), request, user, store, settings, server)


@router.post("/services/{name}/{version}")
async def publish_web_service_version(
    name: str,
    version: str,
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    settings: SettingsDep,
    server: ServerState,
) -> Response:
    """Publish a service version."""
    return await _publish(name, version, request, user, store, settings, server)


@router.get("/services/{name}/{version}")
async def get_web_service_version(name: str, version: str, user: CurrentUser, store: StoreDep) -> Response:
    """One service version (as a list of one, as ML Server answers)."""
    row = await asyncio.to_thread(service_of, store, name, version)
    return await json_response([web_service(row, user)])


def _require_write(store: Store, name: str, version: str, user: User) -> None:
    """Check that ``user`` may change the version (which must exist); blocking."""
    row = service_of(store, name, version)
    if user.is_owner:
        return
    if user.role is Role.READER:
        raise ApiError(403, "role Reader may not change services", "name")
    if row["owner"] != user.name:
        raise ApiError(403, f"service {row['name']} belongs to another user", "name")


@router.patch("/services/{name}/{version}")
async def patch_web_service_version(
    name: str,
    version: str,
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    settings: SettingsDep,
    server: ServerState,
) -> Response:
    """Change a service version's definition (a new revision)."""
    await asyncio.to_thread(_require_write, store, name, version, user)
    changes = _validation.service_definition(
        await json_body(request, settings, settings.max_service_body_bytes), partial=True
    )
    if any(key in changes for key in _publish_check.CHECKED_FIELDS):
        row = await asyncio.to_thread(service_of, store, name, version)
        definition = {**row["definition"], **changes}
        await _check_starts(server, request, user, definition, changes.get("snapshotId"), row)
    await asyncio.to_thread(store.update_service, user.name, user.is_owner, name, version, changes)
    return JSONResponse(version)


@router.delete("/services/{name}/{version}")
async def delete_web_service_version(name: str, version: str, user: CurrentUser, server: ServerState) -> Response:
    """Delete a service version; its running batches fail."""
    await asyncio.to_thread(_require_write, server.store, name, version, user)
    reason = f"service {name} version {version} was deleted while the batch ran"
    # Files before the row (on a full disk, removing them frees the space the delete needs), and after the cancels:
    # rows still running keep their objects until no new row can start. Batches started meanwhile are stopped after.
    for batch_id in await asyncio.to_thread(server.store.unfinished_batches_of, name, version):
        await server.batches.cancel(batch_id, fail_reason=reason)
    await asyncio.to_thread(server.store.remove_service_objects, name, version)
    for batch_id in await asyncio.to_thread(server.store.delete_service, name, version):
        await server.batches.cancel(batch_id, fail_reason=reason)
    return Response(status_code=200)
