"""Big files: a CSV source goes up as CSV, a body over the limit is refused before it is sent, and a refused
upload leaves the SQLite file no larger than before."""

from __future__ import annotations

import csv
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import batchscore
from batchscore_server._embedded import RunningServer, running_server
from tests._postgres import Postgres
from tests.e2e.conftest import login, mtcars_records, publish
from tests.e2e.test_cli import clean_env, run, run_json

LIMIT = 8 * 1024 * 1024
CODE = "answer = hp * 2 + wt"


class Recording(httpx.HTTPTransport):
    """An HTTP transport that remembers each request's method, path and Content-Type."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, str | None]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.path, request.headers.get("Content-Type")))
        return super().handle_request(request)


@pytest.fixture(scope="module")
def small_server(test_postgres: Postgres | None) -> Iterator[RunningServer]:
    if test_postgres is not None:
        pytest.skip("the SQLite file's size is measured")
    with running_server(workers=1, max_body_bytes=LIMIT) as running:
        yield running


@pytest.fixture(scope="module")
def small_api(small_server: RunningServer) -> Iterator[httpx.Client]:
    token = login(small_server)["access_token"]
    with httpx.Client(base_url=small_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=300) as client:
        publish(client, "bigfiles", CODE)
        yield client


def _client(server: RunningServer, transport: httpx.BaseTransport) -> batchscore.Client:
    return batchscore.Client(server.url, username="admin", password=server.admin_password, transport=transport)


def _write_csv(path: Path, rows: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["hp", "wt"])
        writer.writerows([100.0 + row % 250, 2.0 + (row % 997) / 1000] for row in range(rows))
    return path


def test_a_csv_file_goes_up_as_csv_and_scores_the_same(
    server: RunningServer, api: httpx.Client, tmp_path: Path
) -> None:
    publish(api, "bigfiles_csv", CODE)
    records = mtcars_records()
    path = tmp_path / "cars.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["hp", "wt"])
        writer.writeheader()
        writer.writerows(records)
    transport = Recording()
    with _client(server, transport) as client:
        batch = client.get_service("bigfiles_csv", "v1").batch(path).start(progress=False)
        status = batch.wait(timeout=240, progress=False)
    starts = [kind for method, where, kind in transport.seen if method == "POST" and where.endswith("/batch")]
    assert starts == ["text/csv"]
    answers = [result.outputs["answer"] for result in status.results]
    assert answers == pytest.approx([row["hp"] * 2 + row["wt"] for row in records])


def test_split_rows_starts_several_batches_and_wait_follows_them_all(
    server: RunningServer, api: httpx.Client, tmp_path: Path
) -> None:
    publish(api, "bigfiles_split", "if hp > 200:\n    raise ValueError('too big')\nanswer = hp * 2 + wt")
    path = tmp_path / "cars.csv"
    path.write_text("hp,wt\n110,2.62\n93,2.32\n175,3.44\n105,3.46\n245,3.57\n", encoding="utf-8")
    config = tmp_path / "config"
    run(clean_env(config), "login", "--url", server.url, "--username", "admin", "--password", server.admin_password)
    env = clean_env(config, BATCHSCORE_URL=server.url)

    started = run_json(env, "batch", "start", "bigfiles_split", "v1", "--input", str(path), "--split-rows", "2")
    assert [part["record_count"] for part in started["batches"]] == [2, 2, 1]
    ids = [part["execution_id"] for part in started["batches"]]
    assert len(set(ids)) == 3

    # The last part has the failing row: the exit code is the worst of the three (1: rows failed).
    waited = run_json(env, "batch", "wait", *ids, expect=1)
    assert [batch["state"] for batch in waited["batches"]] == ["complete"] * 3
    assert [batch["failed_item_count"] for batch in waited["batches"]] == [0, 0, 1]
    assert run(env, "batch", "wait", *ids[:2]).returncode == 0
    plain = run(env, "batch", "start", "bigfiles_split", "v1", "--input", str(path), "--split-rows", "4")
    assert len(plain.stdout.split()) == 2


def test_a_body_over_the_servers_limit_is_refused_before_it_is_sent(
    small_server: RunningServer, small_api: httpx.Client, tmp_path: Path
) -> None:
    path = _write_csv(tmp_path / "big.csv", 1_000_000)  # about 12 MiB as CSV
    assert small_api.get("/status").json()["details"]["maxBodyBytes"] == LIMIT
    transport = Recording()
    with _client(small_server, transport) as client:
        batch = client.get_service("bigfiles", "v1").batch(path)
        with pytest.raises(batchscore.BatchTooLargeError, match="--split-rows") as raised:
            batch.start(progress=False)
    assert not [where for method, where, _ in transport.seen if method == "POST" and where.endswith("/batch")]
    assert raised.value.limit == LIMIT
    assert raised.value.split_rows * batch.body_bytes / batch.record_count < LIMIT


def _lasting_size(database: Path) -> int:
    """The database file's size once its WAL is copied back into it (what stays when the server is idle)."""
    deadline = time.monotonic() + 120
    with sqlite3.connect(database, timeout=60) as conn:
        while time.monotonic() < deadline:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return database.stat().st_size
    raise AssertionError("the WAL could not be checkpointed in 120 s")


def _ndjson(rows: int, bad_last: bool) -> Iterator[bytes]:
    line = b'{"hp":110.0,"wt":2.62}\n'
    for start in range(0, rows, 10_000):
        yield line * min(10_000, rows - start)
    if bad_last:
        yield b'{"hp":"late","wt":2.62}\n'


@pytest.mark.parametrize(
    ("rows", "bad_last", "status"),
    [(300_000, True, 400), (500_000, False, 413)],
    ids=["bad record found late", "over the limit"],
)
def test_a_refused_upload_leaves_no_lasting_growth_of_the_database(
    small_server: RunningServer, small_api: httpx.Client, rows: int, bad_last: bool, status: int
) -> None:
    database = small_server.settings.database_path
    before = _lasting_size(database)
    answer = small_api.post(
        "/api/bigfiles/v1/batch",
        content=_ndjson(rows, bad_last),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == status, answer.text
    after = _lasting_size(database)
    # Rows of several MiB were stored before the refusal; without giving their pages back the file keeps them.
    assert after - before < 1024 * 1024, (before, after)
