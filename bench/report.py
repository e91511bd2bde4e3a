"""Writing the results: ``latest.json``, the markdown table ``latest.md`` and the plot ``throughput.png``."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections import defaultdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

README_START = "<!-- bench-results:start -->"
README_END = "<!-- bench-results:end -->"
SYSTEMS = {  # plot order and style: label, marker, line style
    "batchscore": ("batchscore (submit -> all results)", "o", "-"),
    "batchscore on PostgreSQL": ("batchscore on PostgreSQL (submit -> all results)", "D", "--"),
    "dask.bag": ("dask.bag on the same cluster", "s", "-"),
    "multiprocessing.Pool.map": ("multiprocessing.Pool(2).map (the limit)", "^", ":"),
}


def machine() -> dict[str, Any]:
    """The machine the run measured: CPUs, memory, platform, Python."""
    import psutil

    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
    }


def versions() -> dict[str, str]:
    """Versions of the packages that matter to the numbers."""
    found = {}
    for name in ("batchscore", "dask", "distributed", "fastapi", "uvicorn", "httpx", "sqlalchemy", "statsmodels"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine_line(data: dict[str, Any]) -> str:
    """One line: when and on what."""
    m = data["machine"]
    return (
        f"{data['date']} on {m['cpu_count']} CPUs ({m['cpu_model']}), {m['memory_gb']} GB, {m['platform']}, "
        f"{m['python']}"
    )


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically (a long run rewrites it after each figure)."""
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n", encoding="utf-8")
    temporary.replace(path)


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _number(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 0.01 or value == 0:
        return f"{value:.{digits}f}"
    return f"{value:.2g}"


def _baseline_text(name: str, baseline: dict[str, Any]) -> str:
    if "seconds" in baseline:
        return f"{name}: {_number(baseline['seconds'])} s ({_number(baseline.get('rows_per_second'))} rows/s)"
    if "bytes" in baseline:
        return f"{name}: {baseline['bytes']:,} B"
    if "p50_ms" in baseline:
        return f"{name}: p50 {_number(baseline['p50_ms'])} ms, p99 {_number(baseline['p99_ms'])} ms"
    return name


def _ratio_text(figure: dict[str, Any]) -> str:
    return "; ".join(f"{_number(value, 3)}x {name.removeprefix('vs ')}" for name, value in figure["ratios"].items())


def _result_text(figure: dict[str, Any]) -> str:
    if figure.get("skipped"):
        return "skipped"
    if figure["error"]:
        return "error"
    if figure["passed"] is None:
        return "-"
    return "pass" if figure["passed"] else "FAIL"


def markdown(data: dict[str, Any]) -> str:
    """The results table with the date, the machine, sizes and notes."""
    lines = [
        f"Run {machine_line(data)}; mode `{data['mode']}`, {data['duration_seconds']:.0f} s in all. "
        f"Load average {data['load_average']['before'][0]:.2f} before, {data['load_average']['after'][0]:.2f} "
        "after: this machine's 2 cores are shared and noisy, so the ratios (measured back to back in this run), "
        "not the absolute times, are what count.",
        "",
        "| | figure | batchscore | baseline (same run) | ratio | goal | result |",
        "|---|---|---|---|---|---|---|",
    ]
    figures = data["figures"]
    for figure_id in sorted(figures):
        f = figures[figure_id]
        baselines = "<br>".join(_baseline_text(name, b) for name, b in f["baselines"].items()) or "-"
        summary = f["summary"] if not f["error"] else f"error: {f['error'].splitlines()[0][:200]}"
        if f.get("skipped"):
            summary = f"skipped: {f['skipped']}"
        lines.append(
            f"| {f['id']} | {f['title']} | {summary} | {baselines} | {_ratio_text(f) or '-'} | {f['goal']} | "
            f"{_result_text(f)} |"
        )
    lines += ["", "Sizes, baselines and notes:", ""]
    for figure_id in sorted(figures):
        f = figures[figure_id]
        parts = []
        if f["size"]:
            size = f["size"]
            parts.append(f"ran {size['ran']} (table: {size['table']})" + (f": {size['why']}" if size["why"] else ""))
        parts += [f"{name}: {b['how']}" for name, b in f["baselines"].items() if b.get("how")]
        parts += f["notes"]
        if parts:
            lines.append(f"- **{figure_id}**: " + "; ".join(parts) + ".")
    worst = data.get("worst")
    if worst:
        lines += ["", f"Furthest from its goal: **{worst['id']}** ({_number(worst['margin'], 3)} of the goal)."]
    for label, profile in data.get("profiles", {}).items():
        lines += ["", f"Profile of {label} (py-spy, server process tree; share of each process's samples):", ""]
        for role, info in profile["processes"].items():
            top = ", ".join(f"`{name}` {share}%" for name, share in info["self"][:6])
            ours = ", ".join(f"`{name}` {share}%" for name, share in info["inclusive"][:4])
            lines.append(
                f"- {role} ({info['samples']} samples, {info['idle_share']}% waiting in a selector); self: {top}; "
                f"batchscore code, inclusive: {ours or '-'}"
            )
    return "\n".join(lines) + "\n"


def plot(data: dict[str, Any], path: Path) -> bool:
    """Rows/s against batch size for batchscore, dask.bag and Pool.map; False when there is nothing to plot."""
    points: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for point in data["throughput"]:
        if point["rows_per_second"]:
            points[point["system"]][point["rows"]].append(point["rows_per_second"])
    if not points:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5), dpi=110)
    for system, (label, marker, style) in SYSTEMS.items():
        if system not in points:
            continue
        sizes = sorted(points[system])
        rates = [sum(points[system][n]) / len(points[system][n]) for n in sizes]
        axes.plot(sizes, rates, marker=marker, linestyle=style, label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("batch size (rows)")
    axes.set_ylabel("rows per second")
    axes.set_title("Trivial function (answer = x + 1), submit -> every result", fontsize=11)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=9)
    m = data["machine"]
    figure.text(
        0.01,
        0.01,
        f"{data['date']}, {m['cpu_count']} CPUs ({m['cpu_model']}), {m['python']}, mode {data['mode']}",
        fontsize=7,
        color="dimgray",
    )
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    figure.savefig(path)
    plt.close(figure)
    return True


def update_readme(readme: Path, table: str, plot_name: str | None) -> None:
    """Replace the results section of ``bench/README.md`` (between its markers) with this run's."""
    if not readme.exists():
        return
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        return
    body = table
    if plot_name:
        body += f"\n![throughput against batch size](results/{plot_name})\n"
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{body}{README_END}{tail}", encoding="utf-8")


def command_line() -> str:
    """How this run was started."""
    return " ".join(["python -m bench", *sys.argv[1:]])
