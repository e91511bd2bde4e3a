"""Receiving a batch: records are checked and stored in slices while the body is still arriving.

Neither the server's memory nor its event loop depends on the batch's size: a 1M-row body used to be parsed,
hashed and inserted whole on the event loop, which held up every other request for seconds and grew the server
by hundreds of megabytes. The event loop hands the body's chunks to a thread that checks and stores them as they
come (the upload and the storing overlap), in short transactions (a long one would block the batch engine's
writes), under a batch in the internal state ``receiving`` that no request can see. A body with a bad record
removes what was stored, and a server that stops mid-way removes it when it starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import itertools
import queue
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from fastapi import Request

from batchscore_server._errors import ApiError
from batchscore_server._store import RECEIVING, DuplicateIdempotencyKey, Store
from batchscore_server._validation import iter_batch_rows, iter_batch_slices

__all__ = ["RECEIVING", "BodyAbortedError", "DuplicateIdempotencyKey", "Received", "receive_batch", "store_batch"]
SLICE_ROWS = 5_000  # rows a transaction: ~20 ms of holding SQLite's write lock
PIPE_CHUNKS = 32  # body chunks (~64 KiB each) waiting for the storing thread at most


class BodyAbortedError(Exception):
    """The request body did not arrive whole (too large, or the client went away); storing stops."""


class _BodyPipe(io.RawIOBase):
    """The request body as a blocking file for the storing thread, filled by the event loop without blocking."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._chunks: queue.Queue[bytes | None] = queue.Queue(PIPE_CHUNKS)
        self._pending = memoryview(b"")
        self._ended = False
        self._aborted = threading.Event()
        self._loop = loop
        self._room = asyncio.Event()  # set by the reader each time it takes a chunk

    def readable(self) -> bool:
        """It is."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the next chunks, waiting for them; 0 at the end of the body.

        Raises:
            BodyAbortedError: The body will not arrive whole.

        """
        while not self._pending:
            if self._aborted.is_set():
                raise BodyAbortedError
            if self._ended:
                return 0
            chunk = self._chunks.get()
            self._loop.call_soon_threadsafe(self._room.set)
            if chunk is None:
                self._ended = True
            else:
                self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def offer(self, chunk: bytes | None) -> bool:
        """Queue a chunk (``None``: the end) if there is room; never blocks."""
        try:
            self._chunks.put_nowait(chunk)
        except queue.Full:
            return False
        return True

    async def put(self, chunk: bytes | None, reader: asyncio.Future[Any]) -> None:
        """Queue a chunk (``None``: the end), waiting for room while the reader is busy.

        Once the reader has stopped (a bad record), the chunk is dropped: the rest of the body is read only so
        that the client gets its answer.
        """
        while not reader.done():
            self._room.clear()
            if self.offer(chunk):
                return
            room = asyncio.ensure_future(self._room.wait())
            await asyncio.wait({room, reader}, return_when=asyncio.FIRST_COMPLETED)
            room.cancel()

    def abort(self) -> None:
        """Make the reader fail at its next read (and wake it if it waits)."""
        self._aborted.set()
        self.offer(None)


@dataclass(frozen=True)
class Received:
    """What :func:`receive_batch` got.

    Attributes:
        total: Records stored (the batch is still ``receiving``: ``Store.open_batch`` makes it ``pending``).
        sha256: The body's SHA-256, hex.

    """

    total: int
    sha256: str


async def receive_batch(
    request: Request,
    limit: int,
    store: Store,
    batch: Mapping[str, Any],
    media_type: str,
    inputs: list[tuple[str, str]],
    passthrough: Sequence[str] = (),
) -> Received:
    """Store a batch's records while its body arrives: the loop reads and hashes, a thread checks and stores.

    A bad record stops the storing, but the body is still read to its end, so the client gets the 400 instead
    of a broken connection, and its hash is known for an Idempotency-Key that turns out to be taken.

    Args:
        request: The request whose body holds the records.
        limit: The largest body accepted, in bytes.
        store: The database.
        batch: The ``batches`` row to insert, without ``state`` and ``total``.
        media_type: The body's media type (see ``_validation.batch_media_type``).
        inputs: The service's inputs as ``(name, type)`` pairs.
        passthrough: The batch's passthrough column names (kept apart from the inputs, stored with each row).

    Returns:
        The records stored and the body's hash.

    Raises:
        ApiError: 413 naming ``body`` for a body over ``limit``; 400 naming the field of the first bad record.
        DuplicateIdempotencyKey: The batch's Idempotency-Key was taken; nothing was stored. Carries the body's
            hash as its argument.

    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the body is over the limit of {limit} bytes", "body")
    pipe = _BodyPipe(asyncio.get_running_loop())
    reader = io.BufferedReader(pipe, buffer_size=64 * 1024)
    storing = asyncio.ensure_future(
        asyncio.to_thread(store_batch, store, batch, reader, media_type, inputs, passthrough)
    )
    digest = hashlib.sha256()
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"the body is over the limit of {limit} bytes", "body")
            digest.update(chunk)
            await pipe.put(chunk, storing)
        await pipe.put(None, storing)
    except BaseException:
        pipe.abort()
        with contextlib.suppress(BaseException):
            await storing  # store_batch removes what it stored
        raise
    try:
        total = await storing
    except DuplicateIdempotencyKey:
        raise DuplicateIdempotencyKey(digest.hexdigest()) from None
    return Received(total, digest.hexdigest())


def store_batch(
    store: Store,
    batch: Mapping[str, Any],
    body: BinaryIO,
    media_type: str,
    inputs: list[tuple[str, str]],
    passthrough: Sequence[str] = (),
) -> int:
    """Check every record of ``body`` and store the batch with its rows; blocking (run it in a thread).

    Args:
        store: The database.
        batch: The ``batches`` row to insert, without ``state`` and ``total``.
        body: The body, readable in binary mode.
        media_type: Its media type (see ``_validation.batch_media_type``).
        inputs: The service's inputs as ``(name, type)`` pairs.
        passthrough: The batch's passthrough column names.

    Returns:
        The number of records; every row is stored, and the batch is still ``receiving``.

    Raises:
        ApiError: 400 naming the field of the first bad record; nothing is left stored.
        DuplicateIdempotencyKey: The batch's Idempotency-Key was taken; nothing was stored.
        BodyAbortedError: The body did not arrive whole; nothing is left stored.

    """
    batch_id = batch["id"]
    store.insert_receiving_batch(batch)
    total = 0
    try:
        if passthrough:
            records = iter_batch_rows(body, media_type, inputs, passthrough)
            while rows := list(itertools.islice(records, SLICE_ROWS)):
                texts = [text for text, _ in rows]
                store.insert_rows(batch_id, total, texts, [extra for _, extra in rows])
                total += len(texts)
        else:
            for count, array_text in iter_batch_slices(body, media_type, inputs, SLICE_ROWS):
                store.insert_slice(batch_id, total, array_text)
                total += count
    except BaseException:
        store.delete_batch(batch_id)
        raise
    return total
