"""Storage hardening: the data directory's lock, full disks, deletes, retries of changed services, result caps."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from batchscore_server import Settings, _auth, _db, _execution, _store, create_app
from batchscore_server._datadir_lock import lock_data_dir
from batchscore_server._execution import ServiceSpec, execute, run_rows, stored_result
from batchscore_server._routes.views import spec_of
from batchscore_server._state import Server
from batchscore_server._store import STORAGE_FULL_MESSAGE, Store
from batchscore_server._worker import spec_from_dict
from tests.server.test_cli_start import run


def test_serve_on_a_locked_data_dir_exits_with_a_message_and_users_add_still_works(tmp_path: Path) -> None:
    lock = lock_data_dir(tmp_path)
    try:
        env = {"BATCHSCORE_ADMIN_PASSWORD": "pw-admin", "BATCHSCORE_USER_PASSWORD": "pw-bob"}
        refused = run("serve", "--data-dir", str(tmp_path), "--port", "0", "--workers", "1", env=env)
        assert refused.returncode == 2
        assert f"the data directory {tmp_path} is in use by the server with pid {os.getpid()}" in refused.stderr
        assert "Traceback" not in refused.stderr
        added = run("users", "add", "bob", "--data-dir", str(tmp_path), env=env)
        assert added.returncode == 0, added.stderr
    finally:
        lock.release()


# -- a full disk, and deletes --------------------------------------------------------------------------------------

DISK_FULL_SQL = sa.exc.OperationalError("INSERT ...", {}, sqlite3.OperationalError("database or disk is full"))
SERVICE = {
    "code": "answer = hp\n",
    "inputParameterDefinitions": [{"name": "hp", "type": "numeric"}],
    "outputParameterDefinitions": [{"name": "answer", "type": "numeric"}],
}


class AppClient:
    """Requests through the ASGI app in this thread (no lifespan, no socket); an app exception is a 500."""

    def __init__(self, app: FastAPI, headers: dict[str, str]) -> None:
        self._app = app
        self._headers = headers

    def request(self, method: str, path: str, **options: object) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self._app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return await client.request(method, path, headers=self._headers, **options)  # type: ignore[arg-type]

        return asyncio.run(send())

    def get(self, path: str, **options: object) -> httpx.Response:
        return self.request("GET", path, **options)

    def post(self, path: str, **options: object) -> httpx.Response:
        return self.request("POST", path, **options)

    def delete(self, path: str, **options: object) -> httpx.Response:
        return self.request("DELETE", path, **options)


@pytest.fixture
def app_server(tmp_path: Path) -> Iterator[tuple[AppClient, Server]]:
    """The app without its lifespan (no Dask): the routes that only need the database and files work."""
    app = create_app(Settings(data_dir=tmp_path))
    server: Server = app.state.server
    _auth.add_user(server.engine, "admin", "pw-admin", _auth.Role.OWNER)
    token = server.auth.login("admin", "pw-admin")["access_token"]
    client = AppClient(app, {"Authorization": f"Bearer {token}"})
    assert client.post("/services/svc/v1", json=SERVICE).status_code == 201
    try:
        yield client, server
    finally:
        server.engine.dispose()
        server.data_dir_lock.release()


def store_finished_batch(store: Store, name: str, rows: int, result: dict[str, Any] | None = None) -> str:
    """A complete batch of service ``name`` v1 with ``rows`` rows (each with ``result``), written through the store.

    The first three rows get a file each. The service need not exist (polls do not read it) unless a test retries.
    """
    batch_id = str(uuid.uuid4())
    spec = {"key": f"{name}/v1/1/0", "code": "", "inputs": [], "outputs": [], "outputFileNames": []}
    store.insert_receiving_batch(
        {
            "id": batch_id,
            "name": name,
            "version": "v1",
            "owner": "admin",
            "created": time.time(),
            "parallel_count": 1,
            "item_timeout": None,
            "idempotency_key": None,
            "request_hash": "",
            "spec": spec,
            "last_seq": 0,
        }
    )
    for start in range(0, rows, 10_000):
        store.insert_rows(
            batch_id, start, [json.dumps({"hp": index}) for index in range(start, min(rows, start + 10_000))]
        )
    store.open_batch(batch_id, rows, "hash")
    store.start_batch(batch_id)
    stored = stored_result(result or {"success": True, "errorMessage": "", "consoleOutput": "", "outputParameters": {}})
    for start in range(0, rows, 10_000):
        store.record_results(batch_id, {index: stored for index in range(start, min(rows, start + 10_000))})
    store.complete_batch(batch_id)
    for index in range(min(rows, 3)):
        directory = store.row_directory(batch_id, index)
        directory.mkdir(parents=True)
        (directory / "out.txt").write_text("x")
    return batch_id


def _rows_in_db(server: Server, batch_id: str) -> int:
    with server.engine.connect() as conn:
        query = sa.select(sa.func.count()).where(_db.batch_rows.c.batch_id == batch_id)
        return int(conn.execute(query).scalar_one())


def _full(*_args: object, **_kwargs: object) -> None:
    raise DISK_FULL_SQL


def test_login_on_a_full_disk_is_a_507(app_server: tuple[AppClient, Server], monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = app_server
    monkeypatch.setattr(_auth.Authenticator, "_issue", _full)
    answer = client.post("/login", json={"username": "admin", "password": "pw-admin"})
    assert answer.status_code == 507
    assert answer.json() == {"code": 507, "message": STORAGE_FULL_MESSAGE}


def test_starting_a_batch_on_a_full_disk_is_a_507(
    app_server: tuple[AppClient, Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = app_server

    def no_space(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Store, "insert_receiving_batch", no_space)
    answer = client.post("/api/svc/v1/batch", json=[{"hp": 1}])
    assert answer.status_code == 507
    assert answer.json()["message"] == STORAGE_FULL_MESSAGE


def test_other_storage_errors_stay_a_500(app_server: tuple[AppClient, Server], monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = app_server

    def denied(*_args: object) -> None:
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Store, "insert_receiving_batch", denied)
    assert client.post("/api/svc/v1/batch", json=[{"hp": 1}]).status_code == 500


def test_delete_on_a_full_disk_frees_the_files_first_and_leaves_the_batch_whole(
    app_server: tuple[AppClient, Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, server = app_server
    batch_id = store_finished_batch(server.store, "svc", 10)
    assert client.get(f"/api/svc/v1/batch/{batch_id}/0/files").json() == ["out.txt"]
    with monkeypatch.context() as patch:
        patch.setattr(_db, "delete_batch", _full)
        patch.setattr(server.engine.dialect, "do_commit", _full)  # the first write after the files: hiding it
        answer = client.delete(f"/api/svc/v1/batch/{batch_id}")
    assert answer.status_code == 507
    assert not (server.settings.artifacts_dir / batch_id).exists()  # the files went first: space was freed
    poll = client.get(f"/api/svc/v1/batch/{batch_id}").json()  # the database is unchanged, and agrees with itself
    assert poll["state"] == "complete"
    assert poll["completedItemCount"] == poll["totalItemCount"] == len(poll["batchExecutionResults"]) == 10
    assert client.delete(f"/api/svc/v1/batch/{batch_id}").status_code == 200  # once there is space: deleted
    assert client.get(f"/api/svc/v1/batch/{batch_id}").status_code == 404
    assert _rows_in_db(server, batch_id) == 0


def test_a_delete_stopped_between_its_slices_is_never_seen_half_done(
    app_server: tuple[AppClient, Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, server = app_server
    monkeypatch.setattr(_db, "DELETE_SLICE_ROWS", 1_000)
    batch_id = store_finished_batch(server.store, "svc", 3_000)
    slices = 0

    def killed_after_one_slice(before: sa.Connection, *_args: object) -> None:
        nonlocal slices
        slices += 1
        if slices > 2:  # the hiding update and one slice of rows committed: the process dies here (kill -9)
            raise KeyboardInterrupt

    sa.event.listen(server.engine, "commit", killed_after_one_slice)
    try:
        with pytest.raises(KeyboardInterrupt):
            server.store.delete_batch(batch_id)
    finally:
        sa.event.remove(server.engine, "commit", killed_after_one_slice)
    assert 0 < _rows_in_db(server, batch_id) < 3_000
    # No one sees the batch with counts that disagree with its rows: it is gone for every request...
    assert client.get(f"/api/svc/v1/batch/{batch_id}").status_code == 404
    assert batch_id not in client.get("/api/svc/v1/batch").json()
    # ...and the next start removes what is left.
    server.store.remove_unfinished_receipts()
    assert _rows_in_db(server, batch_id) == 0
    assert not (server.settings.artifacts_dir / batch_id).exists()


def test_a_poll_over_several_chunks_answers_as_one_page(
    app_server: tuple[AppClient, Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, server = app_server
    monkeypatch.setattr(_store, "POLL_CHUNK_ROWS", 7)
    batch_id = store_finished_batch(server.store, "svc", 50)
    every = client.get(f"/api/svc/v1/batch/{batch_id}")
    assert "content-length" not in every.headers  # streamed
    body = every.json()
    assert [row["index"] for row in body["batchExecutionResults"]] == list(range(50))
    assert (body["cursor"], body["hasMore"]) == ("50", False)
    after = client.get(f"/api/svc/v1/batch/{batch_id}", params={"since": "10"}).json()
    assert [row["index"] for row in after["batchExecutionResults"]] == list(range(10, 50))
    assert (after["cursor"], after["hasMore"]) == ("50", False)
    page = client.get(f"/api/svc/v1/batch/{batch_id}", params={"since": "10", "limit": "20"}).json()
    assert [row["index"] for row in page["batchExecutionResults"]] == list(range(10, 30))
    assert (page["cursor"], page["hasMore"]) == ("30", True)
    last = client.get(f"/api/svc/v1/batch/{batch_id}", params={"since": "30", "limit": "20"}).json()
    assert (len(last["batchExecutionResults"]), last["cursor"], last["hasMore"]) == (20, "50", False)
    none = client.get(f"/api/svc/v1/batch/{batch_id}", params={"since": "50", "limit": "20"}).json()
    assert (none["batchExecutionResults"], none["cursor"], none["hasMore"]) == ([], "50", False)
    monkeypatch.setattr(_store, "POLL_CHUNK_BYTES", 1)  # a chunk a row
    assert client.get(f"/api/svc/v1/batch/{batch_id}").json() == body


# -- caps on what a record produces --------------------------------------------------------------------------------


def _capped_spec(code: str, **fields: Any) -> ServiceSpec:
    values: dict[str, Any] = {
        "key": f"capped-{uuid.uuid4().hex}",
        "code": code,
        "init_code": "",
        "inputs": (),
        "outputs": (("answer", "character"),),
        "output_file_names": (),
        "snapshot_dir": None,
    }
    return ServiceSpec(**{**values, **fields})


def test_console_output_over_its_cap_is_truncated_with_a_note(tmp_path: Path) -> None:
    spec = _capped_spec("for _ in range(10):\n    print('é' * 250)\nanswer = 'ok'", max_console_bytes=1000)
    result = execute(spec, {}, tmp_path / "work")
    assert result["success"] is True
    kept, note = result["consoleOutput"].split("\n[console output truncated: ")
    assert len(kept.encode()) <= 1000
    assert kept.startswith("é" * 250 + "\n")
    assert note.startswith("4010 more bytes were not kept")  # 10 lines of 501 bytes, 1000 kept (one 'é' cut)
    assert "max_console_bytes" in note
    assert (
        execute(_capped_spec("print('hi')\nanswer = 'ok'", max_console_bytes=3), {}, tmp_path / "w2")["consoleOutput"]
        == "hi\n"
    )


def test_a_result_over_its_cap_fails_the_record(tmp_path: Path) -> None:
    spec = _capped_spec("answer = 'x' * 200", max_result_bytes=100)
    result = execute(spec, {}, tmp_path / "work")
    assert result["success"] is False
    assert result["outputParameters"] == {}
    assert "outputParameters are 213 bytes as JSON, over the server's limit of 100 bytes" in result["errorMessage"]
    assert execute(_capped_spec("answer = 'x' * 80", max_result_bytes=100), {}, tmp_path / "w2")["success"] is True


@pytest.mark.parametrize(
    "outputs",
    [
        {},
        {"answer": 5},
        {"n": -(2**63), "m": 2**63 - 1, "big": -(10**40), "zero": 0, "yes": True, "none": None},
        {"f": -2.2250738585072014e-308, "g": 1e300, "nan": float("nan"), "inf": float("-inf"), "h": 0.1},
        {"s": "", "t": '"\\\n\x00\x1f', "u": "é\u2028😀" * 3, "😀é": "x"},
    ],
)
def test_the_quick_size_bound_of_scalar_outputs_never_understates_their_json(outputs: dict[str, Any]) -> None:
    # Outputs within the bound skip the exact measure: a bound below the real size would let an oversized one pass.
    bound = _execution._scalar_json_bound(outputs)
    assert bound is not None
    size = len(json.dumps(outputs, separators=(",", ":")).encode())
    assert bound >= size
    assert _execution._oversized_result(outputs, size) is None
    assert _execution._oversized_result(outputs, size - 1) is not None


def test_outputs_that_are_not_scalars_are_measured_exactly() -> None:
    assert _execution._scalar_json_bound({"v": [1, 2, 3]}) is None
    assert _execution._oversized_result({"v": [1, 2, 3]}, 8) is not None  # {"v":[1,2,3]} is 13 bytes
    assert _execution._oversized_result({"v": [1, 2, 3]}, 13) is None


def test_an_output_file_over_its_cap_fails_the_record_and_is_not_kept(tmp_path: Path) -> None:
    code = "with open('big.bin', 'wb') as f:\n    f.write(b'x' * n)\nanswer = 'ok'"
    spec = _capped_spec(code, inputs=(("n", "integer"),), output_file_names=("big.bin",), max_output_file_bytes=1000)
    batch = run_rows(spec, [(0, {"n": 2000}), (1, {"n": 1000})], str(tmp_path / "scratch"), str(tmp_path / "art"))
    over, under = batch["rows"][0], batch["rows"][1]
    assert over["success"] is False
    assert "output file 'big.bin' is 2000 bytes, over the server's limit of 1000 bytes" in over["errorMessage"]
    assert over["storedFiles"] == []
    assert not (tmp_path / "art" / "0").exists()
    assert under["success"] is True
    assert (tmp_path / "art" / "1" / "big.bin").stat().st_size == 1000
    consumed = execute(spec, {"n": 2000}, tmp_path / "work")  # a consume: its files would travel base64 in JSON
    assert consumed["success"] is False
    assert consumed["outputFiles"] == {}
    assert "big.bin" in consumed["errorMessage"]


def test_the_caps_travel_with_the_service_spec(app_server: tuple[AppClient, Server]) -> None:
    _, server = app_server
    spec = spec_from_dict(spec_of(server.store, server.store.service("svc", "v1")))
    settings = server.settings
    assert (spec.max_result_bytes, spec.max_console_bytes, spec.max_output_file_bytes) == (
        settings.max_result_bytes,
        settings.max_console_bytes,
        settings.max_output_file_bytes,
    )
    assert (settings.max_result_bytes, settings.max_console_bytes) == (16 * 2**20, 2**20)


def test_deleting_a_service_on_a_full_disk_frees_its_objects_first(
    app_server: tuple[AppClient, Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, server = app_server
    objects = server.store.service_objects("svc", "v1", 1)
    objects.mkdir(parents=True)
    (objects / "model").write_bytes(b"x" * 1000)
    with monkeypatch.context() as patch:
        patch.setattr(Store, "delete_service", _full)
        assert client.delete("/services/svc/v1").status_code == 507
    assert not server.store.service_objects("svc", "v1").exists()  # the files went first: space was freed
    assert client.get("/services/svc/v1").status_code == 200
    assert client.delete("/services/svc/v1").status_code == 200
    assert client.get("/services/svc/v1").status_code == 404
