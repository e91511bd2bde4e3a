"""The benchmarks' --quick mode runs inside the test command, so that they cannot rot (no time is asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from bench._core import postgres_unavailable

ROOT = Path(__file__).resolve().parents[2]
FIGURES = [*(f"P{n}" for n in range(1, 7)), "P7a", "P7b", "P8", "P9", "P10", "P11"]
# Again, on a server whose database is a throwaway PostgreSQL (skipped, saying why, where none can run).
POSTGRES_FIGURES = ["P1-pg", "P9-pg", "P2-pg", "P3-pg", "P8-pg", "P7a-pg", "P7b-pg"]


def test_quick_benchmarks_record_every_figure(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    output = f"stdout:\n{completed.stdout[-4000:]}\nstderr:\n{completed.stderr[-4000:]}"
    assert completed.returncode == 0, output

    data = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))
    assert sorted(data["figures"]) == sorted(FIGURES + POSTGRES_FIGURES), output
    no_postgres = postgres_unavailable()
    for figure_id in POSTGRES_FIGURES:
        figure = data["figures"].pop(figure_id)
        if no_postgres is not None:
            assert no_postgres in (figure["skipped"] or ""), figure
            assert f"{figure_id} skipped: " in completed.stdout, output
            continue
        assert figure["error"] is None, (figure_id, figure["error"])
        assert figure["skipped"] is None, figure_id
        sqlite_id = figure_id.removesuffix("-pg")
        assert f"SQLite ({sqlite_id}, same run)" in figure["baselines"], figure_id
        assert all(math.isfinite(value) for name, value in figure["ratios"].items() if "SQLite" in name), figure
        assert f"{sqlite_id} on PostgreSQL: " in completed.stdout, output
    if no_postgres is None:
        assert data["server"]["postgresql"]["startup_seconds"] > 0
        assert {point["system"] for point in data["throughput"]} >= {"batchscore on PostgreSQL"}
    for figure_id, figure in data["figures"].items():
        assert figure["error"] is None, (figure_id, figure["error"])
        value = figure["value"]
        assert isinstance(value, int | float), (figure_id, value)
        assert not isinstance(value, bool), (figure_id, value)
        assert math.isfinite(value), (figure_id, value)
        assert figure["goal"], figure_id
        assert figure["checks"], figure_id
        assert figure["passed"] in (True, False), figure_id
    assert data["mode"] == "quick"
    for key in ("cpu_count", "python", "platform"):
        assert data["machine"][key], key
    assert {point["system"] for point in data["throughput"]} >= {"batchscore", "dask.bag"}
    table = (tmp_path / "latest.md").read_text(encoding="utf-8")
    assert all(f"| {figure_id} |" in table for figure_id in FIGURES + POSTGRES_FIGURES)
    assert (tmp_path / "throughput.png").read_bytes().startswith(b"\x89PNG")
