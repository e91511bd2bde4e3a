"""Start Prism (the contract's mock or validating proxy) on a port it picks itself, and stop it.

Prism is a separate program: it cannot be handed a bound socket, and a port probed free here and passed to it
could be taken before it binds (it was, on a busy machine). So Prism binds port 0 itself, and the URL is read
from the line it logs once it listens ("Prism is listening on http://127.0.0.1:PORT").
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._contract import ROOT

# Prism takes ~2 s alone; on a machine running several test suites at once, far longer.
STARTUP_TIMEOUT_S = 300.0
LISTENING = re.compile(r"Prism is listening on (http://\S+)")


def node_bin() -> Path:
    """Where Prism and Spectral are installed (nox passes BATCHSCORE_NODE_BIN)."""
    return Path(os.environ.get("BATCHSCORE_NODE_BIN", ROOT / "mock" / "node_modules" / ".bin"))


def _wait_for_url(process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        found = LISTENING.search(log.read_text(errors="replace"))
        if found:
            return found.group(1).rstrip("/")
        if process.poll() is not None:
            pytest.fail(f"Prism exited with {process.returncode} before listening:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)
    pytest.fail(f"Prism did not listen within {STARTUP_TIMEOUT_S} s:\n{log.read_text(errors='replace')}")


@contextlib.contextmanager
def running_prism(*args: str, log: Path) -> Iterator[str]:
    """Run ``prism ARGS --host 127.0.0.1 --port 0``; yields its URL; stops its whole process group on exit."""
    prism = node_bin() / "prism"
    if not prism.exists():
        pytest.fail(f"{prism} is missing: run `npm ci` in mock/ (nox -s tests does it for you)")
    # Prism logs every request: a file, not a pipe nobody drains, or it blocks once the pipe buffer is full.
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(prism), *args, "--host", "127.0.0.1", "--port", "0"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
    try:
        yield _wait_for_url(process, log)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
