"""Sessions, roles and quotas against a real server: `users passwd` and `users remove` end sessions, a replayed
rotated refresh token revokes its family, the access log holds no refresh token, a Reader may not fill a
workspace, and the per-user quotas answer 429 (rows queued) and 413 (bytes stored)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from batchscore_server import Role, RunningServer, add_user, running_server
from tests.e2e.conftest import FINAL_STATES, NUMERIC_IO, login

CLI = [sys.executable, "-c", "from batchscore.cli import main; main()"]
DEADLINE = 120.0  # generous: a busy machine; the server promises TOKEN_CHECK_CACHE_SECONDS (5 s)
PICKLED_NONE = b"\x80\x04N."
# For a large wt, waits until the gate file exists (rows stay queued meanwhile); fails for a negative hp.
GATED_CODE = """
import os, time
if wt > 100:
    deadline = time.monotonic() + 600
    while not os.path.exists({gate!r}) and time.monotonic() < deadline:
        time.sleep(0.05)
if hp < 0:
    raise ValueError("negative")
answer = hp + wt
"""


def cli(*args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("BATCHSCORE_")}
    if password is not None:
        env["BATCHSCORE_USER_PASSWORD"] = password
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=300, check=False)


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"not within {DEADLINE} s: {what}"
        time.sleep(0.2)


def status_with(server: RunningServer, access_token: str) -> int:
    headers = {"Authorization": f"Bearer {access_token}"}
    return httpx.get(f"{server.url}/services", headers=headers, timeout=120).status_code


def renew(server: RunningServer, refresh_token: str) -> httpx.Response:
    return httpx.post(f"{server.url}/login/refreshToken", json={"refreshToken": refresh_token}, timeout=120)


def client(server: RunningServer, user: str, password: str) -> httpx.Client:
    token = login(server, user, password)["access_token"]
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)


# -- sessions ------------------------------------------------------------------------------------------------


def test_users_passwd_ends_the_users_sessions(server: RunningServer) -> None:
    add_user(server.settings.data_dir, "hz_pat", "old-pw", Role.CONTRIBUTOR)
    pair = login(server, "hz_pat", "old-pw")
    assert status_with(server, pair["access_token"]) == 200  # remembered by the token-check cache
    done = cli("users", "passwd", "hz_pat", "--data-dir", str(server.settings.data_dir), password="new-pw")
    assert done.returncode == 0, done.stderr
    assert renew(server, pair["refresh_token"]).status_code == 401
    eventually(lambda: status_with(server, pair["access_token"]) == 401, "the old access token is refused")
    assert httpx.post(f"{server.url}/login", json={"username": "hz_pat", "password": "old-pw"}, timeout=120).is_error
    assert status_with(server, login(server, "hz_pat", "new-pw")["access_token"]) == 200
    missing = cli("users", "passwd", "hz_nobody", "--data-dir", str(server.settings.data_dir), password="pw")
    assert missing.returncode == 2
    assert "hz_nobody" in missing.stderr


def test_users_remove_ends_sessions_and_keeps_what_the_user_owned(server: RunningServer, api: httpx.Client) -> None:
    add_user(server.settings.data_dir, "hz_rem", "pw", Role.CONTRIBUTOR)
    pair = login(server, "hz_rem", "pw")
    with client(server, "hz_rem", "pw") as leaving:
        published = leaving.post("/services/hz_left/v1", json={"code": "answer = hp + wt", **NUMERIC_IO})
        assert published.status_code == 201, published.text
    done = cli("users", "remove", "hz_rem", "--data-dir", str(server.settings.data_dir))
    assert done.returncode == 0, done.stderr
    assert renew(server, pair["refresh_token"]).status_code == 401
    eventually(lambda: status_with(server, pair["access_token"]) == 401, "the removed user's token is refused")
    refused = httpx.post(f"{server.url}/login", json={"username": "hz_rem", "password": "pw"}, timeout=120)
    assert refused.status_code == 401
    (kept,) = api.get("/services/hz_left").json()
    assert kept["versionPublishedBy"] == "hz_rem"
    assert api.delete("/services/hz_left/v1").status_code == 200
    assert cli("users", "remove", "hz_rem", "--data-dir", str(server.settings.data_dir)).returncode == 2


def test_replaying_a_rotated_refresh_token_revokes_its_family(server: RunningServer) -> None:
    first = login(server)
    second = renew(server, first["refresh_token"])
    assert second.status_code == 200, second.text
    replay = renew(server, first["refresh_token"])
    assert replay.status_code == 401
    assert replay.json()["field"] == "refreshToken"
    assert renew(server, second.json()["refresh_token"]).status_code == 401
    assert status_with(server, second.json()["access_token"]) == 401


class Collect(logging.Handler):
    """Keeps the messages of the records it handles (caplog's handler is not attached to uvicorn's loggers)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_the_refresh_token_is_not_in_the_access_log(server: RunningServer) -> None:
    access = logging.getLogger("uvicorn.access")
    level, collect = access.level, Collect()
    access.addHandler(collect)
    access.setLevel(logging.INFO)  # the embedded server logs warnings only
    try:
        refresh_token = login(server)["refresh_token"]
        revoked = httpx.delete(f"{server.url}/login/refreshToken", params={"refreshToken": refresh_token}, timeout=120)
        assert revoked.status_code == 200
        eventually(lambda: any("DELETE" in message for message in collect.messages), "the revoke is logged")
    finally:
        access.removeHandler(collect)
        access.setLevel(level)
    (logged,) = [message for message in collect.messages if "DELETE" in message]
    assert refresh_token.partition(".")[2] not in logged
    assert "refreshToken=[redacted]" in logged


# -- roles ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reader(server: RunningServer) -> Iterator[httpx.Client]:
    add_user(server.settings.data_dir, "hz_rita", "pw", Role.READER)
    with client(server, "hz_rita", "pw") as made:
        yield made


def test_a_reader_may_not_fill_a_workspace(reader: httpx.Client, api: httpx.Client) -> None:
    session = api.post("/sessions", json={})
    assert session.status_code == 201
    session_id = session.json()["sessionId"]
    snapshots = api.get("/snapshots").json()
    for method, path, body in (
        ("POST", "/sessions", {"json": {}}),
        ("POST", f"/sessions/{session_id}/workspace/obj", {"content": PICKLED_NONE}),
        ("POST", f"/sessions/{session_id}/snapshot", {"json": {"name": "x"}}),
    ):
        refused = reader.request(method, path, **body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["field"] == "Authorization"
        assert "role Reader may not" in refused.json()["message"]
    assert api.get(f"/sessions/{session_id}/workspace").json() == []
    assert api.get("/snapshots").json() == snapshots


# -- quotas --------------------------------------------------------------------------------------------------

READER_ROWS = 3
CONTRIBUTOR_BYTES = 1200  # one batch of BYTES_ROWS rows fits (15 to 24 bytes a row as stored), two do not
BYTES_ROWS = 50


@dataclass
class QuotaServer:
    server: RunningServer
    gate: Path  # rows with a large wt wait until it exists


@pytest.fixture(scope="module")
def quota(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuotaServer]:
    gate = tmp_path_factory.mktemp("gate") / "open"
    with running_server(
        workers=1, reader_max_queued_rows=READER_ROWS, contributor_max_stored_bytes=CONTRIBUTOR_BYTES
    ) as running:
        add_user(running.settings.data_dir, "q_rita", "pw", Role.READER)
        add_user(running.settings.data_dir, "q_carl", "pw", Role.CONTRIBUTOR)
        with client(running, "admin", running.admin_password) as admin:
            code = GATED_CODE.format(gate=str(gate))
            published = admin.post("/services/q_slow/v1", json={"code": code, **NUMERIC_IO})
            assert published.status_code == 201, published.text
        try:
            yield QuotaServer(running, gate)
        finally:
            gate.touch()  # no row waits for a test that failed


def start(who: httpx.Client, records: list[dict[str, Any]]) -> httpx.Response:
    return who.post("/api/q_slow/v1/batch", json=records, params={"parallelCount": 1})


def executions(server: RunningServer) -> list[str]:
    with client(server, "admin", server.admin_password) as admin:
        listed: list[str] = admin.get("/api/q_slow/v1/batch").json()
        return listed


def finished(who: httpx.Client, *started: httpx.Response) -> None:
    for response in started:
        path = f"/api/q_slow/v1/batch/{response.json()['batchExecutionId']}"

        def done(path: str = path) -> bool:
            return bool(who.get(path).json()["state"] in FINAL_STATES)

        eventually(done, f"{path} finishes")


def test_the_rows_queued_quota_is_a_429(quota: QuotaServer) -> None:
    gated = {"hp": 1, "wt": 1000}
    with client(quota.server, "q_rita", "pw") as rita:
        before = executions(quota.server)
        over = start(rita, [gated] * (READER_ROWS + 1))
        assert over.status_code == 429, over.text
        assert over.json()["field"] == "queuedRows"
        assert int(over.headers["Retry-After"]) > 0
        assert executions(quota.server) == before, "a refused start stores nothing"
        first = start(rita, [gated] * 2)
        assert first.status_code == 202, first.text
        assert start(rita, [gated] * 2).status_code == 429  # 2 queued + 2 > 3
        key = {"Idempotency-Key": "q-third-row"}
        second = rita.post("/api/q_slow/v1/batch", json=[gated], params={"parallelCount": 1}, headers=key)
        assert second.status_code == 202, second.text  # 3 of 3
        again = rita.post("/api/q_slow/v1/batch", json=[gated], params={"parallelCount": 1}, headers=key)
        assert again.status_code == 202, again.text  # a retried request is answered as the first time
        assert again.json()["batchExecutionId"] == second.json()["batchExecutionId"]
        full = start(rita, [{"hp": 1, "wt": 1}])
        assert full.status_code == 429
        assert "has 3 rows queued" in full.json()["message"]
        failing = start(rita, [{"hp": -1, "wt": 1}] * 2)
        assert failing.status_code == 429
        quota.gate.touch()
        finished(rita, first, second)
        failing = start(rita, [{"hp": -1, "wt": 1}] * 2)
        assert failing.status_code == 202, failing.text  # the queue emptied
        finished(rita, failing)
        quota.gate.unlink()
        queued = start(rita, [gated] * 2)
        assert queued.status_code == 202, queued.text
        retry = rita.post(f"/api/q_slow/v1/batch/{failing.json()['batchExecutionId']}/retry")
        assert retry.status_code == 429, retry.text  # 2 queued + 2 failed rows again > 3
        assert retry.json()["field"] == "queuedRows"
        assert "Retry-After" in retry.headers
        quota.gate.touch()
        finished(rita, queued)
        assert rita.post(f"/api/q_slow/v1/batch/{failing.json()['batchExecutionId']}/retry").status_code == 202


def test_the_bytes_stored_quota_is_a_413(quota: QuotaServer) -> None:
    records = [{"hp": 1, "wt": 2}] * BYTES_ROWS
    with client(quota.server, "q_carl", "pw") as carl:
        first = start(carl, records)
        assert first.status_code == 202, first.text
        before = executions(quota.server)
        over = start(carl, records)
        assert over.status_code == 413, over.text
        assert over.json()["field"] == "body"
        assert "quota" in over.json()["message"]
        assert executions(quota.server) == before, "a refused start stores nothing"
        session = carl.post("/sessions", json={})
        assert session.status_code == 201
        upload = carl.post(f"/sessions/{session.json()['sessionId']}/workspace/big", content=b"x" * CONTRIBUTOR_BYTES)
        assert upload.status_code == 413, upload.text
        finished(carl, first)
        assert carl.delete(f"/api/q_slow/v1/batch/{first.json()['batchExecutionId']}").status_code == 200
        again = start(carl, records)
        assert again.status_code == 202, again.text  # deleting a batch frees its room
