"""Passthrough columns (issue 16) at the storage level: parsed from the start, taken out of every body's records,
stored beside the inputs."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchscore_server import _db, _ingest
from batchscore_server._errors import ApiError
from batchscore_server._settings import Settings
from batchscore_server._start_options import check_passthrough, parse_start_options
from batchscore_server._store import Store
from tests.server.test_ingest import batch_values

INPUTS = [("hp", "numeric")]
BODIES = {
    "application/json": b'[{"hp": 1, "car": "a", "n": 7}, {"hp": null, "car": "b"}]',
    "application/x-ndjson": b'{"hp": 1, "car": "a", "n": 7}\n{"hp": null, "car": "b"}\n',
}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(Settings(data_dir=tmp_path), _db.create_engine(tmp_path / "db.sqlite3"))


def stored_rows(store: Store) -> list[tuple[Any, Any]]:
    rows = _db.batch_rows.c
    with store.engine.connect() as conn:
        query = sa.select(sa.type_coerce(rows.inputs, sa.Text), sa.type_coerce(rows.passthrough, sa.Text))
        return [(json.loads(i), json.loads(p) if p else None) for i, p in conn.execute(query.order_by(rows.idx))]


@pytest.mark.parametrize("media_type", sorted(BODIES))
def test_passthrough_values_are_stored_apart_from_the_inputs(store: Store, media_type: str) -> None:
    body = io.BytesIO(BODIES[media_type])
    assert _ingest.store_batch(store, batch_values(), body, media_type, INPUTS, ("car", "n")) == 2
    assert stored_rows(store) == [({"hp": 1}, {"car": "a", "n": 7}), ({"hp": None}, {"car": "b"})]


def test_a_csv_body_keeps_passthrough_values_as_text(store: Store) -> None:
    body = io.BytesIO(b"car,hp\n007,1.5\n")
    _ingest.store_batch(store, batch_values(), body, "text/csv", INPUTS, ("car",))
    assert stored_rows(store) == [({"hp": 1.5}, {"car": "007"})]


def test_without_passthrough_an_extra_key_is_refused_and_nothing_stored(store: Store) -> None:
    with pytest.raises(ApiError) as refused:
        _ingest.store_batch(store, batch_values(), io.BytesIO(BODIES["application/json"]), "application/json", INPUTS)
    assert refused.value.field == "body[0].car"
    assert stored_rows(store) == []


def test_the_names_are_bounded_deduplicated_and_not_an_input_or_output() -> None:
    assert parse_start_options(passthrough=["car", "car", "id"]).passthrough == ("car", "id")
    assert parse_start_options().columns()["passthrough"] is None
    for names in ([f"c{i}" for i in range(33)], ["x" * 129], ["a\tb"], [""]):
        with pytest.raises(ApiError) as bad:
            parse_start_options(passthrough=names)
        assert bad.value.field == "passthrough"
    spec = {"inputs": [("hp", "numeric")], "outputs": [("answer", "numeric")]}
    for name in ("hp", "answer"):
        with pytest.raises(ApiError) as taken:
            check_passthrough(parse_start_options(passthrough=[name]), spec)
        assert taken.value.field == "passthrough"
    check_passthrough(parse_start_options(passthrough=["car"]), spec)
