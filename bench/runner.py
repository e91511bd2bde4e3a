"""``python -m bench [--quick] [--only P1,P5] [--out bench/results] [--profile]``.

Starts one server (``bench.server_proc``: a Dask LocalCluster, the embedded server on it, an echo app), measures
each figure next to its baselines, back to back in the same run (the ``-pg`` figures on a second such server whose
database is a throwaway PostgreSQL, against their SQLite figure), and writes ``latest.json``, ``latest.md`` and
``throughput.png`` into ``--out`` after every figure. Benchmarks print and record; they never assert a time: the
exit code is 1 only when a figure could not be measured at all.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import re
import tempfile
import time
import traceback
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import bench
from bench import report
from bench._core import (
    FULL,
    POSTGRES_SETTINGS,
    POSTGRES_SETUP,
    QUICK,
    ROOT,
    WORKERS,
    Bench,
    Figure,
    Sizes,
    postgres_server_process,
    postgres_unavailable,
    server_process,
)

# Every bench/pN_*.py module is a figure (with ID, TITLE and run()): a new one needs no list kept in step.
FIGURES: dict[str, ModuleType] = {
    module.ID: module
    for module in (
        importlib.import_module(f"bench.{info.name}")
        for info in pkgutil.iter_modules(bench.__path__)
        if re.fullmatch(r"p\d+_\w+", info.name)
    )
}
# A figure whose module has versus_sqlite() runs again as "<ID>-pg" on a server whose database is a throwaway
# PostgreSQL, and is compared with its SQLite figure of the same run.
POSTGRES_SUFFIX = "-pg"
FIGURES.update(
    {
        f"{figure_id}{POSTGRES_SUFFIX}": module
        for figure_id, module in list(FIGURES.items())
        if hasattr(module, "versus_sqlite")
    }
)
# Latency first on a fresh server; P4 and P6 (small) reuse P1's batch; the large batch last, because a process's
# resident memory does not shrink again once it has grown. P9's batches are deleted before P6 starts. The
# PostgreSQL figures run right after their SQLite ones (the ratios are between them), on their own server started
# then, while the SQLite server idles; it is stopped before P6 and P7, and started again for the large batch's start
# figures on PostgreSQL (P7a-pg, P7b-pg), after the SQLite ones.
RUN_ORDER = (
    *("P5", "P1", "P4", "P2", "P3", "P8", "P10", "P9"),
    *("P1-pg", "P9-pg", "P2-pg", "P3-pg", "P8-pg"),
    *("P6", "P7a", "P7b", "P7a-pg", "P7b-pg", "P11"),
)
DEFAULT_OUT = ROOT / "bench" / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="batchscore benchmarks against baselines measured in the same run"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few minutes (what the tests run)")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated figures, e.g. P1,P5 or P1-pg (which also runs P1, its baseline) (default: all)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where results go (default: bench/results)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the server's process tree with py-spy during each figure's batchscore measurement",
    )
    parser.add_argument("--big-rows", type=int, help="rows of the large batch of P6/P7 (default 1,000,000)")
    parser.add_argument(
        "--budget",
        type=float,
        help="seconds the large batch may take by the measured throughput before it is shrunk (default 900)",
    )
    args = parser.parse_args(argv)
    known = {figure.upper(): figure for figure in FIGURES}
    wanted = [part.strip().upper() for part in args.only.split(",") if part.strip()]
    unknown = [figure for figure in wanted if figure not in known]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}: choose from {', '.join(sorted(FIGURES))}")
    selected = {known[figure] for figure in wanted}
    # A PostgreSQL figure's ratios are to its SQLite figure of the same run: selecting it selects that one too.
    selected |= {figure.removesuffix(POSTGRES_SUFFIX) for figure in selected}
    args.figures = [figure for figure in RUN_ORDER if not wanted or figure in selected]
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; return 0 when every selected figure was measured."""
    args = parse_args(argv)
    sizes: Sizes = QUICK if args.quick else FULL
    if args.big_rows:
        sizes = replace(sizes, big_rows=args.big_rows)
    if args.budget:
        sizes = replace(sizes, big_budget_seconds=args.budget)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    data: dict[str, Any] = {
        "schema": 1,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if args.quick else "full",
        "command": report.command_line(),
        "machine": report.machine(),
        "versions": report.versions(),
        "load_average": {"before": list(os.getloadavg()), "after": list(os.getloadavg())},
        "duration_seconds": 0.0,
        "server": {"workers": WORKERS},
        "figures": {},
        "throughput": [],
        "profiles": {},
    }
    print(f"batchscore benchmarks ({data['mode']}): {', '.join(args.figures)} -> {out}", flush=True)
    errors = 0
    server_log = Path(tempfile.gettempdir()) / f"batchscore-bench-server-{os.getpid()}.log"
    measured: dict[str, Figure] = {}
    with server_process(server_log) as server, _PostgresSide(args, out, data) as postgres:
        data["server"]["startup_seconds"] = round(server.startup_seconds, 2)
        bench = Bench(server, quick=args.quick, out_dir=out, profile=args.profile)
        try:
            for figure_id in args.figures:
                if figure_id.endswith(POSTGRES_SUFFIX):
                    base_id = figure_id.removesuffix(POSTGRES_SUFFIX)
                    figure = postgres.measure(figure_id, sizes, measured.get(base_id))
                else:
                    postgres.stop()  # its cluster would take CPU from the figures that follow
                    figure = _measure(FIGURES[figure_id], bench, sizes)
                measured[figure_id] = figure
                errors += figure.error is not None
                data["figures"][figure_id] = figure.to_json()
                _print(figure)
                _write(data, bench, postgres, out, started)
        finally:
            bench.close()
    data["duration_seconds"] = round(time.monotonic() - started, 1)
    _write(data, bench, postgres, out, started)
    worst = data.get("worst")
    if worst:
        print(f"furthest from its goal: {worst['id']} ({worst['margin']:.3g} of the goal)")
    if out == DEFAULT_OUT.resolve() and not args.quick and len(args.figures) == len(FIGURES):
        report.update_readme(ROOT / "bench" / "README.md", report.markdown(data), "throughput.png")
    print(f"wrote {out / 'latest.json'}, {out / 'latest.md'}" + (", throughput.png" if data["throughput"] else ""))
    return 1 if errors else 0


class _PostgresSide:
    """The PostgreSQL figures' server: started at the first one, stopped by :meth:`stop` or at the end of the run.

    It is ``bench.server_proc`` again, with its own Dask cluster, on a database of a throwaway PostgreSQL
    (:func:`bench._core.postgres_server_process`).
    """

    def __init__(self, args: argparse.Namespace, out: Path, data: dict[str, Any]) -> None:
        self._args = args
        self._out = out
        self._data = data
        self._stack = contextlib.ExitStack()
        self._bench: Bench | None = None
        self._unavailable: str | None = None
        self._checked = False
        # Kept across its servers (stop() ends one, a later -pg figure starts another): the plot and the profiles.
        self.throughput: list[dict[str, Any]] = []
        self.profiles: dict[str, dict[str, Any]] = {}

    def __enter__(self) -> _PostgresSide:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server and the PostgreSQL (if they run); a later PostgreSQL figure starts new ones."""
        self._stack.close()
        self._bench = None

    def _start(self) -> Bench:
        if self._bench is None:
            log = Path(tempfile.gettempdir()) / f"batchscore-bench-server-pg-{os.getpid()}.log"
            print(f"  starting PostgreSQL and a server on it (server log: {log}) ...", flush=True)
            server = self._stack.enter_context(postgres_server_process(log))
            bench = Bench(server, quick=self._args.quick, out_dir=self._out, profile=self._args.profile)
            bench.throughput, bench.profiles = self.throughput, self.profiles
            self._stack.callback(bench.close)
            self._data["server"]["postgresql"] = {
                "startup_seconds": round(server.startup_seconds, 2),
                "settings": POSTGRES_SETTINGS,
            }
            self._bench = bench
        return self._bench

    def measure(self, figure_id: str, sizes: Sizes, sqlite: Figure | None) -> Figure:
        """Measure ``figure_id`` (``<ID>-pg``) on PostgreSQL and compare it with ``sqlite``, its figure on SQLite.

        Skipped, saying why, where PostgreSQL cannot run (no server binaries, no psycopg).
        """
        module = FIGURES[figure_id]
        if not self._checked:
            self._unavailable = postgres_unavailable()
            self._checked = True
        title = f"{module.TITLE} (PostgreSQL)"
        if self._unavailable is not None:
            print(f"{figure_id}: {title} ...", flush=True)
            skip = f"no PostgreSQL here: {self._unavailable}"
            return Figure(id=figure_id, title=title, value=None, unit="", summary="", goal="", skipped=skip)
        try:
            bench = self._start()
        except Exception as error:
            traceback.print_exc()
            self.stop()
            failed = f"PostgreSQL or its server did not start: {type(error).__name__}: {error}"
            return Figure(id=figure_id, title=title, value=None, unit="", summary="", goal="", error=failed)
        figure = _measure(module, bench, sizes, figure_id)
        figure.id, figure.title = figure_id, title
        figure.notes.insert(0, POSTGRES_SETUP)
        if figure.error is not None:
            return figure
        if sqlite is None or sqlite.error is not None:
            figure.notes.append(f"no SQLite figure {module.ID} measured in this run to compare with")
            return figure
        versus = module.versus_sqlite(figure, sqlite)
        figure.baselines = {f"SQLite ({sqlite.id}, same run)": versus.baseline, **figure.baselines}
        figure.ratios = {**versus.ratios, **figure.ratios}
        figure.details["versus_sqlite"] = versus.line
        return figure


def _measure(module: ModuleType, bench: Bench, sizes: Sizes, label: str | None = None) -> Figure:
    label = label or module.ID
    print(f"{label}: {module.TITLE}{' (PostgreSQL)' if label != module.ID else ''} ...", flush=True)
    started = time.monotonic()
    try:
        figure: Figure = module.run(bench, sizes)
    except Exception as error:
        traceback.print_exc()
        figure = Figure(
            id=module.ID,
            title=module.TITLE,
            value=None,
            unit="",
            summary="",
            goal="",
            error=f"{type(error).__name__}: {error}",
        )
    figure.seconds = time.monotonic() - started
    return figure


def _print(figure: Figure) -> None:
    if figure.skipped:
        print(f"  {figure.id} skipped: {figure.skipped}", flush=True)
        return
    if figure.error:
        print(f"  {figure.id} could not be measured: {figure.error}", flush=True)
        return
    verdict = {True: "meets its goal", False: "misses its goal", None: "no goal"}[figure.passed]
    ratios = ", ".join(f"{value:.3g}x {name.removeprefix('vs ')}" for name, value in figure.ratios.items())
    print(f"  {figure.summary}", flush=True)
    print(f"  {figure.value:.4g} {figure.unit}; {ratios}; goal {figure.goal}: {verdict}", flush=True)
    if "versus_sqlite" in figure.details:
        on = figure.id.removesuffix(POSTGRES_SUFFIX)
        print(f"  {on} on PostgreSQL: {figure.details['versus_sqlite']}", flush=True)
    if figure.size and figure.size.why:
        print(f"  size: ran {figure.size.ran} instead of {figure.size.table}: {figure.size.why}", flush=True)
    print(f"  ({figure.seconds:.1f} s)", flush=True)


def _write(data: dict[str, Any], bench: Bench, postgres: _PostgresSide, out: Path, started: float) -> None:
    data["duration_seconds"] = round(time.monotonic() - started, 1)
    data["load_average"]["after"] = list(os.getloadavg())
    data["throughput"] = bench.throughput + postgres.throughput
    data["profiles"] = {**bench.profiles, **postgres.profiles}
    measured = [f for f in data["figures"].values() if not f["error"] and f["margin"] is not None]
    if measured:
        worst = min(measured, key=lambda f: f["margin"])
        data["worst"] = {"id": worst["id"], "margin": worst["margin"]}
    report.write_json(out / "latest.json", data)
    (out / "latest.md").write_text(report.markdown(data), encoding="utf-8")
    report.plot(data, out / "throughput.png")
