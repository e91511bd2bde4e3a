"""The store on both databases (SQLite, and a throwaway PostgreSQL): rows in and out, attempts, leases.

Several replicas share one PostgreSQL: their leases on batches are taken with ``FOR UPDATE SKIP LOCKED``, renewed,
lost to another replica when they expire, and carry stop requests between replicas.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchscore_server import _db
from batchscore_server._execution import StoredResult, stored_result
from batchscore_server._settings import Settings
from batchscore_server._store import Store, disk_full
from tests._postgres import Postgres, create_database, running_postgres, unavailable_reason


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres | None]:
    if unavailable_reason() is not None:
        yield None
        return
    with running_postgres() as running:
        yield running


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path, postgres: Postgres | None) -> Iterator[Store]:
    if request.param == "sqlite":
        url: str | None = None
    elif postgres is None:
        pytest.skip(str(unavailable_reason()))
    else:
        url = create_database(postgres, f"store_{uuid.uuid4().hex[:12]}")
    settings = Settings(data_dir=tmp_path, database_url=url, lease_seconds=5)
    engine = _db.create_engine(settings.database)
    try:
        yield Store(settings, engine)
    finally:
        engine.dispose()


def new_batch(batch_id: str, owner: str = "o", created: float = 0.0) -> dict[str, Any]:
    """A batch as a start request makes it, before its rows."""
    return {
        "id": batch_id,
        "name": "s",
        "version": "v",
        "owner": owner,
        "created": created,
        "parallel_count": 1,
        "item_timeout": None,
        "idempotency_key": None,
        "request_hash": "",
        "spec": {"key": "k", "inputs": []},
        "last_seq": 0,
    }


def add_batch(store: Store, batch_id: str, rows: int, created: float = 0.0) -> None:
    store.insert_receiving_batch(new_batch(batch_id, created=created))
    store.insert_rows(batch_id, 0, [f'{{"x": {i}, "text": "é\\u0000"}}' for i in range(rows)])
    store.open_batch(batch_id, rows, "hash")


def ok(value: int) -> StoredResult:
    return stored_result({"success": True, "errorMessage": "", "outputParameters": {"answer": value}})


def polled(store: Store, batch_id: str) -> list[tuple[int, str, dict[str, Any], int]]:
    import json

    page = store.poll_page(batch_id, "s", "v", None, None, None)
    assert page is not None
    return [(index, state, json.loads(result), attempt) for index, state, result, attempt in page.rows]


def test_rows_go_in_as_sent_and_come_out_in_order(store: Store) -> None:
    add_batch(store, "b1", 1200)
    pending = store.pending_rows("b1", -1, 2000)
    assert [index for index, _ in pending] == list(range(1200))
    assert pending[7][1].replace(" ", "") == '{"x":7,"text":"é\\u0000"}'  # the JSON text, not re-encoded


def test_rows_far_apart_and_held_retries_are_recorded_in_one_write(store: Store) -> None:
    # Rows 5000 indexes apart go in separate slices on PostgreSQL (each read and written by an index range).
    add_batch(store, "b1", 5001)
    retryable = StoredResult(False, None, '{"success":false,"errorMessage":"again"}', retryable=True)
    held, counts = store.record_attempts("b1", {0: ok(0), 3: retryable, 5000: ok(5000)}, {0, 3, 4, 5000}, 1, True)
    assert held == {3: 0}
    assert counts is not None
    assert counts["complete_count"] == 2
    assert [(index, attempt) for index, _, _, attempt in polled(store, "b1")] == [(0, 1), (5000, 1)]
    held, _ = store.record_attempts("b1", {3: retryable, 4: ok(4)}, {3}, 1, False)  # its one retry fails too
    assert held == {}
    rows = {index: (state, result, attempt) for index, state, result, attempt in polled(store, "b1")}
    assert rows[3][:1] + rows[3][2:] == ("failed", 2)
    assert rows[3][1]["attempts"][0]["errorMessage"] == "again"
    assert rows[4][2] == 1  # its start was written by the first write, while it ran


def test_a_result_is_recorded_once_with_its_attempt(store: Store) -> None:
    add_batch(store, "b1", 4)
    store.record_results("b1", {}, started=[0, 1])  # rows 0 and 1 start; no result yet
    store.record_results("b1", {0: ok(0)})  # row 0 ends (its start was written before)
    store.record_results("b1", {2: ok(2)}, started=[2])  # started and ended within one write
    store.record_results("b1", {3: ok(3)})  # a row whose start was never reported (it held the GIL)
    store.record_results("b1", {0: ok(100)}, started=[0])  # a second result is ignored, and so is its start
    # Row 1 was running when its replica died: its next run is its second attempt.
    store.record_results("b1", {1: ok(1)}, started=[1])
    assert [
        (index, result["outputParameters"]["answer"], attempt) for index, _, result, attempt in polled(store, "b1")
    ] == [
        (0, 0, 1),
        (1, 1, 2),
        (2, 2, 1),
        (3, 3, 1),
    ]
    page = store.poll_page("b1", "s", "v", None, 0, 2)
    assert page is not None
    assert [row[0] for row in page.rows] == [0, 2]  # in completion order
    assert page.has_more


def test_pages_after_a_cursor_end_where_the_page_or_the_finished_rows_do(store: Store) -> None:
    add_batch(store, "b1", 6)
    for index in (4, 1, 5, 0, 2):  # five results, in this completion order; row 3 never ends
        store.record_results("b1", {index: ok(index)})
    pages = []
    cursor = 0
    while True:
        page = store.poll_page("b1", "s", "v", None, cursor, 2)
        assert page is not None
        pages.append(([row[0] for row in page.rows], page.has_more))
        if not page.has_more:
            break
        cursor = page.cursor
    assert pages == [([4, 1], True), ([5, 0], True), ([2], False)]
    page = store.poll_page("b1", "s", "v", None, 2, None)  # no page size: every row after the cursor
    assert page is not None
    assert ([row[0] for row in page.rows], page.cursor, page.has_more) == ([5, 0, 2], 5, False)
    page = store.poll_page("b1", "s", "v", None, 5, 2)  # nothing new: the cursor stays
    assert page is not None
    assert (page.rows, page.cursor, page.has_more) == ([], 5, False)
    assert store.poll_page("b1", "s", "other", None, 0, 2) is None
    assert store.poll_page("nope", "s", "v", None, 0, 2) is None


def test_a_poll_gives_its_connection_back_as_it_found_it(store: Store) -> None:
    # PostgreSQL's polls read in a REPEATABLE READ READ ONLY pipeline on the engine's pooled connections: the
    # writers that get the same connection next must find it read-write, in the default isolation level.
    add_batch(store, "b1", 2)
    store.record_results("b1", {0: ok(0)})
    for _ in range(3):
        assert store.poll_page("b1", "s", "v", None, 0, 1) is not None
    store.record_results("b1", {1: ok(1)})
    assert [row[0] for row in polled(store, "b1")] == [0, 1]
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW transaction_isolation").scalar() == "read committed"
            assert conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "off"


def test_replicas_claim_each_free_batch_once(store: Store) -> None:
    for number in range(12):
        add_batch(store, f"b{number}", 1, created=float(number))
        store.renew_leases("nobody", [])
    with store.engine.begin() as conn:  # opened by replicas that died: their leases ran out
        conn.execute(sa.update(_db.batches).values(lease_owner="dead", lease_expires=time.time() - 1))
    claims: dict[str, list[str]] = {}

    def claim(replica: str) -> None:
        mine: list[str] = []
        while taken := store.claim_free_batches(replica, 2):
            mine.extend(taken)
        claims[replica] = mine

    threads = [threading.Thread(target=claim, args=(f"r{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [batch for taken in claims.values() for batch in taken]
    assert sorted(everything) == sorted(f"b{n}" for n in range(12))  # each claimed by exactly one replica
    owner = next(replica for replica, taken in claims.items() if "b0" in taken)
    other = next(replica for replica in claims if replica != owner)
    assert not store.claim_batch("b0", other)  # a live lease is not taken
    assert store.claim_batch("b0", owner)  # its holder may renew it


def test_a_lease_not_renewed_in_time_goes_to_another_replica_with_its_stop_request(store: Store) -> None:
    add_batch(store, "b1", 3)
    assert store.claim_batch("b1", "a")
    assert store.renew_leases("a", ["b1"]) == ({"b1"}, {})
    store.request_stop("b1", "")
    assert store.renew_leases("a", ["b1"]) == ({"b1"}, {"b1": ""})
    with store.engine.begin() as conn:  # a stalled: its lease ran out
        conn.execute(sa.update(_db.batches).values(lease_expires=time.time() - 1))
    assert store.claim_free_batches("b", 10) == ["b1"]
    assert store.renew_leases("a", ["b1"]) == (set(), {})  # a learns it lost the batch
    store.cancel_batch("b1", {"success": False, "errorMessage": "canceled", "outputParameters": {}})
    state = store.batch_state("b1")
    assert state is not None
    assert (state["state"], state["lease_owner"]) == ("canceled", None)
    assert not store.claim_batch("b1", "b")  # a finished batch has no lease to take


def test_receipts_of_live_replicas_are_kept(store: Store) -> None:
    add_batch(store, "done", 1)
    store.insert_receiving_batch(new_batch("arriving"))
    store.remove_unfinished_receipts(every=False)
    assert store.batch_state("arriving") is not None
    with store.engine.begin() as conn:  # its replica died long ago
        conn.execute(sa.update(_db.batches).where(_db.batches.c.id == "arriving").values(lease_expires=0.0))
    store.remove_unfinished_receipts(every=False)
    assert store.batch_state("arriving") is None
    assert store.batch_state("done") is not None


def test_postgresql_disk_full_is_a_full_disk() -> None:
    class DiskFull(Exception):
        sqlstate = "53100"

    wrapped = sa.exc.OperationalError("INSERT", {}, DiskFull("could not extend file"))
    assert disk_full(wrapped)
    assert not disk_full(sa.exc.OperationalError("INSERT", {}, Exception("deadlock")))


def test_concurrent_starts_of_one_user_cannot_all_slip_under_the_quota(store: Store) -> None:
    for number in range(6):
        store.insert_receiving_batch(new_batch(f"q{number}", owner="rita"))
        store.insert_rows(f"q{number}", 0, ['{"x": 1}'] * 10)
    barrier = threading.Barrier(6)
    opened: list[str] = []

    def start(number: int) -> None:
        barrier.wait()
        if store.open_batch_within(f"q{number}", 10, "h", "rita", max_rows=25, max_bytes=0) is None:
            opened.append(f"q{number}")

    threads = [threading.Thread(target=start, args=(number,)) for number in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(opened) == 2  # 10 + 10 rows fit under 25; a third batch would not
