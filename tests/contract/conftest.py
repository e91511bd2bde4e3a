"""A Prism mock of the contract, started from mock/node_modules on a port it picks itself, for the contract tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._contract import CONTRACT_PATH, ROOT

STARTUP_TIMEOUT_S = 60.0


def _node_bin() -> Path:
    return Path(os.environ.get("BATCHSCORE_NODE_BIN", ROOT / "mock" / "node_modules" / ".bin"))


# Prism logs this line once its socket is bound; with --port 0 it names the port the system chose.
LISTENING = re.compile(rb"Prism is listening on (http://127\.0\.0\.1:\d+)")


def _wait_until_listening(process: subprocess.Popen[bytes], log: Path) -> str:
    """The URL Prism serves on, read from its log.

    Prism binds port 0 itself: probing a free port here and handing it over would race with every other process
    on the machine (Dask, other engineers' servers) for it. Prism takes ~2 s alone and over 3 s when several start
    at once, so the log is polled rather than slept on.
    """
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        found = LISTENING.search(log.read_bytes())
        if found:
            return found.group(1).decode()
        if process.poll() is not None:
            pytest.fail(f"Prism exited with {process.returncode} before listening:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)
    pytest.fail(f"Prism did not listen within {STARTUP_TIMEOUT_S} s:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="session")
def prism_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a Prism mock serving the contract; stopped (with its whole process group) at the end."""
    prism = _node_bin() / "prism"
    if not prism.exists():
        pytest.fail(f"{prism} is missing: run `npm ci` in mock/ (nox -s tests does it for you)")
    # Prism logs every request: a file, not a pipe nobody drains, or it blocks once the pipe buffer is full.
    log = tmp_path_factory.mktemp("prism") / "prism.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(prism), "mock", str(CONTRACT_PATH), "--host", "127.0.0.1", "--port", "0"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield _wait_until_listening(process, log)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
