"""The README's Python tour runs as written against a real server, so it cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from batchscore_server._embedded import RunningServer

ROOT = Path(__file__).resolve().parents[2]


def tour_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"<!-- tour -->\n```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_readme_has_a_tour() -> None:
    assert len(tour_blocks()) == 1


def test_the_python_tour_runs(server: RunningServer, tmp_path: Path) -> None:
    script = tmp_path / "tour.py"
    script.write_text(tour_blocks()[0], encoding="utf-8")
    env = {**os.environ, "BATCHSCORE_URL": server.url, "BATCHSCORE_PASSWORD": server.admin_password}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("0.64181")
