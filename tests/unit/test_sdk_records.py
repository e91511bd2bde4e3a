"""Batch records (sources, validation, the NDJSON body), artifact downloads, and the publish helpers."""

from __future__ import annotations

import asyncio
import io
import json
import math
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import batchscore
from batchscore import (
    DownloadError,
    InvalidRecordError,
    NotFoundError,
    Parameter,
    Service,
    ServiceInfo,
)
from batchscore._publish import function_code, parameter_type, parameters
from batchscore._records import UPLOAD_CHUNK_BYTES, RecordStream, record_factory
from batchscore._shared import safe_file_name
from batchscore_server._validation import iter_batch_records
from tests.unit._harness import Harness as SharedHarness

BASE = "http://batchscore.test"
INPUTS = (
    Parameter("hp", "numeric"),
    Parameter("cyl", "integer"),
    Parameter("name", "character"),
    Parameter("manual", "logical"),
)
INFO = ServiceInfo(
    name="svc",
    version="v1",
    inputs=INPUTS,
    outputs=(Parameter("answer", "numeric"),),
    artifacts=("report.csv", "plot.png"),
    operation_id="score",
)
ROWS = [
    {"hp": 110.0, "cyl": 6, "name": "Mazda RX4", "manual": True},
    {"hp": 93.0, "cyl": 4, "name": "Datsun 710", "manual": True},
    {"hp": 175.0, "cyl": 8, "name": "Hornet Sportabout", "manual": False},
]
FILES = "/api/svc/v1/batch/b1/0/files"


class StreamingTransport(httpx.MockTransport):
    """Reads the request body from its stream (as ``HTTPTransport`` does); the handler gets ``(request, body)``."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.handler(request, b"".join(request.stream))  # type: ignore[arg-type,call-arg]


def service(handler: Callable[..., httpx.Response] | None = None) -> Service:
    def refuse(request: httpx.Request, body: bytes = b"") -> httpx.Response:
        raise AssertionError(f"unexpected request {request.method} {request.url}")

    client = batchscore.Client(BASE, token="tok", transport=StreamingTransport(handler or refuse))
    return Service(client, INFO)


def uploaded(source: Any) -> list[dict[str, Any]]:
    """The records a batch of ``source`` sends, read back from the NDJSON body."""
    bodies: list[bytes] = []
    media_types: list[str] = []

    def handler(request: httpx.Request, body: bytes) -> httpx.Response:
        bodies.append(body)
        media_types.append(request.headers["Content-Type"])
        return httpx.Response(202, json={"batchExecutionId": "b1"})

    svc = service(handler)
    svc.batch(source).start()
    svc._client.close()
    assert bodies[0].endswith(b"\n")
    if media_types[0] == "text/csv":  # a file source: read back as the server reads it
        definitions = [(p.name, p.type) for p in INPUTS]
        return [json.loads(text) for text in iter_batch_records(io.BytesIO(bodies[0]), "text/csv", definitions)]
    return [json.loads(line) for line in bodies[0].splitlines()]


def refused(source: Any) -> InvalidRecordError:
    with pytest.raises(InvalidRecordError) as caught:
        service().batch(source)
    return caught.value


# --- sources ---


def test_list_of_dicts_is_uploaded_as_ndjson() -> None:
    assert uploaded(ROWS) == ROWS


def test_batch_counts_its_records() -> None:
    assert service().batch(ROWS).record_count == 3


def test_dict_of_columns_becomes_rows() -> None:
    columns = {key: [row[key] for row in ROWS] for key in ("hp", "cyl", "name", "manual")}

    assert uploaded(columns) == ROWS


def test_dict_of_columns_with_unequal_lengths_is_refused() -> None:
    error = refused({"hp": [110.0, 93.0], "cyl": [6], "name": ["a", "b"], "manual": [True, False]})

    assert "same length" in str(error)
    assert (error.index, error.field) == (None, None)


def test_dataframe_numpy_ints_are_sent_as_json_integers() -> None:
    frame = pd.DataFrame(ROWS).astype({"cyl": np.int64})

    sent = uploaded(frame)

    assert sent == ROWS
    assert all(type(row["cyl"]) is int for row in sent)


def test_dataframe_nan_becomes_null() -> None:
    frame = pd.DataFrame({"hp": [110.0, math.nan], "cyl": [6, 4], "name": ["a", None], "manual": [True, False]})

    rows = list(record_factory(frame, INPUTS)())

    assert rows[1]["hp"] is None
    assert rows[1]["name"] is None
    assert rows[0] == {"hp": 110.0, "cyl": 6, "name": "a", "manual": True}


def test_dataframe_nan_in_a_numeric_input_is_refused_naming_row_and_column() -> None:
    frame = pd.DataFrame({"hp": [110.0, math.nan], "cyl": [6, 4], "name": ["a", "b"], "manual": [True, False]})

    error = refused(frame)

    assert (error.index, error.field) == (1, "hp")


def test_dataframe_index_is_not_sent() -> None:
    frame = pd.DataFrame(ROWS, index=[10, 20, 30])

    assert uploaded(frame) == ROWS


def write_delimited(path: Path, delimiter: str) -> Path:
    lines = ["hp,cyl,name,manual", "110,6,Mazda RX4,true", "93,4,Datsun 710,TRUE", "175,8,Hornet Sportabout,0"]
    path.write_text("\n".join(line.replace(",", delimiter) for line in lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("suffix", "delimiter"), [(".csv", ","), (".txt", ","), (".tsv", "\t"), (".CSV", ",")])
def test_delimited_file_cells_are_converted_to_input_types(tmp_path: Path, suffix: str, delimiter: str) -> None:
    path = write_delimited(tmp_path / f"cars{suffix}", delimiter)

    assert uploaded(path) == ROWS


def test_records_file_path_as_text(tmp_path: Path) -> None:
    path = write_delimited(tmp_path / "cars.csv", ",")

    assert uploaded(str(path)) == ROWS


def test_csv_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = write_delimited(tmp_path / "cars.csv", ",")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())

    assert uploaded(path) == ROWS


def test_csv_cell_that_is_not_its_type_names_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "cars.csv"
    path.write_text("hp,cyl,name,manual\n110,6,a,true\nfast,4,b,false\n", encoding="utf-8")

    error = refused(path)

    assert (error.index, error.field) == (1, "hp")
    assert "fast" in str(error)


def test_csv_row_with_too_few_cells_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cars.csv"
    path.write_text("hp,cyl,name,manual\n110,6\n", encoding="utf-8")

    error = refused(path)

    assert error.index == 0
    assert error.field == "name"


def test_ndjson_file_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "cars.ndjson"
    path.write_text("\n".join(json.dumps(row) for row in ROWS[:2]) + "\n\n" + json.dumps(ROWS[2]) + "\n")

    assert uploaded(path) == ROWS


def test_jsonl_suffix_is_ndjson(tmp_path: Path) -> None:
    path = tmp_path / "cars.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))

    assert uploaded(path) == ROWS


def test_ndjson_line_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cars.ndjson"
    path.write_text(json.dumps(ROWS[0]) + "\n{not json\n")

    error = refused(path)

    assert "line 2" in str(error)


def test_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "cars.parquet"
    pd.DataFrame(ROWS).to_parquet(path)

    assert uploaded(path) == ROWS


def test_unknown_file_suffix_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cars.xlsx"
    path.write_bytes(b"PK")

    error = refused(path)

    assert "unknown records file type" in str(error)


def test_missing_records_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such records file"):
        service().batch(tmp_path / "nowhere.csv")


def test_unsupported_source_kind_is_refused() -> None:
    error = refused(42)

    assert "DataFrame" in str(error)


# --- validation: the row and the column are named ---


@pytest.mark.parametrize(
    ("change", "index", "field", "words"),
    [
        ({"hp": "fast"}, 1, "hp", "expected a number"),
        ({"hp": math.nan}, 1, "hp", "missing value"),
        ({"hp": math.inf}, 1, "hp", "finite"),
        ({"hp": -math.inf}, 1, "hp", "finite"),
        ({"hp": True}, 1, "hp", "expected a number"),
        ({"hp": None}, 1, "hp", "missing value"),
        ({"cyl": 2.5}, 1, "cyl", "whole number"),
        ({"cyl": False}, 1, "cyl", "whole number"),
        ({"cyl": math.nan}, 1, "cyl", "cannot take one"),
        ({"manual": 1}, 1, "manual", "true or false"),
        ({"name": 5}, 1, "name", "expected text"),
        ({"mpg": 21.0}, 1, "mpg", "no such input"),
    ],
)
def test_wrong_value_names_row_and_column(change: dict[str, Any], index: int, field: str, words: str) -> None:
    rows = [dict(ROWS[0]), {**ROWS[1], **change}, dict(ROWS[2])]

    error = refused(rows)

    assert (error.index, error.field) == (index, field)
    assert f"row {index}" in str(error)
    assert words in str(error)


def test_missing_input_names_row_and_column() -> None:
    rows = [dict(ROWS[0]), dict(ROWS[1]), {key: value for key, value in ROWS[2].items() if key != "cyl"}]

    error = refused(rows)

    assert (error.index, error.field) == (2, "cyl")
    assert "missing" in str(error)


def test_record_that_is_not_a_mapping_is_refused() -> None:
    error = refused([ROWS[0], ["110", "6"]])

    assert (error.index, error.field) == (1, None)


def test_whole_float_is_accepted_for_an_integer_input() -> None:
    assert uploaded([{**ROWS[0], "cyl": 6.0}])[0]["cyl"] == 6.0


def test_invalid_record_error_is_a_value_error() -> None:
    assert isinstance(refused([{"hp": "x"}]), ValueError)


@pytest.mark.parametrize(
    "source",
    [[], {}, pd.DataFrame(columns=["hp", "cyl", "name", "manual"])],
    ids=["empty-list", "empty-columns", "empty-frame"],
)
def test_empty_batch_is_refused(source: Any) -> None:
    error = refused(source)

    assert "no records" in str(error)
    assert (error.index, error.field) == (None, None)


def test_csv_with_only_a_header_is_an_empty_batch(tmp_path: Path) -> None:
    path = tmp_path / "cars.csv"
    path.write_text("hp,cyl,name,manual\n", encoding="utf-8")

    assert "no records" in str(refused(path))


# --- the NDJSON body ---


def stream_of(rows: list[dict[str, Any]]) -> RecordStream:
    return RecordStream(record_factory(rows, INPUTS))


def test_record_stream_is_compact_ndjson() -> None:
    body = b"".join(stream_of(ROWS[:1]))

    assert body == b'{"hp":110.0,"cyl":6,"name":"Mazda RX4","manual":true}\n'


def test_record_stream_iterates_twice_to_identical_bytes() -> None:
    stream = stream_of(ROWS)

    assert b"".join(stream) == b"".join(stream)


def test_record_stream_async_iteration_equals_sync() -> None:
    stream = stream_of(ROWS)

    async def drain(chunks: AsyncIterator[bytes]) -> bytes:
        return b"".join([chunk async for chunk in chunks])

    assert asyncio.run(drain(stream.__aiter__())) == b"".join(stream)


def test_record_stream_sends_a_large_batch_in_chunks() -> None:
    rows = [{**ROWS[0], "name": f"car {i:06d}" + "x" * 100} for i in range(2000)]
    stream = stream_of(rows)

    chunks = list(stream)

    assert len(chunks) > 1
    assert all(len(chunk) < UPLOAD_CHUNK_BYTES + 512 for chunk in chunks)
    assert [json.loads(line) for line in b"".join(chunks).splitlines()] == rows
    assert all(chunk.endswith(b"\n") for chunk in chunks)


def test_batch_start_sends_ndjson_with_an_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request, body: bytes) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"batchExecutionId": "b1"})

    svc = service(handler)
    svc.batch(ROWS, idempotency_key="k-1").start()

    assert seen[0].headers["Content-Type"] == "application/x-ndjson"
    assert seen[0].headers["Idempotency-Key"] == "k-1"
    svc._client.close()


# --- artifact file names ---


@pytest.mark.parametrize(
    "name",
    ["../x", "/etc/passwd", "", ".", "..", "a\\b", "a/b", "..\\x", "a\x00b", "a\nb", "a\rb", "a\x1fb", "\x1b[31mred"],
)
def test_safe_file_name_refuses(name: str) -> None:
    with pytest.raises(DownloadError, match="not a plain file name"):
        safe_file_name(name)


@pytest.mark.parametrize("name", ["a\x7fb", "a\x9bb", "a\x85b"], ids=["DEL", "C1-CSI", "C1-NEL"])
def test_safe_file_name_refuses_del_and_c1_control_characters(name: str) -> None:
    # The docstring refuses names that hold control characters; only ord(c) < 32 is checked.
    with pytest.raises(DownloadError):
        safe_file_name(name)


@pytest.mark.parametrize("name", ["report.csv", "Histogram.png", "..hidden", "a b.txt", "x.tar.gz", "-"])
def test_safe_file_name_accepts_plain_names(name: str) -> None:
    assert safe_file_name(name) == name


# --- downloads (sync and async) ---


class Harness(SharedHarness):
    """The shared harness, plus a fetched batch whose client must never sleep (downloads are not retried)."""

    def batch(self, handler: Callable[[httpx.Request], httpx.Response]) -> Any:
        svc = self.service(handler)
        svc._client._sleep = _no_sleep if self.mode == "sync" else _no_async_sleep
        return svc.get_batch("b1")


def _no_sleep(seconds: float) -> None:
    raise AssertionError("downloads should not retry here")


async def _no_async_sleep(seconds: float) -> None:
    raise AssertionError("downloads should not retry here")


@pytest.fixture(params=["sync", "async"])
def h(request: pytest.FixtureRequest) -> Iterator[Harness]:
    harness = Harness(request.param, base_url=BASE, info=INFO)
    yield harness
    harness.close()


class FileServer:
    """Serves record 0's files of batch b1; notes every path asked for."""

    def __init__(self, files: dict[str, Any], listing: list[str] | None = None) -> None:
        self.files = files
        self.listing = listing if listing is not None else list(files)
        self.paths: list[str] = []
        self.raw_paths: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        self.raw_paths.append(request.url.raw_path)
        if request.url.path == FILES:
            return httpx.Response(200, json=self.listing)
        name = request.url.path.removeprefix(FILES + "/")
        if name in self.files:
            content = self.files[name]
            headers = {"Content-Type": "application/octet-stream"}
            if isinstance(content, bytes):
                return httpx.Response(200, content=content, headers=headers)
            return httpx.Response(200, stream=content, headers=headers)
        return httpx.Response(404, json={"code": 404, "message": f"no file {name}", "field": "fileName"})


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".part"))


def test_download_into_a_missing_folder_raises_download_error(h: Harness, tmp_path: Path) -> None:
    server = FileServer({"report.csv": b"a,b\n"})
    batch = h.batch(server)

    with pytest.raises(DownloadError, match="does not exist"):
        h.run(batch.download(0, "report.csv", dest=tmp_path / "missing"))

    assert server.paths == []


def test_download_into_a_file_path_raises_download_error(h: Harness, tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("x")
    batch = h.batch(FileServer({"report.csv": b"a,b\n"}))

    with pytest.raises(DownloadError):
        h.run(batch.download(0, "report.csv", dest=target))


def test_download_writes_the_servers_file_and_leaves_no_part_file(h: Harness, tmp_path: Path) -> None:
    content = b"hp,answer\n110,0.64\n" * 1000
    batch = h.batch(FileServer({"report.csv": content}))

    written = h.run(batch.download(0, "report.csv", dest=tmp_path))

    assert written == [tmp_path / "report.csv"]
    assert (tmp_path / "report.csv").read_bytes() == content
    assert leftovers(tmp_path) == []


def test_download_without_a_name_fetches_every_file(h: Harness, tmp_path: Path) -> None:
    files = {"report.csv": b"a,b\n", "plot.png": b"\x89PNG"}
    batch = h.batch(FileServer(files))

    written = h.run(batch.download(0, dest=tmp_path))

    assert sorted(path.name for path in written) == ["plot.png", "report.csv"]
    assert {name: (tmp_path / name).read_bytes() for name in files} == files
    assert leftovers(tmp_path) == []


def test_download_replaces_an_existing_file(h: Harness, tmp_path: Path) -> None:
    (tmp_path / "report.csv").write_bytes(b"old")
    batch = h.batch(FileServer({"report.csv": b"new"}))

    h.run(batch.download(0, "report.csv", dest=tmp_path))

    assert (tmp_path / "report.csv").read_bytes() == b"new"


def test_download_of_a_missing_file_raises_not_found_and_writes_nothing(h: Harness, tmp_path: Path) -> None:
    batch = h.batch(FileServer({}))

    with pytest.raises(NotFoundError) as caught:
        h.run(batch.download(0, "report.csv", dest=tmp_path))

    assert caught.value.field == "fileName"
    assert list(tmp_path.iterdir()) == []


def test_download_refuses_an_unsafe_name_listed_by_the_server(h: Harness, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    server = FileServer({"report.csv": b"a"}, listing=["../evil.sh"])
    batch = h.batch(server)

    with pytest.raises(DownloadError):
        h.run(batch.download(0, dest=dest))

    assert not (tmp_path / "evil.sh").exists()
    assert list(dest.iterdir()) == []
    assert server.paths == [FILES]


def test_download_refuses_an_unsafe_name_before_asking_the_server(h: Harness, tmp_path: Path) -> None:
    server = FileServer({})
    batch = h.batch(server)

    with pytest.raises(DownloadError):
        h.run(batch.download(0, "../../etc/passwd", dest=tmp_path))

    assert server.paths == []


def test_download_percent_encodes_the_file_name_in_the_url(h: Harness, tmp_path: Path) -> None:
    # A space is legal in the contract's file names; it must travel percent-encoded in the path.
    name = "q1 2.csv"
    server = FileServer({name: b"data"})
    batch = h.batch(server)

    h.run(batch.download(0, name, dest=tmp_path))

    assert server.paths == [f"{FILES}/{name}"]
    assert server.raw_paths == [f"{FILES}/q1%202.csv".encode()]


class ChunkedBody(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A file sent in chunks; notes, before each chunk after the first, whether a ``.part`` file exists yet."""

    def __init__(self, chunks: list[bytes], folder: Path) -> None:
        self.chunks = chunks
        self.folder = folder
        self.part_file_existed: list[bool] = []

    def __iter__(self) -> Iterator[bytes]:
        for number, chunk in enumerate(self.chunks):
            if number:
                self.part_file_existed.append(bool(leftovers(self.folder)))
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self:
            yield chunk


def test_download_streams_to_disk_instead_of_buffering(h: Harness, tmp_path: Path) -> None:
    # Batch.download promises "a large artifact is never held in memory": later chunks must be produced only
    # once the .part file is open. TokenAuth.requires_response_body makes httpx read every response whole first.
    body = ChunkedBody([b"a" * 1024, b"b" * 1024, b"c" * 1024], tmp_path)
    batch = h.batch(FileServer({"big.bin": body}))

    h.run(batch.download(0, "big.bin", dest=tmp_path))

    assert (tmp_path / "big.bin").read_bytes() == b"a" * 1024 + b"b" * 1024 + b"c" * 1024
    assert body.part_file_existed == [True, True]


def test_artifact_returns_the_bytes(h: Harness) -> None:
    batch = h.batch(FileServer({"plot.png": b"\x89PNG"}))

    assert h.run(batch.artifact(0, "plot.png")) == b"\x89PNG"


def test_list_artifacts(h: Harness) -> None:
    batch = h.batch(FileServer({"report.csv": b"", "plot.png": b""}))

    assert h.run(batch.list_artifacts(0)) == ["report.csv", "plot.png"]


# --- publish helpers ---


def manual_transmission(hp: float, wt: float) -> float:
    return round(hp / 1000 + wt / 10, 4)


def summary(hp: float, wt: float) -> dict[str, float]:
    return {"ratio": hp / wt, "total": hp + wt}


def pair(hp: float, wt: float) -> tuple[float, float]:
    return hp + wt, hp - wt


def no_arguments() -> str:
    return "constant"


def run_published(code: str, **inputs: Any) -> dict[str, Any]:
    namespace: dict[str, Any] = dict(inputs)
    exec(compile(code, "<published>", "exec"), namespace)
    return namespace


def test_function_code_sets_the_one_output() -> None:
    code = function_code(manual_transmission, parameters({"hp": float, "wt": float}), parameters({"answer": float}))

    assert run_published(code, hp=110.0, wt=2.62)["answer"] == manual_transmission(110.0, 2.62)
    assert code.rstrip().endswith("answer = manual_transmission(hp=hp, wt=wt)")


def test_function_code_reads_several_outputs_from_a_returned_dict() -> None:
    code = function_code(summary, parameters({"hp": float, "wt": float}), parameters({"total": float, "ratio": float}))

    namespace = run_published(code, hp=100.0, wt=4.0)

    assert (namespace["total"], namespace["ratio"]) == (104.0, 25.0)


def test_function_code_unpacks_several_outputs_from_a_returned_tuple() -> None:
    code = function_code(pair, parameters({"hp": float, "wt": float}), parameters({"sum": float, "difference": float}))

    namespace = run_published(code, hp=10.0, wt=4.0)

    assert (namespace["sum"], namespace["difference"]) == (14.0, 6.0)


def test_function_code_binds_inputs_by_name_whatever_their_order() -> None:
    code = function_code(manual_transmission, parameters({"wt": float, "hp": float}), parameters({"answer": float}))

    assert run_published(code, hp=110.0, wt=2.62)["answer"] == manual_transmission(110.0, 2.62)


def test_function_code_without_inputs() -> None:
    code = function_code(no_arguments, [], parameters({"answer": str}))

    assert run_published(code)["answer"] == "constant"


def test_function_code_of_a_nested_function_is_dedented() -> None:
    def scaled(hp: float) -> float:
        return hp * 2

    code = function_code(scaled, parameters({"hp": float}), parameters({"answer": float}))

    assert run_published(code, hp=21.0)["answer"] == 42.0


def test_function_code_refuses_a_lambda() -> None:
    with pytest.raises(ValueError, match="lambda"):
        function_code(lambda hp: hp, parameters({"hp": float}), parameters({"answer": float}))


def test_function_code_refuses_an_input_the_function_does_not_take() -> None:
    with pytest.raises(ValueError, match="no parameter named am"):
        function_code(manual_transmission, parameters({"hp": float, "am": bool}), parameters({"answer": float}))


def test_function_code_refuses_a_function_without_source() -> None:
    with pytest.raises(ValueError, match="source of len is not available"):
        function_code(len, parameters({"obj": list}), parameters({"answer": int}))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (float, "numeric"),
        (int, "integer"),
        (bool, "logical"),
        (str, "character"),
        (list, "vector"),
        (tuple, "vector"),
        (np.ndarray, "vector"),
        (np.matrix, "matrix"),
        (pd.DataFrame, "data.frame"),
        ("numeric", "numeric"),
        ("data.frame", "data.frame"),
        ("float", "numeric"),
        ("DataFrame", "data.frame"),
    ],
)
def test_parameter_type_maps_python_and_ml_server_types(spec: Any, expected: str) -> None:
    assert parameter_type(spec, "x") == expected


@pytest.mark.parametrize("spec", [dict, set, complex, object, "decimal", "Numeric"])
def test_parameter_type_refuses_a_type_without_ml_server_equivalent(spec: Any) -> None:
    with pytest.raises(ValueError, match=r"hp: .* has no ML Server type"):
        parameter_type(spec, "hp")


def test_parameter_type_refuses_a_union_with_value_error() -> None:
    # Documented to raise ValueError for a type without ML Server equivalent; a union has no __name__.
    with pytest.raises(ValueError, match="has no ML Server type"):
        parameter_type(float | None, "hp")


def test_parameters_keep_their_order() -> None:
    assert parameters({"wt": float, "am": bool, "name": str}) == [
        Parameter("wt", "numeric"),
        Parameter("am", "logical"),
        Parameter("name", "character"),
    ]
    assert parameters(None) == []
