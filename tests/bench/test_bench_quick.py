"""The benchmarks' --quick mode runs inside the test command, so that they cannot rot (no time is asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# P8 is kept for the vectorized-service figure of the performance issue; the poll-load figure is P9.
FIGURES = [*(f"P{n}" for n in range(1, 8)), "P9"]


def test_quick_benchmarks_record_every_figure(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = f"stdout:\n{completed.stdout[-4000:]}\nstderr:\n{completed.stderr[-4000:]}"
    assert completed.returncode == 0, output

    data = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))
    assert sorted(data["figures"]) == FIGURES, output
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
    assert all(f"| {figure_id} |" in table for figure_id in FIGURES)
    assert (tmp_path / "throughput.png").read_bytes().startswith(b"\x89PNG")
