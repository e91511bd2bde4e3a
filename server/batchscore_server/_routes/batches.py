"""``GET /batches``: the batches a caller may see across services, newest first, a page at a time."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import math
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from batchscore_server import _validation
from batchscore_server._auth import User
from batchscore_server._errors import ApiError
from batchscore_server._routes.deps import CurrentUser, ServerState, json_response
from batchscore_server._routes.views import summary
from batchscore_server._state import Server
from batchscore_server._store import BatchQuery

router = APIRouter(tags=["Batch"])

BATCH_STATES = ("pending", "ready", "inProgress", "complete", "failed", "canceled")
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_LABEL_FILTERS = 16
MAX_OWNER_LENGTH = 255
# As the contract's pattern: a key of up to 63 characters, a value of up to 255 without control characters.
LABEL_FILTER_PATTERN = re.compile(r"^([A-Za-z0-9_.\-]{1,63})=([^\x00-\x1f]{0,255})$")
_CURSOR_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,200}$")


def _cursor_digest(position: str) -> str:
    return hashlib.sha256(position.encode()).hexdigest()[:12]


def encode_cursor(created: float, batch_id: str) -> str:
    """The opaque ``nextCursor`` of a page that ended with this batch (urlsafe base64, no padding).

    ``repr`` of the float gives back the very same float: the next page starts exactly after this batch. A short
    digest makes an edited or truncated cursor a 400 rather than a page from somewhere else (a cursor is only a
    position: a forged one can show nothing the caller may not see anyway).
    """
    position = f"{created!r}|{batch_id}"
    return base64.urlsafe_b64encode(f"{position}|{_cursor_digest(position)}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The (created, id) a cursor names.

    Raises:
        ApiError: 400 naming ``cursor`` for anything :func:`encode_cursor` did not make.

    """
    try:
        if not _CURSOR_PATTERN.fullmatch(cursor):
            raise ValueError("not urlsafe base64")
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        created_text, batch_id, digest = text.split("|")
        if not hmac.compare_digest(digest, _cursor_digest(f"{created_text}|{batch_id}")):
            raise ValueError("not a cursor of this server")
        created = float(created_text)
        if not math.isfinite(created) or not _validation.ID_PATTERN.fullmatch(batch_id):
            raise ValueError("not a position")
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ApiError(400, "cursor must be a nextCursor from an earlier page of GET /batches", "cursor") from None
    return created, batch_id


def parse_state(state: str | None) -> str | None:
    """The contract's spelling of a state filter, compared case-insensitively (400 naming ``state``)."""
    if state is None:
        return None
    for known in BATCH_STATES:
        if known.lower() == state.lower():
            return known
    raise ApiError(400, f"state must be one of {', '.join(BATCH_STATES)}, got {state[:40]!r}", "state")


def parse_label_filters(labels: list[str] | None) -> tuple[tuple[str, str], ...]:
    """``key=value`` filters as pairs (400 naming ``label``: too many, or one without ``=`` or too long)."""
    labels = labels or []
    if len(labels) > MAX_LABEL_FILTERS:
        raise ApiError(400, f"label may be given at most {MAX_LABEL_FILTERS} times", "label")
    pairs = []
    for label in labels:
        match = LABEL_FILTER_PATTERN.fullmatch(label)
        if match is None:
            raise ApiError(
                400,
                f"label must be key=value (a key of 1 to 63 letters, digits, _ . -; a value of at most 255 "
                f"characters), got {label[:80]!r}",
                "label",
            )
        pairs.append((match.group(1), match.group(2)))
    return tuple(pairs)


def batch_query(
    user: User,
    state: str | None,
    service: str | None,
    version: str | None,
    owner: str | None,
    labels: list[str] | None,
    cursor: str | None,
    limit: str | None,
) -> BatchQuery | None:
    """The store's query for these parameters, as ``user`` may ask it; None when nothing can match.

    A user who is not an Owner sees only their own batches whatever ``owner`` says (another name finds nothing).

    Raises:
        ApiError: 400 naming the first malformed parameter.

    """
    if service is not None:
        _validation.check(_validation.NAME_PATTERN, service, "service", "service name")
    if version is not None:
        _validation.check(_validation.NAME_PATTERN, version, "version", "service version")
        if service is None:
            raise ApiError(400, "version filters a service's batches: give service too", "version")
    if owner is not None and (not 0 < len(owner) <= MAX_OWNER_LENGTH or "\x00" in owner):
        # (PostgreSQL refuses NUL in a text parameter; no user name holds one.)
        raise ApiError(400, f"owner must be a user name of 1 to {MAX_OWNER_LENGTH} characters", "owner")
    page = _validation.positive_number(limit, "limit", integer=True, maximum=MAX_LIMIT)
    query = BatchQuery(
        owner=owner if user.is_owner else user.name,
        state=parse_state(state),
        service=service,
        version=version,
        labels=parse_label_filters(labels),
        after=None if cursor is None else decode_cursor(cursor),
        limit=DEFAULT_LIMIT if page is None else int(page),
    )
    # Another user's batches, asked for by someone who may only see their own: none.
    return None if not user.is_owner and owner not in (None, user.name) else query


def _page(server: Server, query: BatchQuery | None) -> dict[str, Any]:
    """One page of summaries and the next page's cursor; blocking."""
    if query is None:
        return {"batches": [], "nextCursor": None}
    rows = server.store.list_batches(query)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    # The same summary as the status GET (its running count as this replica sees it), so both never differ.
    batches = [summary(row, server.batches.running_count(row["id"])) for row in rows]
    next_cursor = encode_cursor(rows[-1]["created"], rows[-1]["id"]) if more else None
    return {"batches": batches, "nextCursor": next_cursor}


@router.get("/batches")
async def list_batch_executions(
    user: CurrentUser,
    server: ServerState,
    state: Annotated[str | None, Query()] = None,
    service: Annotated[str | None, Query()] = None,
    version: Annotated[str | None, Query()] = None,
    owner: Annotated[str | None, Query()] = None,
    label: Annotated[list[str] | None, Query()] = None,
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[str | None, Query()] = None,
) -> Response:
    """Summaries of the batches the caller may see, newest first, a page at a time."""
    query = batch_query(user, state, service, version, owner, label, cursor, limit)
    return await json_response(await asyncio.to_thread(_page, server, query))
