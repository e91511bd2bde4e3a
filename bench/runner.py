"""``python -m bench [--quick] [--only P1,P5] [--out bench/results] [--profile]``.

Starts one server (``bench.server_proc``: a Dask LocalCluster, the embedded server on it, an echo app), measures
each figure next to its baselines, back to back in the same run, and writes ``latest.json``, ``latest.md`` and
``throughput.png`` into ``--out`` after every figure. Benchmarks print and record; they never assert a time: the
exit code is 1 only when a figure could not be measured at all.
"""

from __future__ import annotations

import argparse
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
from bench._core import FULL, QUICK, ROOT, WORKERS, Bench, Figure, Sizes, server_process

# Every bench/pN_*.py module is a figure (with ID, TITLE and run()): a new one needs no list kept in step.
FIGURES: dict[str, ModuleType] = {
    module.ID: module
    for module in (
        importlib.import_module(f"bench.{info.name}")
        for info in pkgutil.iter_modules(bench.__path__)
        if re.fullmatch(r"p\d+_\w+", info.name)
    )
}
# Latency first on a fresh server; P4 and P6 (small) reuse P1's batch; the large batch last, because a process's
# resident memory does not shrink again once it has grown. P9's batches are deleted before P6 starts.
RUN_ORDER = ("P5", "P1", "P4", "P2", "P3", "P9", "P6", "P7")
DEFAULT_OUT = ROOT / "bench" / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="batchscore benchmarks against baselines measured in the same run"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, under 2 minutes (what the tests run)")
    parser.add_argument("--only", default="", help="comma-separated figures, e.g. P1,P5 (default: all)")
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
    wanted = [part.strip().upper() for part in args.only.split(",") if part.strip()]
    unknown = [figure for figure in wanted if figure not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}: choose from {', '.join(sorted(FIGURES))}")
    args.figures = [figure for figure in RUN_ORDER if not wanted or figure in wanted]
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
    with server_process(server_log) as server:
        data["server"]["startup_seconds"] = round(server.startup_seconds, 2)
        bench = Bench(server, quick=args.quick, out_dir=out, profile=args.profile)
        try:
            for figure_id in args.figures:
                figure = _measure(FIGURES[figure_id], bench, sizes)
                errors += figure.error is not None
                data["figures"][figure_id] = figure.to_json()
                _print(figure)
                _write(data, bench, out, started)
        finally:
            bench.close()
    data["duration_seconds"] = round(time.monotonic() - started, 1)
    _write(data, bench, out, started)
    worst = data.get("worst")
    if worst:
        print(f"furthest from its goal: {worst['id']} ({worst['margin']:.3g} of the goal)")
    if out == DEFAULT_OUT.resolve() and not args.quick and len(args.figures) == len(FIGURES):
        report.update_readme(ROOT / "bench" / "README.md", report.markdown(data), "throughput.png")
    print(f"wrote {out / 'latest.json'}, {out / 'latest.md'}" + (", throughput.png" if data["throughput"] else ""))
    return 1 if errors else 0


def _measure(module: ModuleType, bench: Bench, sizes: Sizes) -> Figure:
    print(f"{module.ID}: {module.TITLE} ...", flush=True)
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
    if figure.error:
        print(f"  {figure.id} could not be measured: {figure.error}", flush=True)
        return
    verdict = {True: "meets its goal", False: "misses its goal", None: "no goal"}[figure.passed]
    ratios = ", ".join(f"{value:.3g}x {name.removeprefix('vs ')}" for name, value in figure.ratios.items())
    print(f"  {figure.summary}", flush=True)
    print(f"  {figure.value:.4g} {figure.unit}; {ratios}; goal {figure.goal}: {verdict}", flush=True)
    if figure.size and figure.size.why:
        print(f"  size: ran {figure.size.ran} instead of {figure.size.table}: {figure.size.why}", flush=True)
    print(f"  ({figure.seconds:.1f} s)", flush=True)


def _write(data: dict[str, Any], bench: Bench, out: Path, started: float) -> None:
    data["duration_seconds"] = round(time.monotonic() - started, 1)
    data["load_average"]["after"] = list(os.getloadavg())
    data["throughput"] = bench.throughput
    data["profiles"] = bench.profiles
    measured = [f for f in data["figures"].values() if not f["error"] and f["margin"] is not None]
    if measured:
        worst = min(measured, key=lambda f: f["margin"])
        data["worst"] = {"id": worst["id"], "margin": worst["margin"]}
    report.write_json(out / "latest.json", data)
    (out / "latest.md").write_text(report.markdown(data), encoding="utf-8")
    report.plot(data, out / "throughput.png")
