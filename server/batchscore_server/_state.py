"""What the routes share: settings, the store, tokens, the batch engine and the consume pool."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from multiprocessing import get_context
from typing import Any, TypeVar

from pebble import ProcessFuture, ProcessPool

from batchscore_server import _db, _worker
from batchscore_server._auth import Authenticator, load_or_create_secret
from batchscore_server._batch import BatchEngine
from batchscore_server._datadir_lock import lock_data_dir
from batchscore_server._settings import Settings
from batchscore_server._store import Store
from batchscore_server._webhooks import AllowList, Dispatcher

_T = TypeVar("_T")


class Server:
    """The state of one running server (built before the event loop serves anything, so it may block).

    Args:
        settings: Where the data lives and how many workers run.

    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # First: a second server on this data directory must refuse before it touches anything (released in
        # the app's lifespan, or when this object goes).
        self.data_dir_lock = lock_data_dir(settings.data_dir)
        for directory in (settings.artifacts_dir, settings.objects_dir, settings.scratch_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.engine = _db.create_engine(settings.database)
        self.store = Store(settings, self.engine)
        self.auth = Authenticator(
            self.engine,
            load_or_create_secret(self.engine, settings.data_dir),
            settings.access_token_seconds,
            settings.refresh_token_seconds,
        )
        self.batches = BatchEngine(settings, self.store)
        self.webhook_allow = AllowList(settings.webhook_allow)
        self.webhooks = Dispatcher(self.store, self.webhook_allow, self.batches.replica_id, settings.shared_database)
        # Read once here: importlib.metadata reads files, which /status must not do on the event loop.
        self.version = version("batchscore")
        self._pool: ProcessPool | None = None
        self._consumes: set[ProcessFuture[Any]] = set()
        self.stopping = False

    def pool(self) -> ProcessPool:
        """The warm consume pool (rebuilt after it broke).

        Call it on the event loop's thread only: the pool's first processes are started by the calling thread, and
        die when it ends (see ``_worker.init_consume_process``).
        """
        if self._pool is not None and not self._pool.active:
            # Broken (all its processes died at once): its processes are reaped in the background, as joining
            # waits for each to stop.
            broken, self._pool = self._pool, None
            broken.stop()  # type: ignore[no-untyped-call]  # pebble leaves it unannotated
            threading.Thread(target=broken.join, name="consume-pool-reset", daemon=True).start()
        if self._pool is None:
            # pebble rather than ProcessPoolExecutor: it kills the process of a task that timed out or was canceled
            # (and starts another), where ProcessPoolExecutor can only wait for it.
            self._pool = ProcessPool(
                max_workers=self.settings.workers,
                initializer=_worker.init_consume_process,
                initargs=(os.getpid(), self.settings.worker_memory_bytes),
                # spawn: the server process runs threads (uvicorn, Dask client); forking it is unsafe.
                context=get_context("spawn"),
            )
        return self._pool

    async def warm_pool(self) -> None:
        """Start the consume pool's processes now, so the first consume does not pay for interpreter start-up."""
        pool = self.pool()
        await asyncio.gather(
            *(asyncio.wrap_future(pool.schedule(time.sleep, (0,))) for _ in range(self.settings.workers))
        )

    async def consume(
        self, spec: dict[str, Any], record: Any, time_limit: float, client_gone: Awaitable[object]
    ) -> ProcessFuture[dict[str, Any]]:
        """Run one consume in the pool; return its future once it has finished or was canceled.

        The consume's process is killed when it runs longer than ``time_limit`` seconds (the future then holds a
        TimeoutError), when ``client_gone`` completes first, when this request is canceled, and when the server
        stops (:meth:`stop_consumes`): nobody waits for its answer any more, and it must not hold a pool process.
        """
        arguments = (spec, record, str(self.settings.scratch_dir))
        return await self.run_in_pool(_worker.consume, arguments, time_limit, client_gone)

    async def check_service(
        self, spec: dict[str, Any], time_limit: float, client_gone: Awaitable[object]
    ) -> ProcessFuture[tuple[str, str] | None]:
        """Check in the pool that a service being published starts (``_worker.check_service``), as a consume runs.

        Its process is killed as a consume's is (a hung ``initCode`` cannot hold the publish, nor a pool process).
        """
        arguments = (spec, str(self.settings.scratch_dir))
        return await self.run_in_pool(_worker.check_service, arguments, time_limit, client_gone)

    async def run_in_pool(
        self, function: Callable[..., _T], arguments: tuple[Any, ...], time_limit: float, client_gone: Awaitable[object]
    ) -> ProcessFuture[_T]:
        """Run ``function(*arguments)`` in the pool with a consume's limits (see :meth:`consume`)."""
        future = self.pool().schedule(function, arguments, timeout=time_limit)
        self._consumes.add(future)
        done: asyncio.Future[Any] = asyncio.wrap_future(future)
        done.add_done_callback(_retrieve)
        watch: asyncio.Future[Any] = asyncio.ensure_future(client_gone)
        try:
            await asyncio.wait({done, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            future.cancel()  # type: ignore[no-untyped-call]  # a no-op once it has finished
            watch.cancel()
            self._consumes.discard(future)
        return future

    def stop_consumes(self) -> None:
        """Kill the running consumes (the server is stopping: their requests answer at once)."""
        self.stopping = True
        for future in list(self._consumes):
            future.cancel()  # type: ignore[no-untyped-call]

    def close_pool(self) -> None:
        """Stop the consume pool, killing what still runs (blocking)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()  # type: ignore[no-untyped-call]
            pool.join()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a consume's exception as seen: the route reads it from the pool's future, not this one."""
    if not future.cancelled():
        future.exception()
