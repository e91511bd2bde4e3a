"""Batch executions: start, list, poll, cancel, retry and delete them, and read the files their rows made."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from batchscore_server import _ingest, _quota, _validation
from batchscore_server._auth import User
from batchscore_server._batch import MIN_ITEM_TIMEOUT_SECONDS
from batchscore_server._errors import ApiError, not_found
from batchscore_server._retention import check_not_expired
from batchscore_server._routes.deps import CurrentUser, PollUser, RowUser, ServerState, StoreDep, json_response
from batchscore_server._routes.views import (
    batch_of,
    check_batch_names,
    poll_hint,
    result_json,
    service_of,
    spec_of,
    started,
    summary,
    visible,
)
from batchscore_server._routes.webhooks import AllowedCallback
from batchscore_server._start_options import check_passthrough, parse_start_options
from batchscore_server._state import Server
from batchscore_server._store import FINAL_STATES, RECEIVING, PolledRow, Store

router = APIRouter(tags=["Batch"])


def _new_batch(server: Server, user: User, name: str, version: str, options: dict[str, Any]) -> dict[str, Any]:
    """The ``batches`` row of a batch about to be received (its service checked); blocking."""
    spec = spec_of(server.store, service_of(server.store, name, version))
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "version": version,
        "owner": user.name,
        "created": time.time(),
        "parallel_count": min(int(options["parallel"] or 10), server.settings.max_parallel_count),
        "item_timeout": options["timeout"],
        "idempotency_key": options["idempotency_key"],
        "request_hash": "",  # known once the body has arrived
        "spec": spec,
        "last_seq": 0,
        # The receiving replica holds the batch from the start: it launches it once the body is in.
        "lease_owner": server.batches.replica_id,
        **options["extensions"].columns(),
    }


def _room_for_start(server: Server, user: User, idempotency_key: str | None) -> None:
    """Refuse a start of a user whose quota is used up, unless its Idempotency-Key names an earlier batch."""
    if idempotency_key is None or server.store.batch_by_idempotency_key(user.name, idempotency_key) is None:
        _quota.check_room(server.store, server.settings, user)


def _request_hash(request_parts: list[Any], body_sha256: str) -> str:
    # The body's own bytes are hashed: a retry of a request sends the same ones.
    return hashlib.sha256(json.dumps([*request_parts, body_sha256]).encode()).hexdigest()


def _idempotent_earlier(store: Store, user: User, idempotency_key: str | None, request_hash: str) -> Response | None:
    """The answer to a repeated request, or ``None`` when the earlier one is still being received; blocking.

    Raises:
        ApiError: 409 when the key was used for another request.

    """
    if idempotency_key is None:
        return None
    earlier = store.batch_by_idempotency_key(user.name, idempotency_key)
    if earlier is None or earlier["state"] == RECEIVING:
        return None
    if earlier["request_hash"] != request_hash:
        raise ApiError(409, "this Idempotency-Key was used with another request", "Idempotency-Key")
    return started(earlier["id"], earlier["name"], earlier["version"], earlier["total"])


@router.post("/api/{name}/{version}/batch")
async def start_batch_execution(
    name: str,
    version: str,
    request: Request,
    user: CurrentUser,
    server: ServerState,
    parallel_count: Annotated[str | None, Query(alias="parallelCount")] = None,
    item_timeout: Annotated[str | None, Query(alias="itemTimeout")] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    max_failed_items: Annotated[str | None, Query(alias="maxFailedItems")] = None,
    max_failure_ratio: Annotated[str | None, Query(alias="maxFailureRatio")] = None,
    min_failure_sample: Annotated[str | None, Query(alias="minFailureSample")] = None,
    item_retries: Annotated[str | None, Query(alias="itemRetries")] = None,
    retry_timeouts: Annotated[bool | None, Query(alias="retryTimeouts")] = None,
    label: Annotated[list[str] | None, Query(alias="label")] = None,
    expires_after: Annotated[str | None, Query(alias="expiresAfter")] = None,
    callback_url: Annotated[str | None, Query(alias="callbackUrl")] = None,
    callback_progress: Annotated[bool | None, Query(alias="callbackProgress")] = None,
    passthrough: Annotated[list[str] | None, Query(alias="passthrough")] = None,
    allowed_callback: AllowedCallback = None,  # the --webhook-allow check of callbackUrl
) -> Response:
    """Start a batch: store its records while the body arrives, then run them."""
    extensions = parse_start_options(
        max_failed_items=max_failed_items,
        max_failure_ratio=max_failure_ratio,
        min_failure_sample=min_failure_sample,
        item_retries=item_retries,
        retry_timeouts=retry_timeouts,
        labels=label,
        expires_after=expires_after,
        callback_url=callback_url,
        callback_progress=callback_progress,
        passthrough=passthrough,
    )
    options = {
        "parallel": _validation.positive_number(parallel_count, "parallelCount", integer=True, maximum=2**31 - 1),
        "timeout": _validation.positive_number(
            item_timeout, "itemTimeout", integer=False, maximum=86400, minimum=MIN_ITEM_TIMEOUT_SECONDS
        ),
        "idempotency_key": idempotency_key,
        "extensions": extensions,
    }
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 255:
        raise ApiError(400, "Idempotency-Key must have 1 to 255 characters", "Idempotency-Key")
    batch = await asyncio.to_thread(_new_batch, server, user, name, version, options)
    check_passthrough(extensions, batch["spec"])
    # A user whose quota is used up is answered before its body is read (not the retry of a request that was
    # accepted: it is answered as the first time, below).
    await asyncio.to_thread(_room_for_start, server, user, idempotency_key)
    media_type = _validation.batch_media_type(request.headers.get("content-type", ""))
    request_parts = [name, version, parallel_count, item_timeout, media_type, *extensions.request_parts()]
    store, limit = server.store, server.settings.max_body_bytes
    try:
        received = await _ingest.receive_batch(
            request, limit, store, batch, media_type, batch["spec"]["inputs"], extensions.passthrough or ()
        )
    except _ingest.DuplicateIdempotencyKey as taken:
        # A batch has this key: this is its retry (answered as the first time), another request, or a copy
        # of it still being received.
        request_hash = _request_hash(request_parts, str(taken.args[0]))
        earlier = await asyncio.to_thread(_idempotent_earlier, store, user, idempotency_key, request_hash)
        if earlier is None:
            raise ApiError(
                409, "a request with this Idempotency-Key is being received", "Idempotency-Key", {"Retry-After": "1"}
            ) from None
        return earlier
    try:
        request_hash = _request_hash(request_parts, received.sha256)
        await asyncio.to_thread(
            _quota.open_batch, store, server.settings, user, batch["id"], received.total, request_hash
        )
    except BaseException:
        await asyncio.to_thread(store.delete_batch, batch["id"])
        raise
    server.batches.launch(batch["id"])
    return started(batch["id"], name, version, received.total)


@router.get("/api/{name}/{version}/batch")
async def get_batch_executions(name: str, version: str, user: CurrentUser, store: StoreDep) -> Response:
    """The ids of a service version's batches the caller may see, oldest first."""

    def ids() -> list[str]:
        service_of(store, name, version)  # names checked, 404 for no such version
        return store.batch_ids(name, version, None if user.is_owner else user.name)

    return await json_response(await asyncio.to_thread(ids))


def _poll(
    server: Server, name: str, version: str, execution_id: str, user: User, query: tuple[Any, ...]
) -> tuple[bytes | Iterator[bytes], int | None]:
    """A poll's body and ``Retry-After`` (None once the batch has finished); blocking.

    The body is bytes, or, when the rows are more than one chunk (see ``Store.poll_page``), an iterator of its
    parts that reads each chunk of rows from the database when asked for it: streamed, a poll of every result
    of a large batch (what ML Server's clients do) costs the server one chunk's memory, however slowly the
    client reads.
    """
    partial, after, page = query
    check_batch_names(name, version, execution_id)
    read = server.store.poll_page(execution_id, name, version, partial, after, page)
    if read is None:
        raise not_found(f"batch execution {execution_id}", "executionId")
    batch = visible(read.batch, execution_id, user)
    body = summary(batch, server.batches.running_count(execution_id))
    body["cursor"] = str(read.cursor)
    body["hasMore"] = read.has_more
    head = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    opening = f'{head[:-1]},"batchExecutionResults":[{_results_text(read.rows)}'
    hint = None if batch["state"] in FINAL_STATES else poll_hint(batch, time.time())
    if read.more is None:
        return f"{opening}]}}".encode(), hint
    return _streamed(opening, read.more), hint


def _results_text(rows: list[PolledRow]) -> str:
    # The rows' results are the JSON text the workers made: spliced into the reply, never parsed here.
    # A batch with passthrough columns reads each row's values too (a fifth item, issue 16).
    return ",".join(result_json(*row) for row in rows)


def _streamed(opening: str, more: Iterator[list[PolledRow]]) -> Iterator[bytes]:
    """A poll's body in parts: its opening (with the first chunk of rows, at least one), each further chunk, the end."""
    yield opening.encode()
    for rows in more:
        yield f",{_results_text(rows)}".encode()
    yield b"]}"


@router.get("/api/{name}/{version}/batch/{executionId}")
async def get_batch_execution_status(
    name: str,
    version: str,
    executionId: str,
    user: PollUser,
    server: ServerState,
    show_partial_results: Annotated[bool | None, Query(alias="showPartialResults")] = None,
    show_partial_result: Annotated[bool | None, Query(alias="showPartialResult")] = None,
    since: Annotated[str | None, Query()] = None,
    limit: Annotated[str | None, Query()] = None,
) -> Response:
    """A batch's state and the results of its rows (all, or a page after a cursor)."""
    page = _validation.positive_number(limit, "limit", integer=True, maximum=100000)
    after: int | None = None
    if since is not None:
        if not since.isdigit() or len(since) > 18:
            raise ApiError(400, "since must be a cursor from an earlier response (or 0)", "since")
        after = int(since)
    if after is None and page is not None:
        after = 0
    partial = show_partial_results if show_partial_results is not None else show_partial_result
    # The read and the encoding run in a worker thread: on the event loop they would hold up every other poll
    # and the batch engine while SQLite works.
    query = (partial, after, int(page) if page else None)
    body, hint = await asyncio.to_thread(_poll, server, name, version, executionId, user, query)
    headers = {} if hint is None else {"Retry-After": str(hint)}
    if isinstance(body, bytes):
        return Response(body, media_type="application/json", headers=headers)
    # Starlette runs a plain iterator's steps in worker threads: each chunk's read never blocks the event loop, and
    # the next is read only once the client took the last (the transport's flow control).
    return StreamingResponse(body, media_type="application/json", headers=headers)


@router.delete("/api/{name}/{version}/batch/{executionId}")
async def cancel_and_delete_batch_execution(
    name: str, version: str, executionId: str, user: CurrentUser, server: ServerState
) -> list[str]:
    """Cancel a batch if it runs, then delete it with its results and files."""
    batch = await asyncio.to_thread(batch_of, server.store, name, version, executionId, user)
    if batch["state"] not in FINAL_STATES:
        await server.batches.cancel(executionId)
        await server.batches.wait(executionId)
    await asyncio.to_thread(server.store.delete_batch, executionId)
    return [executionId]


@router.post("/api/{name}/{version}/batch/{executionId}/cancel")
async def cancel_batch_execution(
    name: str, version: str, executionId: str, user: CurrentUser, server: ServerState
) -> dict[str, Any]:
    """Cancel a running batch: rows that have not started never will."""
    batch = await asyncio.to_thread(batch_of, server.store, name, version, executionId, user)
    if batch["state"] in ("complete", "failed"):
        raise ApiError(409, f"the batch is {batch['state']} already; there is nothing to cancel", "executionId")
    if batch["state"] != "canceled":
        await server.batches.cancel(executionId)
        await server.batches.wait(executionId)
    batch = await asyncio.to_thread(batch_of, server.store, name, version, executionId, user)
    return summary(batch, server.batches.running_count(executionId))


@router.post("/api/{name}/{version}/batch/{executionId}/retry")
async def retry_batch_execution(
    name: str, version: str, executionId: str, user: CurrentUser, server: ServerState
) -> Response:
    """Run a finished batch's failed and canceled rows again."""

    def retry() -> dict[str, Any]:
        earlier = batch_of(server.store, name, version, executionId, user)
        check_not_expired(earlier)  # 410 before any quota's answer: its rows are gone
        if earlier["state"] in FINAL_STATES:  # (a running batch is refused with 409 by the store)
            rows = earlier["failed_count"] + earlier["canceled_count"]
            _quota.check_room(server.store, server.settings, user, rows=rows)
        batch = visible(server.store.retry_batch(executionId, name, version), executionId, user)
        return summary(batch, server.batches.running_count(executionId))

    body = await asyncio.to_thread(retry)
    server.batches.launch(executionId)
    return JSONResponse(body, status_code=202)


def _row_of(store: Store, name: str, version: str, execution_id: str, index: int, user: User) -> None:
    """Check that a batch row exists, ``user`` may see it and it has not expired; blocking."""
    if not 0 <= index <= 2**31 - 1:
        raise ApiError(400, "index must be a record position from 0 to 2147483647", "index")
    batch = batch_of(store, name, version, execution_id, user)
    check_not_expired(batch)
    if index >= batch["total"]:
        raise not_found(f"record {index} of batch execution {execution_id}", "index")


@router.get("/api/{name}/{version}/batch/{executionId}/{index}/files")
async def get_batch_execution_files(
    name: str, version: str, executionId: str, index: int, user: RowUser, store: StoreDep
) -> list[str]:
    """The names of the files a row made."""

    def files() -> list[str]:
        _row_of(store, name, version, executionId, index, user)
        return store.row_files(executionId, index)

    return await asyncio.to_thread(files)


@router.get("/api/{name}/{version}/batch/{executionId}/{index}/files/{fileName}")
async def get_batch_execution_file(
    name: str, version: str, executionId: str, index: int, fileName: str, user: RowUser, store: StoreDep
) -> Response:
    """Download a file a row made."""
    _validation.check(_validation.FILE_NAME_PATTERN, fileName, "fileName", "plain file name")

    def file() -> Any:
        _row_of(store, name, version, executionId, index, user)
        return store.row_file(executionId, index, fileName)

    path = await asyncio.to_thread(file)
    if path is None:
        raise not_found(f"file {fileName} of record {index}", "fileName")
    return FileResponse(path, media_type="application/octet-stream", filename=fileName)
