"""The failure policy and item retries below the engine: the policy's judgement, the store's held retries and
attempts (SQLite and PostgreSQL), and the worker's classification of a ``batchscore.Retryable``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchscore_server import _db
from batchscore_server._execution import ServiceSpec, StoredResult, execute, is_retryable_error, stored_result
from batchscore_server._policy import FailurePolicy, policy_canceled_result, retry_delay
from batchscore_server._store import Store
from tests.server.test_store_databases import add_batch, ok, polled, postgres, store

__all__ = ["postgres", "store"]  # fixtures, imported for the tests below


def failure(message: str, retryable: bool = True) -> StoredResult:
    return stored_result({"success": False, "errorMessage": message, "outputParameters": {}, "retryable": retryable})


def policy(**columns: Any) -> FailurePolicy:
    found = FailurePolicy.of({"total": 100, **columns})
    assert found is not None
    return found


def test_no_policy_without_a_limit() -> None:
    assert FailurePolicy.of({"total": 10, "max_failed_items": None, "max_failure_ratio": None}) is None


def test_max_failed_items_is_a_count_over_which_the_batch_stops() -> None:
    assert policy(max_failed_items=2).breach(complete=40, failed=2) is None
    reason = policy(max_failed_items=2).breach(complete=40, failed=3)
    assert reason == "stopped by the failure policy: 3 of 43 finished rows failed, over maxFailedItems=2"
    assert policy(max_failed_items=0).breach(complete=0, failed=1) is not None  # 0: the first failure


def test_max_failure_ratio_waits_for_its_sample() -> None:
    assert policy(max_failure_ratio=0.2).breach(complete=5, failed=10) is None  # 15 < the default sample of 20
    assert policy(max_failure_ratio=0.2).breach(complete=16, failed=4) is None  # 20 %: not over
    reason = policy(max_failure_ratio=0.2, min_failure_sample=5).breach(complete=3, failed=2)
    assert reason is not None
    assert "2 of 5 finished rows failed (40.0%), over maxFailureRatio=0.2" in reason
    assert policy(max_failure_ratio=0.5, min_failure_sample=4).breach(complete=2, failed=2) is None  # not over
    # A batch smaller than the sample is judged once all its rows finished.
    small = FailurePolicy.of({"total": 3, "max_failure_ratio": 0.5})
    assert small is not None
    assert small.breach(complete=1, failed=2) is not None


def test_retry_backoff_doubles_from_one_second_up_to_a_minute() -> None:
    assert [retry_delay(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert retry_delay(10_000) == 60


class _Flaky(Exception):
    pass


def named(module: str, name: str = "Retryable") -> type[Exception]:
    cls = type(name, (Exception,), {"__module__": module})
    return cls


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (named("batchscore")(), True),
        (named("batchscore._retryable")(), True),
        (type("Sub", (named("batchscore._retryable"),), {"__module__": "__main__"})(), True),  # a subclass
        (named("mypackage")(), False),  # a Retryable of another package
        (named("batchscorex")(), False),
        (named("batchscore", "RetryableError")(), False),
        (_Flaky(), False),
        (ValueError(), False),
    ],
)
def test_retryable_is_recognised_by_name_and_module(error: BaseException, retryable: bool) -> None:
    assert is_retryable_error(error) is retryable


def test_the_sdk_retryable_is_recognised() -> None:
    import batchscore

    assert is_retryable_error(batchscore.Retryable("again"))


def spec(code: str) -> ServiceSpec:
    return ServiceSpec("k", code, "", (), (("answer", "numeric"),), (), None)


@pytest.mark.parametrize(
    ("code", "retryable"),
    [("import batchscore\nraise batchscore.Retryable('again')\n", True), ("raise ValueError('no')\n", False)],
)
def test_execute_reports_a_retryable_failure_beside_its_result(tmp_path: Path, code: str, retryable: bool) -> None:
    result = execute(spec(code), {}, tmp_path / "work")
    assert result["success"] is False
    assert bool(result.get("retryable")) is retryable
    stored = stored_result(result)
    assert stored.retryable is retryable
    assert "retryable" not in json.loads(stored.text)  # the stored result format is unchanged


def rows(store: Store, batch_id: str) -> dict[int, Any]:
    c = _db.batch_rows.c
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(c.idx, c.state, c.seq, c.attempt, c.attempts).where(c.batch_id == batch_id))
        return {row.idx: row for row in found}


def retried_count(store: Store, batch_id: str) -> int:
    with store.engine.connect() as conn:
        query = sa.select(_db.batches.c.retried_count).where(_db.batches.c.id == batch_id)
        return int(conn.execute(query).scalar_one())


def test_a_retryable_failure_is_held_until_its_retries_are_spent(store: Store) -> None:
    add_batch(store, "b1", 3)
    # Row 0 fails retryably on its first run: held, not recorded.
    held, counts = store.record_attempts("b1", {0: failure("first")}, [0], 2, True)
    assert held == {0: 0}
    assert counts is not None
    assert (counts["complete_count"], counts["failed_count"]) == (0, 0)
    row = rows(store, "b1")[0]
    assert (row.state, row.seq, row.attempt, row.attempts) == (
        "pending",
        None,
        1,
        [{"attempt": 1, "errorMessage": "first"}],
    )
    assert retried_count(store, "b1") == 1
    # Its second run fails again: held once more (retries before it: 1).
    held, _ = store.record_attempts("b1", {0: failure("second")}, [0], 2, False)
    assert held == {0: 1}
    assert retried_count(store, "b1") == 1  # a row, not a run
    # The third fails: no retry left, recorded failed, with every earlier attempt in its result.
    held, counts = store.record_attempts("b1", {0: failure("third")}, [0], 2, True)
    assert held == {}
    assert counts is not None
    assert counts["failed_count"] == 1
    ((index, state, result, attempt),) = polled(store, "b1")
    assert (index, state, attempt, result["errorMessage"]) == (0, "failed", 3, "third")
    assert result["attempts"] == [{"attempt": 1, "errorMessage": "first"}, {"attempt": 2, "errorMessage": "second"}]


def test_a_retried_row_that_succeeds_keeps_its_earlier_error(store: Store) -> None:
    add_batch(store, "b1", 3)
    store.record_attempts("b1", {1: failure("flaky")}, [1], 1, False)
    store.record_attempts("b1", {1: ok(5), 2: failure("plain", retryable=False)}, [1, 2], 1, False)
    by_index = {index: (state, result, attempt) for index, state, result, attempt in polled(store, "b1")}
    state, result, attempt = by_index[1]
    assert (state, attempt, result["outputParameters"]) == ("complete", 2, {"answer": 5})
    assert result["attempts"] == [{"attempt": 1, "errorMessage": "flaky"}]
    state, result, attempt = by_index[2]
    assert (state, attempt, "attempts" in result) == ("failed", 1, False)  # not retryable: recorded at once


def test_without_item_retries_a_retryable_failure_is_recorded(store: Store) -> None:
    add_batch(store, "b1", 1)
    held, _ = store.record_attempts("b1", {0: failure("flaky")}, [0], 0, False)
    assert held == {}
    assert [state for _, state, _, _ in polled(store, "b1")] == ["failed"]


def test_a_policy_stop_cancels_the_rows_without_a_result(store: Store) -> None:
    add_batch(store, "b1", 3)
    store.record_attempts("b1", {0: failure("bad", retryable=False)}, [0], 0, False)
    store.fail_batch("b1", "stopped by the failure policy", policy_canceled_result(), "canceled")
    states = [(index, state, attempt) for index, state, _, attempt in polled(store, "b1")]
    assert states == [(0, "failed", 1), (1, "canceled", 0), (2, "canceled", 0)]
    batch = store.batch("b1", "s", "v")
    assert batch is not None
    assert (batch["state"], batch["failed_count"], batch["canceled_count"]) == ("failed", 1, 2)
    assert batch["error_message"] == "stopped by the failure policy"
