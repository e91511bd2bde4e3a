"""Consumes that hang: a timeout, a client that goes away, a server that stops or is killed, a memory limit."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from batchscore_server import running_server
from tests.e2e.conftest import login, publish

# Writes its process id where the test can see it (so the test knows it runs, and which process runs it), then
# sleeps for an hour.
SLEEPS_CODE = """
import os, pathlib, time, uuid
marks = pathlib.Path({marks!r})
marks.mkdir(exist_ok=True)
(marks / uuid.uuid4().hex).write_text(str(os.getpid()))
time.sleep(3600)
answer = 0
"""
FAST_CODE = "answer = hp + wt\n"
DEADLINE_S = 240  # generous: a machine shared by several test runs


def poll(condition: Callable[[], Any], what: str, timeout: float = DEADLINE_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def marked_pids(marks: Path) -> set[int]:
    return {int(mark.read_text()) for mark in marks.glob("*") if mark.read_text()} if marks.exists() else set()


def running_pids(marks: Path, count: int) -> set[int] | None:
    """The processes running the hanging service, once ``count`` of them run."""
    pids = marked_pids(marks)
    return pids if len(pids) == count else None


def in_background(call: Callable[[], Any]) -> dict[str, Any]:
    """Run ``call`` in a daemon thread; the returned dict gets its ``result`` or ``error``."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except Exception as error:  # the test reads it
            outcome["error"] = error

    threading.Thread(target=run, daemon=True).start()
    return outcome


def send_consume(url: str, api: httpx.Client, name: str) -> socket.socket:
    """Send a consume request on a raw socket and return the socket without reading the answer."""
    body = json.dumps({"hp": 1, "wt": 1}).encode()
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    head = (
        f"POST /api/{name}/v1 HTTP/1.1\r\nHost: {host}\r\nAuthorization: {api.headers['Authorization']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


def gone(pids: set[int]) -> bool:
    return not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)


@pytest.fixture(scope="module")
def consume_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, httpx.Client]]:
    with running_server(workers=2) as running:
        token = login(running)["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=running.url, headers=headers, timeout=120) as client:
            yield running.url, client


def test_abandoned_hanging_consumes_do_not_block_another_consume(
    consume_server: tuple[str, httpx.Client], tmp_path: Path
) -> None:
    url, api = consume_server
    marks = tmp_path / "marks"
    publish(api, "hangs_abandoned", SLEEPS_CODE.format(marks=str(marks)))
    publish(api, "fast_behind", FAST_CODE)
    # Two consumes fill both pool processes; their clients give up (close their connections) once both run.
    abandoned = [send_consume(url, api, "hangs_abandoned") for _ in range(2)]
    pids = poll(lambda: running_pids(marks, 2), "both hanging consumes run")
    for sock in abandoned:
        sock.close()
    answer = in_background(lambda: api.post("/api/fast_behind/v1", json={"hp": 1, "wt": 2}))
    body = poll(lambda: answer.get("result") or answer.get("error"), "the consume behind the hanging ones answers")
    assert isinstance(body, httpx.Response), body
    assert body.status_code == 200, body.text
    assert body.json()["success"] is True, body.text
    assert body.json()["outputParameters"] == {"answer": 3}
    poll(lambda: gone(pids), "the abandoned consumes' processes are killed")
