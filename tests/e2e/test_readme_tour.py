"""The README's Python tour runs as written against a real server, so it cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from batchscore_server import RunningServer

ROOT = Path(__file__).resolve().parents[2]


def tour_blocks(marker: str = "tour", language: str = "python") -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(rf"<!-- {marker} -->\n```{language}\n(.*?)```", text, flags=re.DOTALL)


def test_the_readme_has_its_tours() -> None:
    assert len(tour_blocks()) == 1
    assert len(tour_blocks("cli-tour", "bash")) == 1


def test_the_cli_tour_runs(server: RunningServer, tmp_path: Path) -> None:
    script = tmp_path / "tour.sh"
    script.write_text(tour_blocks("cli-tour", "bash")[0], encoding="utf-8")
    scripts_dir = str(Path(sys.executable).parent)  # where the batchscore console script is installed
    env = {key: value for key, value in os.environ.items() if not key.startswith("BATCHSCORE_")}
    env.update(
        {
            "PATH": f"{scripts_dir}{os.pathsep}{env.get('PATH', '')}",
            "BATCHSCORE_URL": server.url,
            "BATCHSCORE_PASSWORD": server.admin_password,
            "BATCHSCORE_CONFIG_DIR": str(tmp_path / "config"),
        }
    )
    result = subprocess.run(
        ["bash", "-euo", "pipefail", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "242.8" in result.stdout  # consume: 120 * 2 + 2.8
    assert (tmp_path / "results.csv").read_text().count("\n") == 4  # a header and three rows
    assert (tmp_path / "results.parquet").exists()
    assert '"complete"' in result.stdout


def test_the_python_tour_runs(server: RunningServer, tmp_path: Path) -> None:
    script = tmp_path / "tour.py"
    script.write_text(tour_blocks()[0], encoding="utf-8")
    env = {**os.environ, "BATCHSCORE_URL": server.url, "BATCHSCORE_PASSWORD": server.admin_password}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("0.64181")
