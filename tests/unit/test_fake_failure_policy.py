"""The fake server's failure policy and item retries (issue 15, item 2), sync and async, as the real server has them."""

from __future__ import annotations

from typing import Any

import pytest

import batchscore
from tests.unit.test_testing_kit import make_app, mode

__all__ = ["mode"]  # the fixture, imported for the tests below


def flaky_service() -> Any:
    runs: dict[float, int] = {}

    def flaky(hp: float, wt: float) -> float:
        runs[hp] = runs.get(hp, 0) + 1
        if runs[hp] == 1:
            raise batchscore.Retryable(f"first run of {hp}")
        if hp < 0:
            raise ValueError("negative")
        return hp + wt

    return flaky


def test_the_fake_retries_a_retryable_failure_and_keeps_its_error(mode: str) -> None:
    app = make_app(mode, services={("flaky", "v1"): flaky_service()})
    svc = app.run(app.client().get_service("flaky", "v1"))
    batch = app.run(svc.batch([{"hp": 1.0, "wt": 1.0}, {"hp": -1.0, "wt": 1.0}], item_retries=1).start())
    res = app.run(batch.wait(progress=False))
    ok, failed = res.execution(0), res.execution(1)
    assert (ok.success, ok.attempt) == (True, 2)
    assert [(a.attempt, "first run of 1.0" in a.error_message) for a in ok.attempts] == [(1, True)]
    assert (failed.success, failed.attempt, len(failed.attempts)) == (False, 2, 1)  # ValueError: not retried
    app.close()


def test_the_fake_stops_a_batch_over_its_failure_policy(mode: str) -> None:
    app = make_app(mode, services={("flaky", "v1"): flaky_service()})
    svc = app.run(app.client().get_service("flaky", "v1"))
    records = [{"hp": float(i), "wt": 1.0} for i in range(10)]
    batch = app.run(svc.batch(records, parallel_count=2, max_failed_items=1).start())
    with pytest.raises(batchscore.BatchFailedError) as raised:
        app.run(batch.wait(progress=False))
    status = raised.value.batch
    assert "maxFailedItems=1" in str(status.error_message)
    assert (status.failed_item_count, status.canceled_item_count) == (2, 8)
    app.close()
