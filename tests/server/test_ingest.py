"""Receiving a batch: records are checked and stored in slices, and a bad one leaves nothing stored."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchscore_server import _db, _ingest
from batchscore_server._errors import ApiError
from batchscore_server._settings import Settings
from batchscore_server._store import Store
from batchscore_server._validation import iter_batch_records

INPUTS = [("x", "integer")]


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return _db.create_engine(tmp_path / "db.sqlite3")


def db(engine: sa.Engine) -> Store:
    return Store(Settings(data_dir=Path(str(engine.url.database)).parent), engine)


@pytest.fixture(autouse=True)
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ingest, "SLICE_ROWS", 3)


def batch_values(batch_id: str = "b1", idempotency_key: str | None = None) -> dict[str, Any]:
    return {
        "id": batch_id,
        "name": "svc",
        "version": "v1",
        "owner": "admin",
        "created": 0.0,
        "parallel_count": 2,
        "item_timeout": None,
        "idempotency_key": idempotency_key,
        "request_hash": "h",
        "spec": {},
        "last_seq": 0,
    }


def ndjson(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "body.ndjson"
    path.write_text("\n".join(lines) + "\n")
    return path


def stored(engine: sa.Engine) -> tuple[list[Any], list[Any]]:
    with engine.connect() as conn:
        batches = conn.execute(sa.select(_db.batches.c.id, _db.batches.c.state, _db.batches.c.total)).all()
        rows = conn.execute(
            sa.select(_db.batch_rows.c.idx, sa.type_coerce(_db.batch_rows.c.inputs, sa.Text)).order_by(
                _db.batch_rows.c.idx
            )
        ).all()
    return batches, rows


def store(engine: sa.Engine, batch: dict[str, Any], body: Path) -> int:
    with body.open("rb") as file:
        return _ingest.store_batch(db(engine), batch, file, "application/x-ndjson", INPUTS)


def test_every_record_is_stored_in_order_across_several_slices(engine: sa.Engine, tmp_path: Path) -> None:
    lines = [json.dumps({"x": i}) for i in range(10)]
    body = ndjson(tmp_path, [lines[0], "", *lines[1:]])  # a blank line is no record
    total = store(engine, batch_values(), body)
    assert total == 10
    batches, rows = stored(engine)
    assert batches == [("b1", _ingest.RECEIVING, 0)]  # invisible until opened
    assert [(index, json.loads(text)) for index, text in rows] == [(i, {"x": i}) for i in range(10)]
    db(engine).open_batch("b1", total, "hash")
    assert stored(engine)[0] == [("b1", "pending", 10)]


def test_a_bad_record_after_stored_slices_leaves_nothing_stored(engine: sa.Engine, tmp_path: Path) -> None:
    lines = [json.dumps({"x": i}) for i in range(8)] + ['{"x": "eight"}', '{"x": 9}']
    with pytest.raises(ApiError) as caught:
        store(engine, batch_values(), ndjson(tmp_path, lines))
    assert caught.value.status == 400
    assert caught.value.field == "body[8].x"
    assert stored(engine) == ([], [])


def test_a_taken_idempotency_key_stores_nothing_more(engine: sa.Engine, tmp_path: Path) -> None:
    body = ndjson(tmp_path, ['{"x": 1}'])
    store(engine, batch_values("b1", "key"), body)
    with pytest.raises(_ingest.DuplicateIdempotencyKey):
        store(engine, batch_values("b2", "key"), body)
    batches, rows = stored(engine)
    assert [batch.id for batch in batches] == ["b1"]
    assert len(rows) == 1


def test_start_up_removes_batches_a_stopped_server_was_still_receiving(engine: sa.Engine, tmp_path: Path) -> None:
    db(engine).open_batch("done", store(engine, batch_values("done"), ndjson(tmp_path, ['{"x": 1}'])), "h")
    with engine.begin() as conn:
        conn.execute(sa.insert(_db.batches).values(**batch_values("half"), state=_ingest.RECEIVING, total=0))
        conn.execute(
            sa.insert(_db.batch_rows),
            [{"batch_id": "half", "idx": i, "inputs": {"x": i}, "state": "pending"} for i in range(7)],
        )
    db(engine).remove_unfinished_receipts()
    batches, rows = stored(engine)
    assert batches == [("done", "pending", 1)]
    assert [(index, json.loads(text)) for index, text in rows] == [(0, {"x": 1})]


@pytest.mark.parametrize(
    ("media_type", "body", "field"),
    [
        ("application/x-ndjson", b'{"x": 1}\n\xff\xfe\n', "body[1]"),
        ("application/x-ndjson", b'{"x": 1}\n{"x": NaN}\n', "body[1]"),
        ("application/x-ndjson", b'{"x": 1}\n{"x": 2} {"x": 3}\n', "body[1]"),  # two values on a line
        ("application/x-ndjson", b'{"x": 1},\n{"x": 2}\n', "body[0]"),
        ("application/x-ndjson", b'{"x": 1}\n{"x": "unterminated}\n', "body[1]"),
        ("application/x-ndjson", b'{"x": 1}\n{"x": Infinity}\n', "body[1]"),
        ("text/csv", b"x\n1\n\xff\n", "body"),
        ("text/csv", b"x\n1\n2,3\n", "body[1]"),
        ("text/csv", b"x\n1\nnope\n", "body[1].x"),
        ("application/json", b'{"x": 1}', "body"),
        ("application/json", b"[]", "body"),
        ("application/x-ndjson", b"\n\n", "body"),
    ],
)
def test_bad_bodies_name_the_field(media_type: str, body: bytes, field: str) -> None:
    with pytest.raises(ApiError) as caught:
        list(iter_batch_records(io.BytesIO(body), media_type, INPUTS))
    assert caught.value.status == 400
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("media_type", "body"),
    [
        ("application/json", b'[{"x": 1}, {"x": 2}]'),
        ("application/x-ndjson", b'  {"x": 1}\t\r\n\n{"x":2}'),
        ("text/csv", b"\xef\xbb\xbfx\r\n1\r\n2\r\n"),
    ],
)
def test_every_media_type_yields_the_records_as_json_text(media_type: str, body: bytes) -> None:
    texts = list(iter_batch_records(io.BytesIO(body), media_type, INPUTS))
    assert [json.loads(text) for text in texts] == [{"x": 1}, {"x": 2}]


class FakeRequest:
    """A request whose body arrives in the given chunks (and then raises ``error``, if any)."""

    def __init__(self, chunks: list[bytes], error: BaseException | None = None, declared: int | None = None) -> None:
        self.chunks = chunks
        self.error = error
        self.read = 0
        self.headers = {} if declared is None else {"content-length": str(declared)}

    async def stream(self) -> Any:
        for chunk in self.chunks:
            self.read += 1
            yield chunk
        if self.error is not None:
            raise self.error


def receive(engine: sa.Engine, request: FakeRequest, batch: dict[str, Any], limit: int = 10**9) -> _ingest.Received:
    receiving = _ingest.receive_batch(request, limit, db(engine), batch, "application/x-ndjson", INPUTS)  # type: ignore[arg-type]
    return asyncio.run(asyncio.wait_for(receiving, 30))  # a stalled hand-over fails instead of hanging


def body_chunks(count: int, bad_at: int | None = None, size: int = 7) -> list[bytes]:
    records = [{"x": "bad" if i == bad_at else i} for i in range(count)]
    text = "".join(json.dumps(record) + "\n" for record in records).encode()
    return [text[i : i + size] for i in range(0, len(text), size)]


def test_records_are_stored_while_the_body_arrives_in_small_chunks(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ingest, "PIPE_CHUNKS", 2)  # the reader is always behind: the loop must wait for room
    chunks = body_chunks(50)
    received = receive(engine, FakeRequest(chunks), batch_values())
    assert received.total == 50
    assert received.sha256 == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert [json.loads(text)["x"] for _, text in stored(engine)[1]] == list(range(50))


def test_a_bad_record_is_answered_after_the_whole_body_was_read_and_nothing_is_kept(engine: sa.Engine) -> None:
    request = FakeRequest(body_chunks(50, bad_at=12))
    with pytest.raises(ApiError) as caught:
        receive(engine, request, batch_values())
    assert caught.value.field == "body[12].x"
    assert request.read == len(request.chunks)  # the client gets the 400, not a connection reset
    assert stored(engine) == ([], [])


@pytest.mark.parametrize("declared", [None, 10**6])
def test_a_body_over_the_limit_is_a_413_and_nothing_is_kept(engine: sa.Engine, declared: int | None) -> None:
    with pytest.raises(ApiError) as caught:
        receive(engine, FakeRequest(body_chunks(50), declared=declared), batch_values(), limit=200)
    assert (caught.value.status, caught.value.field) == (413, "body")
    assert stored(engine) == ([], [])


def test_a_client_that_goes_away_mid_body_leaves_nothing(engine: sa.Engine) -> None:
    with pytest.raises(ConnectionResetError):
        receive(engine, FakeRequest(body_chunks(50)[:20], error=ConnectionResetError()), batch_values())
    assert stored(engine) == ([], [])


def test_a_taken_idempotency_key_is_reported_with_the_body_hash(engine: sa.Engine) -> None:
    chunks = body_chunks(5)
    receive(engine, FakeRequest(chunks), batch_values("b1", "key"))
    with pytest.raises(_ingest.DuplicateIdempotencyKey) as caught:
        receive(engine, FakeRequest(chunks), batch_values("b2", "key"))
    assert caught.value.args == (hashlib.sha256(b"".join(chunks)).hexdigest(),)
    assert [batch.id for batch in stored(engine)[0]] == ["b1"]
