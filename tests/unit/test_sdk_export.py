"""The SDK's streamed export: the end record is checked, a broken stream is resumed with ``since``, CSV's trailer."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import batchscore
from tests.unit._harness import Harness

EXECUTION = "9c6be3d2-1f5e-4a8b-9a0e-3f2d1c0b9a87"


def record(index: int) -> str:
    body = {"index": index, "itemState": "complete", "attempt": 1, "success": True, "errorMessage": ""}
    return json.dumps({**body, "outputParameters": {"answer": index * 2}, "cursor": str(index + 1)}) + "\n"


def end(records: int, cursor: int) -> str:
    counts = {"totalItemCount": 4, "completedItemCount": 4, "failedItemCount": 0, "canceledItemCount": 0}
    return json.dumps({"end": True, "records": records, "cursor": str(cursor), "state": "complete", **counts}) + "\n"


class Broken(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that sends its parts, then breaks the connection (when ``broken``)."""

    def __init__(self, parts: list[str], broken: bool) -> None:
        self.parts = parts
        self.broken = broken

    def __iter__(self) -> Iterator[bytes]:
        for part in self.parts:
            yield part.encode()
        if self.broken:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    async def __aiter__(self) -> Any:
        for part in self:
            yield part


@pytest.fixture(params=["sync", "async"])
def h(request: pytest.FixtureRequest) -> Iterator[Harness]:
    harness = Harness(request.param, check_responses=False)
    yield harness
    harness.close()


def exporter(answers: list[tuple[list[str], bool]], seen: list[httpx.Request]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/results"):
            raise AssertionError(f"unexpected {request.method} {request.url}")
        seen.append(request)
        parts, broken = answers.pop(0)
        kind = "text/csv" if request.headers.get("accept") == "text/csv" else "application/x-ndjson"
        return httpx.Response(200, stream=Broken(parts, broken), headers={"Content-Type": kind})

    return handler


def test_a_broken_stream_resumes_after_the_last_whole_record(h: Harness, tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    # The first answer breaks in the middle of record 2's line: the resume asks for what follows record 1.
    first = [record(0), record(1), record(2)[:20]]
    answers = [(first, True), ([record(2), record(3), end(2, 4)], False)]
    batch = h.service(exporter(answers, seen)).get_batch(EXECUTION)
    status = h.run(batch.export(tmp_path / "out.ndjson"))
    assert [r.url.params["since"] for r in seen] == ["0", "2"]
    lines = (tmp_path / "out.ndjson").read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == [0, 1, 2, 3]
    assert status.state is batchscore.BatchState.COMPLETE
    assert status.cursor == "4"


def test_a_stream_without_its_end_record_raises_and_leaves_no_file(h: Harness, tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    batch = h.service(exporter([([record(0), record(1)], False)], seen)).get_batch(EXECUTION)
    with pytest.raises(batchscore.IncompleteExportError) as raised:
        h.run(batch.export(tmp_path / "out.ndjson"))
    assert raised.value.records == 2
    assert raised.value.cursor == "2"
    assert isinstance(raised.value, batchscore.APIConnectionError)
    assert list(tmp_path.iterdir()) == []


def test_an_end_record_with_another_count_raises(h: Harness) -> None:
    seen: list[httpx.Request] = []
    batch = h.service(exporter([([record(0), end(3, 1)], False)], seen)).get_batch(EXECUTION)
    with pytest.raises(batchscore.IncompleteExportError, match="counts 3 records, 1 came"):
        h.collect(batch.iter_results())


def test_the_csv_trailer_is_checked_and_a_quoted_end_line_is_data(h: Harness) -> None:
    header = "index,itemState,attempt,success,errorMessage,cursor,answer\n"
    # A quoted error message with a line that starts like the trailer is part of the record.
    tricky = '1,failed,1,false,"boom\n#end not the trailer, ""q""\n",2,\n'
    trailer = "#end " + end(2, 2)
    seen: list[httpx.Request] = []
    batch = h.service(exporter([([header, "0,complete,1,true,,1,0\n", tricky, trailer], False)], seen)).get_batch(
        EXECUTION
    )
    buffer = io.StringIO()
    h.run(batch.export(buffer, format="csv"))
    assert seen[0].headers["accept"] == "text/csv"
    assert buffer.getvalue() == header + "0,complete,1,true,,1,0\n" + tricky

    missing = h.service(exporter([([header, "0,complete,1,true,,1,0\n"], False)], [])).get_batch(EXECUTION)
    with pytest.raises(batchscore.IncompleteExportError, match="without its end record"):
        h.run(missing.export(io.StringIO(), format="csv"))


def test_iter_results_follows_the_export_until_the_batch_finishes(h: Harness) -> None:
    seen: list[httpx.Request] = []
    running = end(1, 1).replace('"complete"', '"inProgress"')
    answers = [([record(0), running], False), ([record(1), end(1, 2)], False)]
    batch = h.service(exporter(answers, seen)).get_batch(EXECUTION)
    results = h.collect(batch.iter_results())
    assert [r.index for r in results] == [0, 1]
    assert [r.url.params["order"] for r in seen] == ["completion", "completion"]
    assert [r.url.params["since"] for r in seen] == ["0", "1"]


def test_bad_order_or_format_fails_before_any_request(h: Harness) -> None:
    batch = h.service(exporter([], [])).get_batch(EXECUTION)
    with pytest.raises(ValueError, match="order"):
        h.run(batch.export(io.StringIO(), order="random"))
    with pytest.raises(ValueError, match="format"):
        h.run(batch.export(io.StringIO(), format="xml"))


def test_the_fake_server_exports(tmp_path: Path) -> None:
    from batchscore.testing import FakeServer

    fake = FakeServer()
    fake.add_service("svc", "v1", lambda x: x * 2)
    with fake.client() as client:
        batch = client.get_service("svc", "v1").batch([{"x": i} for i in range(3)]).start()
        assert [r.outputs["answer"] for r in batch.iter_results()] == [0, 2, 4]
        frame = batch.to_frame()
        assert list(frame["answer"]) == [0, 2, 4]
        exported = batch.exported_results()
        assert [r.index for r in exported.results] == [0, 1, 2]
        assert exported.inputs == ({"x": 0}, {"x": 1}, {"x": 2})
        status = batch.export(tmp_path / "out.csv", format="csv")
        assert status.completed_item_count == 3
        assert (tmp_path / "out.csv").read_text().splitlines()[0].endswith(",cursor,answer")


def test_a_server_without_the_export_is_polled(h: Harness) -> None:
    # ML Server has no export: iter_results and exported_results fall back to polls.
    polls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/results"):
            return httpx.Response(404, json={"code": 404, "message": "no such route"})
        polls.append(request)
        result = {"index": 0, "itemState": "complete", "success": True, "outputParameters": {"answer": 1}}
        body = {"batchExecutionId": EXECUTION, "state": "complete", "completedItemCount": 1, "totalItemCount": 1}
        return httpx.Response(200, json={**body, "batchExecutionResults": [result], "cursor": "1", "hasMore": False})

    batch = h.service(handler).get_batch(EXECUTION)
    assert [r.index for r in h.collect(batch.iter_results())] == [0]
    assert [r.index for r in h.run(batch.exported_results()).results] == [0]
    assert polls


def test_export_since_asks_for_what_follows_and_leaves_the_csv_header_out(h: Harness) -> None:
    seen: list[httpx.Request] = []
    header = "index,itemState,attempt,success,errorMessage,cursor,answer\n"
    answers = [([header, "3,complete,1,true,,4,6\n", "#end " + end(1, 4)], False)]
    batch = h.service(exporter(answers, seen)).get_batch(EXECUTION)
    buffer = io.StringIO()
    status = h.run(batch.export(buffer, format="csv", since="3"))
    assert seen[0].url.params["since"] == "3"
    assert buffer.getvalue() == "3,complete,1,true,,4,6\n"
    assert status.cursor == "4"
    with pytest.raises(ValueError, match="since"):
        h.run(batch.export(io.StringIO(), since="-1"))


def test_a_retried_records_earlier_attempts_come_with_it(h: Harness) -> None:
    # Found by the CLI's `batch results --json` after it moved to the export: the attempts were dropped.
    retried = json.loads(record(0))
    retried.update(attempt=2, attempts=[{"attempt": 1, "errorMessage": "Retryable: once more"}])
    answers = [([json.dumps(retried) + "\n", end(1, 1)], False)]
    batch = h.service(exporter(answers, [])).get_batch(EXECUTION)
    (result,) = h.collect(batch.iter_results())
    assert result.attempt == 2
    assert [(a.attempt, a.error_message) for a in result.attempts] == [(1, "Retryable: once more")]
