"""What the routes share: settings, the store, tokens, the batch engine and the consume pool."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import version
from multiprocessing import get_context

from batchscore_server import _db
from batchscore_server._auth import Authenticator, load_or_create_secret
from batchscore_server._batch import BatchEngine
from batchscore_server._datadir_lock import lock_data_dir
from batchscore_server._settings import Settings
from batchscore_server._store import Store


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
        self.engine = _db.create_engine(settings.database_path)
        self.store = Store(settings, self.engine)
        self.auth = Authenticator(
            self.engine,
            load_or_create_secret(settings.data_dir),
            settings.access_token_seconds,
            settings.refresh_token_seconds,
        )
        self.batches = BatchEngine(settings, self.store)
        # Read once here: importlib.metadata reads files, which /status must not do on the event loop.
        self.version = version("batchscore")
        self._pool: ProcessPoolExecutor | None = None

    def pool(self) -> ProcessPoolExecutor:
        """The warm consume pool (rebuilt after a worker died)."""
        if self._pool is None:
            # spawn: the server process runs threads (uvicorn, Dask client); forking it is unsafe.
            self._pool = ProcessPoolExecutor(max_workers=self.settings.workers, mp_context=get_context("spawn"))
        return self._pool

    async def warm_pool(self) -> None:
        """Start the consume pool's processes now, so the first consume does not pay for interpreter start-up."""
        loop = asyncio.get_running_loop()
        pool = self.pool()
        await asyncio.gather(*(loop.run_in_executor(pool, time.sleep, 0) for _ in range(self.settings.workers)))

    def reset_pool(self) -> None:
        """Drop a broken pool; the next consume builds a new one."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close_pool(self) -> None:
        """Stop the consume pool."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
