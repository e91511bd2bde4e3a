"""Entry points that run in worker processes: Dask batch workers and the consume process pool.

They live in an importable module on purpose: Dask pickles them by reference, so the per-process service cache
in ``_execution`` survives from one task to the next (a function from ``__main__`` would get fresh globals).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

from batchscore_server._execution import ServiceSpec, StoredResult, execute, run_rows, stored_result
from batchscore_server._execution import check_service as _check_service
from batchscore_server._types import decode_inputs

# A cancel must stop rows from starting, but asking the scheduler before every row costs ~0.5 ms; the answer is
# cached this long, and a cancel request waits CANCEL_SETTLE_SECONDS (> this) before it returns.
CANCEL_CHECK_SECONDS = 0.05
CANCEL_SETTLE_SECONDS = 0.12
# One fixed topic (the scheduler keeps topics forever); each message names its batch.
ROW_EVENTS_TOPIC = "batchscore-rows"
ROW_REPORT_SECONDS = 0.02


def cancel_event_name(batch_id: str) -> str:
    """The distributed Event that tells a batch's chunks to stop."""
    return f"batchscore-cancel-{batch_id}"


def spec_from_dict(spec: Mapping[str, Any]) -> ServiceSpec:
    """Rebuild a ServiceSpec from the JSON form stored with a batch or a service."""
    return ServiceSpec(
        key=spec["key"],
        code=spec["code"],
        init_code=spec.get("initCode") or "",
        inputs=tuple((name, kind) for name, kind in spec["inputs"]),
        outputs=tuple((name, kind) for name, kind in spec["outputs"]),
        output_file_names=tuple(spec["outputFileNames"]),
        snapshot_dir=spec.get("snapshotDir"),
        max_result_bytes=spec.get("maxResultBytes"),
        max_console_bytes=spec.get("maxConsoleBytes"),
        max_output_file_bytes=spec.get("maxOutputFileBytes"),
        vectorized=bool(spec.get("vectorized")),
        max_batch_rows=spec.get("maxBatchRows"),
    )


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def init_consume_process(server_pid: int, memory_bytes: int | None) -> None:
    """Set up a consume-pool process (the pool's initializer): it dies with the server, and its memory is capped.

    A server killed with SIGKILL cannot stop its pool: on Linux the kernel sends this process SIGKILL when the
    thread that started it ends (the pool starts its processes from the server's event-loop thread and from its
    own manager thread, both alive as long as the pool). ``memory_bytes`` caps the address space, so a service
    that allocates beyond it gets a MemoryError (a failed execution), not the machine's memory.
    """
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != server_pid:  # the server died before the line above: nothing would kill this process
        os._exit(1)
    if memory_bytes is not None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def consume(spec: Mapping[str, Any], record: Mapping[str, Any], scratch_root: str) -> dict[str, Any]:
    """Run one request-response execution (in the consume pool). ``record`` was validated by the server."""
    service = spec_from_dict(spec)
    inputs = decode_inputs(service.inputs, record, "body")
    with reaping_children():
        return execute(service, inputs, Path(scratch_root) / uuid.uuid4().hex)


def check_service(spec: Mapping[str, Any], scratch_root: str) -> tuple[str, str] | None:
    """Check that a service being published starts (in the consume pool): see ``_execution.check_service``."""
    with reaping_children():
        return _check_service(spec_from_dict(spec), Path(scratch_root))


# The kernel's most recently allocated process id (the last field of /proc/loadavg). Unchanged since a row started
# means no process was created anywhere, so the row started none: a 2 us read of a file kept open instead of a 2 ms
# scan of every process for each row (a trivial row costs about 60 us).
_last_pid_fd: int | None = None


def _last_pid() -> bytes | None:
    global _last_pid_fd
    try:
        if _last_pid_fd is None:
            _last_pid_fd = os.open("/proc/loadavg", os.O_RDONLY)
        return os.pread(_last_pid_fd, 128, 0).rsplit(None, 1)[-1]
    except (OSError, IndexError):
        return None  # not Linux: every row is checked


def kill_process_trees(processes: list[psutil.Process], *, wait: bool = True) -> None:
    """SIGKILL these processes and every process under them; ``wait``: until they are gone (reaping children).

    Not waiting is for an event loop's thread (the nanny's), which must not block.
    """
    victims: list[psutil.Process] = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            victims.extend(process.children(recursive=True))
        victims.append(process)
    for victim in victims:
        with contextlib.suppress(psutil.Error):
            victim.kill()
    if wait:
        psutil.wait_procs(victims, timeout=5)  # reaps the direct children, so no zombie stays behind


_this: psutil.Process | None = None


def _this_process() -> psutil.Process:
    """The current process as psutil sees it, made once per process.

    A reaper is made for every chunk, and reading the process's /proc entries each time cost more than a hundred
    trivial rows on a busy machine.
    """
    global _this
    if _this is None or _this.pid != os.getpid():  # a forked child is another process
        _this = psutil.Process()
    return _this


_own_listed: tuple[bytes, set[int]] | None = None  # the last pid created when the children were last listed, and they


def _own_children(process: psutil.Process) -> set[int]:
    """The pids of this process's children (and maybe of some that ended since).

    Listing them scans every process of the machine (milliseconds, for each chunk): the last listing serves while
    no process was created anywhere since, as then no child can have been added.
    """
    global _own_listed
    mark = _last_pid()
    if mark is not None and _own_listed is not None and _own_listed[0] == mark:
        return _own_listed[1]
    own = {child.pid for child in process.children()}
    if mark is not None:
        _own_listed = (mark, own)
    return own


class ChildReaper:
    """Kills the processes service code started (``subprocess``, ``multiprocessing``) when its row ends.

    Call :meth:`row_started` before each row and :meth:`row_done` after it. Processes the worker had before the
    reaper was made are left alone. A grandchild whose parent exited during the row was re-parented away from this
    process and is not found.
    """

    def __init__(self) -> None:
        self._process = _this_process()
        self._own = _own_children(self._process)
        self._mark: bytes | None = None

    def row_started(self, *, fresh: bool = False) -> None:
        """Note the moment a row starts (the previous row's end serves, when there was one, unless ``fresh``)."""
        if fresh or self._mark is None:
            self._mark = _last_pid()

    def row_done(self) -> None:
        """Kill what the row started, with everything under it."""
        last = _last_pid()
        if last is None or last != self._mark:
            with contextlib.suppress(psutil.Error):
                kill_process_trees([child for child in self._process.children() if child.pid not in self._own])
        self._mark = last


# The consume-pool process's reaper, made by its first call: making one lists every process of the machine
# (psutil's children(): 3 ms with 90 processes), a third of a trivial consume's latency when made per call (P5).
_process_reaper: ChildReaper | None = None


@contextlib.contextmanager
def reaping_children() -> Iterator[None]:
    """Kill the processes started inside the block (and everything under them) when it ends.

    The processes this process had before its first such block are left alone.
    """
    global _process_reaper
    if _process_reaper is None:
        _process_reaper = ChildReaper()
    reaper = _process_reaper
    # Fresh: other processes of the machine started since the last block; the mark must be this block's start.
    reaper.row_started(fresh=True)
    try:
        yield
    finally:
        reaper.row_done()


def _cancel_checker(event_name: str | None) -> Callable[[], bool] | None:
    if event_name is None:
        return None
    from distributed import Event

    event = Event(event_name)
    last_check = 0.0
    stopped = False

    def should_stop() -> bool:
        nonlocal last_check, stopped
        now = time.monotonic()
        if not stopped and now - last_check >= CANCEL_CHECK_SECONDS:
            stopped = event.is_set()
            last_check = now
        return stopped

    return should_stop


class _RowReporter:
    """Sends a chunk's row starts and results to the server as worker events, several rows to an event.

    An event per row cost the scheduler and the server (both live in the server process) more than running a
    trivial row. A background thread sends what has gathered every ``ROW_REPORT_SECONDS``, so a row that runs
    long neither holds back the results before it nor hides its own start (the clock for ``itemTimeout``).
    """

    def __init__(self, worker: Any, batch_id: str) -> None:
        self._worker = worker
        self._batch_id = batch_id
        self._lock = threading.Lock()
        self._started: list[int] = []
        self._done: list[tuple[int, StoredResult]] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._send_periodically, name=f"rows-{batch_id}", daemon=True)

    def __enter__(self) -> _RowReporter:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._closed.set()
        self._thread.join()
        self.send()

    def started(self, index: int) -> None:
        """Note that row ``index`` starts now."""
        with self._lock:
            self._started.append(index)

    def done(self, index: int, result: StoredResult) -> None:
        """Note row ``index``'s result."""
        with self._lock:
            self._done.append((index, result))

    def send(self) -> None:
        """Send what has gathered since the last event, if anything."""
        with self._lock:
            started, self._started = self._started, []
            done, self._done = self._done, []
        if started or done:
            message = {"batch": self._batch_id, "worker": self._worker.address, "started": started, "done": done}
            self._worker.log_event(ROW_EVENTS_TOPIC, message)

    def _send_periodically(self) -> None:
        while not self._closed.wait(ROW_REPORT_SECONDS):
            self.send()


def run_chunk(
    batch_id: str,
    spec: Mapping[str, Any],
    rows: Sequence[tuple[int, str | Mapping[str, Any]]],
    scratch_root: str,
    artifact_root: str,
) -> dict[str, Any]:
    """Run a chunk of batch rows one after another on a Dask worker.

    ``rows`` are ``(index, record)`` pairs, each record as stored: its JSON text (or the parsed object).

    Row starts and results also go to the server as they happen, as worker events on ``ROW_EVENTS_TOPIC``
    (``{"batch", "worker", "started": [index, ...], "done": [[index, StoredResult], ...]}``):
    the server shows partial results while the chunk runs, times rows out, and keeps results of a chunk whose
    worker is killed later. The chunk's return value repeats every result (events are a fast path that a crash
    can lose).

    Returns:
        ``{"rows": {index: StoredResult}, "stopped": bool, "seconds": float}`` (how long the rows ran) -
        dict-wrapped because Dask serializes a bare list element by element.

    """
    from distributed import get_worker

    service = spec_from_dict(spec)
    decoded = [
        (
            index,
            decode_inputs(service.inputs, json.loads(record) if isinstance(record, str) else record, f"body[{index}]"),
        )
        for index, record in rows
    ]
    should_stop = _cancel_checker(cancel_event_name(batch_id))
    stored: dict[int, StoredResult] = {}

    reaper = ChildReaper()

    def on_start(index: int) -> None:
        reaper.row_started()
        reporter.started(index)

    def on_done(index: int, result: dict[str, Any]) -> None:
        reaper.row_done()
        stored[index] = stored_result(result)
        reporter.done(index, stored[index])

    began = time.monotonic()
    with _RowReporter(get_worker(), batch_id) as reporter:
        outcome = run_rows(service, decoded, scratch_root, artifact_root, should_stop, on_start, on_done)
    # How long its rows ran, for the server's chunk sizes (_fair.ChunkClock): measured here, so that time spent
    # waiting in Dask's queue does not count.
    return {"rows": stored, "stopped": outcome["stopped"], "seconds": time.monotonic() - began}


def kill_worker_process(dask_worker: Any) -> None:
    """Kill a worker process from its nanny (``client.run(..., nanny=True)``); the nanny starts a new one.

    SIGKILL through the nanny works even when the row holds the GIL, where a graceful restart waits for seconds.
    The processes the worker started (its row's ``subprocess`` children, say) are killed with it: they would
    outlive it otherwise.
    """
    try:
        children = psutil.Process(dask_worker.pid).children(recursive=True)
    except psutil.Error:
        children = []
    os.kill(dask_worker.pid, signal.SIGKILL)
    kill_process_trees(children, wait=False)  # orphans now: init reaps them
