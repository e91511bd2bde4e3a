"""A batch's results as one streamed download (NDJSON or CSV), ended by a record that proves it whole."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse

from batchscore_server._auth import User
from batchscore_server._errors import ApiError
from batchscore_server._routes.deps import CurrentUser, ServerState
from batchscore_server._routes.views import batch_of, iso, result_json
from batchscore_server._store import Store

router = APIRouter(tags=["Batch"])

NDJSON = "application/x-ndjson"
CSV = "text/csv"
# What each Accept media range may name: the contract's two types, and the unregistered spelling of NDJSON.
_MEDIA_TYPES = {NDJSON: NDJSON, "application/ndjson": NDJSON, CSV: CSV}
CSV_COLUMNS = ("index", "itemState", "attempt", "success", "errorMessage", "cursor")
_MAX_ACCEPT_CHARS = 4096  # a longer header is not parsed (uvicorn bounds the whole head anyway)


@dataclass(frozen=True)
class ExportPlan:
    """What one export sends: the batch as it was when the export began, the order, and where to start."""

    batch_id: str
    by_seq: bool  # completion order (else input order)
    since: int  # the cursor the export resumes after (0: the beginning)
    bound: int  # only rows finished by this completion sequence (the batch's when the export began)
    outputs: tuple[str, ...]  # the declared outputs' names (the CSV's last columns)
    end: dict[str, Any]  # the end record's fields known at the start: state and counts
    passthrough: tuple[str, ...] = ()  # the batch's passthrough column names (issue 16)
    inputs: tuple[str, ...] | None = None  # the inputs' names with include=inputs, else None

    @property
    def wide(self) -> bool:
        """Whether the rows are read with their passthrough values and inputs."""
        return bool(self.passthrough) or self.inputs is not None


def negotiate(accept: str | None) -> str:
    """The media type to answer with for an ``Accept`` header: NDJSON unless CSV is preferred.

    Liberal in what it takes: no header, ``*/*``, ``text/*``, parameters and q-values (the highest q wins; at
    equal q the more specific range, then NDJSON). A malformed q counts as 1.

    Raises:
        ApiError: 406 naming ``Accept`` when the header allows neither type.

    """
    if accept is None or not accept.strip():
        return NDJSON
    best: dict[str, tuple[float, int]] = {}  # per type: (q, specificity) of the most specific range naming it
    for media_range in accept[:_MAX_ACCEPT_CHARS].split(","):
        kind, *params = (part.strip() for part in media_range.split(";"))
        kind = kind.lower()
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    quality = 1.0
        for spelled, media in _MEDIA_TYPES.items():
            specificity = _matches(kind, spelled)
            if specificity >= 0 and specificity >= best.get(media, (0.0, -1))[1]:
                best[media] = (quality, specificity)
    ranked = sorted(((q, spec, media == NDJSON, media) for media, (q, spec) in best.items() if q > 0), reverse=True)
    if not ranked:
        raise ApiError(406, f"Accept: send {NDJSON} or {CSV}", "Accept")
    return ranked[0][3]


def _matches(media_range: str, media: str) -> int:
    """How specifically a media range names ``media``: 2 exactly, 1 by ``type/*``, 0 by ``*/*``; -1 not at all."""
    if media_range == media:
        return 2
    if media_range == "*/*" or media_range == "*":  # a bare "*" is what some old clients send
        return 0
    if media_range.endswith("/*") and media.startswith(media_range[:-1]):
        return 1
    return -1


def _order(order: str | None) -> bool:
    if order is None or order == "input":
        return False
    if order == "completion":
        return True
    raise ApiError(400, "order must be input or completion", "order")


def _since(since: str | None) -> int:
    if since is None:
        return 0
    if not since.isascii() or not since.isdigit() or len(since) > 18:
        raise ApiError(400, "since must be a cursor from an earlier export (or 0)", "since")
    return int(since)


def _include(values: list[str] | None) -> bool:
    """Whether ``include`` asks for the inputs (its only value so far)."""
    for value in values or []:
        if value != "inputs":
            raise ApiError(400, "include must be inputs", "include")
    return bool(values)


def _names(value: Any) -> tuple[str, ...]:
    """A JSON list column of names as decoded (SQLAlchemy) or as text (the raw read pool)."""
    if isinstance(value, str):
        value = json.loads(value)
    return tuple(str(name) for name in value or ())


def _plan(
    store: Store,
    name: str,
    version: str,
    execution_id: str,
    user: User,
    by_seq: bool,
    since: int,
    with_inputs: bool = False,
) -> ExportPlan:
    """The export of a batch ``user`` may see; blocking.

    Raises:
        ApiError: 400 for malformed names, 404 as the status poll, 410 when the batch expired.

    """
    batch = batch_of(store, name, version, execution_id, user)
    if batch["expired"]:
        expired_at = iso(batch["expires_at"]) or "its expiry time"
        raise ApiError(410, f"batch {execution_id} expired at {expired_at}; its results were deleted", "executionId")
    end = {
        "state": batch["state"],
        "totalItemCount": batch["total"],
        "completedItemCount": batch["complete_count"] + batch["failed_count"],
        "failedItemCount": batch["failed_count"],
        "canceledItemCount": batch["canceled_count"],
    }
    outputs = tuple(str(output[0]) for output in (batch["spec"] or {}).get("outputs", []))
    inputs = tuple(str(item[0]) for item in (batch["spec"] or {}).get("inputs", [])) if with_inputs else None
    passthrough = _names(batch.get("passthrough"))
    return ExportPlan(batch["id"], by_seq, since, int(batch["last_seq"]), outputs, end, passthrough, inputs)


def _cell(value: Any) -> Any:
    """A CSV cell: numbers, strings and booleans as themselves (``true``/``false``), anything else as JSON text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return json.dumps(value) if isinstance(value, float) else value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _csv_text(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _csv_columns(plan: ExportPlan) -> list[str]:
    """The CSV header: ``index``, the passthrough columns, the inputs (``include=inputs``), the rest, the outputs."""
    return [CSV_COLUMNS[0], *plan.passthrough, *(plan.inputs or ()), *CSV_COLUMNS[1:], *plan.outputs]


def _csv_row(row: tuple[Any, ...], cursor: int, plan: ExportPlan) -> list[Any]:
    index, state, result, attempt, _key, *wide = row
    stored = json.loads(result)
    values = stored.get("outputParameters") or {}
    fixed = [state, attempt, _cell(bool(stored.get("success"))), stored.get("errorMessage") or "", cursor]
    extra, inputs = (_object(wide[0]), _object(wide[1])) if wide else ({}, {})
    return [
        index,
        *(_cell(extra.get(name)) for name in plan.passthrough),
        *(_cell(inputs.get(name)) for name in plan.inputs or ()),
        *fixed,
        *(_cell(values.get(name)) for name in plan.outputs),
    ]


def _object(text: str | None) -> dict[str, Any]:
    value = json.loads(text) if text else None
    return value if isinstance(value, dict) else {}


def _ndjson_line(row: tuple[Any, ...], cursor: int, plan: ExportPlan) -> str:
    """One NDJSON record: the stored result (spliced, never parsed), passthrough and inputs if asked, the cursor."""
    index, state, result, attempt, _key, *wide = row
    passthrough = (wide[0] or "{}") if plan.passthrough else None
    parts = [result_json(index, state, result, attempt, passthrough).rstrip()[:-1]]
    if plan.inputs is not None:
        parts.append(f'"inputs":{wide[1]}')
    parts.append(f'"cursor":"{cursor}"}}')
    return ",".join(parts) + "\n"


def export_lines(store: Store, plan: ExportPlan, media: str) -> Iterator[bytes]:
    """The export's body, one chunk of rows (read from the database when asked for) at a time, then the end record.

    Blocking: Starlette runs each step in a worker thread, and reads the next chunk only once the client took the
    last, so the server holds one chunk, however large the batch and however slow the client.
    """
    as_csv = media == CSV
    if as_csv:
        yield _csv_text([_csv_columns(plan)]).encode()
    records, cursor = 0, plan.since
    # Input order: a record's cursor is its index + 1 (so 0 is the beginning); completion order: its sequence.
    start = plan.since if plan.by_seq else plan.since - 1
    for rows in store.keyed_results(plan.batch_id, plan.by_seq, start, plan.bound, plan.wide):
        cursors = [row[4] if plan.by_seq else row[4] + 1 for row in rows]
        if as_csv:
            text = _csv_text([_csv_row(row, at, plan) for row, at in zip(rows, cursors, strict=True)])
        else:
            # The stored results are the JSON text the workers made: spliced, never parsed here.
            text = "".join(_ndjson_line(row, at, plan) for row, at in zip(rows, cursors, strict=True))
        records += len(rows)
        cursor = cursors[-1]
        yield text.encode("utf-8", "backslashreplace")
    end = json.dumps({"end": True, "records": records, "cursor": str(cursor), **plan.end}, separators=(",", ":"))
    yield f"#end {end}\n".encode() if as_csv else f"{end}\n".encode()


@router.get("/api/{name}/{version}/batch/{executionId}/results")
async def export_batch_execution_results(
    name: str,
    version: str,
    executionId: str,
    user: CurrentUser,
    server: ServerState,
    order: Annotated[str | None, Query()] = None,
    since: Annotated[str | None, Query()] = None,
    accept: Annotated[str | None, Header()] = None,
    include: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """Stream every finished record's result (NDJSON or CSV, by ``Accept``), then the end record."""
    by_seq, after, media, with_inputs = _order(order), _since(since), negotiate(accept), _include(include)
    plan = await asyncio.to_thread(_plan, server.store, name, version, executionId, user, by_seq, after, with_inputs)
    media_type = f"{CSV}; charset=utf-8" if media == CSV else NDJSON
    return StreamingResponse(export_lines(server.store, plan, media), media_type=media_type)
