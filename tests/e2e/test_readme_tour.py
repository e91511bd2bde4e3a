"""The README's install and tours run as written, so they cannot rot.

The README marks the blocks a test runs with an HTML comment right before each: ``<!-- test: install -->`` (the
Quickstart's venv and ``pip install``), ``<!-- test: tour-serve -->`` (the tour's server),
``<!-- test: tour-python -->`` and ``<!-- test: tour-cli -->``. The fast tests run the tours with this
environment against the shared server; ``test_a_fresh_venv_made_the_readmes_way_runs_the_tours`` does everything
the README's way, from a fresh venv installed with pip (several minutes: it installs the server's whole stack).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from batchscore_server import RunningServer

ROOT = Path(__file__).resolve().parents[2]
# The seed's answer for hp=120, wt=2.8 (the R Server 9.1 page prints 0.6418125).
SEED_ANSWER = "0.64181"
FRESH_VENV_TIMEOUT = 15 * 60


def readme_blocks(marker: str) -> list[str]:
    """The code blocks the README marks ``<!-- test: MARKER -->``, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(rf"<!-- test: {marker} -->\n```(?:bash|python)\n(.*?)```", text, flags=re.DOTALL)


def test_the_readme_has_its_tours() -> None:
    assert len(readme_blocks("install")) == 1
    assert len(readme_blocks("tour-serve")) == 1
    assert readme_blocks("tour-python")
    assert readme_blocks("tour-cli")


def _without_batchscore_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("BATCHSCORE_")}


def _assert_cli_tour_output(stdout: str, folder: Path) -> None:
    assert "242.8" in stdout  # consume: 120 * 2 + 2.8
    assert (folder / "results.csv").read_text().count("\n") == 4  # a header and three rows
    assert (folder / "results.parquet").exists()
    assert '"complete"' in stdout


def test_the_cli_tour_runs(server: RunningServer, tmp_path: Path) -> None:
    script = tmp_path / "tour.sh"
    script.write_text("\n".join(readme_blocks("tour-cli")), encoding="utf-8")
    scripts_dir = str(Path(sys.executable).parent)  # where the batchscore console script is installed
    env = _without_batchscore_env()
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
    _assert_cli_tour_output(result.stdout, tmp_path)


def test_the_python_tour_runs(server: RunningServer, tmp_path: Path) -> None:
    script = tmp_path / "tour.py"
    script.write_text("\n".join(readme_blocks("tour-python")), encoding="utf-8")
    env = {**_without_batchscore_env(), "BATCHSCORE_URL": server.url, "BATCHSCORE_PASSWORD": server.admin_password}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(SEED_ANSWER)


# --- a fresh venv, the README's way ------------------------------------------------------------------------------

# What the test adds to the README's text, between its serve block and its tours: the server was asked for any free
# port (BATCHSCORE_PORT=0, which `batchscore serve` honours) instead of the README's fixed 12800, so that tests
# running at the same time cannot collide; the glue reads the port it bound from its log and points
# BATCHSCORE_URL (which the README's tours honour) at it. A bounded wait for the start, not a timing assertion.
_GLUE = textwrap.dedent(
    """
    server_pid=$!
    url=
    for _ in $(seq 1200); do
        url=$(grep -o 'Uvicorn running on http://[^ ]*' server.log | head -n 1 | cut -d ' ' -f 4 || true)
        [ -n "$url" ] && break
        kill -0 "$server_pid" 2>/dev/null || { echo "the server exited:" >&2; cat server.log >&2; exit 97; }
        sleep 0.5
    done
    [ -n "$url" ] || { echo "the server did not start:" >&2; cat server.log >&2; exit 98; }
    export BATCHSCORE_URL="$url"
    """
)


def _stop_group(process: subprocess.Popen[str]) -> None:
    """Stop the driver's whole process group: the server it left in the background, its Dask workers and pools."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)


def _clean_env() -> dict[str, str]:
    # Nothing of this test's own environment may leak into the new one: no venv, no PYTHONPATH, no server settings.
    env = {
        key: value
        for key, value in _without_batchscore_env().items()
        if key not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}
    }
    env["PATH"] = os.pathsep.join(
        part for part in env.get("PATH", "").split(os.pathsep) if not part.startswith(str(ROOT / ".venv"))
    )
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def test_a_fresh_venv_made_the_readmes_way_runs_the_tours(tmp_path: Path) -> None:
    clean_env = _clean_env()
    venv = tmp_path / "venv"
    # The README's install block, run with bash from the repository's root as the README says, with one change:
    # the venv goes to tmp_path instead of the checkout's .venv (the developer's own venv). pip, not uv, as the
    # README says; pip may use its cache. No network (PyPI unreachable) is a failure here, never a skip.
    install = readme_blocks("install")[0].replace(".venv", str(venv))
    installed = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", install],
        cwd=ROOT,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=FRESH_VENV_TIMEOUT,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout[-5000:] + installed.stderr[-5000:]

    # The tours run in the shell the install block left: its venv active, BATCHSCORE_URL and BATCHSCORE_PASSWORD
    # exported by the serve block. They run in tmp_path, not in the repository's root as the README says, so that
    # their files (tour-data/, results.csv, ...) stay out of the checkout; examples/ is linked there for the Python
    # tour's examples/data/mtcars.csv.
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    (work / "tour.py").write_text("\n".join(readme_blocks("tour-python")), encoding="utf-8")
    driver = "\n".join(
        [
            "{",
            readme_blocks("tour-serve")[0],
            "} > server.log 2>&1",
            _GLUE,
            "echo '=== python tour'",
            "python tour.py",
            "echo '=== cli tour'",
            *readme_blocks("tour-cli"),
            "echo '=== done'",
        ]
    )
    env = {
        **clean_env,
        "VIRTUAL_ENV": str(venv),  # what `. .venv/bin/activate` sets
        "PATH": f"{venv / 'bin'}{os.pathsep}{clean_env['PATH']}",
        "BATCHSCORE_PORT": "0",
        "BATCHSCORE_CONFIG_DIR": str(tmp_path / "config"),  # `batchscore login` stores its profile here
    }
    # Its own session: the server the serve block leaves in the background, its Dask workers and its consume pool
    # are all in the driver's process group, which is stopped whatever happens.
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", driver],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=FRESH_VENV_TIMEOUT)
    finally:
        _stop_group(process)
        if process.poll() is None:
            process.kill()
            process.communicate()
    log = (work / "server.log").read_text(encoding="utf-8", errors="replace") if (work / "server.log").exists() else ""
    detail = f"stdout:\n{stdout}\nstderr:\n{stderr[-5000:]}\nserver.log:\n{log[-5000:]}"
    assert process.returncode == 0, detail
    python_out = stdout.split("=== python tour\n", 1)[1].split("=== cli tour\n", 1)[0]
    assert python_out.startswith(SEED_ANSWER), detail
    assert "=== done" in stdout, detail
    _assert_cli_tour_output(stdout.split("=== cli tour\n", 1)[1], work)
