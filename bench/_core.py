"""What the figures share: results, the server process, clients, services, measured runs, memory, profiles."""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

import httpx

import batchscore
from bench import functions

ROOT = Path(__file__).resolve().parent.parent
MTCARS = ROOT / "examples" / "data" / "mtcars.csv"
WORKERS = 2  # Dask workers and consume-pool processes of the server; processes of the Pool.map baselines
TRIVIAL = ("benchTrivial", "v1")
MODEL = ("benchModel", "v1")
MB = 1024 * 1024


@dataclass(frozen=True)
class Sizes:
    """How big each measurement is; the issue's table names the full sizes."""

    sweep: tuple[int, ...]  # P1: batch sizes of the throughput curve; the last is P1's figure (and P4's, P6's small)
    model_rows: int  # P2
    loop_rows: int  # P3
    latency_calls: int  # P5
    big_rows: int  # P6 (large) and P7
    big_budget_seconds: float  # the large batch shrinks when the measured throughput says it would take longer
    fair_big_rows: int = 200_000  # P10: user A's large batch, running while user B's small one is timed
    fair_small_rows: int = 100  # P10: user B's small batch
    fair_repeats: int = 3  # P10: small batches timed on each side (the median is the figure)
    vector_rows: int = 1_000_000  # P8: rows of the vectorized batch
    vector_baseline_rows: int = 20_000  # P8: rows of the per-row baselines (Pool.map, the per-row service)


FULL = Sizes(
    sweep=(1_000, 10_000, 100_000),
    model_rows=10_000,
    loop_rows=10_000,
    latency_calls=2_000,
    big_rows=1_000_000,
    big_budget_seconds=900,
)
QUICK = Sizes(
    sweep=(500, 2_000),
    model_rows=300,
    loop_rows=300,
    latency_calls=200,
    big_rows=10_000,
    big_budget_seconds=60,
    fair_big_rows=20_000,
    fair_repeats=2,
    vector_rows=20_000,
    vector_baseline_rows=1_000,
)


# -- results -----------------------------------------------------------------------------------------------------


@dataclass
class Check:
    """One part of a figure's goal: ``value op threshold``."""

    name: str
    value: float
    op: str  # ">=" or "<="
    threshold: float
    unit: str = ""

    @property
    def passed(self) -> bool:
        """Whether the value meets the threshold (a NaN value never does)."""
        if math.isnan(self.value):
            return False
        return self.value >= self.threshold if self.op == ">=" else self.value <= self.threshold

    @property
    def margin(self) -> float:
        """How far the value is from its goal as a factor: above 1 meets it, 0.25 is four times short."""
        if math.isnan(self.value) or self.value <= 0 or self.threshold <= 0:
            return 0.0 if self.op == ">=" else math.inf
        return self.value / self.threshold if self.op == ">=" else self.threshold / self.value

    def to_json(self) -> dict[str, Any]:
        """The check with its outcome."""
        return {**asdict(self), "passed": self.passed, "margin": _finite(self.margin)}


@dataclass
class Size:
    """The size a figure names, the size that ran, and why they differ."""

    table: str
    ran: str
    why: str = ""


@dataclass
class Figure:
    """One figure of the issue's table, measured next to its baselines."""

    id: str
    title: str
    value: float | None
    unit: str
    summary: str  # the batchscore side, in words and numbers
    goal: str
    checks: list[Check] = field(default_factory=list)
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    size: Size | None = None
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    skipped: str | None = None  # why it was not measured here (e.g. no PostgreSQL on this machine): not an error

    @property
    def passed(self) -> bool | None:
        """Whether every check met its goal (None: nothing to check, or skipped)."""
        if self.error is not None:
            return False
        if self.skipped is not None:
            return None
        return all(check.passed for check in self.checks) if self.checks else None

    @property
    def margin(self) -> float:
        """The worst check's margin (1 = exactly at the goal)."""
        return min((check.margin for check in self.checks), default=math.inf)

    def to_json(self) -> dict[str, Any]:
        """The figure as recorded in latest.json."""
        return {
            "id": self.id,
            "title": self.title,
            "value": _finite(self.value),
            "unit": self.unit,
            "summary": self.summary,
            "goal": self.goal,
            "passed": self.passed,
            "margin": _finite(self.margin),
            "checks": [check.to_json() for check in self.checks],
            "baselines": self.baselines,
            "ratios": {name: _finite(value) for name, value in self.ratios.items()},
            "size": asdict(self.size) if self.size else None,
            "notes": self.notes,
            "details": self.details,
            "seconds": round(self.seconds, 2),
            "error": self.error,
            "skipped": self.skipped,
        }


@dataclass
class Versus:
    """A figure measured on PostgreSQL against the same figure on SQLite in the same run (``versus_sqlite``)."""

    baseline: dict[str, Any]  # the SQLite figure's numbers, in the keys report.py shows for a baseline
    ratios: dict[str, float]  # PostgreSQL / SQLite, by what they compare
    line: str  # what the console prints, e.g. "18,000 rows/s, x0.83 of SQLite (21,700 rows/s)"


def versus_rate(figure: Figure, sqlite: Figure, key: str, how: str) -> Versus:
    """A ``-pg`` figure against its SQLite figure of the same run by one of their ``details`` (a rate or a time).

    ``key`` ends in ``_per_second`` (a rate: more is better) or ``_seconds`` (a time); the ratio is PostgreSQL over
    SQLite either way, so the line says which of the two it is.
    """
    mine, theirs = figure.details[key], sqlite.details[key]
    share = ratio(mine, theirs)
    if key.endswith("_per_second"):
        baseline = {"rows_per_second": theirs, "how": how}
        line = f"{mine:,.0f} rows/s, x{share:.2f} of SQLite ({theirs:,.0f} rows/s)"
    else:
        baseline = {"seconds": theirs, "how": how}
        line = f"{mine:.3f} s, x{share:.2f} of SQLite ({theirs:.3f} s)"
    return Versus(baseline=baseline, ratios={"vs SQLite": share}, line=line)


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else value


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is zero."""
    return numerator / denominator if denominator else math.nan


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# -- the server process --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerInfo:
    """What ``bench.server_proc`` announces."""

    url: str
    admin_password: str
    scheduler: str
    echo_url: str
    pid: int
    startup_seconds: float
    database: str  # the server's database: "sqlite" or "postgresql"
    data_dir: str = ""  # the server's data directory (P10 adds a second user with add_user)
    database_url: str | None = None  # its --database-url, when it has one


@contextlib.contextmanager
def server_process(
    log_path: Path, workers: int = WORKERS, timeout: float = 300, database_url: str | None = None
) -> Iterator[ServerInfo]:
    """Run ``python -m bench.server_proc`` (cluster + embedded server + echo app) until the block ends.

    The server stores its state in SQLite in its data directory, or in the database of ``database_url``.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "bench.server_proc", "--workers", str(workers)]
    if database_url is not None:
        command += ["--database-url", database_url]
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            line = _read_line(process, timeout)
            if not line:
                raise RuntimeError(f"the benchmark server did not start; its log:\n{_tail(log_path)}")
            info = ServerInfo(**json.loads(line))
            yield info
        finally:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# The throwaway PostgreSQL's durability, set back to PostgreSQL's defaults but for the commit: a commit does not
# wait for its WAL flush, as the server's SQLite (WAL, synchronous=NORMAL) does not sync each commit either. The
# tests' fsync=off and full_page_writes=off would flatter PostgreSQL.
POSTGRES_SETTINGS = {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "off"}
POSTGRES_SETUP = (
    "a throwaway PostgreSQL started for the run (tests/_postgres.py: initdb + pg_ctl, a Unix socket) with "
    "fsync and full-page writes on and synchronous_commit off (SQLite's WAL with synchronous=NORMAL does not sync "
    "each commit either); the server on it through psycopg 3, its own Dask cluster started the same way, while "
    "the SQLite server of the run idles; PostgreSQL's own processes are not in the server's CPU or memory figures"
)


def postgres_unavailable() -> str | None:
    """Why the PostgreSQL figures cannot run here (no server binaries, no psycopg), or None when they can."""
    import importlib.util

    from tests._postgres import unavailable_reason

    reason = unavailable_reason()
    if reason is None and importlib.util.find_spec("psycopg") is None:
        reason = "psycopg (3) is not installed: pip install 'psycopg[binary]'"
    return reason


@contextlib.contextmanager
def postgres_server_process(log_path: Path, workers: int = WORKERS) -> Iterator[ServerInfo]:
    """A throwaway PostgreSQL (see :data:`POSTGRES_SETTINGS`), and :func:`server_process` on a database of it."""
    # tests/ is importable because the bench runs from the repository's root (as `python -m bench`).
    from tests._postgres import create_database, running_postgres

    with running_postgres(POSTGRES_SETTINGS) as postgres:
        url = create_database(postgres, "bench")
        with server_process(log_path, workers, database_url=url) as server:
            yield server


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline() if process.stdout else ""))
    reader.daemon = True
    reader.start()
    reader.join(timeout)
    return lines[0] if lines else ""


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


# -- bytes on the wire ---------------------------------------------------------------------------------------------


class CountingTransport(httpx.BaseTransport):
    """An httpx transport that counts the response body bytes it receives (as sent: the server does not compress)."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.response_bytes = 0
        self.responses = 0

    def reset(self) -> None:
        """Start counting from zero."""
        self.response_bytes = 0
        self.responses = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send through the real transport; count the body as it is read."""
        response = self._inner.handle_request(request)
        self.responses += 1
        response.stream = _CountingStream(response.stream, self)  # type: ignore[arg-type]
        return response

    def close(self) -> None:
        """Close the real transport."""
        self._inner.close()


class _CountingStream(httpx.SyncByteStream):
    def __init__(self, stream: Any, counter: CountingTransport) -> None:
        self._stream = stream
        self._counter = counter

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            self._counter.response_bytes += len(chunk)
            yield chunk

    def close(self) -> None:
        self._stream.close()


# -- memory --------------------------------------------------------------------------------------------------------


class RssSampler:
    """Samples the resident memory of the server process and of its child processes (workers) in a thread.

    The server process also hosts the Dask scheduler and the nannies, as the server's own embedded cluster does;
    its children are the two Dask worker processes, the two consume-pool processes and multiprocessing's
    resource tracker.
    """

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        import psutil

        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.samples = 0
        self.server_peak = 0
        self.workers_sum_peak = 0
        self.worker_peak = 0
        self.server_before, self.workers_sum_before, _ = self._sample()

    def _sample(self) -> tuple[int, int, int]:
        import psutil

        server = self._process.memory_info().rss
        children = []
        for child in self._process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                children.append(child.memory_info().rss)
        return server, sum(children), max(children, default=0)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                server, workers_sum, worker = self._sample()
                self.samples += 1
                self.server_peak = max(self.server_peak, server)
                self.workers_sum_peak = max(self.workers_sum_peak, workers_sum)
                self.worker_peak = max(self.worker_peak, worker)
            self._stop.wait(self._interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def to_json(self) -> dict[str, Any]:
        """Peaks and the values just before, in MB."""
        return {
            "server_peak_mb": round(self.server_peak / MB, 1),
            "server_before_mb": round(self.server_before / MB, 1),
            "workers_sum_peak_mb": round(self.workers_sum_peak / MB, 1),
            "workers_sum_before_mb": round(self.workers_sum_before / MB, 1),
            "largest_worker_peak_mb": round(self.worker_peak / MB, 1),
            "samples": self.samples,
            "interval_seconds": self._interval,
        }


# -- profiles --------------------------------------------------------------------------------------------------------


def py_spy() -> str | None:
    """The py-spy executable (next to this interpreter, or on PATH)."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def profiled(pid: int, raw_path: Path, rate: int = 100) -> Iterator[None]:
    """Sample the server process and its children with py-spy (non-blocking) while the block runs."""
    executable = py_spy()
    if executable is None:
        raise RuntimeError("--profile needs py-spy: pip install --group bench (or pip install py-spy)")
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    command = [executable, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--format", "raw"]
    command += ["--rate", str(rate), "--output", str(raw_path)]
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # py-spy attaches to every process first
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            _, stderr = recorder.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            recorder.kill()
            _, stderr = recorder.communicate()
        if not raw_path.exists():
            raise RuntimeError(f"py-spy wrote no profile: {stderr.strip()[-2000:]}")


_PROCESS_PREFIX = re.compile(r'process (\d+):"(.*?)";')
_IDLE = ("EpollSelector.select", "Condition.wait", "select (selectors.py)", "Event.wait")


def summarize_profile(raw_path: Path, top: int = 15) -> dict[str, Any]:
    """Samples per process role, and the functions that take most of them, per role.

    The server process is the root of every stack py-spy records with ``--subprocesses``; a child process is a
    Dask worker when its stacks run ``distributed``, a consume-pool process when they run
    ``concurrent.futures``. Per role: ``self`` (leaf frames), ``inclusive`` (frames of batchscore's own code,
    the server's and the SDK's, with everything they call), and the share of samples spent waiting in a selector.
    """
    markers: dict[str, Counter[str]] = defaultdict(Counter)
    stacks: list[tuple[str, int, list[str], int]] = []
    for line in raw_path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        pids = []
        while match := _PROCESS_PREFIX.match(stack):
            pids.append(match.group(1))
            stack = stack[match.end() :]
        frames = [_frame(part) for part in stack.split(";") if part and not part.startswith("thread ")]
        pid = pids[-1] if pids else "?"
        count = int(count_text)
        stacks.append((pid, len(pids), frames, count))
        text = ";".join(frames)
        if "distributed/" in text:
            markers[pid]["dask worker"] += count
        if "concurrent/futures/process.py" in text:
            markers[pid]["consume pool"] += count
    by_role: Counter[str] = Counter()
    idle: Counter[str] = Counter()
    self_time: dict[str, Counter[str]] = defaultdict(Counter)
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    roles = {pid: counter.most_common(1)[0][0] for pid, counter in markers.items() if counter}
    for pid, depth, frames, count in stacks:
        role = "server" if depth <= 1 else roles.get(pid, "other child")
        by_role[role] += count
        if not frames:
            continue
        if frames[-1].startswith(_IDLE):
            idle[role] += count
            continue
        self_time[role][frames[-1]] += count
        for frame in set(frames):
            if "batchscore" in frame:
                inclusive[role][frame] += count
    summary: dict[str, Any] = {"raw": raw_path.name, "rate_hz": 100, "processes": {}}
    for role, total in by_role.most_common():
        summary["processes"][role] = {
            "samples": total,
            "idle_share": round(100 * idle[role] / total, 1),
            "self": [(name, round(100 * n / total, 1)) for name, n in self_time[role].most_common(top)],
            "inclusive": [(name, round(100 * n / total, 1)) for name, n in inclusive[role].most_common(top)],
        }
    return summary


def _frame(text: str) -> str:
    # "func (path/file.py:123)" -> "func (path/file.py)": lines of one function add up.
    name, _, location = text.partition(" (")
    return f"{name} ({location.rsplit(':', 1)[0]})" if location else name


# -- the benchmark session ---------------------------------------------------------------------------------------------


@dataclass
class BatchRun:
    """One measured batch of the trivial service: submit, then every result in the client."""

    rows: int
    seconds: float  # from building the batch (the SDK checks every record) to the last result in the client
    start_seconds: float  # of that, the start request (upload, validation, storage)
    polled_bytes: int
    polls: int
    final_bytes: int
    rss: dict[str, Any]
    first_result_seconds: float | None = None  # from calling start() to the first result in the client
    complete: bool = True  # every result was read (False: left running at its first result or at a deadline)
    rows_read: int = 0  # results read by the client (big batches)

    @property
    def rows_per_second(self) -> float:
        """Throughput, submit to last result."""
        return ratio(self.rows, self.seconds)


class Bench:
    """A benchmark session: the server, clients, published services, and runs shared by several figures."""

    def __init__(self, server: ServerInfo, *, quick: bool, out_dir: Path, profile: bool) -> None:
        self.server = server
        self.quick = quick
        self.out_dir = out_dir
        self.profile_enabled = profile
        self.profiles: dict[str, dict[str, Any]] = {}
        self.counter = CountingTransport()
        self.client = batchscore.Client(
            server.url, username="admin", password=server.admin_password, transport=self.counter
        )
        self.throughput: list[dict[str, Any]] = []
        # The -pg figures' own session: its batches are another line of the plot, its profiles other files.
        on_postgres = server.database != "sqlite"
        self.system = "batchscore on PostgreSQL" if on_postgres else "batchscore"
        self.label_suffix = "-pg" if on_postgres else ""
        self.trivial_runs: dict[int, BatchRun] = {}
        self.big_runs: dict[int, BatchRun] = {}
        self._services: dict[tuple[str, str], batchscore.Service] = {}
        self._dask_client: Any = None
        self._pools: dict[str, Pool] = {}
        self._model: Any = None

    def close(self) -> None:
        """Close clients and pools."""
        for pool in self._pools.values():
            pool.terminate()
            pool.join()
        if self._dask_client is not None:
            self._dask_client.close()
        self.client.close()

    # services ----------------------------------------------------------------------------------------------------

    def timed_batch(
        self, service: batchscore.Service, records: list[dict[str, Any]], profile: str
    ) -> tuple[batchscore.BatchStatus, float]:
        """Run ``records`` as one batch with the SDK's default polling; return its final status and seconds.

        The batch is deleted afterwards; ``profile`` labels the py-spy profile taken with ``--profile``.
        """
        with self.maybe_profiled(profile):
            started = time.perf_counter()
            batch = service.batch(records).start()
            status = batch.wait(progress=False)
            seconds = time.perf_counter() - started
        discard(batch)
        return status, seconds

    def trivial_service(self) -> batchscore.Service:
        """``answer = x + 1`` (int in, int out), published once."""
        if TRIVIAL not in self._services:
            name, version = TRIVIAL
            service = self.client.publish_service(
                name, functions.TRIVIAL_CODE, version=version, inputs={"x": int}, outputs={"answer": int}
            )
            self._warm(service, [{"x": i} for i in range(2 * WORKERS)])
            self._services[TRIVIAL] = service
        return self._services[TRIVIAL]

    def model(self) -> Any:
        """The seed's model: ``glm(am ~ hp + wt, binomial)`` fitted on mtcars."""
        if self._model is None:
            import pandas as pd
            import statsmodels.api as sm
            import statsmodels.formula.api as smf

            cars = pd.read_csv(MTCARS)
            self._model = smf.glm("am ~ hp + wt", data=cars, family=sm.families.Binomial()).fit()
        return self._model

    def model_service(self) -> batchscore.Service:
        """The seed's ``manual_transmission(hp, wt)`` predict with its model, published once."""
        if MODEL not in self._services:
            name, version = MODEL
            service = self.client.publish_service(
                name,
                functions.manual_transmission,
                version=version,
                models={"cars_model": self.model()},
                inputs={"hp": float, "wt": float},
                outputs={"answer": float},
            )
            self._warm(service, model_records(2 * WORKERS))
            self._services[MODEL] = service
        return self._services[MODEL]

    def _warm(self, service: batchscore.Service, records: list[dict[str, Any]]) -> None:
        """Run a few rows first, so that every worker has loaded the service (and the pool is up) before timing."""
        batch = service.batch(records, parallel_count=len(records)).start()
        batch.wait(progress=False, poll_interval=0.05)
        discard(batch)
        service.consume(**records[0])

    # baselines ---------------------------------------------------------------------------------------------------

    def dask_client(self) -> Any:
        """A ``distributed.Client`` of the server's own cluster (for the dask.bag baseline)."""
        if self._dask_client is None:
            import cloudpickle
            from distributed import Client

            # By value: the workers need not import bench (they do share its working directory, but need not).
            cloudpickle.register_pickle_by_value(functions)
            self._dask_client = Client(self.server.scheduler, set_as_default=True)
        return self._dask_client

    def pool(self, kind: str = "trivial") -> Pool:
        """A warm ``multiprocessing.Pool`` with the server's worker count (spawned: this process has threads)."""
        if kind not in self._pools:
            context = multiprocessing.get_context("spawn")
            if kind == "model":
                payload = pickle.dumps(self.model(), protocol=pickle.HIGHEST_PROTOCOL)
                pool = context.Pool(WORKERS, initializer=functions.load_model, initargs=(payload,))
                pool.map(functions.predict_record, model_records(4 * WORKERS), chunksize=1)
            else:
                pool = context.Pool(WORKERS)
                pool.map(functions.plus_one, [{"x": i} for i in range(4 * WORKERS)], chunksize=1)
            self._pools[kind] = pool
        return self._pools[kind]

    def run_dask_bag(self, rows: int, *, record: bool = True) -> float:
        """Seconds for ``dask.bag.from_sequence(records).map(plus_one).compute()`` on the server's cluster."""
        import dask.bag

        self.dask_client()
        records = [{"x": i} for i in range(rows)]
        started = time.perf_counter()
        out = dask.bag.from_sequence(records).map(functions.plus_one).compute()
        seconds = time.perf_counter() - started
        if len(out) != rows or (rows and out[-1]["answer"] != rows):
            raise RuntimeError("dask.bag returned wrong results")
        if record:
            self.record_throughput("dask.bag", rows, seconds)
        return seconds

    def run_pool_map(self, rows: int) -> float:
        """Seconds for ``Pool(2).map(plus_one, records)`` (default chunksize)."""
        records = [{"x": i} for i in range(rows)]
        pool = self.pool()
        started = time.perf_counter()
        out = pool.map(functions.plus_one, records)
        seconds = time.perf_counter() - started
        if len(out) != rows or (rows and out[-1]["answer"] != rows):
            raise RuntimeError("Pool.map returned wrong results")
        self.record_throughput("multiprocessing.Pool.map", rows, seconds)
        return seconds

    # batchscore runs ---------------------------------------------------------------------------------------------

    def trivial_batch(self, rows: int, *, profile: str | None = None, fresh: bool = False) -> BatchRun:
        """Submit ``rows`` records to the trivial service and wait for every result (memoized per size).

        Measures time, the bytes ``wait()`` polled (and the bytes of one final fetch of all results), and the
        memory of the server and its workers while it runs. ``fresh`` runs the batch again even when this size
        ran before (the first run stays the memoized one and the throughput point).
        """
        if rows in self.trivial_runs and not fresh:
            return self.trivial_runs[rows]
        service = self.trivial_service()
        records = [{"x": i} for i in range(rows)]
        with self.maybe_profiled(profile), RssSampler(self.server.pid) as rss:
            started = time.perf_counter()
            batch = service.batch(records)
            before_start = time.perf_counter()
            batch.start()
            start_seconds = time.perf_counter() - before_start
            self.counter.reset()
            status = batch.wait(progress=False)
            seconds = time.perf_counter() - started
        polled_bytes, polls = self.counter.response_bytes, self.counter.responses
        self.counter.reset()
        final = batch.results()
        final_bytes = self.counter.response_bytes
        _check_trivial(status.results, rows)
        if len(final.results) != rows:
            raise RuntimeError(f"the final fetch returned {len(final.results)} of {rows} results")
        discard(batch)
        run = BatchRun(rows, seconds, start_seconds, polled_bytes, polls, final_bytes, rss.to_json())
        if rows not in self.trivial_runs:
            self.trivial_runs[rows] = run
            self.record_throughput(self.system, rows, seconds)
        return run

    def big_batch(
        self,
        rows: int,
        *,
        read_all: bool = True,
        deadline: float | None = None,
        profile: str | None = None,
        profile_first: str | None = None,
    ) -> BatchRun:
        """A large batch of the trivial service, read with ``iter_results`` (results are counted, not kept).

        The first result is looked for every 50 ms (the time to first result is P7); after it the SDK's own
        polling (the server's Retry-After) reads the rest, unless ``read_all`` is false (P7 alone), which
        leaves the batch running at its first result. Reading stops (and leaves the batch running) after
        ``deadline`` seconds: the size was chosen from the throughput at 100k rows, which a batch that slows down
        as it grows does not keep. ``profile`` profiles the whole run, ``profile_first`` only the time from
        ``start()`` to the first result.
        """
        if rows in self.big_runs and (self.big_runs[rows].complete or not read_all):
            return self.big_runs[rows]
        service = self.trivial_service()
        records = [{"x": i} for i in range(rows)]
        with self.maybe_profiled(profile), RssSampler(self.server.pid) as rss:
            started = time.perf_counter()
            batch = service.batch(records)
            with self.maybe_profiled(profile_first):
                before_start = time.perf_counter()
                batch.start()
                start_seconds = time.perf_counter() - before_start
                first_seconds: float | None = None
                for _ in batch.iter_results(poll_interval=0.05):
                    first_seconds = time.perf_counter() - before_start
                    break
            self.counter.reset()
            seen = 0
            last_answer_ok = True
            stopped = False
            if read_all:
                for result in batch.iter_results():
                    seen += 1
                    if result.index == rows - 1:
                        last_answer_ok = result.outputs.get("answer") == rows
                    if deadline is not None and time.perf_counter() - started > deadline:
                        stopped = True
                        break
            seconds = time.perf_counter() - started
        polled_bytes, polls = self.counter.response_bytes, self.counter.responses
        complete = read_all and not stopped
        if complete:
            discard(batch)
        # Else the batch is left running: cancelling or deleting a running 1M-row batch takes minutes (every row
        # gets a "canceled" result), and the figures that use it run last; the server stops at the end.
        if complete and (seen != rows or not last_answer_ok):
            raise RuntimeError(f"the big batch returned {seen} of {rows} results (last answer ok: {last_answer_ok})")
        run = BatchRun(
            rows, seconds, start_seconds, polled_bytes, polls, 0, rss.to_json(), first_seconds, complete, seen
        )
        self.big_runs[rows] = run
        if complete:
            self.record_throughput(self.system, rows, seconds)
        return run

    def record_throughput(self, system: str, rows: int, seconds: float) -> None:
        """A point of the throughput plot (rows/s against batch size)."""
        self.throughput.append(
            {"system": system, "rows": rows, "seconds": round(seconds, 4), "rows_per_second": ratio(rows, seconds)}
        )

    @contextlib.contextmanager
    def maybe_profiled(self, label: str | None) -> Iterator[None]:
        """Profile the server process tree with py-spy while the block runs, when ``--profile`` asked for it."""
        if not self.profile_enabled or label is None:
            yield
            return
        label += self.label_suffix
        raw = self.out_dir / f"profile-{label}.txt"
        with profiled(self.server.pid, raw):
            yield
        self.profiles[label] = summarize_profile(raw)


def discard(batch: batchscore.Batch) -> None:
    """Delete a finished batch, so that the server's database is as small for each measurement."""
    try:
        batch.delete()
    except batchscore.BatchscoreError as error:
        print(f"warning: could not delete batch {batch.id}: {error}", file=sys.stderr, flush=True)


def _check_trivial(results: Any, rows: int) -> None:
    answers = {r.index: r.outputs.get("answer") for r in results}
    if len(answers) != rows or any(answers.get(i) != i + 1 for i in (0, rows // 2, rows - 1) if rows):
        raise RuntimeError(f"the batch returned wrong results ({len(answers)} of {rows})")
    failed = [r for r in results if not r.success]
    if failed:
        raise RuntimeError(f"{len(failed)} rows failed, e.g. {failed[0].error_message}")


def model_records(rows: int) -> list[dict[str, float]]:
    """``rows`` records of the seed's inputs: mtcars' 32 (hp, wt) pairs, repeated."""
    import csv

    with MTCARS.open(encoding="utf-8") as handle:
        cars = [(float(row["hp"]), float(row["wt"])) for row in csv.DictReader(handle)]
    return [{"hp": cars[i % len(cars)][0], "wt": cars[i % len(cars)][1]} for i in range(rows)]


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds one call took, and what it returned."""
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def login_tokens(bench: Bench, count: int) -> list[str]:
    """``count`` access tokens of the admin (each login costs an argon2 hash: load generators share a few)."""
    with httpx.Client(base_url=bench.server.url, timeout=60) as http:
        credentials = {"username": "admin", "password": bench.server.admin_password}
        tokens = []
        for _ in range(count):
            login = http.post("/login", json=credentials)
            login.raise_for_status()
            tokens.append(login.json()["access_token"])
    return tokens


def run_loadgen(
    base_url: str,
    paths: list[str],
    tokens: list[str],
    *,
    pollers: int,
    rate: float,
    seconds: float,
    grace: float,
    pid: int,
    body: str | None = None,
) -> dict[str, Any]:
    """Run :mod:`bench.loadgen` with this plan in a process of its own; its summary and the server's CPU.

    The CPU time of the server process ``pid`` (not of its worker processes) while the generator ran, per answered
    request, is less at the mercy of the other loads on the machine than the latencies are.
    """
    import psutil

    server = psutil.Process(pid)
    cpu_before = sum(server.cpu_times()[:2])
    plan = {
        "base_url": base_url,
        "paths": paths,
        "tokens": tokens,
        "pollers": pollers,
        "rate": rate,
        "seconds": seconds,
        "grace": grace,
        "body": body,
    }
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=json.dumps(plan),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=seconds + grace + 120,
        check=False,
    )
    if completed.returncode != 0 or not completed.stdout.strip():
        raise RuntimeError(f"the load generator failed ({completed.returncode}): {completed.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    summary["wall_seconds"] = time.monotonic() - started
    summary["server_cpu_seconds"] = sum(server.cpu_times()[:2]) - cpu_before
    summary["server_cpu_ms_per_answer"] = 1000 * ratio(summary["server_cpu_seconds"], summary["answered"])
    return summary
