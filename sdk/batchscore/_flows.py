"""Every request sequence of the SDK, written once as a generator of instructions (see :mod:`batchscore._wire`).

A flow yields :class:`~batchscore._wire.Call` (a generated ``api.*`` operation and its arguments),
:class:`~batchscore._wire.Sleep` or :class:`~batchscore._wire.Download`, and receives what the instruction gave.
``Client`` drives flows synchronously, ``AsyncClient`` asynchronously; an error of one instruction is thrown into
the flow, so its ``finally`` blocks (deleting a temporary session or snapshot) run in both twins alike.

No flow does I/O, builds a URL or names a query parameter or header: the generated operations do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Mapping
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx

from batchscore._exceptions import APIResponseValidationError, BatchscoreError, NotFoundError
from batchscore._files import partial_file
from batchscore._models import BatchOptions, BatchState, BatchStatus, ExecutionResult, ServiceInfo
from batchscore._shared import WaitTracker, destination_folder, latest, safe_file_name
from batchscore._upload import UNCHECKED_BODY_BYTES, UploadBody, check_size
from batchscore._wire import Call, CloseStream, Download, Emit, OpenStream, ReadStream, Sleep
from batchscore_client.api.batch import (
    cancel_and_delete_batch_execution,
    cancel_batch_execution,
    get_batch_execution_file,
    get_batch_execution_files,
    get_batch_execution_status,
    get_batch_executions,
    list_batch_executions,
    retry_batch_execution,
    start_batch_execution,
)
from batchscore_client.api.consume import consume_web_service, get_web_service_swagger
from batchscore_client.api.services import (
    delete_web_service_version,
    get_all_web_service_versions_by_name,
    get_all_web_services,
    get_web_service_version,
    patch_web_service_version,
)
from batchscore_client.api.sessions import close_session, create_session, set_workspace_object
from batchscore_client.api.snapshots import create_snapshot, delete_snapshot
from batchscore_client.api.status import status as server_status
from batchscore_client.models import BatchState as WireBatchState
from batchscore_client.models import (
    CreateSessionRequest,
    CreateSnapshotRequest,
    InputParameters,
    RuntimeType,
    ServiceDefinitionFields,
)
from batchscore_client.types import UNSET, File

T = TypeVar("T")
Instruction = Call | Sleep | Download | OpenStream | ReadStream | CloseStream | Emit
Flow = Generator[Instruction, Any, T]


# --- services -------------------------------------------------------------------------------------------------


def log_in() -> Flow[None]:
    """Any authenticated request: the token layer logs in first."""
    yield Call.of(partial(get_all_web_services.sync_detailed))


def list_services(name: str | None = None, version: str | None = None) -> Flow[list[ServiceInfo]]:
    """Published services: all of them, every version of ``name``, or one version."""
    if name is None:
        models = yield Call.of(partial(get_all_web_services.sync_detailed))
    elif version is None:
        models = yield Call.of(partial(get_all_web_service_versions_by_name.sync_detailed, name))
    else:
        models = yield Call.of(partial(get_web_service_version.sync_detailed, name, version))
    return [ServiceInfo.from_model(model) for model in models or []]


def get_service(name: str, version: str | None = None) -> Flow[ServiceInfo]:
    """One version, or the latest one when ``version`` is None."""
    found = yield from list_services(name, version)
    if not found:
        kwargs = get_all_web_service_versions_by_name._get_kwargs(name)
        request = httpx.Request(kwargs["method"].upper(), kwargs["url"])
        raise NotFoundError(f"service {name!r} has no published version", httpx.Response(404, request=request), None)
    return found[0] if version is not None else latest(found, name)


def update(name: str, version: str, body: ServiceDefinitionFields, models: Mapping[str, bytes]) -> Flow[ServiceInfo]:
    """Change a version (PATCH), with new models uploaded first when given."""
    snapshot_id = (yield from upload_models(models)) if models else None
    if snapshot_id is not None:
        body.snapshot_id = snapshot_id
    try:
        yield Call.of(partial(patch_web_service_version.sync_detailed, name, version, body=body))
    finally:
        if snapshot_id is not None:
            yield Call.of(partial(delete_snapshot.sync_detailed, snapshot_id))
    return (yield from get_service(name, version))


def upload_models(models: Mapping[str, bytes]) -> Flow[str]:
    """Put pickled models into a new session's workspace and snapshot it; the session is closed either way."""
    session = yield Call.of(
        partial(create_session.sync_detailed, body=CreateSessionRequest(runtime_type=RuntimeType.PYTHON))
    )
    try:
        for object_name, payload in models.items():
            file = File(payload=payload, mime_type="application/octet-stream")  # type: ignore[arg-type]  # bytes
            yield Call.of(partial(set_workspace_object.sync_detailed, session.session_id, object_name, body=file))
        snapshot = yield Call.of(
            partial(create_snapshot.sync_detailed, session.session_id, body=CreateSnapshotRequest())
        )
        return str(snapshot.snapshot_id)
    finally:
        yield Call.of(partial(close_session.sync_detailed, session.session_id))


def delete_service(name: str, version: str) -> Flow[None]:
    """Delete a version."""
    yield Call.of(partial(delete_web_service_version.sync_detailed, name, version))


# --- consume --------------------------------------------------------------------------------------------------


def consume(name: str, version: str, inputs: dict[str, Any]) -> Flow[ExecutionResult]:
    """Run the service once."""
    answer = yield Call.of(
        partial(consume_web_service.sync_detailed, name, version, body=InputParameters.from_dict(inputs))
    )
    return ExecutionResult.from_model(answer)


def swagger(name: str, version: str) -> Flow[dict[str, Any]]:
    """The service's own OpenAPI document."""
    document = yield Call.of(partial(get_web_service_swagger.sync_detailed, name, version))
    return dict(document.additional_properties)


def consume_path(name: str, version: str) -> str:
    """The consume operation's path for a service (what ``Service.capabilities()`` reports as ``api``)."""
    kwargs = consume_web_service._get_kwargs(name, version, body=InputParameters())
    return str(kwargs["url"])


# --- batches ----------------------------------------------------------------------------------------------------


def batch_path(name: str, version: str) -> str:
    """The batch collection's path for a service (what ``Batch.api`` reports)."""
    return str(get_batch_executions._get_kwargs(name, version)["url"])


def start(
    name: str,
    version: str,
    body: UploadBody,
    parallel_count: int,
    item_timeout: float | None,
    idempotency_key: str,
    options: BatchOptions | None = None,
) -> Flow[str]:
    """Stream the records up (a replayable body, so a retry resends it) and return the execution id.

    The generated function labels the body with the ``File``'s ``mime_type`` (NDJSON or CSV, both in the contract).
    """
    started = yield Call.of(
        partial(
            start_batch_execution.sync_detailed,
            name,
            version,
            body=File(payload=body, mime_type=body.media_type),  # type: ignore[arg-type]  # bytes streamed by httpx
            parallel_count=parallel_count,
            item_timeout=UNSET if item_timeout is None else item_timeout,
            idempotency_key=idempotency_key,
            **(options or BatchOptions()).request_arguments(),
        )
    )
    # ML Server 9.3 sends batchExecutionId; azureml-model-management-sdk 1.0.1b6 read BatchExecutionId.
    for candidate in (started.batchExecutionId, started.BatchExecutionId):
        if isinstance(candidate, str) and candidate:
            return candidate
    raise APIResponseValidationError("the start answer carried no batch execution id", None)


def body_limit() -> Flow[int | None]:
    """The server's largest request body in bytes (``GET /status``'s ``details.maxBodyBytes``; None if unsaid)."""
    answer = yield Call.of(partial(server_status.sync_detailed))
    details = getattr(answer, "details", None)
    limit = getattr(details, "additional_properties", {}).get("maxBodyBytes")
    return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None


def start_within_limit(size: int, rows: int, name: str, version: str, body: UploadBody, *args: Any) -> Flow[str]:
    """:func:`start`, after checking the body's ``size`` against the server's limit (nothing is sent if over).

    A body of at most ``UNCHECKED_BODY_BYTES`` goes without the check (and its request): no server is started
    with a smaller limit, and a small body costs little to send in vain.

    Raises:
        BatchTooLargeError: The body is over the limit; the message says how many rows a batch may hold.

    """
    if size > UNCHECKED_BODY_BYTES:
        check_size(size, rows, (yield from body_limit()), body.media_type)
    return (yield from start(name, version, body, *args))


def status(name: str, version: str, execution_id: str, show_partial_results: bool) -> Flow[BatchStatus]:
    """One poll without a cursor (ML Server's ``results()``)."""
    model = yield Call.of(
        partial(
            get_batch_execution_status.sync_detailed,
            name,
            version,
            execution_id,
            show_partial_results=show_partial_results,
        )
    )
    return BatchStatus.from_model(model, execution_id)


def wait(name: str, version: str, execution_id: str, tracker: WaitTracker) -> Flow[BatchStatus]:
    """Poll by cursor until the batch finishes (the tracker decides what to ask and how long to sleep)."""
    try:
        while True:
            model, headers = yield _poll(name, version, execution_id, tracker)
            delay = tracker.absorb(BatchStatus.from_model(model, execution_id), headers)
            if delay is None:
                break
            if delay:
                yield Sleep(delay)
    finally:
        tracker.close()
    return tracker.finish()


def _poll(name: str, version: str, execution_id: str, tracker: WaitTracker) -> Call:
    """A cursor poll: only the results finished since the tracker's cursor, one page at most."""
    return Call.of(
        partial(
            get_batch_execution_status.sync_detailed,
            name,
            version,
            execution_id,
            since=tracker.cursor,
            limit=tracker.page,
        ),
        with_headers=True,
    )


def poll_once(name: str, version: str, execution_id: str, tracker: WaitTracker) -> Flow[float | None]:
    """One cursor poll: the delay before the next one, or None when the batch is finished."""
    model, headers = yield _poll(name, version, execution_id, tracker)
    return tracker.absorb(BatchStatus.from_model(model, execution_id), headers)


def summary_call(operation: Any) -> Callable[[str, str, str], Flow[BatchStatus]]:
    """A flow for an operation answering a batch summary (cancel, retry)."""

    def flow(name: str, version: str, execution_id: str) -> Flow[BatchStatus]:
        model = yield Call.of(partial(operation.sync_detailed, name, version, execution_id))
        return BatchStatus.from_model(model, execution_id)

    return flow


cancel = summary_call(cancel_batch_execution)
retry_failed = summary_call(retry_batch_execution)


def delete_batch(name: str, version: str, execution_id: str) -> Flow[None]:
    """Cancel the batch if it runs, then delete it."""
    yield Call.of(partial(cancel_and_delete_batch_execution.sync_detailed, name, version, execution_id))


def list_batches(name: str, version: str) -> Flow[list[str]]:
    """The ids of a service's batch executions."""
    ids = yield Call.of(partial(get_batch_executions.sync_detailed, name, version))
    return [str(item) for item in ids or []]


def list_artifacts(name: str, version: str, execution_id: str, index: int) -> Flow[list[str]]:
    """The files one record produced."""
    names = yield Call.of(partial(get_batch_execution_files.sync_detailed, name, version, execution_id, index))
    return [str(item) for item in names or []]


def artifact(name: str, version: str, execution_id: str, index: int, file_name: str) -> Flow[bytes]:
    """One file's bytes."""
    file = yield Call.of(
        partial(get_batch_execution_file.sync_detailed, name, version, execution_id, index, safe_file_name(file_name))
    )
    payload = file.payload
    return bytes(payload.read() if hasattr(payload, "read") else payload)


def download(
    name: str,
    version: str,
    execution_id: str,
    index: int,
    file_name: str | None,
    dest: str | os.PathLike[str] | None,
) -> Flow[list[Path]]:
    """Stream files of one record into ``dest``; each appears under its final name only once complete."""
    folder = destination_folder(dest)
    names = [file_name] if file_name is not None else (yield from list_artifacts(name, version, execution_id, index))
    written = []
    for each in names:
        target = folder / safe_file_name(each)
        descriptor, temporary = partial_file(target)
        os.close(descriptor)
        try:
            yield Download(get_batch_execution_file, (name, version, execution_id, index, target.name), temporary)
            temporary.replace(target)
        finally:
            temporary.unlink(missing_ok=True)
        written.append(target)
    return written


def models_payloads(models: Mapping[str, Any], serialize: Callable[[Any, str], bytes]) -> dict[str, bytes]:
    """Pickle each model (before any request, so an unpicklable one fails without leaving a session behind)."""
    return {object_name: serialize(value, object_name) for object_name, value in models.items()}


# --- the batch list across services ---------------------------------------------------------------------------------


# A page's size when the caller sets no limit: the server's default.
BATCH_LIST_PAGE = 100
BATCH_LIST_MAX_PAGE = 1000


class BatchPages:
    """The pages of ``GET /batches`` for one query, newest first: each :meth:`page` is one flow of one request.

    The twins drive it alike (``while not pages.done: ... run(pages.page())``), so the iteration is lazy: a page
    is asked for only when the caller has used the one before.

    Args:
        state: Only batches in this state.
        service: Only batches of this service.
        version: Only batches of this version of ``service``.
        owner: Only batches this user started (an Owner's filter).
        labels: Only batches carrying every one of these labels.
        limit: The most batches in all (None: every one).
        page_size: The most batches one request asks for (None: the server's default, or ``limit`` when smaller).

    Raises:
        ValueError: An unknown state, ``version`` without ``service``, a label key with ``=``, or a limit or page
            size below 1 (before any request).

    """

    def __init__(
        self,
        *,
        state: BatchState | str | None,
        service: str | None,
        version: str | None,
        owner: str | None,
        labels: Mapping[str, str] | None,
        limit: int | None,
        page_size: int | None,
    ) -> None:
        self._state: WireBatchState | None = None
        if state is not None:
            parsed = BatchState.parse(state)
            if parsed is BatchState.UNKNOWN:
                known = ", ".join(sorted({s.value for s in BatchState} - {BatchState.UNKNOWN.value}))
                raise ValueError(f"unknown batch state {state!r}: one of {known}")
            self._state = WireBatchState(parsed.value)
        if version is not None and service is None:
            raise ValueError("version filters a service's batches: give service too")
        for key in labels or {}:
            if "=" in key or not key:
                raise ValueError(f"a label key is not empty and holds no '=': {key!r}")
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if page_size is not None and not 1 <= page_size <= BATCH_LIST_MAX_PAGE:
            raise ValueError(f"page_size must be from 1 to {BATCH_LIST_MAX_PAGE}, got {page_size}")
        self._service, self._version, self._owner = service, version, owner
        self._labels = [f"{key}={value}" for key, value in (labels or {}).items()]
        self._left = limit
        self._page_size = page_size or BATCH_LIST_PAGE
        self._cursor: str | None = None
        self.done = False

    def page(self) -> Flow[list[BatchStatus]]:
        """The next page's summaries (one request); :attr:`done` tells whether another page follows."""
        size = self._page_size if self._left is None else min(self._page_size, self._left)
        listed = yield Call.of(
            partial(
                list_batch_executions.sync_detailed,
                state=UNSET if self._state is None else self._state,
                service=UNSET if self._service is None else self._service,
                version=UNSET if self._version is None else self._version,
                owner=UNSET if self._owner is None else self._owner,
                label=self._labels or UNSET,
                cursor=UNSET if self._cursor is None else self._cursor,
                limit=size,
            )
        )
        items = [BatchStatus.from_model(item) for item in listed.batches][:size]
        if self._left is not None:
            self._left -= len(items)
        next_cursor = listed.next_cursor if isinstance(listed.next_cursor, str) else None
        # A page without items cannot advance the cursor: stop rather than ask for it again.
        self.done = next_cursor is None or not items or (self._left is not None and self._left <= 0)
        self._cursor = next_cursor
        return items


def service_of(summary: BatchStatus) -> tuple[str, str]:
    """The service name and version a batch summary names.

    Raises:
        BatchscoreError: It names none (a status from a server that does not send them).

    """
    if not summary.service_name or not summary.service_version:
        raise BatchscoreError(f"the status of batch {summary.execution_id} does not name its service and version")
    return summary.service_name, summary.service_version
