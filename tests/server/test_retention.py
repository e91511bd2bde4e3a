"""Retention in the store, on SQLite and PostgreSQL: when a batch expires, and the sweep that deletes its records.

Time is controlled: the sweep is given the time the batches must be due by, never waited for.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from batchscore_server import _db
from batchscore_server._errors import ApiError
from batchscore_server._retention import expired_error, is_expired
from batchscore_server._settings import Settings, parse_retention
from batchscore_server._store import Store, service_key
from batchscore_server.cli import RETENTION_ENV
from tests.server import test_store_databases as databases
from tests.server.test_store_databases import add_batch, ok, polled

# The store on each database, as the store's own tests have it.
postgres = databases.postgres
store = databases.store

DAY = 86400.0


def _batch(store: Store, batch_id: str) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(_db.batches).where(_db.batches.c.id == batch_id)).mappings().one()


def _set(store: Store, batch_id: str, **values: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.update(_db.batches).where(_db.batches.c.id == batch_id).values(**values))


def _row_count(store: Store, batch_id: str) -> int:
    with store.engine.connect() as conn:
        query = sa.select(sa.func.count()).where(_db.batch_rows.c.batch_id == batch_id)
        return int(conn.execute(query).scalar_one())


def retriable(store: Store, batch_id: str, expires_after: float | None = None) -> None:
    """A batch of a published service, ended ``failed`` with one row complete and one failed."""
    store.publish_service("o", True, "s", "v", {})
    add_batch(store, batch_id, 2)
    _set(store, batch_id, spec={"key": service_key(store.service("s", "v")), "inputs": []}, expires_after=expires_after)
    store.start_batch(batch_id)
    store.record_results(batch_id, {0: ok(0)})
    store.fail_batch(batch_id, "stopped", {"success": False, "errorMessage": "stopped"})


def finished(store: Store, batch_id: str, rows: int = 3, expires_after: float | None = None) -> Any:
    """A batch whose rows all completed (each with a file in the artifacts), ended ``complete``; its row after."""
    add_batch(store, batch_id, rows)
    if expires_after is not None:
        _set(store, batch_id, expires_after=expires_after)
    store.start_batch(batch_id)
    store.record_results(batch_id, {index: ok(index) for index in range(rows)}, started=range(rows))
    for index in range(rows):
        directory = store.row_directory(batch_id, index)
        directory.mkdir(parents=True)
        (directory / "Histogram.png").write_bytes(b"png")
    store.complete_batch(batch_id)
    return _batch(store, batch_id)


def test_a_finished_batch_expires_after_its_expires_after_else_the_server_retention(store: Store) -> None:
    own = finished(store, "own", expires_after=120)
    assert own["expires_at"] == pytest.approx(own["completed"] + 120)
    default = finished(store, "default")
    assert default["expires_at"] == pytest.approx(default["completed"] + 30 * DAY)  # Settings' default
    add_batch(store, "canceled", 2)
    store.cancel_batch("canceled", {"success": False, "errorMessage": "canceled"})
    add_batch(store, "failed", 2)
    _set(store, "failed", expires_after=600)
    store.fail_batch("failed", "broken", {"success": False, "errorMessage": "broken"})
    for batch_id, after in (("canceled", 30 * DAY), ("failed", 600)):
        batch = _batch(store, batch_id)
        assert batch["expires_at"] == pytest.approx(batch["completed"] + after), batch_id


def test_without_a_retention_only_a_batch_with_expires_after_expires(store: Store, tmp_path: Path) -> None:
    forever = Store(Settings(data_dir=tmp_path, retention_seconds=None), store.engine)
    assert finished(forever, "kept")["expires_at"] is None
    own = finished(forever, "own", expires_after=3600)
    assert own["expires_at"] == pytest.approx(own["completed"] + 3600)
    assert forever.expire_due("r1", own["completed"] + 100 * 365 * DAY, 10) == ["own"]


def test_a_retry_clears_the_expiry_until_the_batch_finishes_again(store: Store) -> None:
    retriable(store, "b")
    assert _batch(store, "b")["expires_at"] is not None
    store.retry_batch("b", "s", "v")
    assert _batch(store, "b")["expires_at"] is None
    # Unfinished, it is never swept, whatever the time.
    assert store.expire_due("r1", 1e12, 10) == []


def test_the_sweep_deletes_rows_and_files_and_keeps_the_summary(store: Store) -> None:
    due = finished(store, "due", rows=5, expires_after=120)
    finished(store, "later", rows=2, expires_after=3600)
    _set(store, "due", input_bytes=1000)
    _set(store, "later", input_bytes=10)
    assert store.usage("o").stored_bytes == 1010
    now = due["completed"] + 121
    assert store.due_batches(due["completed"] + 119, 10) == []  # not yet
    assert store.expire_due("r1", now, 10) == ["due"]
    after = _batch(store, "due")
    assert after["expired"] is True
    assert _row_count(store, "due") == 0
    assert not (store.row_directory("due", 0).parent).exists()
    # The summary stays: state, counts, times, the completion cursor.
    kept = ("state", "total", "complete_count", "failed_count", "completed", "expires_at", "last_seq", "created")
    assert {key: after[key] for key in kept} == {key: due[key] for key in kept}
    assert after["lease_owner"] is None
    # Its records no longer count against the owner's stored bytes.
    assert store.usage("o").stored_bytes == 10
    # A poll answers the summary with no results, its cursor where it was.
    page = store.poll_page("due", "s", "v", None, None, None)
    assert page is not None
    assert page.rows == []
    assert page.cursor == due["last_seq"] == 5
    page = store.poll_page("due", "s", "v", None, 2, 100)
    assert page is not None
    assert (page.rows, page.cursor) == ([], 2)
    # The other batch is whole; a second sweep finds nothing more.
    assert _row_count(store, "later") == 2
    assert store.row_files("later", 1) == ["Histogram.png"]
    assert len(polled(store, "later")) == 2
    assert store.expire_due("r1", now, 10) == []


def test_a_sweep_is_bounded_and_the_next_takes_the_rest(store: Store) -> None:
    for number in range(3):
        finished(store, f"b{number}", rows=1, expires_after=60)
    now = _batch(store, "b2")["expires_at"] + 1
    first = store.expire_due("r1", now, 2)
    assert len(first) == 2
    assert store.expire_due("r1", now, 2) == sorted({"b0", "b1", "b2"} - set(first))


def test_an_interrupted_sweep_is_finished_by_a_later_one(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = finished(store, "b", rows=4, expires_after=60)
    now = batch["expires_at"] + 1

    def dies_after_deleting(engine: sa.Engine, batch_id: str) -> None:
        real(engine, batch_id)
        raise OSError("killed")  # the replica dies before it marks the batch expired

    real = _db.delete_batch_rows
    monkeypatch.setattr(_db, "delete_batch_rows", dies_after_deleting)
    with pytest.raises(OSError, match="killed"):
        store.expire_due("dead", now, 10)
    monkeypatch.undo()
    assert _batch(store, "b")["expired"] is False
    assert _row_count(store, "b") == 0
    # Its claim holds another replica off until it runs out.
    assert store.expire_due("r2", now, 10) == []
    _set(store, "b", lease_expires=0.0)
    assert store.expire_due("r2", now, 10) == ["b"]
    after = _batch(store, "b")
    assert (after["expired"], after["lease_owner"], after["complete_count"]) == (True, None, 4)


def test_replicas_sweeping_at_once_expire_each_batch_once(store: Store) -> None:
    for number in range(8):
        finished(store, f"b{number}", rows=20, expires_after=60)
    now = _batch(store, "b7")["expires_at"] + 1
    barrier = threading.Barrier(3)
    swept: dict[str, list[str]] = {}

    def sweep(replica: str) -> None:
        barrier.wait()
        swept[replica] = store.expire_due(replica, now, 10)

    threads = [threading.Thread(target=sweep, args=(f"r{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [batch_id for ids in swept.values() for batch_id in ids]
    assert sorted(everything) == [f"b{number}" for number in range(8)]  # each once
    for number in range(8):
        assert _row_count(store, f"b{number}") == 0


def test_a_retry_of_an_expired_batch_is_gone(store: Store) -> None:
    retriable(store, "b", expires_after=60)
    batch = _batch(store, "b")
    assert not is_expired(batch, batch["expires_at"] - 1)
    assert is_expired(batch, batch["expires_at"])
    # Past its expiresAt (the sweep has not come yet): the retry is refused, the rows are left as they are.
    _set(store, "b", expires_at=1.0)
    with pytest.raises(ApiError) as refused:
        store.retry_batch("b", "s", "v")
    assert (refused.value.status, refused.value.field) == (410, "executionId")
    assert refused.value.message == "batch b expired at 1970-01-01T00:00:01Z; its results were deleted"
    assert _batch(store, "b")["state"] == "failed"
    assert expired_error(_batch(store, "b")).body()["code"] == 410


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * DAY), ("12h", 43200.0), ("90m", 5400.0), ("120s", 120.0), ("3600", 3600.0), (" 2D ", 2 * DAY)],
)
def test_a_retention_is_seconds_or_a_number_with_a_unit(text: str, seconds: float) -> None:
    assert parse_retention(text) == seconds


@pytest.mark.parametrize("text", ["never", "NEVER", "0", "0d"])
def test_a_retention_of_never_or_zero_keeps_batches_for_ever(text: str) -> None:
    assert parse_retention(text) is None


@pytest.mark.parametrize("text", ["", "abc", "-5d", "1.5h", "30 days", "10w", "59", "59s", "36700d", "9" * 20])
def test_a_retention_that_is_not_a_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="retention"):
        parse_retention(text)


def _serve_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str, env: str | None = None) -> Any:
    """The settings ``batchscore serve`` would run with (the server itself is not started), or the failed result."""
    import batchscore_server
    from batchscore.cli import build_app

    seen: list[Settings] = []
    monkeypatch.setattr(batchscore_server, "serve", lambda settings, _host, _port: seen.append(settings))
    environment = {} if env is None else {RETENTION_ENV: env}
    monkeypatch.delenv(RETENTION_ENV, raising=False)
    result = CliRunner().invoke(build_app(), ["serve", "--data-dir", str(tmp_path), *args], env=environment)
    return seen[0] if seen else result


def test_serve_takes_its_retention_from_the_option_or_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert _serve_settings(monkeypatch, tmp_path).retention_seconds == 30 * DAY
    assert _serve_settings(monkeypatch, tmp_path, "--retention", "12h").retention_seconds == 43200.0
    assert _serve_settings(monkeypatch, tmp_path, "--retention", "never").retention_seconds is None
    assert _serve_settings(monkeypatch, tmp_path, env="90m").retention_seconds == 5400.0
    refused = _serve_settings(monkeypatch, tmp_path, "--retention", "soon")
    assert refused.exit_code == 2
    assert "--retention" in refused.output
