"""Receiving a batch: records are checked and stored in slices, and a bad one leaves nothing stored."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchscore_server import _db, _ingest
from batchscore_server._errors import ApiError
from batchscore_server._validation import iter_batch_records

INPUTS = [("x", "integer")]


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return _db.create_engine(tmp_path / "db.sqlite3")


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


def test_every_record_is_stored_as_it_came_across_several_slices(engine: sa.Engine, tmp_path: Path) -> None:
    lines = [json.dumps({"x": i}) for i in range(10)]
    body = ndjson(tmp_path, [lines[0], "", *lines[1:]])  # a blank line is no record
    total = _ingest.store_batch(engine, batch_values(), body, "application/x-ndjson", INPUTS)
    batches, rows = stored(engine)
    assert total == 10
    assert batches == [("b1", "pending", 10)]
    assert rows == list(enumerate(lines))


def test_a_bad_record_after_stored_slices_leaves_nothing_stored(engine: sa.Engine, tmp_path: Path) -> None:
    lines = [json.dumps({"x": i}) for i in range(8)] + ['{"x": "eight"}', '{"x": 9}']
    with pytest.raises(ApiError) as caught:
        _ingest.store_batch(engine, batch_values(), ndjson(tmp_path, lines), "application/x-ndjson", INPUTS)
    assert caught.value.status == 400
    assert caught.value.field == "body[8].x"
    assert stored(engine) == ([], [])


def test_a_taken_idempotency_key_stores_nothing_more(engine: sa.Engine, tmp_path: Path) -> None:
    body = ndjson(tmp_path, ['{"x": 1}'])
    _ingest.store_batch(engine, batch_values("b1", "key"), body, "application/x-ndjson", INPUTS)
    with pytest.raises(_ingest.DuplicateIdempotencyKey):
        _ingest.store_batch(engine, batch_values("b2", "key"), body, "application/x-ndjson", INPUTS)
    batches, rows = stored(engine)
    assert [batch.id for batch in batches] == ["b1"]
    assert len(rows) == 1


def test_start_up_removes_batches_a_stopped_server_was_still_receiving(engine: sa.Engine, tmp_path: Path) -> None:
    _ingest.store_batch(engine, batch_values("done"), ndjson(tmp_path, ['{"x": 1}']), "application/x-ndjson", INPUTS)
    with engine.begin() as conn:
        conn.execute(sa.insert(_db.batches).values(**batch_values("half"), state=_ingest.RECEIVING, total=0))
        conn.execute(
            sa.insert(_db.batch_rows),
            [{"batch_id": "half", "idx": i, "inputs": {"x": i}, "state": "pending"} for i in range(7)],
        )
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "left.body").write_bytes(b"{}")
    _ingest.remove_unfinished_receipts(engine, uploads)
    batches, rows = stored(engine)
    assert batches == [("done", "pending", 1)]
    assert rows == [(0, '{"x": 1}')]
    assert list(uploads.iterdir()) == []


@pytest.mark.parametrize(
    ("media_type", "body", "field"),
    [
        ("application/x-ndjson", b'{"x": 1}\n\xff\xfe\n', "body[1]"),
        ("application/x-ndjson", b'{"x": 1}\n{"x": NaN}\n', "body[1]"),
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
        ("application/x-ndjson", b'{"x": 1}\r\n{"x":2}'),
        ("text/csv", b"\xef\xbb\xbfx\r\n1\r\n2\r\n"),
    ],
)
def test_every_media_type_yields_the_records_as_json_text(media_type: str, body: bytes) -> None:
    texts = list(iter_batch_records(io.BytesIO(body), media_type, INPUTS))
    assert [json.loads(text) for text in texts] == [{"x": 1}, {"x": 2}]
