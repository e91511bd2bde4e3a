"""The fast CSV body reader gives the records, texts and errors of the old one (coerce_text_record per row)."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import pytest

from batchscore_server import _csv_records
from batchscore_server._csv_records import csv_records
from batchscore_server._errors import ApiError
from batchscore_server._types import coerce_text_record, decode_inputs

INPUTS = [("x", "numeric"), ("n", "integer"), ("ok", "logical"), ("s", "character")]
NUMBERS = ["110", "110.0", "-0", "-0.0", "0", "0.5", "1e-05", "1E5", "2.5e+20", ".5", "5.", "007", "+1", " 1.5",
           "1_0", "123456789012345678901234567890", "-12.75", "0e1", "-0e1"]  # fmt: skip
TEXTS = ["plain", 'a, "quoted"\nline', "", "  spaced  ", "ünïcødé 😀", "50%", "%s"]


def _body(rows: list[list[str]], header: list[str] | None = None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header or [name for name, _ in INPUTS])
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _old_way(body: bytes) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(body.decode()))
    return [coerce_text_record(INPUTS, row, f"body[{index}]") for index, row in enumerate(reader)]


def _same(a: Any, b: Any) -> bool:
    # -0.0 == 0.0: compare the sign too
    return a == b and (not isinstance(a, float) or math.copysign(1, a) == math.copysign(1, b))


@pytest.mark.parametrize("slice_rows", [1, 3, 1000])
def test_records_and_their_texts_read_back_as_the_old_way_gives_them(
    monkeypatch: pytest.MonkeyPatch, slice_rows: int
) -> None:
    monkeypatch.setattr(_csv_records, "SLICE_ROWS", slice_rows)
    logicals = ["true", "FALSE", " 1 ", "0"]
    rows = [
        [number, str(index - 3), logicals[index % 4], TEXTS[index % len(TEXTS)]] for index, number in enumerate(NUMBERS)
    ]
    body = _body(rows)
    got = list(csv_records(io.BytesIO(body), INPUTS))
    old = _old_way(body)
    assert [index for index, _, _ in got] == list(range(len(rows)))
    assert [record for _, record, _ in got] == old
    for (_, record, text), expected in zip(got, old, strict=True):
        # What the worker gets from the stored text: the values the old way's json.dumps gave it.
        stored = text if text is not None else json.dumps(record)
        decoded = decode_inputs(INPUTS, json.loads(stored), "body")
        wanted = decode_inputs(INPUTS, json.loads(json.dumps(expected)), "body")
        assert all(_same(decoded[name], wanted[name]) for name, _ in INPUTS), (stored, expected)


def test_blank_lines_are_skipped_and_a_header_alone_gives_nothing() -> None:
    assert list(csv_records(io.BytesIO(b"x,n,ok,s\n"), INPUTS)) == []
    assert list(csv_records(io.BytesIO(b""), INPUTS)) == []
    got = list(csv_records(io.BytesIO(b"x,n,ok,s\n\n1.5,2,true,a\n\n2.5,3,false,b\n"), INPUTS))
    assert [(index, record["x"]) for index, record, _ in got] == [(0, 1.5), (1, 2.5)]


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        (["abc", "1", "true", "s"], "body[4].x", "expected a number"),
        (["1.5", "1.5", "true", "s"], "body[4].n", "expected an integer"),
        (["1.5", "1", "yes", "s"], "body[4].ok", "expected true/false/1/0"),
        (["1.5", "1", "true"], "body[4].s", "no cell"),
        (["1.5", "1", "true", "s", "extra"], "body[4]", "more cells than the header"),
    ],
)
def test_a_bad_row_in_a_later_slice_is_named_by_its_index(
    monkeypatch: pytest.MonkeyPatch, row: list[str], field: str, message: str
) -> None:
    monkeypatch.setattr(_csv_records, "SLICE_ROWS", 3)
    good = ["1.5", "1", "true", "s"]
    records = csv_records(io.BytesIO(_body([good] * 4 + [row] + [good])), INPUTS)
    assert [index for index, _, _ in (next(records) for _ in range(4))] == [0, 1, 2, 3]
    with pytest.raises(ApiError) as raised:
        next(records)
    assert raised.value.field == field
    assert message in str(raised.value)


def test_a_nan_goes_on_for_decode_inputs_to_refuse() -> None:
    (_, record, text), *_ = csv_records(io.BytesIO(_body([["nan", "1", "true", "s"]])), INPUTS)
    assert math.isnan(record["x"])
    assert text is None  # json.dumps of the record is what was stored before


def test_a_malformed_body_names_the_row_being_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_csv_records, "SLICE_ROWS", 2)
    body = _body([["1.5", "1", "true", "s"]] * 3) + b'1.5,1,true,"cut short'
    with pytest.raises(ApiError) as raised:
        list(csv_records(io.BytesIO(body), INPUTS))
    assert raised.value.field == "body[3]"
    with pytest.raises(ApiError, match="not UTF-8"):
        list(csv_records(io.BytesIO(b"x,n,ok,s\n\xff,1,true,s\n"), INPUTS))


def test_unknown_and_repeated_columns_keep_the_old_way() -> None:
    (_, record, text), *_ = csv_records(io.BytesIO(b"x,n,ok,s,car\n1.5,2,true,a,Mazda\n"), INPUTS)
    assert record == {"x": 1.5, "n": 2, "ok": True, "s": "a", "car": "Mazda"}
    assert text is not None
    assert json.loads(text) == record
    (_, record, text), *_ = csv_records(io.BytesIO(b"x,x,n,ok,s\n1.5,2.5,2,true,a\n"), INPUTS)
    assert record["x"] == 2.5  # csv.DictReader keeps the last
    assert text is None
