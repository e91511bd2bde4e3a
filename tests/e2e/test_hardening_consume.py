"""Consumes that hang: a timeout, a client that goes away, a server that stops or is killed, a memory limit."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
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
from tests.e2e.test_restart import LISTENING, client, start_server

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
DEADLINE_S = 600  # generous: a pool process restarted on a machine shared by test runs took a minute


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


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def gone(pids: set[int]) -> bool:
    return not any(alive(pid) for pid in pids)


@pytest.fixture(scope="module")
def consume_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, httpx.Client]]:
    with running_server(workers=2) as running:
        token = login(running)["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=running.url, headers=headers, timeout=DEADLINE_S) as client:
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


def test_a_consume_over_its_consume_timeout_fails_naming_it_and_its_process_is_killed(
    consume_server: tuple[str, httpx.Client], tmp_path: Path
) -> None:
    _url, api = consume_server
    marks = tmp_path / "marks"
    publish(api, "hangs_timed", SLEEPS_CODE.format(marks=str(marks)), consumeTimeout=1)
    assert api.get("/services/hangs_timed/v1").json()[0]["consumeTimeout"] == 1
    answer = api.post("/api/hangs_timed/v1", json={"hp": 1, "wt": 1})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is False
    assert "timed out" in body["errorMessage"]
    assert "consumeTimeout (1 s)" in body["errorMessage"]
    poll(lambda: gone(marked_pids(marks)), "the timed-out consume's process is killed")
    patched = api.patch("/services/hangs_timed/v1", json={"consumeTimeout": 7.5})
    assert patched.status_code == 200, patched.text
    assert api.get("/services/hangs_timed/v1").json()[0]["consumeTimeout"] == 7.5


def test_stopping_the_server_kills_hanging_consumes(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    with running_server(workers=2) as running:
        token = login(running)["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=running.url, headers=headers, timeout=DEADLINE_S) as api:
            publish(api, "hangs_at_stop", SLEEPS_CODE.format(marks=str(marks)))
        calls = [
            in_background(
                lambda: httpx.post(
                    f"{running.url}/api/hangs_at_stop/v1", json={"hp": 1, "wt": 1}, headers=headers, timeout=600
                )
            )
            for _ in range(2)
        ]
        pids = poll(lambda: running_pids(marks, 2), "both hanging consumes run")
    # The stop did not wait for the hour-long consumes: their processes are gone, their requests ended.
    poll(lambda: gone(pids), "the hanging consumes' processes are killed by the stop")
    for call in calls:
        outcome = poll(lambda call=call: call.get("result") or call.get("error"), "a hanging consume's request ends")
        if isinstance(outcome, httpx.Response):
            assert outcome.json()["success"] is False
            assert "shutting down" in outcome.json()["errorMessage"]


def test_a_consume_over_the_memory_limit_fails_and_the_server_stays_healthy() -> None:
    limit = 1 << 30
    with running_server(workers=1, worker_memory_bytes=limit, consume_timeout_seconds=120) as running:
        token = login(running)["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=running.url, headers=headers, timeout=DEADLINE_S) as api:
            publish(api, "memory_bomb", f"block = bytearray({2 * limit})\nanswer = len(block)\n")
            publish(api, "after_bomb", FAST_CODE)
            bomb = api.post("/api/memory_bomb/v1", json={"hp": 1, "wt": 1})
            assert bomb.status_code == 200, bomb.text
            assert bomb.json()["success"] is False
            assert "MemoryError" in bomb.json()["errorMessage"]
            after = api.post("/api/after_bomb/v1", json={"hp": 2, "wt": 3})
            assert after.json()["outputParameters"] == {"answer": 5}
            assert api.get("/status").status_code == 200


def test_the_server_default_consume_timeout_applies_to_a_service_without_its_own(tmp_path: Path) -> None:
    with running_server(workers=1, consume_timeout_seconds=1) as running:
        token = login(running)["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=running.url, headers=headers, timeout=DEADLINE_S) as api:
            publish(api, "hangs_default", SLEEPS_CODE.format(marks=str(tmp_path / "marks")))
            body = api.post("/api/hangs_default/v1", json={"hp": 1, "wt": 1}).json()
            assert body["success"] is False
            assert "the server's consume timeout (1 s)" in body["errorMessage"]
            assert api.post("/api/hangs_default/v1", json={"hp": 1, "wt": 1}).json()["success"] is False


def test_a_killed_server_leaves_no_consume_process_behind(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    server, url = start_server(tmp_path / "data", tmp_path / "server.log")
    try:
        with client(url) as api:
            publish(api, "hangs_at_kill", SLEEPS_CODE.format(marks=str(marks)))
            sockets = [send_consume(url, api, "hangs_at_kill") for _ in range(2)]
            pids = poll(lambda: running_pids(marks, 2), "both hanging consumes run")
        os.kill(server.pid, signal.SIGKILL)  # the server alone, as the OOM killer or `kill -9 <pid>` would
        server.wait(timeout=60)
        poll(lambda: gone(pids), "the consume pool's processes die with the server")
        for sock in sockets:
            sock.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)  # what else the server started (its Dask workers)


STALLED_SOCKETS = 200


def stalled(url: str, data: bytes) -> socket.socket:
    """A connection that sent ``data`` (part of a request) and then nothing."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(data)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (whatever it said first); False while it stays open."""
    sock.setblocking(False)
    try:
        while chunk := sock.recv(65536):
            del chunk
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    return True


def status_of(url: str) -> int | None:
    """GET /status's status code, None when the connection failed."""
    try:
        return httpx.get(f"{url}/status", timeout=30).status_code
    except httpx.TransportError:
        return None


def test_stalled_requests_leave_the_server_reachable_and_are_closed_after_the_read_timeout() -> None:
    with running_server(workers=1, read_timeout_seconds=2) as running:
        half_lines = [stalled(running.url, b"GET /stat") for _ in range(STALLED_SOCKETS)]
        half_headers = stalled(running.url, b"GET /status HTTP/1.1\r\nHost: x\r\n")
        half_body = stalled(
            running.url,
            b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{",
        )
        # A whole request, answered, then half of the next one on the same connection.
        second = stalled(running.url, b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        poll(lambda: second.recv(65536), "the first request on a kept-alive connection is answered")
        second.sendall(b"GET /sta")
        assert httpx.get(f"{running.url}/status", timeout=120).status_code == 200
        # Headers that trickle in, a byte at a time, do not extend the wait for them.
        trickle = stalled(running.url, b"GET /status HTTP/1.1\r\nX-Slow: ")

        def closed_while_trickling() -> bool:
            try:
                trickle.sendall(b"a")
            except OSError:
                return True
            return closed_by_server(trickle)

        poll(closed_while_trickling, "headers trickling in are cut off")
        trickle.close()
        for sock in [*half_lines, half_headers, half_body, second]:
            poll(lambda sock=sock: closed_by_server(sock), "a stalled connection is closed by the server")
            sock.close()
        assert httpx.get(f"{running.url}/status", timeout=120).status_code == 200


def test_connections_over_the_cap_are_refused_at_once() -> None:
    with running_server(workers=1, max_connections=20, read_timeout_seconds=600) as running:
        held = [stalled(running.url, b"GET /stat") for _ in range(20)]
        over = stalled(running.url, b"GET /stat")
        poll(lambda: closed_by_server(over), "a connection over the cap is closed")
        assert not any(closed_by_server(sock) for sock in held)
        for sock in [*held, over]:
            sock.close()
        poll(lambda: status_of(running.url) == 200, "the server answers again")


OPEN_FILES = (256, 640)  # soft, hard: the server raises its soft limit to the hard one
IDLE_SOCKETS = 1100


def start_limited_server(data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``batchscore serve`` with a small open files limit and a short read timeout."""
    command = [sys.executable, "-c", "from batchscore.cli import main; main()", "serve", "--data-dir", str(data_dir)]
    command += ["--port", "0", "--workers", "1", "--read-timeout", "5"]
    env = {**os.environ, "BATCHSCORE_ADMIN_PASSWORD": "limited-password"}
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, OPEN_FILES),
        )
    poll(lambda: LISTENING.search(log.read_bytes()) or process.poll() is not None, "the server starts", timeout=600)
    found = LISTENING.search(log.read_bytes())
    assert found, log.read_text(errors="replace")
    return process, found.group(1).decode()


def test_idle_sockets_beyond_the_open_files_limit_neither_lock_out_clients_nor_flood_the_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server, url = start_limited_server(tmp_path / "data", log)
    try:
        before = log.stat().st_size
        started = time.monotonic()
        sockets = []
        for _ in range(IDLE_SOCKETS):
            with contextlib.suppress(OSError):  # refused or reset: the server is full
                sockets.append(stalled(url, b"GET /stat"))
        # Stalled connections are closed after the read timeout (5 s), the ones over the cap at once.
        poll(lambda: status_of(url) == 200, "the server answers")
        elapsed = time.monotonic() - started
        text = log.read_bytes()[before:].decode(errors="replace")
        # At most one "Too many open files" report a minute (each with its traceback).
        assert text.count("Too many open files") <= 2 + elapsed / 60, text[:3000]
        assert log.stat().st_size - before < 1_000_000
        for sock in sockets:
            sock.close()
        # The server raised its soft open files limit to the hard one.
        assert psutil.Process(server.pid).rlimit(psutil.RLIMIT_NOFILE) == (OPEN_FILES[1], OPEN_FILES[1])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=60)
