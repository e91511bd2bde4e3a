"""``Batch.wait()`` and ``iter_results()``: incremental polling by cursor, backoff, timeouts and terminal states.

Every scenario runs against an in-memory server (``httpx.MockTransport``) with a fake clock and a fake sleep,
once with ``Client`` and once with ``AsyncClient``.
"""

from __future__ import annotations

import io
import itertools
import sys
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

import batchscore._shared as shared
from batchscore import (
    BatchCanceledError,
    BatchFailedError,
    BatchscoreError,
    BatchState,
    BatchStatus,
    PollPolicy,
    WaitTimeoutError,
)
from tests.unit._harness import BASE, INFO
from tests.unit._harness import Harness as SharedHarness

BATCH = "/api/svc/v1/batch"
EXECUTION = f"{BATCH}/b1"


def records(count: int) -> list[dict[str, float]]:
    return [{"hp": 100.0 + i, "wt": 2.0 + i / 10} for i in range(count)]


# --- harness: fake time, sync/async clients, one runner for both ---


class Harness(SharedHarness):
    """The shared harness, plus a started batch on a BatchServer."""

    def started(self, server: BatchServer, count: int = 5, **options: Any) -> Any:
        service = self.service(server, **options)
        return self.run(service.batch(records(count)).start())


@pytest.fixture(params=["sync", "async"])
def h(request: pytest.FixtureRequest) -> Iterator[Harness]:
    harness = Harness(request.param, base_url=BASE, info=INFO)
    yield harness
    harness.close()


class FixedRandom:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.fixture
def pin_jitter(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Pin the wait loop's jitter: 0.5 gives the exact backoff base, values near 1 the largest jitter."""

    def pin(value: float) -> None:
        monkeypatch.setattr(shared, "random", SimpleNamespace(Random=lambda: FixedRandom(value)))

    return pin


# --- an in-memory server for one batch ---


def result_json(index: int) -> dict[str, Any]:
    return {
        "index": index,
        "itemState": "complete",
        "success": True,
        "errorMessage": "",
        "consoleOutput": "",
        "changedFiles": [],
        "outputParameters": {"answer": index * 10.0},
    }


class BatchServer:
    """Serves batch ``b1``: poll n answers step n (the last step repeats), results by cursor in finish order.

    A step is ``(state, finished)``: the batch's state and how many records (taken from ``order``) have finished.
    """

    def __init__(
        self,
        steps: list[tuple[str, int]],
        *,
        order: list[int] | None = None,
        total: int = 5,
        retry_after: str | None = None,
        error_message: str = "",
    ) -> None:
        self.steps = steps
        self.order = order if order is not None else list(range(total))
        self.total = total
        self.retry_after = retry_after
        self.error_message = error_message
        self.polls: list[dict[str, str]] = []
        self.served: list[int] = []
        self.started: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == BATCH:
            self.started.append(request.content)
            return httpx.Response(
                202,
                json={"batchExecutionId": "b1", "BatchExecutionId": "b1", "name": "svc", "version": "v1"},
            )
        if request.method == "GET" and request.url.path == EXECUTION:
            return self.poll(request)
        return httpx.Response(404, json={"code": 404, "message": "no such route"})

    def poll(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        self.polls.append(params)
        state, finished = self.steps[min(len(self.polls), len(self.steps)) - 1]
        since = int(params["since"])
        limit = int(params["limit"])
        page = self.order[since:finished][:limit]
        self.served.extend(page)
        end = since + len(page)
        body = {
            "batchExecutionId": "b1",
            "state": state,
            "completedItemCount": finished,
            "totalItemCount": self.total,
            "failedItemCount": 0,
            "runningItemCount": 0 if state in ("complete", "failed", "canceled") else 1,
            "canceledItemCount": self.total - finished if state == "canceled" else 0,
            "batchExecutionResults": [result_json(index) for index in page],
            "cursor": str(end),
            "hasMore": end < finished,
        }
        if state == "failed":
            body["errorMessage"] = self.error_message
        final = state in ("complete", "failed", "canceled")
        headers = {"Retry-After": self.retry_after} if self.retry_after is not None and not final else {}
        return httpx.Response(200, json=body, headers=headers)


def indices(status: BatchStatus) -> list[int | None]:
    return [result.index for result in status.results]


# --- cursor polling ---


def test_wait_polls_with_since_cursor_and_limit(h: Harness) -> None:
    server = BatchServer([("inProgress", 0), ("inProgress", 2), ("complete", 5)])
    batch = h.started(server)

    h.run(batch.wait(poll_interval=1, progress=False))

    assert [poll["since"] for poll in server.polls] == ["0", "0", "2"]
    assert {poll["limit"] for poll in server.polls} == {str(shared.RESULTS_PAGE)}


def test_wait_never_receives_or_keeps_a_finished_row_twice(h: Harness) -> None:
    server = BatchServer(
        [("inProgress", 1), ("inProgress", 1), ("inProgress", 3), ("inProgress", 3), ("complete", 5)],
        order=[3, 0, 4, 1, 2],
    )
    batch = h.started(server)

    status = h.run(batch.wait(poll_interval=1, progress=False))

    assert sorted(server.served) == [0, 1, 2, 3, 4]
    assert len(status.results) == 5
    assert len(set(indices(status))) == 5


def test_wait_returns_results_in_index_order(h: Harness) -> None:
    server = BatchServer([("inProgress", 2), ("complete", 5)], order=[3, 0, 4, 1, 2])
    batch = h.started(server)

    status = h.run(batch.wait(poll_interval=1, progress=False))

    assert status.state is BatchState.COMPLETE
    assert indices(status) == [0, 1, 2, 3, 4]
    assert [result.output("answer") for result in status.results] == [0.0, 10.0, 20.0, 30.0, 40.0]


def test_wait_attaches_the_submitted_records(h: Harness) -> None:
    batch = h.started(BatchServer([("complete", 3)], total=3), count=3)

    status = h.run(batch.wait(progress=False))

    assert status.inputs == tuple(records(3))


# --- the delay between polls ---


def test_backoff_grows_while_nothing_new_arrives(h: Harness, pin_jitter: Callable[[float], None]) -> None:
    pin_jitter(0.5)
    server = BatchServer([("inProgress", 0)] * 4 + [("complete", 5)])
    batch = h.started(server, polling=PollPolicy(initial=1.0, multiplier=2.0, maximum=100.0))

    h.run(batch.wait(progress=False))

    sleeps = h.time.sleeps
    assert len(sleeps) == 4
    assert [later / earlier for earlier, later in itertools.pairwise(sleeps)] == [2.0, 2.0, 2.0]


def test_backoff_resets_after_progress(h: Harness, pin_jitter: Callable[[float], None]) -> None:
    pin_jitter(0.5)
    server = BatchServer([("inProgress", 0), ("inProgress", 0), ("inProgress", 1), ("inProgress", 1), ("complete", 5)])
    batch = h.started(server, polling=PollPolicy(initial=1.0, multiplier=2.0, maximum=100.0))

    h.run(batch.wait(progress=False))

    first, second, after_progress, quiet_again = h.time.sleeps
    assert second == 2 * first
    assert after_progress == 1.0  # PollPolicy.initial
    assert quiet_again == 2.0


def test_backoff_jitter_stays_within_a_fifth_of_the_base(h: Harness) -> None:
    server = BatchServer([("inProgress", 1)] * 6 + [("complete", 5)], total=5)
    batch = h.started(server, polling=PollPolicy(initial=1.0, multiplier=1.0, maximum=100.0))

    h.run(batch.wait(progress=False))

    assert len(h.time.sleeps) == 6
    assert all(0.8 <= delay <= 1.2 for delay in h.time.sleeps)


def test_first_quiet_poll_waits_policy_initial(h: Harness, pin_jitter: Callable[[float], None]) -> None:
    # PollPolicy documents `initial` as the first delay; a batch whose first poll brings nothing new waits
    # initial * multiplier instead.
    pin_jitter(0.5)
    server = BatchServer([("inProgress", 0), ("complete", 5)])
    batch = h.started(server, polling=PollPolicy(initial=1.0, multiplier=2.0, maximum=100.0))

    h.run(batch.wait(progress=False))

    assert h.time.sleeps == [1.0]


def test_backoff_never_exceeds_policy_maximum(h: Harness, pin_jitter: Callable[[float], None]) -> None:
    # PollPolicy.maximum is "Cap on one delay" and poll_delay promises a delay within [0, maximum].
    pin_jitter(0.99)
    server = BatchServer([("inProgress", 0)] * 5 + [("complete", 5)])
    batch = h.started(server, polling=PollPolicy(initial=1.0, multiplier=10.0, maximum=5.0))

    h.run(batch.wait(progress=False))

    assert max(h.time.sleeps) <= 5.0


def test_retry_after_sets_the_delay(h: Harness) -> None:
    server = BatchServer([("inProgress", 0), ("inProgress", 1), ("complete", 5)], retry_after="3")
    batch = h.started(server)

    h.run(batch.wait(progress=False))

    assert h.time.sleeps == [3.0, 3.0]


def test_retry_after_is_capped_by_policy_maximum(h: Harness) -> None:
    server = BatchServer([("inProgress", 0), ("complete", 5)], retry_after="60")
    batch = h.started(server, polling=PollPolicy(maximum=10.0))

    h.run(batch.wait(progress=False))

    assert h.time.sleeps == [10.0]


def test_unusable_retry_after_falls_back_to_backoff(h: Harness) -> None:
    # retry_after_seconds() promises None for an unusable header; "soon" makes parsedate_to_datetime raise.
    h.check_responses = False  # a server breaking the contract's integer Retry-After, on purpose
    server = BatchServer([("inProgress", 0), ("complete", 5)], retry_after="soon")
    batch = h.started(server, polling=PollPolicy(initial=1.0, multiplier=1.0, maximum=100.0))

    status = h.run(batch.wait(progress=False))

    assert status.state is BatchState.COMPLETE
    assert len(h.time.sleeps) == 1
    assert 0.8 <= h.time.sleeps[0] <= 1.2


def test_poll_interval_fixes_the_delay(h: Harness) -> None:
    server = BatchServer([("inProgress", 0), ("inProgress", 0), ("inProgress", 2), ("complete", 5)], retry_after="3")
    batch = h.started(server)

    h.run(batch.wait(poll_interval=0.25, progress=False))

    assert h.time.sleeps == [0.25, 0.25, 0.25]


def test_has_more_pages_at_once_without_sleeping(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared, "RESULTS_PAGE", 2)
    server = BatchServer([("complete", 5)])
    batch = h.started(server)

    status = h.run(batch.wait(progress=False))

    assert [(poll["since"], poll["limit"]) for poll in server.polls] == [("0", "2"), ("2", "2"), ("4", "2")]
    assert h.time.sleeps == []
    assert indices(status) == [0, 1, 2, 3, 4]


def test_has_more_while_running_pages_then_sleeps(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared, "RESULTS_PAGE", 2)
    server = BatchServer([("inProgress", 3), ("inProgress", 3), ("complete", 5)], retry_after="1")
    batch = h.started(server)

    status = h.run(batch.wait(progress=False))

    assert h.time.sleeps == [1.0]
    assert indices(status) == [0, 1, 2, 3, 4]


# --- timeout ---


def test_timeout_raises_with_the_results_so_far(h: Harness) -> None:
    server = BatchServer([("inProgress", 1), ("inProgress", 2), ("inProgress", 3)], order=[2, 0, 4, 1, 3])
    batch = h.started(server)

    with pytest.raises(WaitTimeoutError) as caught:
        h.run(batch.wait(timeout=5, poll_interval=2, progress=False))

    assert caught.value.batch.state is BatchState.IN_PROGRESS
    assert indices(caught.value.batch) == [0, 2, 4]
    assert caught.value.batch.execution_id == "b1"


def test_timeout_shortens_the_last_sleep_to_the_deadline(h: Harness) -> None:
    batch = h.started(BatchServer([("inProgress", 0)]))

    with pytest.raises(WaitTimeoutError):
        h.run(batch.wait(timeout=5, poll_interval=2, progress=False))

    assert h.time.sleeps == [2, 2, 1]


def test_timeout_shortens_a_retry_after_sleep(h: Harness) -> None:
    batch = h.started(BatchServer([("inProgress", 0)], retry_after="4"))

    with pytest.raises(WaitTimeoutError):
        h.run(batch.wait(timeout=5, progress=False))

    assert h.time.sleeps == [4.0, 1.0]


def test_no_timeout_when_the_batch_finishes_in_time(h: Harness) -> None:
    batch = h.started(BatchServer([("inProgress", 0), ("inProgress", 0), ("complete", 5)]))

    status = h.run(batch.wait(timeout=5, poll_interval=2, progress=False))

    assert status.state is BatchState.COMPLETE


# --- terminal states ---


def test_failed_batch_raises_batch_failed_error(h: Harness) -> None:
    server = BatchServer([("inProgress", 1), ("failed", 1)], error_message="the worker pool is gone")
    batch = h.started(server)

    with pytest.raises(BatchFailedError) as caught:
        h.run(batch.wait(poll_interval=1, progress=False))

    assert caught.value.batch.state is BatchState.FAILED
    assert caught.value.batch.error_message == "the worker pool is gone"
    assert "the worker pool is gone" in str(caught.value)
    assert indices(caught.value.batch) == [0]


def test_canceled_batch_raises_batch_canceled_error_keeping_results(h: Harness) -> None:
    batch = h.started(BatchServer([("inProgress", 1), ("canceled", 2)]))

    with pytest.raises(BatchCanceledError) as caught:
        h.run(batch.wait(poll_interval=1, progress=False))

    assert caught.value.batch.state is BatchState.CANCELED
    assert indices(caught.value.batch) == [0, 1]
    assert caught.value.batch.canceled_item_count == 3


def test_the_progress_bar_shows_canceled_rows_as_canceled(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from tqdm import tqdm

    out = io.StringIO()
    monkeypatch.setattr(
        shared, "_progress_bar", lambda total, description: tqdm(total=total, desc=description, file=out)
    )
    batch = h.started(BatchServer([("inProgress", 1), ("canceled", 2)]))

    with pytest.raises(BatchCanceledError):
        h.run(batch.wait(poll_interval=1, progress=True))

    last = out.getvalue().rsplit("\r", 1)[-1]
    assert "2/5" in last  # the rows that really finished: not a full bar
    assert "canceled=3" in last
    assert last.startswith("batch b1 canceled")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_clis_bar_shows_canceled_rows_as_canceled(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from batchscore.cli import batch as cli_batch

    screen = io.StringIO()
    monkeypatch.setattr(cli_batch, "_stderr", Console(file=screen, force_terminal=True, width=200))
    monkeypatch.setattr(sys, "stderr", _Terminal())  # the live bar is drawn only on a terminal
    harness = Harness("sync", base_url=BASE, info=INFO)
    try:
        batch = harness.started(BatchServer([("inProgress", 1), ("canceled", 2)]))
        with pytest.raises(BatchCanceledError):
            cli_batch._wait_for(batch, json_output=False)
    finally:
        harness.close()

    last = screen.getvalue().rsplit("\r", 1)[-1]
    assert "batch b1 canceled, 3 rows canceled" in last
    assert "2/5" in last


# --- progress, resume, streaming ---


def test_on_progress_receives_each_status(h: Harness) -> None:
    server = BatchServer([("pending", 0), ("inProgress", 2), ("complete", 5)])
    batch = h.started(server)
    seen: list[BatchStatus] = []

    h.run(batch.wait(poll_interval=1, progress=False, on_progress=seen.append))

    assert [status.state for status in seen] == [BatchState.PENDING, BatchState.IN_PROGRESS, BatchState.COMPLETE]
    assert [status.completed_item_count for status in seen] == [0, 2, 5]


def test_resume_waiting_with_get_batch(h: Harness) -> None:
    server = BatchServer([("inProgress", 1), ("complete", 5)])
    service = h.service(server)

    status = h.run(service.get_batch("b1").wait(poll_interval=1, progress=False))

    assert server.started == []
    assert indices(status) == [0, 1, 2, 3, 4]
    assert status.inputs is None


def test_wait_before_start_raises(h: Harness) -> None:
    batch = h.service(BatchServer([("complete", 5)])).batch(records(2))

    with pytest.raises(BatchscoreError, match="start"):
        h.run(batch.wait(progress=False))


def test_iter_results_yields_each_result_once_as_it_finishes(h: Harness) -> None:
    server = BatchServer(
        [("inProgress", 1), ("inProgress", 1), ("inProgress", 3), ("complete", 5)], order=[2, 0, 4, 1, 3]
    )
    batch = h.started(server)

    yielded = h.collect(batch.iter_results(poll_interval=1))

    assert [result.index for result in yielded] == [2, 0, 4, 1, 3]
    assert h.time.sleeps == [1, 1, 1]


def test_iter_results_raises_at_the_end_of_a_canceled_batch(h: Harness) -> None:
    batch = h.started(BatchServer([("inProgress", 1), ("canceled", 2)]))

    with pytest.raises(BatchCanceledError):
        h.collect(batch.iter_results(poll_interval=1))


def test_start_is_a_no_op_once_started(h: Harness) -> None:
    server = BatchServer([("complete", 2)], total=2)
    batch = h.started(server, count=2)

    h.run(batch.start())

    assert batch.id == "b1"
    assert len(server.started) == 1
