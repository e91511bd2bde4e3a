"""``client.list_batches()`` (lazy pages of ``GET /batches``), ``client.get_batch(summary)``, the fake's list, and
the progress bar's use of the server's rate and ETA."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import batchscore
from batchscore import BadRequestError, BatchState
from batchscore._retry import PollPolicy
from batchscore._shared import WaitTracker
from batchscore.testing import FakeServer
from tests.unit._harness import Harness

NAME, VERSION = "svc", "v1"


def _summary(index: int, **extra: Any) -> dict[str, Any]:
    return {
        "batchExecutionId": f"00000000-0000-4000-8000-{index:012d}",
        "name": NAME,
        "version": VERSION,
        "state": "inProgress",
        "completedItemCount": 1,
        "totalItemCount": 4,
        "failedItemCount": 0,
        "runningItemCount": 1,
        "canceledItemCount": 0,
        "createdBy": "alice",
        "creationTime": "2026-12-01T10:00:00Z",
        **extra,
    }


class PagedServer:
    """Answers ``GET /batches`` with ``total`` summaries, ``limit`` a page, the cursor being the next position."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        start = int(request.url.params.get("cursor", "0").removeprefix("p"))
        limit = int(request.url.params.get("limit", "100"))
        end = min(start + limit, self.total)
        body = {
            "batches": [_summary(i) for i in range(start, end)],
            "nextCursor": f"p{end}" if end < self.total else None,
        }
        return httpx.Response(200, json=body)


@pytest.fixture(params=["sync", "async"])
def h(request: pytest.FixtureRequest) -> Iterator[Harness]:
    harness = Harness(request.param)
    yield harness
    harness.close()


def _first(h: Harness, iterator: Any) -> Any:
    if h.mode == "sync":
        return next(iterator)

    async def first() -> Any:
        return await anext(iterator)

    return asyncio.run(first())


def test_pages_are_asked_for_only_when_needed(h: Harness) -> None:
    server = PagedServer(total=7)
    iterator = h.client(server).list_batches(page_size=3)
    assert server.requests == []  # nothing is asked before the first item is wanted

    first = _first(h, iterator)

    assert first.execution_id.endswith("000000000000")
    assert len(server.requests) == 1


def test_every_page_is_followed_to_the_last(h: Harness) -> None:
    server = PagedServer(total=7)

    listed = h.collect(h.client(server).list_batches(page_size=3))

    assert [s.execution_id[-2:] for s in listed] == ["00", "01", "02", "03", "04", "05", "06"]
    assert [r.url.params.get("cursor") for r in server.requests] == [None, "p3", "p6"]
    assert all(isinstance(s, batchscore.BatchStatus) for s in listed)
    assert listed[0].service_name == NAME
    assert listed[0].service_version == VERSION


def test_limit_caps_the_items_and_the_last_request(h: Harness) -> None:
    server = PagedServer(total=50)

    listed = h.collect(h.client(server).list_batches(limit=5, page_size=3))

    assert len(listed) == 5
    assert [r.url.params["limit"] for r in server.requests] == ["3", "2"]


def test_filters_go_as_the_contract_names_them(h: Harness) -> None:
    server = PagedServer(total=1)

    h.collect(
        h.client(server).list_batches(
            state=BatchState.COMPLETE,
            service=NAME,
            version=VERSION,
            owner="alice",
            labels={"team": "risk", "run": "a=b"},
        )
    )

    params = server.requests[0].url.params
    assert params["state"] == "complete"
    assert (params["service"], params["version"], params["owner"]) == (NAME, VERSION, "alice")
    assert params.get_list("label") == ["team=risk", "run=a=b"]
    assert "cursor" not in params


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"state": "running"}, "unknown batch state"),
        ({"version": "v1"}, "give service too"),
        ({"labels": {"a=b": "c"}}, "label key"),
        ({"limit": 0}, "limit"),
        ({"page_size": 1001}, "page_size"),
    ],
)
def test_bad_arguments_fail_before_any_request(h: Harness, arguments: dict[str, Any], message: str) -> None:
    server = PagedServer(total=1)
    with pytest.raises(ValueError, match=message):
        h.client(server).list_batches(**arguments)
    assert server.requests == []


def test_a_state_in_any_casing_is_sent_as_the_contract_spells_it(h: Harness) -> None:
    server = PagedServer(total=1)
    h.collect(h.client(server).list_batches(state="INPROGRESS"))
    assert server.requests[0].url.params["state"] == "inProgress"


def test_a_summary_becomes_a_batch_handle(h: Harness) -> None:
    service = {
        "name": NAME,
        "version": VERSION,
        "versionPublishedBy": "alice",
        "creationTime": "2026-12-01T10:00:00Z",
        "runtimeType": "Python",
        "code": "answer = hp",
        "inputParameterDefinitions": [{"name": "hp", "type": "numeric"}],
        "outputParameterDefinitions": [{"name": "answer", "type": "numeric"}],
        "outputFileNames": [],
        "operationId": "score",
        "myPermissionOnService": "read only",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/batches":
            return httpx.Response(200, json={"batches": [_summary(3)], "nextCursor": None})
        assert request.url.path == f"/services/{NAME}/{VERSION}"
        return httpx.Response(200, json=[service])

    client = h.client(handler)
    [summary] = h.collect(client.list_batches())

    batch = h.run(client.get_batch(summary))

    assert batch.id == summary.execution_id
    assert (batch._service_info.name, batch._service_info.version) == (NAME, VERSION)


def test_a_summary_without_its_service_cannot_become_a_handle(h: Harness) -> None:
    client = h.client(PagedServer(total=0))
    status = batchscore.BatchStatus(
        execution_id="x", state=BatchState.COMPLETE, completed_item_count=0, total_item_count=0
    )
    with pytest.raises(batchscore.BatchscoreError, match="does not name its service"):
        h.run(client.get_batch(status))


# --- the fake server's list -------------------------------------------------------------------------------------


def _score(hp: float) -> float:
    return hp * 2


def test_the_fake_lists_each_users_own_and_everything_to_its_owner() -> None:
    fake = FakeServer(
        services={("a", "v1"): _score, ("b", "v1"): _score},
        users={"admin": "pw", "alice": "pw", "bob": "pw"},
    )
    alice, bob, admin = (fake.client(username=user, password="pw") for user in ("alice", "bob", "admin"))
    mine = [alice.get_service("a", "v1").batch([{"hp": 1.0}]).start().id for _ in range(3)]
    mine.append(alice.get_service("b", "v1").batch([{"hp": 1.0}], labels={"team": "risk", "run": "x=y"}).start().id)
    theirs = bob.get_service("a", "v1").batch([{"hp": 1.0}]).start().id
    fake.finish(mine[0])

    assert [s.execution_id for s in alice.list_batches()] == mine[::-1]
    assert [s.execution_id for s in bob.list_batches()] == [theirs]
    assert [s.execution_id for s in admin.list_batches()] == [theirs, *mine[::-1]]
    assert [s.execution_id for s in admin.list_batches(owner="bob")] == [theirs]
    assert [s.execution_id for s in alice.list_batches(service="b")] == [mine[3]]
    assert [s.execution_id for s in alice.list_batches(state="complete")] == [mine[0]]
    assert [s.execution_id for s in alice.list_batches(labels={"team": "risk"})] == [mine[3]]
    assert [s.execution_id for s in alice.list_batches(labels={"team": "risk", "run": "x"})] == []
    assert next(iter(alice.list_batches(labels={"run": "x=y"}))).labels == {"team": "risk", "run": "x=y"}
    assert [s.execution_id for s in alice.list_batches(page_size=1)] == mine[::-1]
    assert [s.execution_id for s in alice.list_batches(service="b", version="v1")] == [mine[3]]
    with pytest.raises(BadRequestError) as refused:
        alice._run(_tampered_page())
    assert refused.value.field == "cursor"
    fake.close()


def _tampered_page() -> Any:
    from batchscore import _flows

    pages = _flows.BatchPages(
        state=None, service=None, version=None, owner=None, labels=None, limit=None, page_size=None
    )
    pages._cursor = "bm90LWEtYmF0Y2g"  # "not-a-batch"
    return pages.page()


# --- the progress bar -------------------------------------------------------------------------------------------


def _status(done: int, **extra: Any) -> batchscore.BatchStatus:
    return batchscore.BatchStatus.from_json(
        _summary(0, completedItemCount=done, totalItemCount=1000, runningItemCount=4, **extra)
    )


def _tracker(monkeypatch: pytest.MonkeyPatch) -> tuple[WaitTracker, io.StringIO]:
    from tqdm import tqdm

    from batchscore import _shared

    out = io.StringIO()
    monkeypatch.setattr(
        _shared, "_progress_bar", lambda total, description: tqdm(total=total, desc=description, file=out)
    )
    tracker = WaitTracker(
        "00000000-0000-4000-8000-000000000000",
        timeout=None,
        poll_interval=None,
        policy=PollPolicy(),
        clock=lambda: 0.0,
        progress=True,
        on_progress=None,
    )
    return tracker, out


def test_the_bar_shows_the_servers_rate_and_eta_after_a_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    # Attaching to a batch 500 rows in: the bar's own estimate would take those 500 rows as done in its first
    # second; the server measured 2.5 rows/s, 200 s left.
    tracker, out = _tracker(monkeypatch)

    tracker.absorb(_status(500, rowsPerSecond=2.5, estimatedSecondsLeft=200.0))
    tracker.close()

    last = out.getvalue().rsplit("\r", 1)[-1]
    assert "500/1000" in last
    assert "<03:20, 2.50row/s" in last


def test_the_bar_falls_back_to_its_own_estimate_without_the_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    tracker, out = _tracker(monkeypatch)

    tracker.absorb(_status(500, rowsPerSecond=2.5, estimatedSecondsLeft=None))
    with_rate = out.getvalue().rsplit("\r", 1)[-1]
    tracker.absorb(_status(600))  # an ML Server status: no rate
    tracker.close()

    assert "<?, 2.50row/s" in with_rate
    last = out.getvalue().rsplit("\r", 1)[-1]
    assert "600/1000" in last
    assert "2.50row/s" not in last
    assert "it/s" in last or "s/it" in last  # tqdm's own rate


def test_the_clis_bar_shows_the_servers_rate_and_eta_when_given() -> None:
    from rich.progress import Progress

    from batchscore.cli.batch import _EtaColumn, _RateColumn

    progress = Progress()
    given = progress.add_task("b", total=1000, completed=500, failed=0, server_rate=2.5, server_eta=200.0)
    absent = progress.add_task("b", total=1000, completed=500, failed=0, server_rate=None, server_eta=None)
    task, other = progress.tasks[given], progress.tasks[absent]

    assert str(_EtaColumn().render(task)) == "0:03:20"
    assert str(_RateColumn().render(task)) == "2.5 rows/s"
    assert str(_EtaColumn().render(other)) == "-:--:--"  # rich's own: no speed measured yet
    assert str(_RateColumn().render(other)) == "- rows/s"
