"""A Prism mock of the contract, started from mock/node_modules on a free port for the contract tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._contract import CONTRACT_PATH, ROOT

STARTUP_TIMEOUT_S = 60.0


def _node_bin() -> Path:
    return Path(os.environ.get("BATCHSCORE_NODE_BIN", ROOT / "mock" / "node_modules" / ".bin"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    # Prism takes ~2 s alone and over 3 s when several start at once, so poll the port rather than sleep blind.
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Prism exited with {process.returncode} before listening:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"Prism did not listen on port {port} within {STARTUP_TIMEOUT_S} s")


@pytest.fixture(scope="session")
def prism_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a Prism mock serving the contract; stopped (with its whole process group) at the end."""
    prism = _node_bin() / "prism"
    if not prism.exists():
        pytest.fail(f"{prism} is missing: run `npm ci` in mock/ (nox -s tests does it for you)")
    port = _free_port()
    # Prism logs every request: a file, not a pipe nobody drains, or it blocks once the pipe buffer is full.
    log = tmp_path_factory.mktemp("prism") / "prism.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(prism), "mock", str(CONTRACT_PATH), "--host", "127.0.0.1", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_listening(process, port, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
