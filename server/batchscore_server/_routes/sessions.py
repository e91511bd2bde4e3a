"""Sessions (a workspace to upload objects into) and snapshots (a saved workspace a service can be published with)."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from batchscore_server import _quota, _validation
from batchscore_server._auth import Role, User
from batchscore_server._errors import ApiError, not_found
from batchscore_server._routes.deps import CurrentUser, SettingsDep, StoreDep, json_body, json_response, read_body
from batchscore_server._routes.views import iso
from batchscore_server._store import Record, Store

router = APIRouter(tags=["Sessions"])


def _may_write(user: User, action: str) -> None:
    """Readers list and consume; a workspace is for publishing, which they may not do.

    Raises:
        ApiError: 403 naming the role.

    """
    if user.role is Role.READER:
        raise ApiError(403, f"role Reader may not {action}", "Authorization")


def _session_of(store: Store, session_id: str, user: User) -> Record:
    """A session ``user`` may use; blocking.

    Raises:
        ApiError: 400 for a malformed id, 404 when there is no such session or it is another user's.

    """
    _validation.check(_validation.ID_PATTERN, session_id, "id", "session id")
    row = store.session(session_id)
    if row is None or not (user.is_owner or row["owner"] == user.name):
        raise not_found(f"session {session_id}", "id")
    return row


@router.post("/sessions")
async def create_session(request: Request, user: CurrentUser, store: StoreDep, settings: SettingsDep) -> Response:
    """Open a session, its workspace empty or filled from a snapshot."""
    _may_write(user, "create sessions")
    body = _validation.string_fields(
        await json_body(request, settings, settings.max_small_body_bytes),
        {"name": 256, "snapshotId": 64, "runtimeType": 16},
    )
    runtime = body.get("runtimeType", "Python")
    if runtime.lower() != "python":
        raise ApiError(422, f"runtimeType {runtime!r} is not supported; batchscore runs Python", "runtimeType")
    snapshot_id = body.get("snapshotId")
    if snapshot_id is not None:
        _validation.check(_validation.ID_PATTERN, snapshot_id, "snapshotId", "snapshot id")
    session_id = str(uuid.uuid4())
    await asyncio.to_thread(store.create_session, session_id, user.name, user.is_owner, body.get("name"), snapshot_id)
    return JSONResponse({"sessionId": session_id}, status_code=201)


@router.delete("/sessions/{id}")
async def close_session(id: str, user: CurrentUser, store: StoreDep) -> Response:
    """Close a session and delete its workspace."""
    await asyncio.to_thread(_session_of, store, id, user)
    await asyncio.to_thread(store.delete_session, id)
    return Response(status_code=200)


@router.get("/sessions/{id}/workspace")
async def list_workspace_objects(id: str, user: CurrentUser, store: StoreDep) -> list[str]:
    """The names of the objects in a session's workspace."""
    await asyncio.to_thread(_session_of, store, id, user)
    return await asyncio.to_thread(store.workspace_objects, id)


@router.post("/sessions/{id}/workspace/{objectName}")
async def set_workspace_object(
    id: str, objectName: str, request: Request, user: CurrentUser, store: StoreDep, settings: SettingsDep
) -> Response:
    """Upload a pickled object into a session's workspace."""
    _may_write(user, "upload workspace objects")
    _validation.check(_validation.IDENTIFIER_PATTERN, objectName, "objectName", "Python identifier")
    await asyncio.to_thread(_session_of, store, id, user)
    data = await read_body(request, settings.max_body_bytes)
    if not data:
        raise ApiError(400, "the body must hold the pickled object", "body")
    await asyncio.to_thread(_quota.check_room, store, settings, user, stored=len(data))
    await asyncio.to_thread(store.set_workspace_object, id, objectName, data)
    return Response(status_code=200)


@router.post("/sessions/{id}/snapshot")
async def create_snapshot(
    id: str, request: Request, user: CurrentUser, store: StoreDep, settings: SettingsDep
) -> Response:
    """Save a session's workspace as a snapshot."""
    _may_write(user, "create snapshots")
    body = _validation.string_fields(await json_body(request, settings, settings.max_small_body_bytes), {"name": 256})
    await asyncio.to_thread(_session_of, store, id, user)
    size = await asyncio.to_thread(store.workspace_bytes, id)
    await asyncio.to_thread(_quota.check_room, store, settings, user, stored=size)
    snapshot_id = str(uuid.uuid4())
    await asyncio.to_thread(store.create_snapshot, snapshot_id, id, user.name, body.get("name"))
    return JSONResponse({"snapshotId": snapshot_id}, status_code=201)


@router.get("/snapshots")
async def list_snapshots(user: CurrentUser, store: StoreDep) -> Response:
    """The caller's snapshots (an Owner's: everyone's), oldest first."""
    rows = await asyncio.to_thread(store.snapshots, None if user.is_owner else user.name)
    return await json_response(
        [
            {
                "id": r["id"],
                "name": r["name"] or "",
                "owner": r["owner"],
                "creationTime": iso(r["created"]),
                "contentSize": r["content_size"],
            }
            for r in rows
        ]
    )


@router.delete("/snapshots/{id}")
async def delete_snapshot(id: str, user: CurrentUser, store: StoreDep) -> Response:
    """Delete a snapshot (services published with it keep their copy)."""
    _validation.check(_validation.ID_PATTERN, id, "id", "snapshot id")
    row = await asyncio.to_thread(store.snapshot, id)
    if row is None:
        raise not_found(f"snapshot {id}", "id")
    if not (user.is_owner or row["owner"] == user.name):
        raise ApiError(403, f"snapshot {id} belongs to another user", "id")
    await asyncio.to_thread(store.delete_snapshot, id)
    return Response(status_code=200)
