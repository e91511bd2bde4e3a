"""Nothing blocks the server's event loop: a batch runs while pollers and other readers keep asking.

The server runs in this process, on an event loop of its own thread in asyncio's debug mode with
``slow_callback_duration`` at 100 ms: asyncio then logs ("Executing <callback> took X seconds") every callback that
held the loop longer. The clients run on another loop in the main thread; only the server's callbacks count.

Wall time alone makes a flaky test: on a busy machine (2 cores, several test runs) a tiny callback waits for a CPU,
and within the process it waits for the GIL, which the clients, Dask's scheduler thread and the server's own worker
threads hold (``json`` and ``hashlib`` hold it while they run) - measured: callbacks of 0.2 to 1.9 s wall that had
used a few milliseconds. So each callback of the server's loop is also timed by the CPU time of the loop's thread
(``time.thread_time``), and a logged callback fails the test when it *used* over 100 ms of CPU: the work that
blocks the loop here (SQL, JSON, hashing, file checks) is CPU work, which no busy machine adds to. A callback that
computes for 150 ms of CPU proves that the check catches one. Waits (a sleep, a lock) are not caught: on a busy
machine they cannot be told from waiting for the GIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import linecache
import logging
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from batchscore_server._app import create_app
from batchscore_server._embedded import ensure_admin
from batchscore_server._settings import Settings

SLOW_SECONDS = 0.1
ROWS = 30_000
POLLERS = 20
FINAL = {"complete", "failed", "canceled"}


class CallbackClock:
    """Times each callback of one thread's event loop: its wall time and the CPU time the thread used in it.

    Garbage collection is left out of the CPU time: a full collection runs in whichever thread allocates when the
    threshold is crossed, and costs what the whole process holds (Dask's scheduler lives here too), not what that
    callback did.
    """

    def __init__(self) -> None:
        self.thread_id: int | None = None
        self.last = (0.0, 0.0)
        self.last_handle: object = None
        self.collecting = 0.0  # CPU seconds of garbage collection in the loop's thread so far
        self._collection_started = 0.0

    def on_gc(self, phase: str, _info: dict[str, int]) -> None:
        if threading.get_ident() != self.thread_id:
            return
        if phase == "start":
            self._collection_started = time.thread_time()
        else:
            self.collecting += time.thread_time() - self._collection_started


class SlowCallbacks(logging.Handler):
    """Collects asyncio's slow-callback warnings of the server's thread, with the clock's figures for each."""

    def __init__(self, clock: CallbackClock) -> None:
        super().__init__(logging.WARNING)
        self.clock = clock
        self.found: list[tuple[str, float, float]] = []  # (message, wall seconds, CPU seconds)

    def emit(self, record: logging.LogRecord) -> None:
        # asyncio logs right after the callback returned, in the loop's own thread: clock.last is that callback.
        if record.getMessage().startswith("Executing") and threading.get_ident() == self.clock.thread_id:
            wall, cpu = self.clock.last
            self.found.append((record.getMessage()[:200] + _request_path(self.clock.last_handle), wall, cpu))


def _request_path(handle: object) -> str:
    """The path of the request whose task the handle runs, if it runs one (to say which route blocked)."""
    task = getattr(getattr(handle, "_callback", None), "__self__", handle)
    frame = getattr(getattr(task, "get_coro", lambda: None)(), "cr_frame", None)
    scope = getattr(frame.f_locals.get("self"), "scope", None) if frame is not None else None
    return f" [{scope.get('method')} {scope.get('path')}]" if isinstance(scope, dict) else ""


def _deliberately_blocking() -> None:
    # The control: 150 ms of CPU on the loop, the kind of call the check must catch.
    started = time.thread_time()
    while time.thread_time() - started < 0.15:
        sum(range(1000))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[CallbackClock]:
    clock = CallbackClock()
    original = asyncio.events.Handle._run

    def timed_run(handle: asyncio.Handle) -> None:
        if threading.get_ident() != clock.thread_id:
            original(handle)
            return
        cpu, started, collecting = time.thread_time(), time.perf_counter(), clock.collecting
        try:
            original(handle)
        finally:
            used = time.thread_time() - cpu - (clock.collecting - collecting)
            clock.last = (time.perf_counter() - started, used)
            clock.last_handle = handle

    monkeypatch.setattr(asyncio.events.Handle, "_run", timed_run)
    # Debug mode records where each callback, future and task was created; for every frame of that stack,
    # traceback asks linecache to stat() the source file (profiled: over half the loop's time went to stat). The
    # sources do not change during the test: without the check, debug mode no longer blocks the loop itself.
    monkeypatch.setattr(linecache, "checkcache", lambda filename=None: None)
    gc.callbacks.append(clock.on_gc)
    yield clock
    gc.callbacks.remove(clock.on_gc)


@pytest.fixture
def slow_callbacks(clock: CallbackClock) -> Iterator[SlowCallbacks]:
    handler = SlowCallbacks(clock)
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@contextlib.contextmanager
def debug_server(data_dir: Path, clock: CallbackClock) -> Iterator[tuple[str, str, asyncio.AbstractEventLoop]]:
    """The app on a socket bound here (port 0), served by a debug-mode loop in a thread the clock watches."""
    password = secrets.token_urlsafe(16)
    settings = Settings(data_dir=data_dir, workers=2)
    ensure_admin(settings, password)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", timeout_keep_alive=75))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    loop = asyncio.new_event_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = SLOW_SECONDS

    def run() -> None:
        clock.thread_id = threading.get_ident()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="debug-loop-server", daemon=True)
    thread.start()
    try:
        # Start-up (Dask cluster, pool) takes long on a busy machine: wait for it, however long it takes.
        while not server.started:
            assert thread.is_alive(), "the server stopped while starting"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", password, loop
    finally:
        server.should_exit = True
        thread.join(timeout=120)
        sock.close()


async def _workload(url: str, password: str) -> None:
    """Publish, start a batch, poll it with many pollers (and read lists and documents) until it ends; delete it."""
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        login = await client.post("/login", json={"username": "admin", "password": password})
        client.headers["Authorization"] = f"Bearer {login.raise_for_status().json()['access_token']}"
        service = {
            "code": "answer = x * 2",
            "inputParameterDefinitions": [{"name": "x", "type": "integer"}],
            "outputParameterDefinitions": [{"name": "answer", "type": "integer"}],
        }
        (await client.post("/services/loop/v1", json=service)).raise_for_status()
        body = "".join(json.dumps({"x": i}) + "\n" for i in range(ROWS))
        started = await client.post(
            "/api/loop/v1/batch", content=body, headers={"Content-Type": "application/x-ndjson"}
        )
        batch_url = f"/api/loop/v1/batch/{started.raise_for_status().json()['batchExecutionId']}"
        seen: list[int] = []

        async def poller(whole: bool) -> None:
            cursor = "0"
            while True:
                params = {} if whole else {"since": cursor, "limit": "5000"}
                status = (await client.get(batch_url, params=params)).raise_for_status().json()
                cursor = status["cursor"]
                if status["state"] in FINAL and not status["hasMore"]:
                    seen.append(status["completedItemCount"])
                    return
                await asyncio.sleep(0.02)  # pacing only: every poller asks about 50 times a second at most

        async def reader() -> None:
            while len(seen) < POLLERS:
                for path in ("/status", "/services", "/swagger.json", "/api/loop/v1/swagger.json", "/snapshots"):
                    (await client.get(path)).raise_for_status()

        await asyncio.gather(*(poller(whole=i % 5 == 0) for i in range(POLLERS)), reader())
        assert seen == [ROWS] * POLLERS
        (await client.delete(batch_url)).raise_for_status()


def test_no_callback_holds_the_event_loop_over_100_ms(
    tmp_path: Path, clock: CallbackClock, slow_callbacks: SlowCallbacks
) -> None:
    with debug_server(tmp_path, clock) as (url, password, loop):
        loop.call_soon_threadsafe(_deliberately_blocking)
        asyncio.run(_workload(url, password))
    control = [found for found in slow_callbacks.found if "_deliberately_blocking" in found[0]]
    assert len(control) == 1, "the check did not see a callback that blocked the loop for 150 ms"
    assert control[0][2] > SLOW_SECONDS
    blocking = [
        f"{wall:.3f} s, {cpu:.3f} s of CPU: {message[:300]}"
        for message, wall, cpu in slow_callbacks.found
        if "_deliberately_blocking" not in message and cpu > SLOW_SECONDS
    ]
    most = max((cpu for message, _, cpu in slow_callbacks.found if "_deliberately_blocking" not in message), default=0)
    print(
        f"{len(slow_callbacks.found)} callbacks over {SLOW_SECONDS} s of wall time; the most CPU one used {most:.3f} s"
    )
    assert not blocking, "callbacks held the server's event loop:\n" + "\n".join(blocking)
