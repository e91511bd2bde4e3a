"""The slice-at-a-time NDJSON check gives exactly what the record-at-a-time check gives: records and errors."""

from __future__ import annotations

import io
import json

import pytest

from batchscore_server import _ndjson_fast
from batchscore_server._errors import ApiError
from batchscore_server._validation import iter_batch_records, iter_batch_slices

NDJSON = "application/x-ndjson"
SCALARS = [("n", "numeric"), ("i", "integer"), ("b", "logical"), ("s", "character")]
GOOD = '{"n": 1.5, "i": 2, "b": true, "s": "caf\\u00e9 \\ud83d\\ude00"}'


def _old(body: bytes, inputs: list[tuple[str, str]]) -> list[object] | tuple[int, str, str | None]:
    try:
        return [json.loads(text) for text in iter_batch_records(io.BytesIO(body), NDJSON, inputs)]
    except ApiError as error:
        return (error.status, error.message, error.field)


def _new(body: bytes, inputs: list[tuple[str, str]], slice_rows: int) -> list[object] | tuple[int, str, str | None]:
    try:
        records: list[object] = []
        for count, text in iter_batch_slices(io.BytesIO(body), NDJSON, inputs, slice_rows):
            part = json.loads(text)
            assert len(part) == count
            records.extend(part)
        return records
    except ApiError as error:
        return (error.status, error.message, error.field)


BAD_LINES = [
    '{"n": 1.5, "i": 2.0, "b": true, "s": "x"}',  # 2.0 for an integer: the record-at-a-time check accepts it
    '{"n": 1.5, "i": 2, "b": true, "s": "x", "extra": 1}',
    '{"n": 1.5, "i": 2, "b": true}',
    '{"n": "1.5", "i": 2, "b": true, "s": "x"}',
    '{"n": true, "i": 2, "b": true, "s": "x"}',
    '{"n": 1e400, "i": 2, "b": true, "s": "x"}',
    '{"n": NaN, "i": 2, "b": true, "s": "x"}',
    '{"n": 1, "i": 9223372036854775808, "b": true, "s": "x"}',
    '{"n": 1, "i": -9223372036854775808, "b": true, "s": "x"}',
    '{"n": 1, "i": 2, "b": 1, "s": "x"}',
    '{"n": 1, "i": 2, "b": true, "s": "\\ud800"}',
    '{"n": 1, "n": 2, "i": 2, "b": true, "s": "x"}',
    f"{GOOD},{GOOD}",
    f"{GOOD} {GOOD}",
    "[1, 2]",
    "",
    "   ",
    "{",
    '{"n": 1, "i": 2, "b": true, "s": "x"}\r',
]


@pytest.mark.parametrize("bad", BAD_LINES)
@pytest.mark.parametrize("slice_rows", [1, 3, 1000])
@pytest.mark.parametrize("where", [0, 4, 9])
def test_slices_agree_with_records_line_by_line(bad: str, slice_rows: int, where: int) -> None:
    lines = [GOOD] * 10
    lines[where] = bad
    body = ("\n".join(lines) + "\n").encode()
    assert _new(body, SCALARS, slice_rows) == _old(body, SCALARS)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\n\n",
        b"   \n",
        f"{GOOD}".encode(),
        f"\n\n{GOOD}\n\n{GOOD}".encode(),
        b"\xff\xfe\n",
        f"{GOOD}\r\n".encode(),
    ],
)
def test_edges_agree(body: bytes) -> None:
    assert _new(body, SCALARS, 2) == _old(body, SCALARS)


def test_a_bad_record_in_a_later_slice_is_named_by_its_index_in_the_body() -> None:
    lines = [f'{{"x": {i}}}' for i in range(25)]
    lines[17] = '{"x": "seventeen"}'
    error = _new(("\n".join(lines)).encode(), [("x", "integer")], 5)
    assert isinstance(error, tuple)
    assert error[0] == 400
    assert error[2] == "body[17].x"


def test_blank_lines_before_a_bad_record_do_not_shift_its_index() -> None:
    body = b'{"x": 1}\n\n\n{"x": 2}\n{"x": "three"}\n'
    assert _new(body, [("x", "integer")], 2) == _old(body, [("x", "integer")])
    error = _old(body, [("x", "integer")])
    assert isinstance(error, tuple)
    assert error[2] == "body[2].x"


def test_the_fast_check_takes_only_scalar_inputs() -> None:
    assert _ndjson_fast.slice_checker([("v", "vector")]) is None
    assert _ndjson_fast.slice_checker([("x", "numeric"), ("m", "matrix")]) is None
    check = _ndjson_fast.slice_checker([("x", "numeric")])
    assert check is not None
    assert check(b'{"x": 1}\n{"x": 2.5}') == 2
    assert check(b'{"x": 1}\n\n{"x": 2.5}') is None  # a blank line: the record-at-a-time check decides
    assert check(b'{"x": 1}\n{"x": "2"}') is None


def test_slices_are_whole_lines_whatever_the_reads() -> None:
    lines = [b'{"x": %d}' % i for i in range(1000)]
    body = b"\n".join(lines) + b"\n"
    original = _ndjson_fast.READ_BYTES
    try:
        _ndjson_fast.READ_BYTES = 7  # reads that end mid-line
        slices = list(_ndjson_fast.ndjson_slices(io.BytesIO(body), 64))
    finally:
        _ndjson_fast.READ_BYTES = original
    assert b"\n".join(slices).split(b"\n") == lines
    assert all(part.count(b"\n") + 1 >= 64 for part in slices[:-1])
