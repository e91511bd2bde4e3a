"""The store: every SQL statement of the routes and the batch engine, and the files that go with the rows.

The store owns the database and the objects directory (session workspaces, snapshots, the objects of published
services) and the batch artifacts, because several operations change both in one transaction (a publish copies
its snapshot before the row commits, so a failed copy leaves no service behind).

Every method blocks (SQLite, the file system): the routes and the batch engine call them in a worker thread
(``asyncio.to_thread``), never on the event loop, where one slow statement would hold up every poll.
"""

from __future__ import annotations

import errno
import json
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from batchscore_server import _db, _webhook_rules
from batchscore_server._errors import ApiError, not_found
from batchscore_server._execution import StoredResult, stored_result
from batchscore_server._policy import MAX_ATTEMPT_ERROR_CHARS
from batchscore_server._retention import CLAIM_SECONDS, check_not_expired
from batchscore_server._settings import Settings

UNFINISHED_STATES = ("pending", "ready", "inProgress")
FINAL_STATES = ("complete", "failed", "canceled")
# A batch whose body is still arriving, or that is being deleted: invisible to every request, and removed (rows
# and files) when the server starts, should it have stopped meanwhile.
RECEIVING = "receiving"
# A receipt's lease, renewed with each slice of rows it stores; a receipt whose replica died is removed after it.
RECEIPT_LEASE_SECONDS = 600.0
_NO_LEASE = {"lease_owner": None, "lease_expires": None, "stop_requested": None}
STORAGE_FULL_MESSAGE = "the server's disk is full: free space in its data directory (delete batches), then try again"
Row = tuple[int, Any]
Record = sa.RowMapping  # a row of a table, by column name
_V = TypeVar("_V")
_SQLITE_IN_LIMIT = 900  # stay under SQLite's default limit of bound variables per statement
# A slice goes in as one JSON array that the database takes apart itself: a third of the time of binding row by row.
_INSERT_SLICE = {
    "sqlite": "INSERT INTO batch_rows (batch_id, idx, inputs, state) "
    "SELECT ?, ? + json_each.key, json_each.value, 'pending' FROM json_each(?)",
    # json (not jsonb) elements keep their text as sent.
    "postgresql": "INSERT INTO batch_rows (batch_id, idx, inputs, state) "
    "SELECT %s, %s + t.ord - 1, t.value::text, 'pending' "
    "FROM json_array_elements(%s::json) WITH ORDINALITY AS t(value, ord)",
}

# The same with each row's passthrough values (issue 16): a second array of JSON objects, matched by position.
_INSERT_SLICE_PASSTHROUGH = {
    "sqlite": "INSERT INTO batch_rows (batch_id, idx, inputs, passthrough, state) "
    "SELECT ?, ? + i.key, i.value, p.value, 'pending' FROM json_each(?) AS i JOIN json_each(?) AS p ON p.key = i.key",
    "postgresql": "INSERT INTO batch_rows (batch_id, idx, inputs, passthrough, state) "
    "SELECT %s, %s + i.ord - 1, i.value::text, p.value::text, 'pending' "
    "FROM json_array_elements(%s::json) WITH ORDINALITY AS i(value, ord) "
    "JOIN json_array_elements(%s::json) WITH ORDINALITY AS p(value, ord) ON p.ord = i.ord",
}

_PG_DISK_FULL = "53100"  # SQLSTATE disk_full


class DuplicateIdempotencyKey(Exception):
    """Another batch of the same owner took this Idempotency-Key while this one was received."""


PolledRow = tuple[int, str, str, int]  # (index, state, result as its JSON text, attempt)
KeyedRow = tuple[int, str, str, int, int]  # a PolledRow and its key (index, or completion sequence)
# A poll's rows are read and sent in chunks of at most this many rows, ending after the row that brings a chunk's
# results to POLL_CHUNK_BYTES characters: a poll's memory does not grow with the batch.
POLL_CHUNK_ROWS = 5_000
POLL_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class PollPage:
    """What one poll of a batch reads: the batch, the rows to send and the cursor after them."""

    batch: Mapping[str, Any]  # the poll's columns of the batch (_db.POLL_BATCH_COLUMNS)
    rows: list[PolledRow]  # the first chunk of rows
    cursor: int
    has_more: bool
    # The other chunks, each read from the database when the iterator is asked for it (send it as it comes);
    # None: ``rows`` are all.
    more: Iterator[list[PolledRow]] | None = None


@dataclass(frozen=True)
class Usage:
    """What a user holds, as its quotas count it.

    Attributes:
        queued_rows: Rows pending or running in its unfinished batches.
        stored_bytes: Its batches' records as stored (measured when a bytes quota applied at their start), its
            snapshots and its session workspaces.

    """

    queued_rows: int
    stored_bytes: int


@dataclass(frozen=True)
class BatchQuery:
    """The filters and the page of ``GET /batches`` (checked by the route): None is no filter."""

    owner: str | None = None
    state: str | None = None
    service: str | None = None
    version: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    after: tuple[float, str] | None = None  # the (created, id) the previous page ended with
    limit: int = 100


class Store:
    """The database and the files of one data directory.

    Args:
        settings: The server's settings (where the objects and artifacts live).
        engine: The database.

    """

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.engine = engine
        self._lease_seconds = settings.lease_seconds
        self._objects = settings.objects_dir
        self._artifacts = settings.artifacts_dir
        self._retention = settings.retention_seconds
        # What a service's records may produce, sent to the workers with each service spec (see spec_of).
        self.execution_limits = {
            "maxResultBytes": settings.max_result_bytes,
            "maxConsoleBytes": settings.max_console_bytes,
            "maxOutputFileBytes": settings.max_output_file_bytes,
        }
        # Webhooks (see _webhooks): the body of an event of a batch (its row, the event type); None: no events.
        self.webhook_payload: Callable[[Record, str], str] | None = None
        self._progress_checked: dict[str, float] = {}  # batch -> when a progress event was last considered

    # -- health ----------------------------------------------------------------------------------------------

    def ping(self) -> None:
        """Run a trivial statement (raises when the database cannot answer)."""
        with self.engine.connect() as conn:
            conn.execute(sa.select(1))

    # -- services --------------------------------------------------------------------------------------------

    def service_objects(self, name: str, version: str, revision: int | None = None) -> Path:
        """Where a service version's objects (from its snapshot) live; one directory per revision."""
        directory = self._objects / "services" / name / version
        return directory if revision is None else directory / str(revision)

    def services(self, name: str | None = None) -> list[Record]:
        """Every service version (or every version of ``name``) in publication order."""
        query = sa.select(_db.services).order_by(_db.services.c.seq)
        if name is not None:
            query = query.where(_db.services.c.name == name)
        with self.engine.connect() as conn:
            return list(conn.execute(query).mappings().all())

    def service(self, name: str, version: str) -> Record:
        """One service version.

        Raises:
            ApiError: 404 naming ``version`` when there is no such version.

        """
        with self.engine.connect() as conn:
            return _service_row(conn, name, version)

    def publish_service(self, owner: str, is_owner: bool, name: str, version: str, definition: dict[str, Any]) -> None:
        """Add a service version (with its snapshot's objects) for ``owner``.

        Raises:
            ApiError: 403 when the name belongs to another user (and ``is_owner`` is false), 409 when the version
                exists, 422 when the snapshot is not the caller's.

        """
        services = _db.services.c
        with self.engine.begin() as conn:
            owners = set(conn.execute(sa.select(services.owner).where(services.name == name)).scalars())
            if owners and not is_owner and owners != {owner}:
                raise ApiError(403, f"service {name} belongs to another user", "name")
            exists = conn.execute(
                sa.select(sa.func.count()).where(services.name == name, services.version == version)
            ).scalar_one()
            if exists:
                raise ApiError(
                    409, f"service {name} version {version} exists already; use PATCH to update it", "version"
                )
            if definition.get("snapshotId"):
                self._copy_snapshot(
                    conn, owner, is_owner, definition["snapshotId"], self.service_objects(name, version, 1)
                )
            seq = conn.execute(sa.select(sa.func.coalesce(sa.func.max(services.seq), 0))).scalar_one() + 1
            conn.execute(
                sa.insert(_db.services).values(
                    name=name,
                    version=version,
                    owner=owner,
                    created=time.time(),
                    seq=seq,
                    revision=1,
                    definition=definition,
                )
            )

    def update_service(self, owner: str, is_owner: bool, name: str, version: str, changes: dict[str, Any]) -> None:
        """Apply a PATCH: a new revision of the version's definition (and of its objects).

        Raises:
            ApiError: 404 when the version is gone, 422 when the new snapshot is not the caller's.

        """
        with self.engine.begin() as conn:
            row = _service_row(conn, name, version)
            revision = row["revision"] + 1
            if changes.get("snapshotId"):
                target = self.service_objects(name, version, revision)
                self._copy_snapshot(conn, owner, is_owner, changes["snapshotId"], target)
            elif self.service_objects(name, version, row["revision"]).exists():
                shutil.copytree(
                    self.service_objects(name, version, row["revision"]), self.service_objects(name, version, revision)
                )
            conn.execute(
                sa.update(_db.services)
                .where(_db.services.c.name == name, _db.services.c.version == version)
                .values(definition={**row["definition"], **changes}, revision=revision)
            )

    def unfinished_batches_of(self, name: str, version: str) -> list[str]:
        """The ids of a service version's unfinished batches."""
        with self.engine.connect() as conn:
            return _unfinished_batches_of(conn, name, version)

    def delete_service(self, name: str, version: str) -> list[str]:
        """Delete a service version's row; returns the ids of its unfinished batches (started since they were stopped).

        Its objects are removed before (:meth:`remove_service_objects`): on a full disk, that frees the space the
        delete needs.
        """
        with self.engine.begin() as conn:
            conn.execute(sa.delete(_db.services).where(_db.services.c.name == name, _db.services.c.version == version))
            return _unfinished_batches_of(conn, name, version)

    def remove_service_objects(self, name: str, version: str) -> None:
        """Delete a deleted service version's objects."""
        shutil.rmtree(self.service_objects(name, version), ignore_errors=True)

    # -- sessions and snapshots ------------------------------------------------------------------------------

    def session_dir(self, session_id: str) -> Path:
        """A session's workspace directory."""
        return self._objects / "sessions" / session_id

    def session(self, session_id: str) -> Record | None:
        """A session's row, or None."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(_db.sessions).where(_db.sessions.c.id == session_id)).mappings().first()

    def create_session(
        self, session_id: str, owner: str, is_owner: bool, name: str | None, snapshot_id: str | None
    ) -> None:
        """Add a session, its workspace filled from a snapshot when one is named.

        Raises:
            ApiError: 422 when the snapshot is not the caller's.

        """
        with self.engine.begin() as conn:
            if snapshot_id is not None:
                self._copy_snapshot(conn, owner, is_owner, snapshot_id, self.session_dir(session_id))
            conn.execute(sa.insert(_db.sessions).values(id=session_id, owner=owner, name=name, created=time.time()))
        self.session_dir(session_id).mkdir(parents=True, exist_ok=True)

    def delete_session(self, session_id: str) -> None:
        """Delete a session and its workspace."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(_db.sessions).where(_db.sessions.c.id == session_id))
        shutil.rmtree(self.session_dir(session_id), ignore_errors=True)

    def workspace_objects(self, session_id: str) -> list[str]:
        """The names of the objects in a session's workspace, sorted."""
        return sorted(path.name for path in self.session_dir(session_id).iterdir())

    def set_workspace_object(self, session_id: str, object_name: str, data: bytes) -> None:
        """Write (or replace) an object of a session's workspace."""
        (self.session_dir(session_id) / object_name).write_bytes(data)

    def create_snapshot(self, snapshot_id: str, session_id: str, owner: str, name: str | None) -> None:
        """Copy a session's workspace into a new snapshot."""
        with self.engine.begin() as conn:
            target = self._objects / "snapshots" / snapshot_id
            shutil.copytree(self.session_dir(session_id), target)
            size = sum(path.stat().st_size for path in target.iterdir())
            conn.execute(
                sa.insert(_db.snapshots).values(
                    id=snapshot_id, owner=owner, name=name, created=time.time(), content_size=size
                )
            )

    def snapshots(self, owner: str | None) -> list[Record]:
        """Snapshots in creation order: every one, or ``owner``'s."""
        query = sa.select(_db.snapshots).order_by(_db.snapshots.c.created)
        if owner is not None:
            query = query.where(_db.snapshots.c.owner == owner)
        with self.engine.connect() as conn:
            return list(conn.execute(query).mappings().all())

    def snapshot(self, snapshot_id: str) -> Record | None:
        """A snapshot's row, or None."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(_db.snapshots).where(_db.snapshots.c.id == snapshot_id)).mappings().first()

    def snapshot_objects(self, owner: str, is_owner: bool, snapshot_id: str) -> Path:
        """Where a snapshot the caller may use keeps its objects (read by a publish's check before it copies them).

        Raises:
            ApiError: 422 when the snapshot is not the caller's (as a publish naming it says).

        """
        snapshot = self.snapshot(snapshot_id)
        if snapshot is None or not (is_owner or snapshot["owner"] == owner):
            raise ApiError(422, f"snapshot {snapshot_id} does not exist", "snapshotId")
        return self._objects / "snapshots" / snapshot_id

    def delete_snapshot(self, snapshot_id: str) -> None:
        """Delete a snapshot and its objects."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(_db.snapshots).where(_db.snapshots.c.id == snapshot_id))
        shutil.rmtree(self._objects / "snapshots" / snapshot_id, ignore_errors=True)

    def _copy_snapshot(self, conn: sa.Connection, owner: str, is_owner: bool, snapshot_id: str, target: Path) -> None:
        snapshot = conn.execute(sa.select(_db.snapshots).where(_db.snapshots.c.id == snapshot_id)).mappings().first()
        if snapshot is None or not (is_owner or snapshot["owner"] == owner):
            raise ApiError(422, f"snapshot {snapshot_id} does not exist", "snapshotId")
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self._objects / "snapshots" / snapshot_id, target)

    # -- batches: requests -----------------------------------------------------------------------------------

    def batch(self, batch_id: str, name: str, version: str) -> Record | None:
        """A batch of this service version (also one still being received), or None."""
        with self.engine.connect() as conn:
            return _batch_row(conn, batch_id, name, version)

    def batch_ids(self, name: str, version: str, owner: str | None) -> list[str]:
        """The ids of a service version's batches (every one, or ``owner``'s), oldest first.

        Raises:
            ApiError: 404 when the service version does not exist.

        """
        batches = _db.batches.c
        query = sa.select(batches.id).where(
            batches.name == name, batches.version == version, batches.state != RECEIVING
        )
        if owner is not None:
            query = query.where(batches.owner == owner)
        with self.engine.connect() as conn:
            _service_row(conn, name, version)
            return list(conn.execute(query.order_by(batches.created)).scalars())

    def batch_by_idempotency_key(self, owner: str, key: str) -> Record | None:
        """``owner``'s batch that was started with this Idempotency-Key, or None."""
        batches = _db.batches.c
        with self.engine.connect() as conn:
            query = sa.select(_db.batches).where(batches.owner == owner, batches.idempotency_key == key)
            return conn.execute(query).mappings().first()

    def list_batches(self, query: BatchQuery) -> list[Record]:
        """A page of batches newest first (``created``, then ``id``, descending), one more than ``query.limit``.

        The extra row tells the caller there is a next page. Batches still being received are never listed. Every
        column but the stored spec and request hash (the summary needs none of them).
        """
        batches = _db.batches.c
        columns = [column for column in _db.batches.c if column.name not in ("spec", "request_hash")]
        statement = sa.select(*columns).where(batches.state != RECEIVING)
        if query.owner is not None:
            statement = statement.where(batches.owner == query.owner)
        if query.state is not None:
            statement = statement.where(batches.state == query.state)
        if query.service is not None:
            statement = statement.where(batches.name == query.service)
        if query.version is not None:
            statement = statement.where(batches.version == query.version)
        labels = _db.batch_labels.c
        for key, value in query.labels:
            statement = statement.where(
                sa.exists().where(labels.batch_id == batches.id, labels.key == key, labels.value == value)
            )
        if query.after is not None:
            # Keyset pagination: strictly after the last (created, id) of the previous page, so a batch started
            # meanwhile neither shifts the pages nor appears twice. Written out (not a row value) for the planner.
            created, batch_id = query.after
            statement = statement.where(
                sa.or_(batches.created < created, sa.and_(batches.created == created, batches.id < batch_id))
            )
        statement = statement.order_by(batches.created.desc(), batches.id.desc()).limit(query.limit + 1)
        with self.engine.connect() as conn:
            return list(conn.execute(statement).mappings())

    def poll_page(
        self, batch_id: str, name: str, version: str, partial: bool | None, after: int | None, page: int | None
    ) -> PollPage | None:
        """A batch and the row results a poll returns (None: no such batch).

        The batch, the poll's bounds and its first chunk of rows are read in one transaction (so a result committed
        between the reads cannot be sent under a cursor that does not cover it); the other chunks, if any, are read
        one at a time as the answer is sent (:attr:`PollPage.more`), each in a short transaction of its own, and
        hold only the rows finished when the poll began. A poll of every result of a million-row batch so costs
        the server one chunk's memory, not the whole answer's (twelve slow readers of a 300k-row batch took it
        from 220 MB to 1 GB), and holds no read transaction open while a slow client reads.

        Args:
            batch_id: The batch.
            name: Its service.
            version: Its service version.
            partial: False: no results until the batch has finished.
            after: Only rows completed after this cursor, in completion order; None: every row with a result,
                in index order.
            page: At most this many rows (with ``after``).

        """
        # Polls are the hot path: plain sqlite3 on the read pool, fixed SQL.
        with _db.read_pool(self.engine).read_snapshot() as conn:
            page_end = last = None
            if after is None:
                batch = _db.poll_batch(conn, batch_id, name, version)
            else:  # the batch and its page's bounds in one query
                polled = _db.poll_batch_after(conn, batch_id, name, version, after, page)
                batch, page_end, last = (None, None, None) if polled is None else polled
            if batch is None or batch["state"] == RECEIVING:
                return None
            if partial is False and batch["state"] not in FINAL_STATES:
                return PollPage(batch, [], after or 0, False)
            has_more = False
            if after is None:
                by_seq, start, bound = False, -1, int(batch["last_seq"])
            else:
                by_seq, start = True, after
                if page_end is None:  # every row finished after the cursor fits
                    bound = after if last is None else last
                else:
                    bound = page_end
                    has_more = last is not None and last > page_end
            wide = batch.get("passthrough") not in (None, "null")  # issue 16: each row's passthrough values too
            rows, key = _db.result_chunk(conn, batch_id, by_seq, start, bound, POLL_CHUNK_ROWS, POLL_CHUNK_BYTES, wide)
        more = None if key is None else self._more_results(batch_id, by_seq, key, bound, wide)
        return PollPage(batch, rows, bound, has_more, more)

    def _more_results(
        self, batch_id: str, by_seq: bool, key: int, bound: int, wide: bool = False
    ) -> Iterator[list[PolledRow]]:
        """The chunks of a poll's rows after its first, each read when asked for (see :meth:`poll_page`)."""
        pool = _db.read_pool(self.engine)
        after: int | None = key
        while after is not None:
            with pool.read_snapshot() as conn:
                rows, after = _db.result_chunk(
                    conn, batch_id, by_seq, after, bound, POLL_CHUNK_ROWS, POLL_CHUNK_BYTES, wide
                )
            if rows:
                yield rows

    def keyed_results(
        self, batch_id: str, by_seq: bool, after: int, bound: int, wide: bool = False
    ) -> Iterator[list[KeyedRow]]:
        """A batch's rows with a result, in chunks each read (in its own short snapshot) when asked for.

        In completion order (``by_seq``) the rows finished after the completion sequence ``after``, else the rows
        after the index ``after``; only rows finished by the completion sequence ``bound``. The export streams
        these: its memory is one chunk's, whatever the batch's size (see :meth:`poll_page`). ``wide``: each row
        also has its passthrough values and inputs (see ``_db.keyed_result_chunk``).
        """
        pool = _db.read_pool(self.engine)
        key: int | None = after
        while key is not None:
            with pool.read_snapshot() as conn:
                rows, key = _db.keyed_result_chunk(
                    conn, batch_id, by_seq, key, bound, POLL_CHUNK_ROWS, POLL_CHUNK_BYTES, wide
                )
            if rows:
                yield rows

    def retry_batch(self, batch_id: str, name: str, version: str) -> Record | None:
        """Make a finished batch's failed and canceled rows pending again; returns the batch after (None: no such).

        Raises:
            ApiError: 409 when the batch is still running, has no failed or canceled row, or its service version
                was updated or deleted since it started (the retried rows would not run the code the others ran).

        """
        rows = _db.batch_rows.c
        with self.engine.begin() as conn:
            batch = _batch_row(conn, batch_id, name, version)
            if batch is None or batch["state"] == RECEIVING:
                return None
            if batch["state"] not in FINAL_STATES:
                raise ApiError(409, "the batch is still running; retry it once it has finished", "executionId")
            check_not_expired(batch)  # its rows are gone, or the sweep may be deleting them
            _check_same_service(conn, batch)
            retried = conn.execute(
                sa.update(_db.batch_rows)
                .where(rows.batch_id == batch_id, rows.state.in_(("failed", "canceled")))
                .values(state="pending", result=None, seq=None)
            ).rowcount
            if not retried:
                raise ApiError(409, "no row failed or was canceled; there is nothing to retry", "executionId")
            conn.execute(
                sa.update(_db.batches)
                .where(_db.batches.c.id == batch_id)
                .values(
                    state="pending",
                    completed=None,
                    expires_at=None,  # unfinished again: it expires after its next finish
                    error_message=None,
                    failed_count=0,
                    canceled_count=0,
                    lease_owner=None,
                    lease_expires=None,
                    stop_requested=None,
                )
            )
            return _batch_row(conn, batch_id, name, version)

    def delete_batch(self, batch_id: str) -> None:
        """Delete a batch, its artifacts and its rows.

        The files go first: on a full disk SQLite cannot write even a delete, and removing the files frees the
        space it needs. The batch then disappears in one short transaction (it becomes ``receiving``: no request
        sees it) before its rows are deleted a slice at a time; a server stopped in between (kill -9) removes
        the rest at its next start, so no one ever sees a batch whose counts disagree with its rows. A delete
        whose database write fails leaves the batch whole but without files, and can be repeated.
        """
        shutil.rmtree(self._artifacts / batch_id, ignore_errors=True)
        with self.engine.begin() as conn:
            # No lease: should this replica die, any other finishes the delete.
            conn.execute(
                sa.update(_db.batches)
                .where(_db.batches.c.id == batch_id)
                .values(state=RECEIVING, lease_owner=None, lease_expires=None)
            )
        _db.delete_batch(self.engine, batch_id)

    def expire_due(self, sweeper: str, now: float, limit: int) -> list[str]:
        """Expire up to ``limit`` batches due by ``now`` (:meth:`due_batches`, :meth:`expire_batch`); their ids."""
        return [batch_id for batch_id in self.due_batches(now, limit) if self.expire_batch(batch_id, sweeper, now)]

    def due_batches(self, now: float, limit: int) -> list[str]:
        """Up to ``limit`` finished, unexpired batches whose ``expires_at`` is ``now`` or before and nobody sweeps."""
        query = sa.select(_db.batches.c.id).where(*self._due(now)).order_by(_db.batches.c.expires_at).limit(limit)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def expire_batch(self, batch_id: str, sweeper: str, now: float) -> bool:
        """Delete a batch's records and files if it is due by ``now``; whether this call expired it.

        The batch is claimed first with a conditional update (its lease columns, free once a batch has finished):
        replicas sweeping at once never work on one batch together. Its files go, then its rows (a slice per
        transaction), then it is marked ``expired`` and its records no longer count against its owner's
        stored-bytes quota. A sweep that stopped midway left its claim, which runs out after ``CLAIM_SECONDS``: a
        later sweep does it again (every step may be repeated). The summary stays.

        Args:
            batch_id: The batch.
            sweeper: The sweeping replica's name (its claim).
            now: The time the batch must be due by (a test passes a later one); the claim uses the clock.

        """
        batches = _db.batches.c
        with self.engine.begin() as conn:
            claimed = conn.execute(
                sa.update(_db.batches)
                .where(batches.id == batch_id, *self._due(now))
                .values(lease_owner=sweeper, lease_expires=time.time() + CLAIM_SECONDS)
            ).rowcount
        if not claimed:  # another replica's, or retried or deleted meanwhile
            return False
        shutil.rmtree(self._artifacts / batch_id, ignore_errors=True)
        _db.delete_batch_rows(self.engine, batch_id)
        with self.engine.begin() as conn:
            marked = conn.execute(
                sa.update(_db.batches)
                .where(batches.id == batch_id, batches.lease_owner == sweeper, batches.state.in_(FINAL_STATES))
                .values(expired=True, input_bytes=0, **_NO_LEASE)
            ).rowcount
        return bool(marked)

    @staticmethod
    def _due(now: float) -> tuple[sa.ColumnElement[bool], ...]:
        """Conditions of a batch to expire: finished, due by ``now``, not expired, and not claimed by a live sweep."""
        batches = _db.batches.c
        return (
            batches.state.in_(FINAL_STATES),
            batches.expired.is_(sa.false()),
            batches.expires_at <= now,
            sa.or_(batches.lease_owner.is_(None), batches.lease_expires < time.time()),
        )

    def row_files(self, batch_id: str, index: int) -> list[str]:
        """The names of the files a batch row made, sorted (links and directories are not files)."""
        directory = self.row_directory(batch_id, index)
        if not directory.is_dir():
            return []
        return sorted(path.name for path in directory.iterdir() if path.is_file() and not path.is_symlink())

    def row_file(self, batch_id: str, index: int, file_name: str) -> Path | None:
        """A file a batch row made, or None; never a link, nor anything outside the row's directory."""
        directory = self.row_directory(batch_id, index)
        path = directory / file_name
        if path.is_symlink() or not path.is_file() or path.resolve().parent != directory.resolve():
            return None
        return path

    def failed_rows(self, batch_id: str, after: int, limit: int) -> list[tuple[int, Any]]:
        """The failed rows of a batch after the index ``after``, in index order: (index, result); at most ``limit``."""
        rows = _db.batch_rows.c
        query = (
            sa.select(rows.idx, rows.result)
            .where(rows.batch_id == batch_id, rows.state == "failed", rows.idx > after)
            .order_by(rows.idx)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(int(index), result) for index, result in conn.execute(query)]

    def rows_with_files(self, batch_id: str, limit: int) -> list[int]:
        """The indexes of the first ``limit`` rows of a batch that made files, in index order."""
        directory = self._artifacts / batch_id
        if not directory.is_dir():
            return []
        indexes = sorted(int(path.name) for path in directory.iterdir() if path.name.isdigit() and path.is_dir())
        found: list[int] = []
        for index in indexes:
            if len(found) >= limit:
                break
            if self.row_files(batch_id, index):
                found.append(index)
        return found

    def row_directory(self, batch_id: str, index: int) -> Path:
        """Where a batch row's files are."""
        return self._artifacts / batch_id / str(index)

    # -- batches: receiving ----------------------------------------------------------------------------------

    def insert_receiving_batch(self, batch: Mapping[str, Any]) -> None:
        """Add a batch in the invisible state ``receiving``, with no rows yet.

        Raises:
            DuplicateIdempotencyKey: The owner has a batch with this Idempotency-Key.

        """
        labels = batch.get("labels") or {}
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.insert(_db.batches).values(
                        **batch, state=RECEIVING, total=0, lease_expires=time.time() + RECEIPT_LEASE_SECONDS
                    )
                )
                if labels:
                    conn.execute(
                        sa.insert(_db.batch_labels),
                        [{"batch_id": batch["id"], "key": key, "value": value} for key, value in labels.items()],
                    )
        except sa.exc.IntegrityError:
            raise DuplicateIdempotencyKey from None

    def insert_rows(
        self, batch_id: str, first_index: int, inputs: list[str], passthrough: list[str | None] | None = None
    ) -> None:
        """Add pending rows (their inputs as JSON texts), indexes from ``first_index`` on, in one transaction.

        ``passthrough``: each row's passthrough values as a JSON object's text (the batch declared passthrough
        columns), in the order of ``inputs``.
        """
        extras = None if passthrough is None else "[" + ",".join(extra or "{}" for extra in passthrough) + "]"
        self.insert_slice(batch_id, first_index, "[" + ",".join(inputs) + "]", extras)

    def insert_slice(self, batch_id: str, first_index: int, inputs: str, passthrough: str | None = None) -> None:
        """:meth:`insert_rows` with the rows' inputs (and passthrough values) as JSON arrays' texts."""
        with self.engine.begin() as conn:
            if passthrough is None:
                conn.exec_driver_sql(_INSERT_SLICE[conn.dialect.name], (batch_id, first_index, inputs))
            else:
                sql = _INSERT_SLICE_PASSTHROUGH[conn.dialect.name]
                conn.exec_driver_sql(sql, (batch_id, first_index, inputs, passthrough))
            # A receipt still arriving keeps its lease: other replicas remove only receipts whose replica died.
            conn.execute(
                sa.update(_db.batches)
                .where(_db.batches.c.id == batch_id)
                .values(lease_expires=time.time() + RECEIPT_LEASE_SECONDS)
            )

    def open_batch(self, batch_id: str, total: int, request_hash: str) -> None:
        """Make a received batch ``pending`` (visible, and ready for the engine)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(_db.batches)
                .where(_db.batches.c.id == batch_id)
                .values(
                    state="pending",
                    total=total,
                    request_hash=request_hash,
                    lease_expires=time.time() + self._lease_seconds,
                )
            )

    def remove_unfinished_receipts(self, every: bool = True) -> None:
        """Remove the batches (rows and files) whose receiving or deleting a stopped server never finished.

        Args:
            every: All of them (the only server of its database starting); else only those whose lease ran out
                (their replica died: the other receipts are still arriving at a live replica).

        """
        batches = _db.batches.c
        query = sa.select(batches.id).where(batches.state == RECEIVING)
        if not every:
            query = query.where(sa.or_(batches.lease_expires.is_(None), batches.lease_expires < time.time()))
        with self.engine.connect() as conn:
            stale = list(conn.execute(query).scalars())
        for batch_id in stale:
            self.delete_batch(batch_id)

    # -- batches: the engine ---------------------------------------------------------------------------------

    def unfinished_batch_ids(self) -> list[str]:
        """Batches that have not finished (to resume at start-up)."""
        with self.engine.connect() as conn:
            query = sa.select(_db.batches.c.id).where(_db.batches.c.state.in_(UNFINISHED_STATES))
            return list(conn.execute(query).scalars())

    def start_batch(self, batch_id: str) -> Record:
        """Mark a batch ``inProgress``; returns its row as it was."""
        with self.engine.begin() as conn:
            batch = conn.execute(sa.select(_db.batches).where(_db.batches.c.id == batch_id)).mappings().one()
            batches = _db.batches.c
            now = time.time()
            # The rate is measured from this run's start (a resumed or retried batch afresh, see summary()).
            conn.execute(
                sa.update(_db.batches)
                .where(batches.id == batch_id)
                .values(
                    state="inProgress",
                    started=sa.func.coalesce(batches.started, now),
                    run_started=now,
                    run_base_count=batches.complete_count + batches.failed_count,
                )
            )
        return batch

    def _finished(self) -> dict[str, Any]:
        """``UPDATE batches`` values of a batch that finishes now: its finish time, and when it expires.

        ``expires_at`` is its ``expiresAfter`` from now, else the server's retention; NULL (kept for ever) when
        neither is set.
        """
        now = time.time()
        expires_after: sa.ColumnElement[Any] = _db.batches.c.expires_after
        if self._retention is not None:
            expires_after = sa.func.coalesce(expires_after, self._retention)
        return {"completed": now, "expires_at": expires_after + now}

    def complete_batch(self, batch_id: str) -> None:
        """End a batch that ran all its rows ``complete`` (unless it was ended otherwise meanwhile)."""
        with self.engine.begin() as conn:
            ended = conn.execute(
                sa.update(_db.batches)
                .where(_db.batches.c.id == batch_id, _db.batches.c.state == "inProgress")
                .values(state="complete", **self._finished(), **_NO_LEASE)
            ).rowcount
            if ended:
                self._enqueue_webhook(conn, batch_id, "batch.completed")

    def cancel_batch(self, batch_id: str, result: dict[str, Any]) -> None:
        """End an unfinished batch ``canceled``; rows without a result get ``result``."""
        with self.engine.begin() as conn:
            close_leftovers(conn, batch_id, result, "canceled")
            ended = conn.execute(
                sa.update(_db.batches)
                .where(_db.batches.c.id == batch_id, _db.batches.c.state.in_(UNFINISHED_STATES))
                .values(state="canceled", **self._finished(), **_NO_LEASE)
            ).rowcount
            if ended:
                self._enqueue_webhook(conn, batch_id, "batch.canceled")

    def fail_batch(self, batch_id: str, reason: str, result: dict[str, Any], leftover_state: str = "failed") -> None:
        """End a batch ``failed`` with ``reason``; rows without a result get ``result``, in ``leftover_state``.

        A batch its failure policy stopped gives them ``canceled``: they never ran, and did not fail.
        """
        reason = reason.replace("\x00", "\\x00")  # a service's own error text may hold one: PostgreSQL's cannot
        with self.engine.begin() as conn:
            close_leftovers(conn, batch_id, result, leftover_state)
            ended = conn.execute(
                sa.update(_db.batches)
                .where(_db.batches.c.id == batch_id)
                .values(state="failed", error_message=reason, **self._finished(), **_NO_LEASE)
            ).rowcount
            if ended:
                self._enqueue_webhook(conn, batch_id, "batch.failed")

    def record_results(self, batch_id: str, results: Mapping[int, StoredResult], started: Collection[int] = ()) -> None:
        """Store results, once each, and count the attempts of rows that started (see :func:`record_results`)."""
        with self.engine.begin() as conn:
            record_results(conn, batch_id, results, started)
            if results:
                self._progress_webhook(conn, batch_id)

    def record_attempts(
        self,
        batch_id: str,
        results: Mapping[int, StoredResult],
        started: Collection[int],
        item_retries: int,
        counts: bool,
    ) -> tuple[dict[int, int], Record | None]:
        """:meth:`record_results`, but retryable failures with retries left are held for a retry instead.

        Args:
            batch_id: The batch.
            results: Row index -> result.
            started: Rows that reported a start since the last write.
            item_retries: The batch's ``itemRetries``.
            counts: Also read the batch's counts after the write (for its failure policy).

        Returns:
            The rows held (index -> retries they had before this one; see :func:`hold_for_retry`), and the batch's
            ``total``, ``complete_count`` and ``failed_count`` when ``counts``.

        """
        retryable = {index: result for index, result in results.items() if result.retryable and not result.success}
        with self.engine.begin() as conn:
            held = hold_for_retry(conn, batch_id, retryable, started, item_retries) if retryable else {}
            record_results(
                conn,
                batch_id,
                {index: result for index, result in results.items() if index not in held},
                [index for index in started if index not in held],
            )
            if results:
                self._progress_webhook(conn, batch_id)
            if not counts:
                return held, None
            batches = _db.batches.c
            query = sa.select(batches.total, batches.complete_count, batches.failed_count).where(batches.id == batch_id)
            return held, conn.execute(query).mappings().one()

    def without_result(self, batch_id: str, rows: list[Row]) -> list[Row]:
        """Those of ``rows`` that have no result yet."""
        with self.engine.connect() as conn:
            waiting = _waiting_rows(conn, batch_id, [index for index, _ in rows])
        return [row for row in rows if row[0] in waiting]

    def pending_rows(self, batch_id: str, after: int, limit: int) -> list[Row]:
        """Up to ``limit`` rows without a result after index ``after``, in index order, as ``(index, inputs)``.

        The inputs are their JSON text, which the worker parses: parsing a million records here, only to have
        them pickled for the workers, cost the server (which also hosts the scheduler) more than the workers
        spent running them.
        """
        rows = _db.batch_rows.c
        with self.engine.connect() as conn:
            page = conn.execute(
                sa.select(rows.idx, sa.type_coerce(rows.inputs, sa.Text))
                .where(rows.batch_id == batch_id, rows.idx > after, rows.seq.is_(None))
                .order_by(rows.idx)
                .limit(limit)
            ).all()
        return [(index, inputs) for index, inputs in page]

    # -- batches: leases (see _batch) ------------------------------------------------------------------------

    def claim_batch(self, batch_id: str, owner: str, force: bool = False) -> bool:
        """Take the lease of an unfinished batch that is free, expired or ``owner``'s already; whether it is ours.

        Args:
            batch_id: The batch.
            owner: The replica.
            force: Whatever lease it has (the only server of a SQLite database, starting: its holder is gone).

        """
        batches = _db.batches.c
        now = time.time()
        query = sa.update(_db.batches).where(batches.id == batch_id, batches.state.in_(UNFINISHED_STATES))
        if not force:
            query = query.where(
                sa.or_(batches.lease_owner.is_(None), batches.lease_owner == owner, batches.lease_expires < now)
            )
        with self.engine.begin() as conn:
            claimed = conn.execute(query.values(lease_owner=owner, lease_expires=now + self._lease_seconds)).rowcount
        return bool(claimed)

    def claim_free_batches(self, owner: str, limit: int) -> list[str]:
        """Take the leases of up to ``limit`` unfinished batches nobody holds (their replica died), oldest first.

        ``FOR UPDATE SKIP LOCKED``: replicas claiming at the same moment skip each other's rows instead of waiting
        for them, and never both take one (SQLite has one writer and ignores the clause).
        """
        batches = _db.batches.c
        now = time.time()
        unowned = sa.and_(
            batches.state.in_(UNFINISHED_STATES),
            sa.or_(batches.lease_owner.is_(None), batches.lease_expires < now),
            sa.or_(batches.lease_owner.is_(None), batches.lease_owner != owner),
        )
        free = (
            sa.select(batches.id)
            .where(unowned)
            .order_by(batches.created)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claimed = []
        with self.engine.begin() as conn:
            for batch_id in conn.execute(free).scalars().all():
                # The condition again: SQLite has no row locks, and another thread may have claimed it meanwhile.
                taken = conn.execute(
                    sa.update(_db.batches)
                    .where(batches.id == batch_id, unowned)
                    .values(lease_owner=owner, lease_expires=now + self._lease_seconds)
                ).rowcount
                if taken:
                    claimed.append(batch_id)
        return claimed

    def renew_leases(self, owner: str, batch_ids: Iterable[str]) -> tuple[set[str], dict[str, str]]:
        """Renew ``owner``'s leases on these batches; returns those still its, and their stop requests (id -> reason).

        A batch missing from the first was taken over by another replica (this one missed renewing it in time).
        """
        batches = _db.batches.c
        listed = list(batch_ids)
        now = time.time()
        kept: set[str] = set()
        stops: dict[str, str] = {}
        with self.engine.begin() as conn:
            for part in _in_slices(listed):
                mine = (batches.id.in_(part), batches.lease_owner == owner)
                conn.execute(sa.update(_db.batches).where(*mine).values(lease_expires=now + self._lease_seconds))
                for batch_id, stop in conn.execute(sa.select(batches.id, batches.stop_requested).where(*mine)):
                    kept.add(batch_id)
                    if stop is not None:
                        stops[batch_id] = stop
        return kept, stops

    def request_stop(self, batch_id: str, reason: str) -> Record | None:
        """Ask the replica driving a batch to stop it ("" cancel, else fail it with the reason); the batch after.

        The first request's reason stays (a cancel then a service delete stays a cancel).
        """
        batches = _db.batches.c
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(_db.batches)
                .where(batches.id == batch_id, batches.state.in_(UNFINISHED_STATES))
                .values(stop_requested=sa.func.coalesce(batches.stop_requested, reason))
            )
            return conn.execute(sa.select(_db.batches).where(batches.id == batch_id)).mappings().first()

    def batch_state(self, batch_id: str) -> Record | None:
        """A batch's state and lease (None: no such batch)."""
        batches = _db.batches.c
        query = sa.select(batches.state, batches.lease_owner, batches.lease_expires).where(batches.id == batch_id)
        with self.engine.connect() as conn:
            return conn.execute(query).mappings().first()

    # -- webhooks (see _webhooks) ----------------------------------------------------------------------------

    def _enqueue_webhook(self, conn: sa.Connection, batch_id: str, event: str) -> None:
        """Add a batch's event to the outbox, in the caller's transaction, when the batch has a callback URL."""
        self._progress_checked.pop(batch_id, None)
        if self.webhook_payload is None:
            return
        batch = conn.execute(sa.select(_db.batches).where(_db.batches.c.id == batch_id)).mappings().first()
        if batch is None or not batch["callback_url"]:
            return
        now = time.time()
        conn.execute(
            sa.insert(_db.webhook_deliveries).values(
                id=_webhook_rules.new_message_id(),
                batch_id=batch_id,
                owner=batch["owner"],
                event=event,
                url=batch["callback_url"],
                payload=self.webhook_payload(batch, event),
                state="pending",
                attempts=0,
                last_error="",
                created=now,
                next_attempt=now,
            )
        )

    def _progress_webhook(self, conn: sa.Connection, batch_id: str) -> None:
        """Add a ``batch.progress`` event when the batch wants them and none was added in the last 10 s.

        The batch is read at most every 10 s per batch (results are written every tick); the outbox is asked too,
        so a replica that took the batch over does not send one sooner.
        """
        now = time.time()
        if now - self._progress_checked.get(batch_id, 0.0) < _webhook_rules.PROGRESS_SECONDS:
            return
        self._progress_checked[batch_id] = now
        batches, deliveries = _db.batches.c, _db.webhook_deliveries.c
        wanted = conn.execute(
            sa.select(batches.callback_progress).where(
                batches.id == batch_id, batches.callback_url.is_not(None), batches.state == "inProgress"
            )
        ).scalar()
        if not wanted:
            return
        last = conn.execute(
            sa.select(sa.func.max(deliveries.created)).where(
                deliveries.batch_id == batch_id, deliveries.event == "batch.progress"
            )
        ).scalar()
        if last is None or now - last >= _webhook_rules.PROGRESS_SECONDS:
            self._enqueue_webhook(conn, batch_id, "batch.progress")
            self._progress_checked[batch_id] = now

    def webhook_secret(self, user: str, rotate: bool = False) -> str:
        """``user``'s signing secret, created on first use; with ``rotate`` a new one (the old signs 24 h more)."""
        secrets_c = _db.webhook_secrets.c
        for _ in range(2):  # a concurrent first use may insert it first: read it then
            try:
                with self.engine.begin() as conn:
                    mine = sa.select(_db.webhook_secrets).where(secrets_c.user_name == user).with_for_update()
                    row = conn.execute(mine).mappings().first()
                    if row is None:
                        secret = _webhook_rules.new_secret()
                        conn.execute(sa.insert(_db.webhook_secrets).values(user_name=user, secret=secret))
                        return secret
                    if not rotate:
                        return str(row["secret"])
                    secret = _webhook_rules.new_secret()
                    conn.execute(
                        sa.update(_db.webhook_secrets)
                        .where(secrets_c.user_name == user)
                        .values(
                            secret=secret,
                            previous_secret=row["secret"],
                            previous_until=time.time() + _webhook_rules.ROTATION_OVERLAP_SECONDS,
                        )
                    )
                    return secret
            except sa.exc.IntegrityError:
                continue
        raise RuntimeError("could not create the webhook secret")

    def webhook_signing_secrets(self, user: str) -> list[str]:
        """The secrets that sign ``user``'s events now: the current one, and the one it replaced for 24 h."""
        current = self.webhook_secret(user)
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(_db.webhook_secrets).where(_db.webhook_secrets.c.user_name == user))
                .mappings()
                .one()
            )
        keep_previous = row["previous_secret"] and (row["previous_until"] or 0) > time.time()
        return [current, row["previous_secret"]] if keep_previous else [current]

    def webhook_deliveries(self, batch_id: str) -> list[Record]:
        """A batch's deliveries, oldest first."""
        deliveries = _db.webhook_deliveries.c
        query = (
            sa.select(_db.webhook_deliveries)
            .where(deliveries.batch_id == batch_id)
            .order_by(deliveries.created, deliveries.id)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).mappings().all())

    def redeliver_webhook(self, batch_id: str, delivery_id: str) -> Record | None:
        """Queue a batch's delivery again now, attempts from 0 (None: the batch has no such delivery).

        Its lease goes too: an attempt under way when it is redelivered is not recorded, and it is sent again.
        """
        deliveries = _db.webhook_deliveries.c
        mine = (deliveries.id == delivery_id, deliveries.batch_id == batch_id)
        with self.engine.begin() as conn:
            queued = conn.execute(
                sa.update(_db.webhook_deliveries)
                .where(*mine)
                .values(
                    state="pending",
                    attempts=0,
                    last_status=None,
                    last_error="",
                    delivered=None,
                    next_attempt=time.time(),
                    lease_owner=None,
                    lease_expires=None,
                )
            ).rowcount
            if not queued:
                return None
            return conn.execute(sa.select(_db.webhook_deliveries).where(*mine)).mappings().one()

    def claim_webhook_deliveries(self, owner: str, limit: int, lease_seconds: float) -> list[dict[str, Any]]:
        """Lease up to ``limit`` due deliveries for replica ``owner``; each with its owner's signing ``secrets``.

        ``FOR UPDATE SKIP LOCKED`` as in :meth:`claim_free_batches`: replicas claiming at once skip each other's.
        """
        deliveries = _db.webhook_deliveries.c
        now = time.time()
        due = sa.and_(
            deliveries.state == "pending",
            deliveries.next_attempt <= now,
            sa.or_(deliveries.lease_owner.is_(None), deliveries.lease_expires < now),
        )
        query = (
            sa.select(deliveries.id)
            .where(due)
            .order_by(deliveries.next_attempt)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claimed: list[dict[str, Any]] = []
        with self.engine.begin() as conn:
            for delivery_id in conn.execute(query).scalars().all():
                taken = conn.execute(
                    sa.update(_db.webhook_deliveries)
                    .where(deliveries.id == delivery_id, due)
                    .values(lease_owner=owner, lease_expires=now + lease_seconds)
                ).rowcount
                if taken:
                    row = (
                        conn.execute(sa.select(_db.webhook_deliveries).where(deliveries.id == delivery_id))
                        .mappings()
                        .one()
                    )
                    claimed.append(dict(row))
        for delivery in claimed:
            delivery["secrets"] = self.webhook_signing_secrets(delivery["owner"])
        return claimed

    def record_webhook_attempt(self, delivery_id: str, owner: str, status: int | None, error: str | None) -> None:
        """Record an attempt of a delivery ``owner`` leased (a lease lost meanwhile: not recorded).

        Delivered when ``error`` is None; else due again after the backoff, or ``failed`` after three days.
        """
        deliveries = _db.webhook_deliveries.c
        mine = (deliveries.id == delivery_id, deliveries.lease_owner == owner)
        now = time.time()
        with self.engine.begin() as conn:
            attempts = conn.execute(sa.select(deliveries.attempts).where(*mine)).scalar()
            if attempts is None:
                return
            attempts += 1
            values: dict[str, Any] = {
                "attempts": attempts,
                "last_status": status,
                "last_error": (error or "")[:1000],
                "lease_owner": None,
                "lease_expires": None,
            }
            if error is None:
                values.update(state="delivered", delivered=now, next_attempt=None)
            elif _webhook_rules.gives_up(attempts):
                values.update(state="failed", next_attempt=None)
            else:
                values.update(next_attempt=now + _webhook_rules.retry_delay(attempts))
            conn.execute(sa.update(_db.webhook_deliveries).where(*mine).values(**values))

    def release_webhook_leases(self) -> None:
        """Free every delivery's lease (the only server of a SQLite database, starting: their holder is gone)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(_db.webhook_deliveries)
                .where(_db.webhook_deliveries.c.lease_owner.is_not(None))
                .values(lease_owner=None, lease_expires=None)
            )

    # -- quotas ----------------------------------------------------------------------------------------------

    def usage(self, owner: str) -> Usage:
        """What ``owner`` has queued and stored (see :class:`Usage`)."""
        batches = _db.batches.c
        left = batches.total - batches.complete_count - batches.failed_count - batches.canceled_count
        with self.engine.connect() as conn:
            queued = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(left), 0)).where(
                    batches.owner == owner, batches.state.in_(UNFINISHED_STATES)
                )
            ).scalar_one()
            snapshots = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(_db.snapshots.c.content_size), 0)).where(
                    _db.snapshots.c.owner == owner
                )
            ).scalar_one()
            sessions = list(conn.execute(sa.select(_db.sessions.c.id).where(_db.sessions.c.owner == owner)).scalars())
        workspaces = sum(self.workspace_bytes(session_id) for session_id in sessions)
        return Usage(int(queued), self._input_bytes(owner) + int(snapshots) + workspaces)

    def workspace_bytes(self, session_id: str) -> int:
        """The size of a session's workspace objects."""
        directory = self.session_dir(session_id)
        return sum(path.stat().st_size for path in directory.iterdir()) if directory.is_dir() else 0

    def open_batch_within(
        self, batch_id: str, total: int, request_hash: str, owner: str, max_rows: int, max_bytes: int
    ) -> Usage | None:
        """:meth:`open_batch` unless the batch takes ``owner`` over a quota (0: none); then the usage without it.

        One statement checks and opens, so concurrent starts of one user cannot all slip under the quota. The
        batch's records are measured (``input_bytes``) only when a bytes quota applies: it reads every row.
        """
        batches = _db.batches.c
        size = besides = 0
        if max_bytes:
            row_bytes = sa.func.length(sa.cast(_db.batch_rows.c.inputs, sa.LargeBinary))
            with self.engine.connect() as conn:
                size = conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(row_bytes), 0)).where(_db.batch_rows.c.batch_id == batch_id)
                ).scalar_one()
            # Snapshots and workspaces are counted before: only batches are checked in the statement.
            now = self.usage(owner)
            besides = now.stored_bytes - self._input_bytes(owner)
        others = sa.select(batches.id).where(batches.owner == owner, batches.id != batch_id)
        left = batches.total - batches.complete_count - batches.failed_count - batches.canceled_count
        queued = sa.select(sa.func.coalesce(sa.func.sum(left), 0)).where(
            batches.owner == owner, batches.state.in_(UNFINISHED_STATES)
        )
        stored = sa.select(sa.func.coalesce(sa.func.sum(batches.input_bytes), 0)).where(batches.id.in_(others))
        conditions = []
        if max_rows:
            conditions.append(queued.scalar_subquery() + total <= max_rows)
        if max_bytes:
            conditions.append(stored.scalar_subquery() + size + besides <= max_bytes)
        with self.engine.begin() as conn:
            if conditions and conn.dialect.name == "postgresql":
                # SQLite runs one writer at a time; PostgreSQL's concurrent starts of one user (at several replicas)
                # would each see the others' batches not yet open, and all slip under the quota: they take turns.
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(owner))))
            opened = conn.execute(
                sa.update(_db.batches)
                .where(batches.id == batch_id, *conditions)
                .values(
                    state="pending",
                    total=total,
                    request_hash=request_hash,
                    input_bytes=size,
                    lease_expires=time.time() + self._lease_seconds,
                )
            ).rowcount
        if opened:
            return None
        return self.usage(owner)

    def _input_bytes(self, owner: str) -> int:
        batches = _db.batches.c
        with self.engine.connect() as conn:
            query = sa.select(sa.func.coalesce(sa.func.sum(batches.input_bytes), 0)).where(batches.owner == owner)
            return int(conn.execute(query).scalar_one())


def _service_row(conn: sa.Connection, name: str, version: str) -> Record:
    services = _db.services.c
    query = sa.select(_db.services).where(services.name == name, services.version == version)
    row = conn.execute(query).mappings().first()
    if row is None:
        raise not_found(f"service {name} version {version}", "version")
    return row


def _unfinished_batches_of(conn: sa.Connection, name: str, version: str) -> list[str]:
    batches = _db.batches.c
    query = sa.select(batches.id).where(
        batches.name == name, batches.version == version, batches.state.in_(UNFINISHED_STATES)
    )
    return list(conn.execute(query).scalars())


def disk_full(error: BaseException) -> bool:
    """Whether an error (or one it wraps) means the disk is full: ENOSPC, EDQUOT, SQLITE_FULL or PostgreSQL's 53100."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(current, "sqlstate", None) == _PG_DISK_FULL:
            return True
        if isinstance(current, sqlite3.Error) and (
            getattr(current, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
            or "database or disk is full" in str(current)
        ):
            return True
        wrapped = getattr(current, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
        current = wrapped if isinstance(wrapped, BaseException) else current.__cause__ or current.__context__
    return False


def holds_nul(error: BaseException) -> bool:
    """Whether a database error says a text value held the NUL character (PostgreSQL's text cannot; SQLite's can).

    psycopg refuses such a value before sending it, so nothing was written.
    """
    wrapped = getattr(error, "orig", None)
    return isinstance(error, sa.exc.DataError) and "NUL (0x00)" in str(wrapped)


NUL_MESSAGE = "text may not hold the NUL character (\\u0000)"


def service_key(row: Record) -> str:
    """A service version's revision as the batches that run it record it (their spec's ``key``).

    The creation time is in it: a version deleted and published again is another service.
    """
    return f"{row['name']}/{row['version']}/{row['revision']}/{row['created']}"


def _check_same_service(conn: sa.Connection, batch: Record) -> None:
    """Refuse to retry a batch whose service version changed since it started: the retried rows would run other code.

    Raises:
        ApiError: 409 naming the version: it was deleted, or updated (a PATCH) since the batch started.

    """
    name, version = batch["name"], batch["version"]
    query = sa.select(_db.services).where(_db.services.c.name == name, _db.services.c.version == version)
    service = conn.execute(query).mappings().first()
    if service is None:
        raise ApiError(
            409,
            f"service {name} version {version} was deleted since the batch started; it cannot be retried",
            "version",
        )
    if service_key(service) != batch["spec"]["key"]:
        raise ApiError(
            409,
            f"service {name} version {version} was updated since the batch started; retrying would run other code "
            "than its other rows ran: start a new batch instead",
            "version",
        )


def _batch_row(conn: sa.Connection, batch_id: str, name: str, version: str) -> Record | None:
    batches = _db.batches.c
    query = sa.select(_db.batches).where(batches.id == batch_id, batches.name == name, batches.version == version)
    return conn.execute(query).mappings().first()


def close_leftovers(conn: sa.Connection, batch_id: str, result: dict[str, Any], state: str) -> None:
    """Give every row without a result this one, in one statement (a million canceled rows took minutes).

    Their completion numbers follow the batch's last one in index order (``last_seq + 1 + idx``: unique and
    increasing, if not contiguous), so the polling cursor sees each row exactly once.
    """
    rows = _db.batch_rows.c
    last_seq = _lock_last_seq(conn, batch_id)
    highest = conn.execute(
        sa.select(sa.func.max(rows.idx)).where(rows.batch_id == batch_id, rows.seq.is_(None))
    ).scalar_one()
    if highest is None:
        return
    closed = conn.exec_driver_sql(
        _db.driver_sql(
            conn, "UPDATE batch_rows SET state = ?, result = ?, seq = ? + 1 + idx WHERE batch_id = ? AND seq IS NULL"
        ),
        (state, stored_result(result).text, last_seq, batch_id),
    ).rowcount
    conn.execute(
        sa.update(_db.batches)
        .where(_db.batches.c.id == batch_id)
        .values(last_seq=last_seq + 1 + highest, **_counts_plus({state: closed}))
    )


def _in_slices(values: Sequence[_V]) -> Iterator[Sequence[_V]]:
    """``values`` in slices short enough for one ``IN (...)`` each (SQLite's limit of bound variables)."""
    for start in range(0, len(values), _SQLITE_IN_LIMIT):
        yield values[start : start + _SQLITE_IN_LIMIT]


def _row_slices(conn: sa.Connection, indexes: Iterable[int]) -> Iterator[Sequence[int]]:
    """Row indexes in slices for one ``IN (...)`` each (:func:`_among`); on PostgreSQL sorted, each a short span.

    PostgreSQL: a batch just stored has no statistics yet (autovacuum analyzes it a minute later, if at all), so
    the planner thinks a batch has ~200 rows and reads all of them for an ``idx IN (...)``: 16 ms a flush of 200
    results at 100k rows, growing with the batch. A range of ``idx`` the planner always puts in the index scan.
    """
    if conn.dialect.name == "sqlite":
        yield from _in_slices(list(indexes))
        return
    part: list[int] = []
    for index in sorted(indexes):
        if part and (len(part) >= _SQLITE_IN_LIMIT or index - part[0] >= _PG_SPAN_ROWS):
            yield part
            part = []
        part.append(index)
    if part:
        yield part


def _among(conn: sa.Connection, part: Sequence[int]) -> sa.ColumnElement[bool]:
    """``batch_rows.idx IN part``, for a slice of :func:`_row_slices` (on PostgreSQL with its range: see there)."""
    idx = _db.batch_rows.c.idx
    if conn.dialect.name == "sqlite":
        return idx.in_(part)
    return sa.and_(idx.between(part[0], part[-1]), idx.in_(part))


def _waiting_rows(conn: sa.Connection, batch_id: str, indexes: Iterable[int]) -> dict[int, Any]:
    """Which of these rows have no result yet, each with its earlier attempts (``batch_rows.attempts``, or None)."""
    rows = _db.batch_rows.c
    waiting: dict[int, Any] = {}
    for part in _row_slices(conn, indexes):
        # The primary key finds each row; "seq IS NULL" is checked here, not in SQL, because in SQL it makes
        # SQLite pick the (batch_id, seq) index and scan every pending row of the batch: 100 ms a query at 1M.
        found = conn.execute(
            sa.select(rows.idx, rows.seq, rows.attempts).where(rows.batch_id == batch_id, _among(conn, part))
        )
        waiting.update((index, attempts) for index, seq, attempts in found if seq is None)
    return waiting


def hold_for_retry(
    conn: sa.Connection, batch_id: str, failures: Mapping[int, StoredResult], started: Collection[int], retries: int
) -> dict[int, int]:
    """Keep the error of each failed row that has retries left as an earlier attempt, instead of recording it.

    The row stays without a result (pending), its ``attempt`` is the run that failed, its ``attempts`` gain
    ``{"attempt": n, "errorMessage": ...}``, and the batch's ``retried_count`` counts it on its first retry.

    Args:
        conn: A connection inside a transaction.
        batch_id: The batch.
        failures: Retryable failed results by row index.
        started: Rows that reported a start since the last write (their run is counted here).
        retries: The batch's ``itemRetries``: a row with that many earlier attempts is not held.

    Returns:
        The rows held: index -> the retries it had before this one (for the backoff).

    """
    held: dict[int, int] = {}
    if retries <= 0:
        return held
    rows = _db.batch_rows.c
    first_retries = 0
    for part in _row_slices(conn, sorted(failures)):
        found = conn.execute(
            sa.select(rows.idx, rows.seq, rows.attempt, rows.attempts).where(
                rows.batch_id == batch_id, _among(conn, part)
            )
        ).all()
        for index, seq, attempt, attempts in found:
            earlier = list(attempts or [])
            if seq is not None or len(earlier) >= retries:
                continue
            run = max(attempt + (1 if index in started else 0), len(earlier) + 1)
            error = str(json.loads(failures[index].text).get("errorMessage", ""))[:MAX_ATTEMPT_ERROR_CHARS]
            conn.execute(
                sa.update(_db.batch_rows)
                .where(rows.batch_id == batch_id, rows.idx == index, rows.seq.is_(None))
                .values(attempt=run, attempts=[*earlier, {"attempt": run, "errorMessage": error}])
            )
            held[index] = len(earlier)
            first_retries += not earlier
    if first_retries:
        conn.execute(
            sa.update(_db.batches)
            .where(_db.batches.c.id == batch_id)
            .values(retried_count=_db.batches.c.retried_count + first_retries)
        )
    return held


def _with_attempts(text: str, attempts: Any) -> str:
    """A stored result's JSON text with the row's earlier attempts added (``attempts``, as the contract has it)."""
    if not attempts:
        return text
    return f'{text.rstrip()[:-1]},"attempts":{json.dumps(attempts, separators=(",", ":"))}}}'


def record_results(
    conn: sa.Connection, batch_id: str, results: Mapping[int, StoredResult], started: Collection[int] = ()
) -> None:
    """Give each row without a result its result and the next completion sequence number.

    A row that already has a result keeps it: a result is never recorded twice.

    Args:
        conn: A connection inside a transaction.
        batch_id: The batch.
        results: Row index -> result; the row's state is ``complete`` or ``failed`` from its ``success``.
        started: Rows that reported a start since the last write: one more attempt each. A row with a result has
            at least one (a row holding the GIL reports no start).

    """
    still_running = [index for index in started if index not in results]
    rows = _db.batch_rows.c
    for part in _row_slices(conn, still_running):
        conn.execute(
            sa.update(_db.batch_rows)
            .where(rows.batch_id == batch_id, _among(conn, part), rows.seq.is_(None))
            .values(attempt=rows.attempt + 1)
        )
    if not results:
        return
    # Which of these rows still lack a result, asked once, then one executemany: a statement per row made the
    # database the bottleneck of large batches.
    indexes = sorted(results)
    # Locked first (PostgreSQL): a replica canceling or taking the batch over meanwhile waits, so no completion
    # number is given twice and no row gets two results.
    last_seq = _lock_last_seq(conn, batch_id)
    waiting = _waiting_rows(conn, batch_id, indexes)
    if not waiting:
        return
    parameters = []
    added: Counter[str] = Counter()
    for index in indexes:
        if index not in waiting:
            continue
        result = results[index]
        state = "complete" if result.success else "failed"
        added[state] += 1
        last_seq += 1
        attempts = 1 if index in started else 0
        text = _with_attempts(result.text, waiting[index])
        parameters.append((state, text, last_seq, attempts, attempts, batch_id, index))
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_db.driver_sql(conn, _RECORD_RESULT_SQL), parameters)
    else:
        # One statement a slice, its rows' values as arrays: an executemany ran a statement a row (36 us each).
        by_index = {row[-1]: row for row in parameters}
        # The prepared (generic) plan cannot know the arrays' length and joins them in a nested loop that runs
        # unnest again for every row (25 ms for 200 rows instead of 2); a hash join it is, for this transaction.
        conn.exec_driver_sql("SET LOCAL enable_nestloop = off")
        for part in _row_slices(conn, by_index):
            states, texts, seqs, attempted = zip(*(by_index[index][:4] for index in part), strict=True)
            values = (list(states), list(texts), list(seqs), list(attempted), list(part))
            conn.exec_driver_sql(_RECORD_RESULTS_PG, (*values, batch_id, part[0], part[-1]))
    conn.execute(
        sa.update(_db.batches).where(_db.batches.c.id == batch_id).values(last_seq=last_seq, **_counts_plus(added))
    )


_RECORD_RESULT_SQL = (
    "UPDATE batch_rows SET state = ?, result = ?, seq = ?, "
    "attempt = CASE WHEN attempt + ? < 1 THEN 1 ELSE attempt + ? END "
    "WHERE batch_id = ? AND idx = ? AND seq IS NULL"
)


# PostgreSQL: _RECORD_RESULT_SQL for a slice of rows (see _row_slices) in one statement, their values as arrays.
_RECORD_RESULTS_PG = (
    "UPDATE batch_rows AS r SET state = v.state, result = v.result, seq = v.seq, "
    "attempt = CASE WHEN r.attempt + v.started < 1 THEN 1 ELSE r.attempt + v.started END "
    "FROM unnest(%s::text[], %s::text[], %s::int[], %s::int[], %s::int[]) AS v(state, result, seq, started, idx) "
    "WHERE r.batch_id = %s AND r.idx BETWEEN %s AND %s AND r.idx = v.idx AND r.seq IS NULL"
)
_PG_SPAN_ROWS = 4 * _SQLITE_IN_LIMIT  # on PostgreSQL a slice's last row index is less than this after its first


def _lock_last_seq(conn: sa.Connection, batch_id: str) -> int:
    """The batch's last completion number, its row locked until the transaction ends (SQLite: one writer anyway)."""
    query = sa.select(_db.batches.c.last_seq).where(_db.batches.c.id == batch_id).with_for_update()
    return int(conn.execute(query).scalar_one())


def _counts_plus(added: Mapping[str, int]) -> dict[str, Any]:
    """``UPDATE batches`` values that add ``added`` (row state -> rows) to the batch's per-state counts."""
    return {
        _db.COUNTED_STATES[state]: _db.batches.c[_db.COUNTED_STATES[state]] + count
        for state, count in added.items()
        if count
    }
