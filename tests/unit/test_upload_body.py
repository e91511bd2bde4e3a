"""The batch body: CSV for file sources that the server reads back with the same values, its size and limit."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import batchscore
from batchscore import BatchscoreError, BatchTooLargeError, InvalidRecordError, Service, ServiceInfo
from batchscore._models import Parameter
from batchscore._upload import (
    CSV,
    NDJSON,
    UploadBody,
    check_size,
    measure,
    media_type_for,
)
from batchscore_client.api.batch import start_batch_execution
from batchscore_client.types import File
from batchscore_server._validation import iter_batch_records
from tests.unit._harness import Harness

INPUTS = [
    Parameter("x", "numeric"),
    Parameter("n", "integer"),
    Parameter("ok", "logical"),
    Parameter("s", "character"),
    Parameter("v", "vector"),
]
RECORDS: list[dict[str, Any]] = [
    {"x": 0.1, "n": 3, "ok": True, "s": "plain", "v": [1, 2.5]},
    {"x": 1e-300, "n": 2**62, "ok": False, "s": 'a, "quoted"\nline', "v": ["a", None]},
    {"x": -123456789.123456789, "n": -7, "ok": True, "s": "", "v": []},
    {"x": 5, "n": 4.0, "ok": False, "s": "  spaced  ", "v": ["é", 1]},
    {"x": 2.5e20, "n": 0, "ok": True, "s": "ünïcødé 😀", "v": [True]},
]


def _body(records: list[dict[str, Any]], media_type: str, inputs: list[Parameter] = INPUTS) -> bytes:
    return b"".join(UploadBody(lambda: iter(records), inputs, media_type))


def test_csv_round_trips_through_the_servers_csv_reader_with_the_same_types() -> None:
    body = _body(RECORDS, CSV)
    back = [
        json.loads(text)
        for text in iter_batch_records(io.BytesIO(body), "text/csv", [(p.name, p.type) for p in INPUTS])
    ]
    assert len(back) == len(RECORDS)
    for sent, got in zip(RECORDS, back, strict=True):
        assert got["x"] == float(sent["x"])
        assert type(got["x"]) is float
        assert got["n"] == int(sent["n"])
        assert type(got["n"]) is int
        assert got["ok"] is sent["ok"]
        assert got["s"] == sent["s"]
        assert got["v"] == sent["v"]


def test_csv_body_refuses_a_missing_scalar_instead_of_sending_an_empty_cell() -> None:
    with pytest.raises(InvalidRecordError, match="row 0, column 'x'"):
        _body([{**RECORDS[0], "x": None}], CSV)


def test_file_sources_go_as_csv_and_the_others_as_ndjson(tmp_path: Path) -> None:
    assert media_type_for(tmp_path / "a.csv") == CSV
    assert media_type_for(str(tmp_path / "a.PARQUET")) == CSV
    assert media_type_for(tmp_path / "a.ndjson") == NDJSON
    assert media_type_for(RECORDS) == NDJSON
    assert media_type_for({"x": [1.0]}) == NDJSON


@pytest.mark.parametrize("media_type", [CSV, NDJSON])
def test_measure_counts_the_bytes_that_are_sent(media_type: str) -> None:
    rows, size = measure(lambda: iter(RECORDS), INPUTS, media_type)
    assert (rows, size) == (len(RECORDS), len(_body(RECORDS, media_type)))


def test_csv_is_several_times_smaller_than_ndjson_for_a_table() -> None:
    inputs = [Parameter(f"column_{i}", "numeric") for i in range(10)]
    records = [{p.name: float(row % 97) for p in inputs} for row in range(1000)]
    _, csv_size = measure(lambda: iter(records), inputs, CSV)
    _, ndjson_size = measure(lambda: iter(records), inputs, NDJSON)
    assert ndjson_size > 3 * csv_size


def test_measure_checks_every_record() -> None:
    with pytest.raises(InvalidRecordError, match="row 1"):
        measure(lambda: iter([RECORDS[0], {**RECORDS[1], "n": "x"}]), INPUTS, CSV)


def test_a_body_over_the_limit_says_how_many_rows_a_batch_may_hold() -> None:
    check_size(1000, 10, 1000, CSV)  # at the limit: fine
    check_size(10**12, 10, None, CSV)  # a server that does not say: not checked
    with pytest.raises(BatchTooLargeError) as raised:
        check_size(820 * 1024 * 1024, 2_000_000, 256 * 1024 * 1024, CSV)
    error = raised.value
    assert error.limit == 256 * 1024 * 1024
    assert error.size == 820 * 1024 * 1024
    assert error.split_rows * error.size / 2_000_000 < error.limit
    assert "820 MiB as CSV" in str(error)
    assert "256 MiB" in str(error)
    assert f"--split-rows {error.split_rows}" in str(error)


def test_the_body_is_replayable_and_counts_what_it_sends() -> None:
    seen: list[tuple[int, int]] = []
    body = UploadBody(lambda: iter(RECORDS), INPUTS, CSV, lambda size, rows: seen.append((size, rows)))
    first = b"".join(body)
    assert first == b"".join(body)
    assert sum(size for size, _ in seen) == 2 * len(first)
    assert sum(rows for _, rows in seen) == 2 * len(RECORDS)


@pytest.mark.parametrize(("mime_type", "header"), [(CSV, CSV), (NDJSON, NDJSON), (None, NDJSON)])
def test_the_generated_start_labels_the_body_with_its_files_mime_type(mime_type: str | None, header: str) -> None:
    # The override openapi/templates/endpoint_module.py.jinja: File.mime_type, else the declared media type.
    kwargs = start_batch_execution._get_kwargs("s", "v1", body=File(payload=io.BytesIO(b""), mime_type=mime_type))
    assert kwargs["headers"]["Content-Type"] == header


def test_split_makes_parts_with_their_own_keys_that_start_as_separate_batches(tmp_path: Path) -> None:
    sent: list[tuple[str, str, bytes]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = b"".join(request.stream)  # type: ignore[arg-type]
        sent.append((request.headers["Idempotency-Key"], request.headers["Content-Type"], body))
        return httpx.Response(202, json={"batchExecutionId": f"b{len(sent)}"})

    info = ServiceInfo("svc", "v1", (Parameter("hp", "numeric"),), (Parameter("answer", "numeric"),), (), "score")
    path = tmp_path / "cars.csv"
    path.write_text("hp\n1\n2\n3\n4\n5\n", encoding="utf-8")
    with batchscore.Client("http://test", token="tok", transport=httpx.MockTransport(handler)) as client:
        batch = Service(client, info).batch(path, idempotency_key="k")
        parts = batch.split(2)
        assert [part.record_count for part in parts] == [2, 2, 1]
        assert sum(part.body_bytes for part in parts) == batch.body_bytes + 2 * len(b"hp\n")
        assert [part.start(progress=False).id for part in parts] == ["b1", "b2", "b3"]
        with pytest.raises(BatchscoreError, match="not started yet"):
            parts[0].split(1)
    assert [key for key, _, _ in sent] == ["k.1", "k.2", "k.3"]
    assert {kind for _, kind, _ in sent} == {"text/csv"}
    assert [body for _, _, body in sent] == [b"hp\n1.0\n2.0\n", b"hp\n3.0\n4.0\n", b"hp\n5.0\n"]


@pytest.mark.parametrize("limit", [3 * 1024 * 1024, 1024 * 1024 + 1])
def test_start_checks_a_body_over_1_mib_against_the_servers_limit(limit: int) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.url.path == "/status":
            return httpx.Response(200, json={"statusCode": "pass", "details": {"maxBodyBytes": limit}})
        b"".join(request.stream)  # type: ignore[arg-type]
        return httpx.Response(202, json={"batchExecutionId": "b1"})

    info = ServiceInfo("svc", "v1", (Parameter("hp", "numeric"),), (Parameter("answer", "numeric"),), (), "score")
    records = [{"hp": 123456.789}] * 100_000  # about 1.8 MiB of NDJSON
    with batchscore.Client("http://test", token="tok", transport=httpx.MockTransport(handler)) as client:
        batch = Service(client, info).batch(records)
        assert 1024 * 1024 < batch.body_bytes < 3 * 1024 * 1024
        if limit > batch.body_bytes:
            batch.start(progress=False)
            assert seen == ["GET /status", "POST /api/svc/v1/batch"]
            return
        with pytest.raises(BatchTooLargeError, match="as NDJSON, over the server's limit"):
            batch.start(progress=False)
    assert seen == ["GET /status"]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(("name", "media_type"), [("cars.csv", CSV), ("cars.ndjson", NDJSON)])
def test_the_sdk_sends_the_body_with_its_own_media_type(mode: str, name: str, media_type: str, tmp_path: Path) -> None:
    # The harness checks the request against the contract too: both media types are declared for the body.
    sent: list[str] = []

    def handler(request: httpx.Request, body: bytes) -> httpx.Response:
        sent.append(request.headers["Content-Type"])
        started = {"batchExecutionId": "b1", "BatchExecutionId": "b1", "name": "svc", "version": "v1"}
        return httpx.Response(202, json=started)

    path = tmp_path / name
    path.write_text("hp,wt\n1,2\n" if media_type == CSV else '{"hp": 1, "wt": 2}\n', encoding="utf-8")
    harness = Harness(mode)
    try:
        service = harness.service(handler, streaming=True)
        harness.run(service.batch(path).start(progress=False))
    finally:
        harness.close()
    assert sent == [media_type]


def test_ndjson_blocks_hold_the_same_records_as_json_would_send() -> None:
    import numpy

    records: list[dict[str, Any]] = [
        *RECORDS,
        {"x": numpy.float64(2.5), "n": numpy.int64(7), "ok": numpy.bool_(True), "s": "s", "v": numpy.arange(3)},
        *({"x": float(i), "n": i, "ok": i % 2 == 0, "s": str(i), "v": [i]} for i in range(2500)),
    ]
    sent: list[int] = []
    body = UploadBody(lambda: iter(records), INPUTS, NDJSON, lambda size, rows: sent.append(rows))
    lines = b"".join(body).decode().splitlines()
    assert [json.loads(line) for line in lines] == json.loads(json.dumps(records, default=lambda v: v.tolist()))
    assert sum(sent) == len(records)  # the upload bar's rows


def test_a_block_msgspec_cannot_encode_goes_record_by_record_as_json_would() -> None:
    records = [{"x": 1.0, "n": 1, "ok": True, "s": "lone \ud800", "v": []}]
    body = b"".join(UploadBody(lambda: iter(records), INPUTS, NDJSON))
    assert body == b'{"x":1.0,"n":1,"ok":true,"s":"lone \\ud800","v":[]}\n'
