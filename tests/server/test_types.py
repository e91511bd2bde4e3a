"""ML Server parameter types: strict JSON inputs, CSV cells, and JSON-safe outputs."""

from __future__ import annotations

import datetime
import json
import math
import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest

from batchscore_server._types import (
    PARAMETER_TYPES,
    InputError,
    OutputError,
    coerce_text_record,
    decode_inputs,
    encode_output,
)


def decode_one(type_name: str, value: Any) -> Any:
    return decode_inputs([("x", type_name)], {"x": value}, "body[3]")["x"]


def refused(type_name: str, value: Any) -> InputError:
    with pytest.raises(InputError) as caught:
        decode_one(type_name, value)
    return caught.value


def test_parameter_types_are_the_contracts() -> None:
    assert {"logical", "numeric", "integer", "character", "vector", "matrix", "data.frame"} == PARAMETER_TYPES


def test_input_error_names_the_field_and_survives_pickling() -> None:
    error = InputError("body[3].hp", "expected a number")
    assert (error.field, error.message, str(error)) == (
        "body[3].hp",
        "expected a number",
        "body[3].hp: expected a number",
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.field, copy.message) == (error.field, error.message)
    assert isinstance(error, ValueError)


def test_output_error_names_the_field_and_survives_pickling() -> None:
    error = OutputError("outputParameters.answer", "expected a number")
    assert str(error) == "outputParameters.answer: expected a number"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.field, copy.message) == (error.field, error.message)
    assert isinstance(error, ValueError)


# --- decode_inputs: the record ---


def test_decodes_a_record_by_name() -> None:
    decoded = decode_inputs([("hp", "numeric"), ("wt", "numeric")], {"hp": 120, "wt": 2.8}, "body")
    assert decoded == {"hp": 120.0, "wt": 2.8}
    assert isinstance(decoded["hp"], float)


@pytest.mark.parametrize("record", [[1, 2], "hp=1", 3, None])
def test_refuses_a_record_that_is_not_an_object(record: Any) -> None:
    with pytest.raises(InputError) as caught:
        decode_inputs([("hp", "numeric"), ("wt", "numeric")], record, "body[3]")
    assert caught.value.field == "body[3]"
    assert "hp, wt" in caught.value.message


def test_refuses_a_missing_input() -> None:
    with pytest.raises(InputError) as caught:
        decode_inputs([("hp", "numeric"), ("wt", "numeric")], {"wt": 2.8}, "body[3]")
    assert caught.value.field == "body[3].hp"
    assert "missing input" in caught.value.message


def test_refuses_an_unknown_input_and_lists_the_known_ones() -> None:
    with pytest.raises(InputError) as caught:
        decode_inputs([("hp", "numeric"), ("wt", "numeric")], {"hp": 1, "wt": 2, "cyl": 6}, "body")
    assert caught.value.field == "body.cyl"
    assert caught.value.message == "unknown input; the service takes: hp, wt"


def test_a_service_without_inputs_takes_an_empty_object() -> None:
    assert decode_inputs([], {}, "body") == {}
    with pytest.raises(InputError, match="the service takes: none"):
        decode_inputs([], {"x": 1}, "body")


# --- decode_inputs: each type ---


def test_logical_accepts_only_booleans() -> None:
    assert decode_one("logical", True) is True
    assert decode_one("logical", False) is False
    for value in (1, 0, "true", None):
        assert refused("logical", value).field == "body[3].x"


def test_integer_accepts_ints_and_integral_floats_within_int64() -> None:
    assert decode_one("integer", 7) == 7
    assert decode_one("integer", -(2**63)) == -(2**63)
    value = decode_one("integer", 3.0)
    assert value == 3
    assert isinstance(value, int)


@pytest.mark.parametrize("value", [True, 2.5, 2**63, 1e300, math.nan, math.inf, "3", None])
def test_integer_refuses(value: Any) -> None:
    assert refused("integer", value).field == "body[3].x"


def test_numeric_accepts_ints_and_floats_as_float() -> None:
    assert decode_one("numeric", 2.5) == 2.5
    value = decode_one("numeric", 3)
    assert value == 3.0
    assert isinstance(value, float)


def test_numeric_takes_null_as_a_missing_value_nan() -> None:
    assert math.isnan(decode_one("numeric", None))


@pytest.mark.parametrize("kind", ["integer", "logical", "character"])
def test_other_scalars_still_refuse_null(kind: str) -> None:
    assert refused(kind, None).field == "body[3].x"


@pytest.mark.parametrize("value", [True, False, "1.5", [1.0], 10**400])
def test_numeric_refuses(value: Any) -> None:
    assert refused("numeric", value).field == "body[3].x"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_numeric_refuses_nan_and_infinity(value: float) -> None:
    assert "NaN and Infinity" in refused("numeric", value).message


def test_nan_and_infinity_parsed_by_the_json_module_are_refused() -> None:
    # Python's json module reads these non-JSON tokens; the decoder is the place that refuses them.
    record = json.loads('{"hp": NaN, "wt": Infinity}')
    with pytest.raises(InputError) as caught:
        decode_inputs([("hp", "numeric"), ("wt", "numeric")], record, "body[3]")
    assert caught.value.field == "body[3].hp"


def test_character_accepts_only_strings() -> None:
    assert decode_one("character", "abc") == "abc"
    assert refused("character", 1).field == "body[3].x"


def test_vector_accepts_scalars_and_null() -> None:
    assert decode_one("vector", [1, 2.5, "a", True, None]) == [1, 2.5, "a", True, None]
    assert decode_one("vector", []) == []


def test_vector_refuses_nesting_and_non_finite_numbers_naming_the_element() -> None:
    assert refused("vector", [1, [2]]).field == "body[3].x[1]"
    assert refused("vector", [1, {"a": 1}]).field == "body[3].x[1]"
    assert refused("vector", [math.nan]).field == "body[3].x[0]"
    assert refused("vector", 1).field == "body[3].x"


def test_matrix_becomes_a_numpy_array() -> None:
    value = decode_one("matrix", [[1, 2], [3, 4]])
    assert isinstance(value, np.ndarray)
    assert value.shape == (2, 2)
    assert value.tolist() == [[1, 2], [3, 4]]


def test_matrix_null_among_numbers_is_nan() -> None:
    value = decode_one("matrix", [[1, None], [3, 4.5]])
    assert value.dtype == np.float64
    assert math.isnan(value[0, 1])


def test_matrix_of_mixed_kinds_keeps_each_value() -> None:
    value = decode_one("matrix", [[1, "a"]])
    assert value.dtype == object
    assert value.tolist() == [[1, "a"]]


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ([], "body[3].x"),
        ({"a": [1]}, "body[3].x"),
        ([[1, 2], [3]], "body[3].x[1]"),
        ([[1], 2], "body[3].x[1]"),
        ([[1, [2]]], "body[3].x[0][1]"),
        ([[1, math.inf]], "body[3].x[0][1]"),
    ],
)
def test_matrix_refuses(value: Any, field: str) -> None:
    assert refused("matrix", value).field == field


def test_data_frame_from_columns() -> None:
    value = decode_one("data.frame", {"hp": [110, 93], "name": ["a", "b"]})
    assert isinstance(value, pd.DataFrame)
    assert list(value.columns) == ["hp", "name"]
    assert value["hp"].tolist() == [110, 93]
    assert value["name"].tolist() == ["a", "b"]


def test_data_frame_from_row_objects() -> None:
    value = decode_one("data.frame", [{"hp": 110, "wt": 2.6}, {"hp": 93, "wt": 2.3}])
    assert isinstance(value, pd.DataFrame)
    assert value.to_dict(orient="list") == {"hp": [110, 93], "wt": [2.6, 2.3]}


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"hp": [1, 2], "wt": [1]}, "body[3].x.wt"),
        ({"hp": 1}, "body[3].x.hp"),
        ({"hp": [1, [2]]}, "body[3].x.hp[1]"),
        ([{"hp": 1}, 2], "body[3].x[1]"),
        ([{"hp": math.nan}], "body[3].x[0].hp"),
        ("hp", "body[3].x"),
    ],
)
def test_data_frame_refuses(value: Any, field: str) -> None:
    assert refused("data.frame", value).field == field


# --- coerce_text_record ---

CSV_INPUTS = [
    ("flag", "logical"),
    ("count", "integer"),
    ("hp", "numeric"),
    ("name", "character"),
    ("values", "vector"),
    ("grid", "matrix"),
    ("table", "data.frame"),
]


def test_csv_cells_become_json_values_that_decode() -> None:
    row = {
        "flag": "TRUE",
        "count": " 12 ",
        "hp": "110.5",
        "name": " Mazda ",
        "values": "[1, 2]",
        "grid": "[[1, 2], [3, 4]]",
        "table": '{"a": [1, 2]}',
    }
    coerced = coerce_text_record(CSV_INPUTS, row, "body[3]")
    assert coerced == {
        "flag": True,
        "count": 12,
        "hp": 110.5,
        "name": " Mazda ",
        "values": [1, 2],
        "grid": [[1, 2], [3, 4]],
        "table": {"a": [1, 2]},
    }
    decoded = decode_inputs(CSV_INPUTS, coerced, "body[3]")
    assert decoded["grid"].shape == (2, 2)


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("FALSE", False), ("1", True), ("0", False)])
def test_csv_logical(text: str, expected: bool) -> None:
    assert coerce_text_record([("flag", "logical")], {"flag": text}, "body") == {"flag": expected}


@pytest.mark.parametrize(
    ("name", "type_name", "text"),
    [
        ("flag", "logical", "yes"),
        ("count", "integer", "1.5"),
        ("count", "integer", "1_000"),
        ("count", "integer", ""),
        ("hp", "numeric", "abc"),
        ("hp", "numeric", ""),
        ("grid", "matrix", "[[1, 2]"),
    ],
)
def test_csv_refuses_cells_naming_the_field(name: str, type_name: str, text: str) -> None:
    with pytest.raises(InputError) as caught:
        coerce_text_record([(name, type_name)], {name: text}, "body[3]")
    assert caught.value.field == f"body[3].{name}"


def test_csv_nan_is_refused_by_decode_inputs() -> None:
    coerced = coerce_text_record([("hp", "numeric")], {"hp": "nan"}, "body[3]")
    with pytest.raises(InputError) as caught:
        decode_inputs([("hp", "numeric")], coerced, "body[3]")
    assert caught.value.field == "body[3].hp"


def test_csv_unknown_column_passes_through_for_decode_inputs_to_report() -> None:
    coerced = coerce_text_record([("hp", "numeric")], {"hp": "1", "cyl": "6"}, "body[3]")
    assert coerced == {"hp": 1.0, "cyl": "6"}
    with pytest.raises(InputError) as caught:
        decode_inputs([("hp", "numeric")], coerced, "body[3]")
    assert caught.value.field == "body[3].cyl"


def test_csv_ragged_rows_as_dictreader_gives_them() -> None:
    with pytest.raises(InputError) as caught:
        coerce_text_record([("hp", "numeric")], {"hp": None}, "body[3]")  # type: ignore[dict-item]
    assert caught.value.field == "body[3].hp"
    with pytest.raises(InputError) as caught:
        coerce_text_record([("hp", "numeric")], {"hp": "1", None: ["2"]}, "body[3]")  # type: ignore[dict-item]
    assert caught.value.field == "body[3]"


# --- encode_output ---


def test_encodes_scalars_from_numpy() -> None:
    assert encode_output("numeric", np.float64(2.5), "f") == 2.5
    assert type(encode_output("numeric", np.float32(2.5), "f")) is float
    assert encode_output("numeric", 3, "f") == 3.0
    assert encode_output("integer", np.int64(7), "f") == 7
    assert type(encode_output("integer", np.int64(7), "f")) is int
    assert encode_output("integer", 4.0, "f") == 4
    assert encode_output("logical", np.bool_(True), "f") is True
    assert encode_output("character", np.str_("a"), "f") == "a"


def test_encodes_a_one_element_prediction_as_a_scalar() -> None:
    assert encode_output("numeric", np.array([21.5]), "f") == 21.5


@pytest.mark.parametrize("value", [math.nan, math.inf, np.float64("nan"), -np.inf])
def test_encodes_non_finite_numbers_as_null(value: float) -> None:
    assert encode_output("numeric", value, "f") is None
    assert encode_output("integer", value, "f") is None


@pytest.mark.parametrize("type_name", sorted(PARAMETER_TYPES))
def test_encodes_none_as_null(type_name: str) -> None:
    assert encode_output(type_name, None, "f") is None


@pytest.mark.parametrize(
    ("type_name", "value"),
    [
        ("numeric", "1.5"),
        ("numeric", True),
        ("numeric", [1.0]),
        ("integer", 2.5),
        ("integer", 2**64),
        ("integer", "3"),
        ("logical", 1),
        ("logical", "true"),
        ("character", 1),
        ("vector", [1, object()]),
        ("vector", np.zeros((2, 2))),
        ("matrix", [1, 2]),
        ("matrix", [[1, 2], [3]]),
        ("data.frame", 5),
        ("nonsense", 1),
    ],
)
def test_refuses_values_that_do_not_fit_the_type(type_name: str, value: Any) -> None:
    with pytest.raises(OutputError) as caught:
        encode_output(type_name, value, "outputParameters.answer")
    assert caught.value.field.startswith("outputParameters.answer")


def test_encodes_vectors() -> None:
    assert encode_output("vector", np.array([1.5, np.nan]), "f") == [1.5, None]
    assert encode_output("vector", pd.Series([1, 2]), "f") == [1, 2]
    assert encode_output("vector", (np.int64(1), "a", None), "f") == [1, "a", None]
    assert encode_output("vector", 3, "f") == [3]
    assert json.dumps(encode_output("vector", np.arange(3), "f")) == "[0, 1, 2]"


def test_encodes_matrices_as_row_lists() -> None:
    assert encode_output("matrix", np.array([[1, 2], [3, 4]]), "f") == [[1, 2], [3, 4]]
    assert encode_output("matrix", np.array([[1.0, np.inf]]), "f") == [[1.0, None]]
    assert encode_output("matrix", pd.DataFrame({"a": [1, 2], "b": [3, 4]}), "f") == [[1, 3], [2, 4]]


def test_encodes_data_frames_column_oriented_with_nan_as_null() -> None:
    frame = pd.DataFrame(
        {
            "hp": [110, 93],
            "wt": [2.6, np.nan],
            "name": ["a", None],
            "ok": [True, False],
            "at": pd.Series([pd.Timestamp("2024-01-02"), pd.NaT]),
        }
    )
    encoded = encode_output("data.frame", frame, "f")
    assert encoded == {
        "hp": [110, 93],
        "wt": [2.6, None],
        "name": ["a", None],
        "ok": [True, False],
        "at": ["2024-01-02T00:00:00", None],
    }
    json.dumps(encoded, allow_nan=False)


def test_encodes_a_hand_built_data_frame() -> None:
    assert encode_output("data.frame", {"a": [1, 2]}, "f") == {"a": [1, 2]}
    assert encode_output("data.frame", [{"a": 1}, {"a": 2}], "f") == {"a": [1, 2]}


def test_refuses_duplicate_data_frame_columns() -> None:
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(OutputError, match="unique column names"):
        encode_output("data.frame", frame, "f")


def test_encodes_dates() -> None:
    assert encode_output("vector", [datetime.date(2024, 1, 2), np.datetime64("NaT")], "f") == ["2024-01-02", None]
