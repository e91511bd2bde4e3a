"""How stored rows look on the wire, and which rows a caller may see (shared by several routers)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from fastapi.responses import JSONResponse

from batchscore_server import _validation
from batchscore_server._auth import Role, User
from batchscore_server._errors import not_found
from batchscore_server._store import FINAL_STATES, RECEIVING, Record, Store, service_key

POLL_HINT_SECONDS = 1
YOUNG_BATCH_SECONDS = 0.5

# A batch as a poll reads it (a plain mapping from the read pool) or as the store returns it (a row mapping).
BatchRecord = Record | Mapping[str, Any]
_B = TypeVar("_B", Record, Mapping[str, Any])


def iso(timestamp: float | None) -> str | None:
    """A UNIX time as the contract's ``date-time`` (UTC, ``Z``)."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def service_of(store: Store, name: str, version: str) -> Record:
    """A service version's row after checking the names; blocking.

    Raises:
        ApiError: 400 for a malformed name or version, 404 when there is no such version.

    """
    _validation.check(_validation.NAME_PATTERN, name, "name", "service name")
    _validation.check(_validation.NAME_PATTERN, version, "version", "service version")
    return store.service(name, version)


def web_service(row: Record, user: User) -> dict[str, Any]:
    """The contract's ``WebService`` for a service row, as ``user`` sees it."""
    definition = row["definition"]
    may_write = user.is_owner or (user.role is Role.CONTRIBUTOR and row["owner"] == user.name)
    service = {
        "name": row["name"],
        "version": row["version"],
        "versionPublishedBy": row["owner"],
        "creationTime": iso(row["created"]),
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
    if "consumeTimeout" in definition:
        service["consumeTimeout"] = definition["consumeTimeout"]
    if definition.get("vectorized"):
        service["vectorized"] = True
    if definition.get("maxBatchRows") is not None:
        service["maxBatchRows"] = definition["maxBatchRows"]
    return service


def spec_of(store: Store, row: Record) -> dict[str, Any]:
    """What a worker needs to run a service version (its cache key names the revision); blocking."""
    definition = row["definition"]
    objects: Path = store.service_objects(row["name"], row["version"], row["revision"])
    return {
        "key": service_key(row),
        "code": definition["code"],
        "initCode": definition.get("initCode", ""),
        "inputs": [(d["name"], d["type"]) for d in definition.get("inputParameterDefinitions", [])],
        "outputs": [(d["name"], d["type"]) for d in definition.get("outputParameterDefinitions", [])],
        "outputFileNames": definition.get("outputFileNames", []),
        "vectorized": bool(definition.get("vectorized")),
        "maxBatchRows": definition.get("maxBatchRows"),
        "snapshotDir": str(objects) if objects.exists() else None,
        **store.execution_limits,
    }


def check_batch_names(name: str, version: str, execution_id: str) -> None:
    """Check the path parameters that name a batch.

    Raises:
        ApiError: 400 naming the malformed one.

    """
    _validation.check(_validation.NAME_PATTERN, name, "name", "service name")
    _validation.check(_validation.NAME_PATTERN, version, "version", "service version")
    _validation.check(_validation.ID_PATTERN, execution_id, "executionId", "execution id")


def visible(batch: _B | None, execution_id: str, user: User) -> _B:
    """The batch if ``user`` may see it.

    Raises:
        ApiError: 404 when there is no such batch, it is still being received, or it is another user's.

    """
    if batch is None or batch["state"] == RECEIVING or not (user.is_owner or batch["owner"] == user.name):
        raise not_found(f"batch execution {execution_id}", "executionId")
    return batch


def batch_of(store: Store, name: str, version: str, execution_id: str, user: User) -> Record:
    """A batch ``user`` may see, after checking the names; blocking.

    Raises:
        ApiError: 400 for a malformed name, 404 as :func:`visible`.

    """
    check_batch_names(name, version, execution_id)
    return visible(store.batch(execution_id, name, version), execution_id, user)


def summary(batch: BatchRecord, running: int) -> dict[str, Any]:
    """The contract's ``BatchExecution`` without results, with ``running`` rows running now."""
    body: dict[str, Any] = {
        "batchExecutionId": batch["id"],
        "name": batch["name"],
        "version": batch["version"],
        "state": batch["state"],
        "completedItemCount": batch["complete_count"] + batch["failed_count"],
        "totalItemCount": batch["total"],
        "failedItemCount": batch["failed_count"],
        "runningItemCount": running,
        "canceledItemCount": batch["canceled_count"],
        "parallelCount": batch["parallel_count"],
        "createdBy": batch["owner"],
        "creationTime": iso(batch["created"]),
    }
    if batch["item_timeout"] is not None:
        body["itemTimeout"] = batch["item_timeout"]
    if batch["completed"] is not None:
        body["completionTime"] = iso(batch["completed"])
    if batch["error_message"]:
        body["errorMessage"] = batch["error_message"]
    body.update(_round_two(batch, time.time()))
    passthrough = batch.get("passthrough")
    if isinstance(passthrough, str):  # JSON text from the raw read pool ("null": none)
        passthrough = json.loads(passthrough)
    if passthrough:  # issue 16: the passthrough column names given at start
        body["passthrough"] = list(passthrough)
    return body


# Summary fields of issue 15, in the order the contract lists them; None-valued policy fields are left out.
_POLICY_FIELDS = (
    ("maxFailedItems", "max_failed_items"),
    ("maxFailureRatio", "max_failure_ratio"),
    ("minFailureSample", "min_failure_sample"),
)


def _round_two(batch: BatchRecord, now: float) -> dict[str, Any]:
    """The summary's issue 15 fields: times, labels, rate and ETA, retention, failure policy, webhook.

    Reads the columns as the store returns them (SQLAlchemy: decoded) and as the polls' raw read pool does (SQLite:
    JSON text and 0/1; PostgreSQL: JSON text).
    """
    labels = batch.get("labels")
    if isinstance(labels, str):
        labels = json.loads(labels)
    rate, left = rate_and_eta(batch, now)
    body: dict[str, Any] = {
        "startTime": iso(batch["started"]) if batch.get("started") is not None else None,
        "labels": labels or {},
        "rowsPerSecond": rate,
        "estimatedSecondsLeft": left,
        "expiresAt": iso(batch["expires_at"]) if batch.get("expires_at") is not None else None,
        "expired": bool(batch.get("expired")),
        "itemRetries": int(batch.get("item_retries") or 0),
        "retryTimeouts": bool(batch.get("retry_timeouts")),
        "retriedItemCount": int(batch.get("retried_count") or 0),
    }
    for name, column in _POLICY_FIELDS:
        if batch.get(column) is not None:
            body[name] = batch[column]
    if batch.get("callback_url"):
        body["callbackUrl"] = batch["callback_url"]
    return body


def rate_and_eta(batch: BatchRecord, now: float) -> tuple[float | None, float | None]:
    """Rows finished per second in the batch's current run, and the seconds left at that rate.

    Measured from the run's start (``run_started``, with ``run_base_count`` rows finished then), so a batch resumed
    after a restart or retried is measured afresh instead of diluted by the time it was stopped. A finished batch
    keeps the rate of its last run and has no ETA. None when there is nothing to go by yet.
    """
    started = batch.get("run_started")
    if started is None:
        return None, None
    finished = batch["complete_count"] + batch["failed_count"]
    done = finished - int(batch.get("run_base_count") or 0)
    end = batch["completed"] if batch["state"] in FINAL_STATES and batch["completed"] is not None else now
    elapsed = end - started
    if done <= 0 or elapsed <= 0:
        return None, None
    rate = done / elapsed
    if batch["state"] in FINAL_STATES:
        return round(rate, 3), None
    left = max(0, batch["total"] - finished - batch["canceled_count"])
    return round(rate, 3), round(left / rate, 1)


def poll_hint(batch: BatchRecord, now: float) -> int:
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


def result_json(index: int, state: str, result: str, attempt: int, passthrough: str | None = None) -> str:
    """A row's stored result (a JSON object's text) with its ``index``, ``itemState`` and ``attempt`` in front.

    ``attempt`` (an extension) counts the times the row was handed to a worker: 2 for a row that was running
    when its replica or server died and ran again; 0 for a row that never ran (canceled before it started).
    ``passthrough``: the row's passthrough values (a JSON object's text) of a batch that declared passthrough
    columns (issue 16), spliced in as ``passthrough``.
    """
    head = f'{{"index":{int(index)},"itemState":{json.dumps(state)},"attempt":{int(attempt)}'
    if passthrough is not None:
        head = f'{head},"passthrough":{passthrough or "{}"}'
    return f"{head}}}" if result.strip() == "{}" else f"{head},{result.lstrip()[1:]}"


def started(batch_id: str, name: str, version: str, total: int) -> JSONResponse:
    """The 202 answer to a started batch (and to its idempotent repeats)."""
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
