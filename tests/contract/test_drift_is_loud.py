"""A contract change reaches the SDK through `nox -s generate`, or the build fails: drift is never silent.

The test copies the project, renames the batch start's `parallelCount` query parameter in the copy's contract,
regenerates the copy's client and type-checks the copy's SDK: strict mypy must now fail where the SDK passes the
old parameter (every request is built by a generated function, called with checked arguments).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests._contract import ROOT

# The project's mypy cache is copied along (the test command type-checks before pytest runs), so the copy's checks
# only redo what the rename changed.
IGNORED = shutil.ignore_patterns(
    ".git", ".nox", "node_modules", "__pycache__", ".ruff_cache", ".pytest_cache", "bench", "tests", "batch-output"
)


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(ROOT, copy, ignore=IGNORED)
    return copy


def _run(copy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=copy, capture_output=True, text=True, timeout=900, check=False)


def test_renaming_a_query_parameter_fails_the_type_check(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    # Unchanged, the copy passes: a failure below comes from the rename, not from a broken copy.
    unchanged = _run(copy, "-m", "mypy", "sdk")
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    contract = copy / "openapi" / "batchscore.yaml"
    text = contract.read_text(encoding="utf-8")
    assert "        - name: parallelCount\n" in text
    contract.write_text(text.replace("        - name: parallelCount\n", "        - name: maxParallel\n"), "utf-8")

    generated = _run(copy, "tools/generate_client.py")
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert _run(copy, "tools/generate_client.py", "--check").returncode == 0
    checked = _run(copy, "-m", "mypy", "sdk")

    assert checked.returncode != 0
    assert 'Unexpected keyword argument "parallel_count"' in checked.stdout
