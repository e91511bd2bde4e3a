"""batchscore.testing as an app integrator uses it: only the public API, no server, no network.

Each app-style test runs twice, with ``batchscore.Client`` and with ``batchscore.AsyncClient`` on the same
``FakeServer``; the async calls run one at a time on a fresh event loop, as the SDK's own harness does.
"""

from __future__ import annotations

import asyncio
import csv
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import batchscore
from batchscore.testing import FakeServer, FakeService

MTCARS = Path(__file__).resolve().parents[1] / "data" / "mtcars.csv"
CSV = {"Content-Type": "text/csv"}


def manual_transmission(hp: float, wt: float) -> float:
    """A deterministic stand-in for the seed's GLM: the probability of a manual transmission."""
    import math  # published code runs in its own namespace: import inside, as on a real server

    return 1 / (1 + math.exp(-(26.0 - 0.04 * hp - 8.0 * wt)))


def scored_with_plot(hp: float, wt: float) -> float:
    """Fails for a negative horsepower; writes a small artifact for every other record."""
    if hp < 0:
        raise ValueError(f"hp must not be negative, got {hp}")
    with open("Histogram.png", "wb") as handle:
        handle.write(b"PNG " + str(hp).encode())
    return hp * 2 + wt


class App:
    """An app's view of the fake: a sync or async client, and one way to run either's calls."""

    def __init__(self, mode: str, fake: FakeServer) -> None:
        self.mode = mode
        self.fake = fake
        self._async_clients: list[batchscore.AsyncClient] = []

    def client(self, **options: Any) -> Any:
        if self.mode == "sync":
            return self.fake.client(**options)
        client = self.fake.async_client(**options)
        self._async_clients.append(client)
        return client

    def run(self, value: Any) -> Any:
        """The sync call's value, or the async call's awaited value."""
        return asyncio.run(value) if inspect.iscoroutine(value) else value

    def close(self) -> None:
        for client in self._async_clients:
            asyncio.run(client.close())
        self.fake.close()


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_app(mode: str, **options: Any) -> App:
    return App(mode, FakeServer(**options))


@pytest.fixture
def app(mode: str) -> Iterator[App]:
    made = make_app(mode, services={("scorer", "v1"): FakeService(scored_with_plot, artifacts=["Histogram.png"])})
    yield made
    made.close()


def mtcars_records() -> list[dict[str, float]]:
    with MTCARS.open(newline="", encoding="utf-8") as handle:
        return [{"hp": float(row["hp"]), "wt": float(row["wt"])} for row in csv.DictReader(handle)]


# -- the seed's workflow -------------------------------------------------------------------------------------


def test_the_seed_workflow_runs_offline(mode: str, tmp_path: Path) -> None:
    # Batches finish on their first poll (steps_per_poll), so wait() never sleeps.
    app = make_app(mode, steps_per_poll=100)
    client = app.client()
    api = app.run(
        client.publish_service(
            "mtService",
            manual_transmission,
            version="v1.0.0",
            models={"coefficients": {"hp": -0.04, "wt": -8.0}},
            inputs={"hp": float, "wt": float},
            outputs={"answer": float},
        )
    )
    answer = app.run(api.manual_transmission(120, 2.8)).output("answer")
    assert answer == pytest.approx(manual_transmission(120, 2.8))

    svc = app.run(client.get_service("mtService", "v1.0.0"))
    batch = app.run(svc.batch(mtcars_records(), parallel_count=5).start())
    res = app.run(batch.wait(progress=False))
    assert res.state == batch.STATE.complete
    assert res.total_item_count == 32
    assert res.execution(0).output_parameters["answer"] == pytest.approx(manual_transmission(110, 2.62))
    frame = res.to_frame()
    assert len(frame) == 32
    assert list(frame["hp"][:2]) == [110.0, 110.0]
    assert app.run(batch.list_artifacts(0)) == []
    app.run(client.delete_service("mtService", "v1.0.0"))
    with pytest.raises(batchscore.NotFoundError):
        app.run(client.get_service("mtService", "v1.0.0"))
    app.close()


def test_registered_callable_batch_artifacts_and_download(app: App, tmp_path: Path) -> None:
    client = app.client()
    svc = app.run(client.get_service("scorer", "v1"))
    assert svc.capabilities()["inputs"] == {"hp": "numeric", "wt": "numeric"}
    consumed = app.run(svc.consume(120, 2.8))
    assert consumed.output("answer") == 242.8
    assert consumed.artifact("Histogram.png") == b"PNG 120"

    batch = app.run(svc.batch({"hp": [110.0, 93.0], "wt": [2.62, 2.32]}).start())
    seen: list[str] = []
    res = app.run(batch.wait(progress=False, on_progress=lambda status: seen.append(status.state.value)))
    assert seen == ["inProgress", "complete"]  # one step per poll: the rows started, then they finished
    assert [r.output("answer") for r in res.results] == [222.62, 188.32]
    assert app.run(batch.list_artifacts(1)) == ["Histogram.png"]
    assert app.run(batch.artifact(1, "Histogram.png")) == b"PNG 93.0"
    written = app.run(batch.download(0, dest=tmp_path))
    assert written == [tmp_path / "Histogram.png"]
    assert written[0].read_bytes() == b"PNG 110.0"


def test_a_row_that_raises_fails_alone(app: App) -> None:
    svc = app.run(app.client().get_service("scorer", "v1"))
    batch = app.run(svc.batch([{"hp": 1.0, "wt": 1.0}, {"hp": -1.0, "wt": 1.0}], parallel_count=2).start())
    app.fake.finish(batch.id)
    res = app.run(batch.wait(progress=False))
    assert res.state is batchscore.BatchState.complete
    assert (res.completed_item_count, res.failed_item_count) == (2, 1)
    failed = res.execution(1)
    assert not failed.success
    assert "hp must not be negative" in failed.error_message
    assert list(res.to_frame()["success"]) == [True, False]


# -- controlling batches -----------------------------------------------------------------------------------------


def test_cancel_keeps_finished_rows_and_retry_reruns_the_rest(mode: str) -> None:
    app = make_app(mode, services={("scorer", "v1"): scored_with_plot}, auto_advance=False)
    svc = app.run(app.client().get_service("scorer", "v1"))
    batch = app.run(svc.batch([{"hp": float(i), "wt": 1.0} for i in range(3)], parallel_count=1).start())
    assert app.fake.batch_state(batch.id) == "pending"
    app.fake.advance(batch.id, steps=2)  # started, then row 0 finished and row 1 started
    status = app.run(batch.cancel())
    assert status.state is batchscore.BatchState.canceled
    assert (status.completed_item_count, status.canceled_item_count) == (2, 1)  # row 1 ran to its end
    with pytest.raises(batchscore.BatchCanceledError) as canceled:
        app.run(batch.wait(progress=False))
    assert [r.index for r in canceled.value.batch.results if r.success] == [0, 1]

    retried = app.run(batch.retry_failed())
    assert retried.state is batchscore.BatchState.pending
    app.fake.finish(batch.id)
    res = app.run(batch.wait(progress=False))
    assert res.state is batchscore.BatchState.complete
    assert all(r.success for r in res.results)
    with pytest.raises(batchscore.ConflictError):
        app.run(batch.retry_failed())  # nothing failed any more
    app.run(batch.delete())
    with pytest.raises(batchscore.NotFoundError):
        app.run(batch.results())
    app.close()


def test_a_start_with_the_same_idempotency_key_is_the_same_batch(app: App) -> None:
    svc = app.run(app.client().get_service("scorer", "v1"))
    records = [{"hp": 1.0, "wt": 2.0}]
    first = app.run(svc.batch(records, idempotency_key="nightly-1").start())
    again = app.run(svc.batch(records, idempotency_key="nightly-1").start())
    assert again.id == first.id
    starts = [r for r in app.fake.requests if r.method == "POST" and r.url.path.endswith("/batch")]
    assert [r.headers["Idempotency-Key"] for r in starts] == ["nightly-1", "nightly-1"]
    assert app.run(svc.get_batch_executions()) == [first.id]
    with pytest.raises(batchscore.ConflictError) as conflict:
        app.run(svc.batch([{"hp": 3.0, "wt": 4.0}], idempotency_key="nightly-1").start())
    assert conflict.value.field == "Idempotency-Key"
    app.run(first.delete())
    with pytest.warns(UserWarning, match="capped parallelCount"):
        reused = app.run(svc.batch([{"hp": 3.0, "wt": 4.0}], idempotency_key="nightly-1", parallel_count=500).start())
    assert reused.id != first.id  # a deleted batch frees its key
    assert app.run(reused.results()).parallel_count == 100  # capped as the reference server does


def test_another_client_resumes_a_batch_by_id(app: App) -> None:
    svc = app.run(app.client().get_service("scorer", "v1"))
    started = app.run(svc.batch([{"hp": 5.0, "wt": 0.5}]).start())
    app.fake.finish(started.id)
    other = app.run(app.client().get_service("scorer", "v1"))
    res = app.run(other.get_batch(started.id).wait(progress=False))
    assert res.execution(0).output("answer") == 10.5


def test_partial_results_page_with_the_cursor(app: App) -> None:
    svc = app.run(app.client().get_service("scorer", "v1"))
    batch = app.run(svc.batch([{"hp": float(i), "wt": 0.0} for i in range(4)], parallel_count=2).start())
    app.fake.auto_advance = False
    app.fake.advance(batch.id, steps=2)
    partial = app.run(batch.results())
    assert partial.state is batchscore.BatchState.inProgress
    assert [r.index for r in partial.results] == [0, 1]
    assert partial.running_item_count == 2
    assert app.run(batch.results(show_partial_results=False)).results == ()


# -- errors ------------------------------------------------------------------------------------------------------


def test_errors_map_to_the_sdk_exceptions(app: App) -> None:
    client = app.client()
    with pytest.raises(batchscore.NotFoundError) as missing:
        app.run(client.get_service("scorer", "v9"))
    assert missing.value.field == "version"
    app.run(client.publish_service("adder", "answer = hp + wt", version="v1", inputs={"hp": float, "wt": float}))
    with pytest.raises(batchscore.ConflictError):
        app.run(client.publish_service("adder", "answer = hp", version="v1", inputs={"hp": float}))
    with pytest.raises(batchscore.UnprocessableEntityError) as syntax:
        app.run(client.publish_service("broken", "answer = (", version="v1", outputs={"answer": float}))
    assert syntax.value.field == "code"


def test_a_wrong_password_is_an_authentication_error(mode: str) -> None:
    app = make_app(mode, users={"alice": "s3cret"})
    with pytest.raises(batchscore.AuthenticationError):
        app.run(app.client(username="alice", password="wrong").list_services())
    assert app.run(app.client(username="alice").list_services()) == []
    app.close()


def test_an_expired_token_is_renewed(app: App) -> None:
    client = app.client()
    app.run(client.list_services())
    before = client.tokens
    app.fake.expire_tokens()
    assert [s.name for s in app.run(client.list_services())] == ["scorer"]
    assert client.tokens.access_token != before.access_token


def test_the_wire_answers_as_the_contract_says() -> None:
    """The fake's own answers to requests the SDK never sends: a record refused by field, and no token."""
    fake = FakeServer(services={("mtService", "v1.0.0"): manual_transmission})
    with httpx.Client(base_url=fake.url, transport=fake) as http:
        assert http.get("/services").status_code == 401
        token = http.post("/login", json={"username": "admin", "password": "x"}).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        bad = http.post("/api/mtService/v1.0.0/batch", json=[{"hp": 1, "wt": 2}, {"hp": "fast", "wt": 2}])
        assert bad.status_code == 400
        assert bad.json()["field"] == "body[1].hp"
        bad_cell = http.post("/api/mtService/v1.0.0/batch", content="hp,wt\n1,2\nfast,3\n", headers=CSV)
        assert bad_cell.json()["field"] == "body[1].hp"
        csv_body = "hp,wt\n110,2.62\n93,2.32\n"
        started = http.post("/api/mtService/v1.0.0/batch", content=csv_body, headers=CSV)
        assert started.status_code == 202
        assert started.json()["BatchExecutionId"] == started.json()["batchExecutionId"]
        url = f"/api/mtService/v1.0.0/batch/{started.json()['batchExecutionId']}"
        status = http.get(url)
        assert status.headers["Retry-After"] == "0"
        assert status.json()["state"] == "inProgress"
        page = http.get(url, params={"since": "0", "limit": 1}).json()  # this poll finished both rows
        assert page["state"] == "complete"
        assert [r["index"] for r in page["batchExecutionResults"]] == [0]
        assert page["hasMore"] is True
        rest = http.get(url, params={"since": page["cursor"], "limit": 1}).json()
        assert [r["index"] for r in rest["batchExecutionResults"]] == [1]
        assert rest["hasMore"] is False
        assert http.get("/status").json()["statusCode"] == "pass"


def test_published_code_gets_its_models_and_init_code(app: App) -> None:
    client = app.client()

    def setup() -> dict[str, float]:
        return {"offset": 100.0}

    api = app.run(
        client.publish_service(
            "withModel",
            "answer = model['slope'] * hp + offset",
            version="v1",
            init=setup,
            models={"model": {"slope": 3.0}},
            inputs={"hp": float},
            outputs={"answer": float},
        )
    )
    assert app.run(api.consume(hp=2.0)).output("answer") == 106.0
    updated = app.run(client.update_service("withModel", "v1", description="refit"))
    assert updated.info.description == "refit"
    assert [s.version for s in app.run(client.list_services("withModel"))] == ["v1"]


def test_consume_timeout_is_published_read_back_and_updated(app: App) -> None:
    client = app.client()
    api = app.run(
        client.publish_service(
            "slowish", "answer = hp", version="v1", inputs={"hp": float}, outputs={"answer": float}, consume_timeout=30
        )
    )
    assert api.info.consume_timeout == 30
    assert app.run(client.get_service("slowish", "v1")).info.consume_timeout == 30
    updated = app.run(client.update_service("slowish", "v1", consume_timeout=5.5))
    assert updated.info.consume_timeout == 5.5
    plain = app.run(client.publish_service("plain", "answer = hp", version="v1", inputs={"hp": float}))
    assert plain.info.consume_timeout is None  # the server's default applies


def test_a_nonnumeric_output_fails_the_record() -> None:
    fake = FakeServer(services={("words", "v1"): FakeService(lambda text: text.upper(), inputs={"text": str})})
    service = fake.client().get_service("words", "v1")
    assert service.info.operation_id == "consume"  # a lambda's name is no method name
    result = service.consume("hi")
    assert not result.success
    assert "outputParameters.answer" in result.error_message
    fake.close()


def test_deleting_the_service_fails_its_running_batch(app: App) -> None:
    client = app.client()
    svc = app.run(client.get_service("scorer", "v1"))
    batch = app.run(svc.batch([{"hp": 1.0, "wt": 1.0}]).start())
    app.run(client.delete_service("scorer", "v1"))
    with pytest.raises(batchscore.BatchFailedError) as failed:
        app.run(batch.wait(progress=False))
    assert "was deleted while the batch ran" in failed.value.batch.error_message


def test_iter_results_yields_each_row_once_as_it_finishes(mode: str) -> None:
    app = make_app(mode, services={("scorer", "v1"): scored_with_plot}, steps_per_poll=100)
    svc = app.run(app.client().get_service("scorer", "v1"))
    batch = app.run(svc.batch([{"hp": float(i), "wt": 0.5} for i in range(5)], parallel_count=2).start())
    results = batch.iter_results()
    if mode == "sync":
        indexes = [result.index for result in results]
    else:

        async def drain() -> list[int | None]:
            return [result.index async for result in results]

        indexes = asyncio.run(drain())
    assert indexes == [0, 1, 2, 3, 4]
    app.close()


def test_a_batch_the_test_fails_raises_batch_failed_error(app: App) -> None:
    svc = app.run(app.client().get_service("scorer", "v1"))
    batch = app.run(svc.batch([{"hp": 1.0, "wt": 1.0}], item_timeout=30).start())
    app.fake.fail_batch(batch.id, "the cluster is gone")
    with pytest.raises(batchscore.BatchFailedError, match="the cluster is gone") as failed:
        app.run(batch.wait(progress=False))
    assert failed.value.batch.results[0].error_message == "the cluster is gone"


def test_an_async_function_is_refused() -> None:
    async def score(hp: float) -> float:
        return hp

    with pytest.raises(TypeError, match="score is async"):
        FakeServer(services={("async", "v1"): score})


def test_the_fake_implements_every_operation_of_the_contract() -> None:
    # The kit's own internals: a new operation in the contract must get a handler (or this names it).
    fake = FakeServer()
    assert sorted(fake._handlers) == sorted(op.operation_id for op in fake.validator.operations)
