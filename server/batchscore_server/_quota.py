"""Per-user quotas: rows queued and bytes stored, by role (Owners have none).

A Reader may start batches of any service (ML Server 9.2+ lets it consume, batch consumption included); the quotas
bound what that costs the server. Over the rows quota a start or retry is 429 with ``Retry-After`` (the queue
drains as rows finish); over the bytes quota a start or upload is 413 (deleting batches or snapshots frees room).
"""

from __future__ import annotations

from dataclasses import dataclass

from batchscore_server._auth import Role, User
from batchscore_server._errors import ApiError
from batchscore_server._settings import Settings
from batchscore_server._store import Store, Usage

# A full queue empties as its rows finish: a client told to come back sooner would mostly be refused again.
RETRY_AFTER_SECONDS = 30


@dataclass(frozen=True)
class Quota:
    """A user's limits; 0 means none."""

    max_queued_rows: int
    max_stored_bytes: int


def quota_of(settings: Settings, user: User) -> Quota:
    """The limits of ``user``'s role."""
    if user.role is Role.READER:
        return Quota(settings.reader_max_queued_rows, settings.reader_max_stored_bytes)
    if user.role is Role.CONTRIBUTOR:
        return Quota(settings.contributor_max_queued_rows, settings.contributor_max_stored_bytes)
    return Quota(0, 0)


def _too_many_rows(user: User, usage: Usage, adding: int, limit: int) -> ApiError:
    what = f"this batch of {adding}" if adding else "another batch"
    return ApiError(
        429,
        f"user {user.name} ({user.role.value}) has {usage.queued_rows} rows queued; {what} would exceed the quota "
        f"of {limit}",
        "queuedRows",
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _too_many_bytes(user: User, usage: Usage, adding: int | None, limit: int) -> ApiError:
    what = f"{adding} more" if adding is not None else "more"
    return ApiError(
        413,
        f"user {user.name} ({user.role.value}) stores {usage.stored_bytes} bytes; {what} would exceed the quota of "
        f"{limit} bytes (delete batches or snapshots to free room)",
        "body",
    )


def check_room(store: Store, settings: Settings, user: User, rows: int = 0, stored: int = 0) -> None:
    """Refuse a request that adds ``rows`` queued rows and ``stored`` bytes over ``user``'s quota; blocking.

    With nothing added it refuses a user whose quota is used up already (a start, before its body is read).

    Raises:
        ApiError: 429 naming ``queuedRows`` (with ``Retry-After``), or 413 naming ``body``.

    """
    quota = quota_of(settings, user)
    if not (quota.max_queued_rows or quota.max_stored_bytes):
        return
    usage = store.usage(user.name)
    if quota.max_queued_rows and usage.queued_rows + max(rows, 1) > quota.max_queued_rows:
        raise _too_many_rows(user, usage, rows, quota.max_queued_rows)
    if quota.max_stored_bytes and usage.stored_bytes + max(stored, 1) > quota.max_stored_bytes:
        raise _too_many_bytes(user, usage, stored or None, quota.max_stored_bytes)


def open_batch(store: Store, settings: Settings, user: User, batch_id: str, total: int, request_hash: str) -> None:
    """Make a received batch ``pending`` if it fits ``user``'s quota; blocking.

    Raises:
        ApiError: 429 or 413 as :func:`check_room`; the batch is left ``receiving`` for the caller to delete.

    """
    quota = quota_of(settings, user)
    if not (quota.max_queued_rows or quota.max_stored_bytes):
        store.open_batch(batch_id, total, request_hash)
        return
    usage = store.open_batch_within(
        batch_id, total, request_hash, user.name, quota.max_queued_rows, quota.max_stored_bytes
    )
    if usage is None:
        return
    if quota.max_queued_rows and usage.queued_rows + total > quota.max_queued_rows:
        raise _too_many_rows(user, usage, total, quota.max_queued_rows)
    raise _too_many_bytes(user, usage, None, quota.max_stored_bytes)
