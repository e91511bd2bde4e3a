"""Row bookkeeping in SQLite: results recorded once, leftovers closed in one statement, batches deleted in slices."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchscore_server import _db
from batchscore_server._batch import canceled_result
from batchscore_server._execution import StoredResult, stored_result
from batchscore_server._routes.views import result_json as _result_json
from batchscore_server._store import close_leftovers as _close_leftovers
from batchscore_server._store import record_results


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = _db.create_engine(tmp_path / "db.sqlite3")
    with engine.begin() as conn:
        for batch_id in ("b1", "b2"):
            conn.execute(
                sa.insert(_db.batches).values(
                    id=batch_id,
                    name="s",
                    version="v",
                    owner="o",
                    created=0.0,
                    state="inProgress",
                    parallel_count=1,
                    total=10,
                    request_hash="h",
                    spec={},
                    last_seq=0,
                )
            )
            conn.execute(
                sa.insert(_db.batch_rows),
                [{"batch_id": batch_id, "idx": i, "inputs": {"x": i}, "state": "pending"} for i in range(10)],
            )
    return engine


def ok(value: int, success: bool = True) -> StoredResult:
    return stored_result({"success": success, "errorMessage": "", "outputParameters": {"answer": value}})


def rows_of(engine: sa.Engine, batch_id: str) -> list[Any]:
    rows = _db.batch_rows.c
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(rows.idx, rows.state, rows.seq, rows.result)
                .where(rows.batch_id == batch_id)
                .order_by(rows.idx)
            )
        )


def counts(engine: sa.Engine, batch_id: str) -> tuple[int, int, int]:
    columns = _db.batches.c
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(columns.complete_count, columns.failed_count, columns.canceled_count).where(
                columns.id == batch_id
            )
        ).one()
    return (row[0], row[1], row[2])


def last_seq(engine: sa.Engine, batch_id: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(_db.batches.c.last_seq).where(_db.batches.c.id == batch_id)).scalar_one())


def test_a_result_is_recorded_once_with_the_next_completion_number(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        record_results(conn, "b1", {3: ok(3), 1: ok(1)})
        record_results(conn, "b1", {3: ok(99), 5: ok(5, success=False)})
    rows = {row.idx: row for row in rows_of(engine, "b1")}
    assert [(rows[i].seq, rows[i].state) for i in (1, 3, 5)] == [(1, "complete"), (2, "complete"), (3, "failed")]
    assert rows[3].result["outputParameters"] == {"answer": 3}
    assert last_seq(engine, "b1") == 3
    assert counts(engine, "b1") == (2, 1, 0)


def test_leftovers_close_after_the_last_completion_number_in_index_order(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        record_results(conn, "b1", {7: ok(7), 2: ok(2)})
        _close_leftovers(conn, "b1", canceled_result(), "canceled")
        _close_leftovers(conn, "b1", canceled_result(), "canceled")  # nothing left: changes nothing
    rows = rows_of(engine, "b1")
    leftovers = [row for row in rows if row.idx not in (2, 7)]
    assert {row.state for row in leftovers} == {"canceled"}
    assert all(row.result == canceled_result() for row in leftovers)
    seqs = [row.seq for row in leftovers]
    assert seqs == sorted(seqs)
    assert min(seqs) > 2
    assert len(set(seqs)) == len(seqs)
    assert last_seq(engine, "b1") == max(seqs)
    assert counts(engine, "b1") == (2, 0, 8)
    assert {row.state for row in rows_of(engine, "b2")} == {"pending"}  # another batch is untouched


def test_a_batch_is_deleted_in_slices_and_others_are_kept(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_db, "DELETE_SLICE_ROWS", 3)
    _db.delete_batch(engine, "b1")
    assert rows_of(engine, "b1") == []
    assert len(rows_of(engine, "b2")) == 10
    with engine.connect() as conn:
        assert list(conn.execute(sa.select(_db.batches.c.id)).scalars()) == ["b2"]


def test_an_earlier_database_gets_its_counts_and_loses_the_state_index(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE batches (id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, version VARCHAR NOT NULL,
            owner VARCHAR NOT NULL, created FLOAT NOT NULL, completed FLOAT, state VARCHAR NOT NULL,
            parallel_count INTEGER NOT NULL, item_timeout FLOAT, total INTEGER NOT NULL, error_message VARCHAR,
            idempotency_key VARCHAR, request_hash VARCHAR NOT NULL, spec JSON NOT NULL, last_seq INTEGER NOT NULL);
        CREATE TABLE batch_rows (batch_id VARCHAR, idx INTEGER, inputs JSON NOT NULL, state VARCHAR NOT NULL,
            seq INTEGER, result JSON, PRIMARY KEY (batch_id, idx));
        CREATE INDEX ix_batch_rows_state ON batch_rows (batch_id, state);
        INSERT INTO batches VALUES ('b1', 's', 'v', 'o', 0, NULL, 'inProgress', 1, NULL, 6, NULL, NULL, 'h', '{}', 4);
        INSERT INTO batch_rows VALUES ('b1', 0, '{}', 'complete', 1, '{}'), ('b1', 1, '{}', 'complete', 2, '{}'),
            ('b1', 2, '{}', 'failed', 3, '{}'), ('b1', 3, '{}', 'canceled', 4, '{}'),
            ('b1', 4, '{}', 'pending', NULL, NULL), ('b1', 5, '{}', 'pending', NULL, NULL);
        """
    )
    old.close()
    engine = _db.create_engine(path)
    with engine.connect() as conn:
        counts = conn.execute(
            sa.select(_db.batches.c.complete_count, _db.batches.c.failed_count, _db.batches.c.canceled_count)
        ).one()
        indexes = {row[1] for row in conn.exec_driver_sql("PRAGMA index_list(batch_rows)")}
    assert tuple(counts) == (2, 1, 1)
    assert "ix_batch_rows_state" not in indexes


def test_a_stored_result_is_compact_json_without_worker_only_fields() -> None:
    result = {"success": True, "errorMessage": "", "outputParameters": {"a": 1}, "storedFiles": ["x"]}
    stored = stored_result({**result, "initFailed": False})
    assert stored == StoredResult(True, None, '{"success":true,"errorMessage":"","outputParameters":{"a":1}}')


def test_an_init_failure_travels_beside_the_result() -> None:
    stored = stored_result({"success": False, "errorMessage": "initCode failed: boom", "initFailed": True})
    assert stored.init_failure == "initCode failed: boom"
    assert "initFailed" not in json.loads(stored.text)


def test_a_result_that_is_not_json_becomes_a_failed_row() -> None:
    stored = stored_result({"success": True, "errorMessage": "", "outputParameters": {"a": float("nan")}})
    assert stored.success is False
    assert json.loads(stored.text)["errorMessage"].startswith("the result is not JSON")


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ('{"success":true}', {"index": 3, "itemState": "complete", "attempt": 1, "success": True}),
        # older rows had spaces
        (' {"success": true} ', {"index": 3, "itemState": "complete", "attempt": 1, "success": True}),
        ("{}", {"index": 3, "itemState": "complete", "attempt": 1}),
    ],
)
def test_a_polled_result_gets_its_index_state_and_attempt(stored: str, expected: dict[str, Any]) -> None:
    assert json.loads(_result_json(3, "complete", stored, 1)) == expected


def test_a_poll_reads_the_batch_and_its_new_rows_in_one_snapshot(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        record_results(conn, "b1", {3: ok(3)})
        record_results(conn, "b1", {1: ok(1), 7: ok(7, success=False)})
    pool = _db.read_pool(engine)
    assert _db.read_pool(engine) is pool
    with pool.read_snapshot() as conn:
        batch = _db.poll_batch(conn, "b1", "s", "v")
        assert batch is not None
        assert (batch["state"], batch["last_seq"], batch["total"]) == ("inProgress", 3, 10)
        assert _db.poll_batch(conn, "b1", "s", "other") is None
        assert [row[0] for row in _db.finished_rows(conn, "b1", None, None)] == [1, 3, 7]
        assert [row[3] for row in _db.finished_rows(conn, "b1", 1, None)] == [2, 3]
        first_after = _db.finished_rows(conn, "b1", 1, 1)
        assert len(first_after) == 1
        assert json.loads(first_after[0][2])["outputParameters"]["answer"] in (1, 7)
    with pytest.raises(sqlite3.OperationalError), pool.read_snapshot() as conn:
        conn.execute("DELETE FROM batches")  # the read connections are query_only
    engine.dispose()
