"""Which start-up stage a server is in, so a start that fails or hangs can say where and why."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

DATABASE = "database"
DASK_CLUSTER = "Dask cluster"
CONSUME_POOL = "consume pool"
HTTP = "HTTP"


class StartupProgress:
    """The stage a starting server is in and, once one failed, the stage and its exception.

    The application's lifespan runs each stage inside :meth:`stage`; the thread that waits for the server to
    start reads :attr:`current` and :attr:`failure` (plain attribute reads: each is replaced whole).
    """

    def __init__(self) -> None:
        self.current = DATABASE
        self.failure: tuple[str, BaseException] | None = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Run one stage: it becomes :attr:`current`, and an exception it raises is kept as :attr:`failure`."""
        self.current = name
        try:
            yield
        except Exception as error:
            self.fail(name, error)
            raise

    def fail(self, name: str, error: BaseException) -> None:
        """Keep the first failure: a later one is usually a consequence of it."""
        with self._lock:
            if self.failure is None:
                self.failure = (name, error)
