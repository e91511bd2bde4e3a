"""Re-publishing: readable next versions (and the 409 race), replace, Service.update, latest, the parallel cap."""

from __future__ import annotations

import asyncio
import inspect
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import batchscore
from batchscore._republish import PUBLISH_ATTEMPTS, next_version
from batchscore.testing import FakeServer

ANSWER = {"inputs": {"hp": float}, "outputs": {"answer": float}}


class RacingFake(FakeServer):
    """A fake where a rival publisher takes each asked version just before ours arrives, ``races`` times."""

    def __init__(self, races: int, **options: Any) -> None:
        super().__init__(**options)
        self.races = races
        self.asked: list[str] = []

    def _op_publishWebServiceVersion(self, call: Any) -> httpx.Response:
        self.asked.append(call.path["version"])
        if self.races:
            self.races -= 1
            self._publish(call.path, {**call.json(), "code": "answer = -1"}, call.user)
        return super()._op_publishWebServiceVersion(call)


class Mode:
    """One sync or async client on a fake, and one way to run either's calls."""

    def __init__(self, mode: str, fake: FakeServer) -> None:
        self.fake = fake
        self.client: Any = fake.client() if mode == "sync" else fake.async_client()

    def run(self, value: Any) -> Any:
        return asyncio.run(value) if inspect.iscoroutine(value) else value


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app(mode: str) -> Iterator[Mode]:
    fake = FakeServer()
    yield Mode(mode, fake)
    fake.close()


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        ([], "v1"),
        (["v1"], "v2"),
        (["v2", "v10", "v9"], "v11"),  # numerically, not as text
        (["1.0", "latest", "0c7e9a4e-uuid", "v3b", "V4"], "v1"),  # other names are not numbered
        (["1.0", "v2"], "v3"),
    ],
)
def test_next_version_follows_the_highest_v_number(versions: list[str], expected: str) -> None:
    assert next_version(versions) == expected


def test_publish_without_version_picks_v1_then_v2_after_other_names(app: Mode) -> None:
    first = app.run(app.client.publish_service("svc", "answer = hp", **ANSWER))
    assert first.version == "v1"
    app.run(app.client.publish_service("svc", "answer = hp", version="2024-refit", **ANSWER))
    second = app.run(app.client.publish_service("svc", "answer = hp * 2", **ANSWER))
    assert second.version == "v2"
    assert [s.version for s in app.run(app.client.list_services("svc"))] == ["v1", "2024-refit", "v2"]


def test_a_409_from_a_rival_publisher_takes_the_next_number(mode: str) -> None:
    fake = RacingFake(races=2)
    app = Mode(mode, fake)
    published = app.run(app.client.publish_service("svc", "answer = hp", **ANSWER))
    assert fake.asked == ["v1", "v2", "v3"]
    assert published.version == "v3"
    assert app.run(published.consume(hp=4.0)).output("answer") == 4.0  # ours, not the rival's
    fake.close()


def test_the_409_retry_is_bounded(mode: str) -> None:
    fake = RacingFake(races=PUBLISH_ATTEMPTS)
    app = Mode(mode, fake)
    with pytest.raises(batchscore.ConflictError):
        app.run(app.client.publish_service("svc", "answer = hp", **ANSWER))
    assert len(fake.asked) == PUBLISH_ATTEMPTS
    fake.close()


def test_models_are_uploaded_once_across_retries(mode: str) -> None:
    fake = RacingFake(races=1)
    app = Mode(mode, fake)
    published = app.run(app.client.publish_service("svc", "answer = model * hp", models={"model": 3.0}, **ANSWER))
    assert published.version == "v2"
    assert app.run(published.consume(hp=2.0)).output("answer") == 6.0
    assert sum(r.method == "POST" and r.url.path.endswith("/snapshot") for r in fake.requests) == 1
    fake.close()


def test_an_existing_version_is_a_conflict_without_replace(app: Mode) -> None:
    app.run(app.client.publish_service("svc", "answer = hp", version="v1", **ANSWER))
    with pytest.raises(batchscore.ConflictError):
        app.run(app.client.publish_service("svc", "answer = hp * 2", version="v1", **ANSWER))


def test_replace_changes_the_code_and_clears_what_the_new_publish_leaves_out(app: Mode) -> None:
    app.run(
        app.client.publish_service(
            "svc", "answer = hp + offset", version="v1", init="offset = 100", description="old", **ANSWER
        )
    )
    replaced = app.run(app.client.publish_service("svc", "answer = hp * 2", version="v1", replace=True, **ANSWER))
    assert replaced.version == "v1"
    assert not replaced.info.description
    assert app.run(replaced.consume(hp=3.0)).output("answer") == 6.0  # the new code, without the old init's offset
    assert [s.version for s in app.run(app.client.list_services("svc"))] == ["v1"]


def test_replace_publishes_a_version_that_does_not_exist(app: Mode) -> None:
    published = app.run(app.client.publish_service("svc", "answer = hp", version="v7", replace=True, **ANSWER))
    assert published.version == "v7"


def test_service_update_changes_the_version_in_place(app: Mode) -> None:
    service = app.run(app.client.publish_service("svc", "answer = hp", **ANSWER))
    same = app.run(service.update(code="answer = hp + 1", description="plus one"))
    assert same is service
    assert service.info.description == "plus one"
    assert app.run(service.consume(hp=1.0)).output("answer") == 2.0


def test_get_service_without_version_is_the_last_published(app: Mode) -> None:
    app.run(app.client.publish_service("svc", "answer = hp", **ANSWER))
    app.run(app.client.publish_service("svc", "answer = hp * 10", **ANSWER))
    latest = app.run(app.client.get_service("svc"))
    assert latest.version == "v2"
    assert app.run(latest.consume(hp=2.0)).output("answer") == 20.0


def test_a_capped_parallel_count_warns(app: Mode) -> None:
    service = app.run(app.client.publish_service("svc", "answer = hp", **ANSWER))
    with pytest.warns(UserWarning, match="capped parallelCount at 100 \\(asked 500\\)"):
        app.run(service.batch([{"hp": 1.0}], parallel_count=500).start())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning when the server ran what was asked
        app.run(service.batch([{"hp": 1.0}], parallel_count=50).start())
