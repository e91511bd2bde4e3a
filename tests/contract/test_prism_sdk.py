"""The SDK's seed workflow against the Prism mock, driven by one `Prefer` header: what an integrator can test offline.

Prism answers every request from the contract's examples; `Prefer: example=<scenario>` picks the example of that
name on every operation (the contract names one per scenario on every answer), and `Prefer: code=<status>` picks a
documented error. Only the SDK's public API is used, as an application would.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

import batchscore

pytestmark = pytest.mark.contract

NAME, VERSION, EXECUTION = "mtService", "v1.0.0", "9c6be3d2-1f5e-4a8b-9a0e-3f2d1c0b9a87"
RECORDS = [{"hp": 110, "wt": 2.62}, {"hp": 93, "wt": 2.32}]  # the seed's mtcars rows, matching the example's inputs
# A guard, not a timing assertion: Prism answers a finished batch on the first poll, so wait() returns at once;
# were a scenario to regress to a running batch, the test fails with WaitTimeoutError instead of hanging.
WAIT_GUARD_S = 120.0


def client(prism_url: str, prefer: str) -> batchscore.Client:
    # Prism accepts any bearer token; "Prefer" goes on every request the SDK sends.
    return batchscore.Client(prism_url, token="x", headers={"Prefer": prefer})


def test_seed_workflow_runs_to_complete(prism_url: str) -> None:
    with client(prism_url, "example=complete") as api:
        service = api.get_service(NAME, VERSION)
        assert [parameter.name for parameter in service.info.inputs] == ["hp", "wt"]

        result = service.consume(120, 2.8)
        assert result.success
        assert result.output("answer") == pytest.approx(0.6418125)

        batch = service.batch(RECORDS, parallel_count=5).start()
        assert batch.id == EXECUTION

        status = batch.wait(timeout=WAIT_GUARD_S, progress=False)
        assert status.state is batchscore.BatchState.COMPLETE
        assert (status.completed_item_count, status.total_item_count, status.failed_item_count) == (2, 2, 0)
        first = status.execution(0)
        assert (first.index, first.item_state, first.success) == (0, "complete", True)
        assert first.output("answer") == pytest.approx(0.6418125)
        assert [r.index for r in status.results] == [0, 1]
        frame = status.to_frame()
        assert list(frame["hp"]) == [110, 93]
        assert list(frame["answer"]) == pytest.approx([0.6418125, 0.7961834])

        assert batch.list_artifacts(0) == ["Histogram.png"]
        assert batch.artifact(0, "Histogram.png") == b"PNG bytes"
        assert service.get_batch_executions() == [EXECUTION]
        batch.delete()


def test_seed_workflow_runs_to_complete_async(prism_url: str) -> None:
    async def run() -> batchscore.BatchStatus:
        async with batchscore.AsyncClient(prism_url, token="x", headers={"Prefer": "example=complete"}) as api:
            service = await api.get_service(NAME, VERSION)
            batch = await service.batch(RECORDS).start()
            status = await batch.wait(timeout=WAIT_GUARD_S, progress=False)
            assert await batch.list_artifacts(0) == ["Histogram.png"]
            return status

    status = asyncio.run(run())
    assert status.state is batchscore.BatchState.COMPLETE
    assert status.execution(1).output("answer") == pytest.approx(0.7961834)


def test_a_failed_batch_raises_with_the_reason(prism_url: str) -> None:
    with client(prism_url, "example=failed") as api:
        batch = api.get_service(NAME, VERSION).batch(RECORDS).start()
        with pytest.raises(batchscore.BatchFailedError, match="was deleted while the batch ran") as raised:
            batch.wait(timeout=WAIT_GUARD_S, progress=False)
    status = raised.value.batch
    assert status.state is batchscore.BatchState.FAILED
    assert [r.item_state for r in status.results] == ["complete", "failed"]


def test_a_canceled_batch_raises_after_cancel(prism_url: str) -> None:
    with client(prism_url, "example=canceled") as api:
        batch = api.get_service(NAME, VERSION).batch(RECORDS).start()
        assert batch.cancel().state is batchscore.BatchState.CANCELED
        with pytest.raises(batchscore.BatchCanceledError) as raised:
            batch.wait(timeout=WAIT_GUARD_S, progress=False)
    assert raised.value.batch.canceled_item_count == 1


def test_in_progress_is_the_default_and_has_more_pages(prism_url: str) -> None:
    with batchscore.Client(prism_url, token="x") as api:
        running = api.get_service(NAME, VERSION).get_batch(EXECUTION).results()
    assert running.state is batchscore.BatchState.IN_PROGRESS
    assert running.running_item_count == 1
    with client(prism_url, "example=hasMore") as api:
        paged = api.get_service(NAME, VERSION).get_batch(EXECUTION).results()
    assert paged.has_more
    assert [r.index for r in paged.results] == [0]


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda api: api.get_service(NAME, "v9"), id="get_service"),
        pytest.param(lambda api: api.list_services(NAME, "v9"), id="list_services"),
    ],
)
def test_prefer_code_404_raises_not_found(prism_url: str, call: Any) -> None:
    with client(prism_url, "code=404") as api, pytest.raises(batchscore.NotFoundError) as raised:
        call(api)
    assert raised.value.status_code == 404


def test_prism_does_not_fall_back_when_an_example_is_missing(prism_url: str) -> None:
    # What the contract's example names are designed around (Prism 5.14.2): a key an operation lacks is Prism's
    # own 404, not the first example. Should a Prism upgrade change this, the names could be simplified.
    answer = httpx.get(f"{prism_url}/status", headers={"Prefer": "example=noSuchScenario"})
    assert answer.status_code == 404
    assert "exampleKey: noSuchScenario does not exist" in answer.json()["detail"]
