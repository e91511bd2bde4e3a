"""ML Server's parameter types: checking JSON (and CSV) inputs, and encoding results back to JSON.

A service declares each input and output as one of the ``ParameterType`` names of ``openapi/batchscore.yaml``.
Inputs are checked strictly against the declared type before any user code runs, so a bad record is refused
with the field that is wrong (``body[3].hp``) instead of failing somewhere inside the service.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

PARAMETER_TYPES: frozenset[str] = frozenset(
    {"logical", "numeric", "integer", "character", "vector", "matrix", "data.frame"}
)

# ML Server's integers are 64-bit; a larger JSON number would silently change meaning in numpy or pandas.
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

_SCALAR_TYPES = frozenset({"logical", "integer", "numeric", "character"})

_TEXT_TRUE = frozenset({"true", "1"})
_TEXT_FALSE = frozenset({"false", "0"})
# int() would also take "1_000" and surrounding blanks; a CSV cell should be a plain decimal integer.
_TEXT_INTEGER = re.compile(r"[+-]?[0-9]+")


# Deeper JSON is refused before it is parsed: the parser recurses (10,000 nested "[" raised RecursionError, a 500)
# and no parameter type nests more than three levels (a data.frame's rows of cells inside a batch array).
MAX_JSON_DEPTH = 64
_DEPTH_STEPS = np.zeros(256, dtype=np.int8)
_DEPTH_STEPS[[ord("["), ord("{")]] = 1
_DEPTH_STEPS[[ord("]"), ord("}")]] = -1
_QUOTE = ord('"')
_DEPTH_CHUNK = 1 << 16  # bytes scanned at once: numpy's temporaries stay small whatever the body's size
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
# A surrogate code point is never text: raw (from bytes decoded with surrogatepass) or as a \uD800-\uDFFF escape
# (a pair of them is one character once parsed; a lone one cannot be written as UTF-8 and broke every answer that
# carried it).
_RAW_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_PAIR = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")
LONE_SURROGATE = "holds a lone surrogate (a code point from \\ud800 to \\udfff), which is not text"


def nests_too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests arrays and objects more than ``limit`` deep (brackets inside strings do not count).

    Cheap for the usual body (a count of brackets); a body with more brackets than ``limit`` is scanned with
    numpy a chunk at a time (some 60 MB/s on a busy core, a fifth of the parse's cost).
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    if '\\"' in text:
        # An escaped quote would flip the in-string parity below: drop the strings instead (rare, slower).
        text = _JSON_STRING.sub('""', text)
    data = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    depth, in_string = 0, False
    for start in range(0, len(data), _DEPTH_CHUNK):
        chunk = data[start : start + _DEPTH_CHUNK]
        # True from an opening quote up to its closing one: inside a string, where brackets are text.
        inside = np.bitwise_xor.accumulate(chunk == _QUOTE)
        if in_string:
            inside = ~inside
        steps = np.take(_DEPTH_STEPS, chunk)
        steps[inside] = 0
        levels = np.cumsum(steps, dtype=np.int32)
        levels += depth
        if int(levels.max()) > limit:
            return True
        depth, in_string = int(levels[-1]), bool(inside[-1])
    return False


def holds_lone_surrogate(text: str) -> bool:
    r"""Whether JSON text (that parsed) holds a surrogate code point outside a valid ``\uD8xx\uDCxx`` pair.

    Regular expressions over the text, so that a batch full of escaped emoji (what ``json.dumps`` writes) costs
    little; :func:`lone_surrogate_field` then names the culprit.
    """
    if _RAW_SURROGATE.search(text):
        return True
    if not _SURROGATE_ESCAPE.search(text):
        return False
    # An escaped backslash does not start an escape (JSON's \\ud800 is text); "_" keeps what was around it apart.
    text = _SURROGATE_PAIR.sub("", text.replace("\\\\", "_"))
    return _SURROGATE_ESCAPE.search(text) is not None


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and _RAW_SURROGATE.search(text) is not None


def lone_surrogate_field(value: Any, where: str) -> str | None:
    """The field of the first string (or object key) in parsed JSON that holds a surrogate code point, else None.

    Args:
        value: Parsed JSON.
        where: The name of ``value`` (``body[3]``); ``""`` for a body whose object members are named bare
            (``password``), as the errors of the JSON-object bodies name them.

    Returns:
        The field, e.g. ``description`` or ``body[3].name`` (an object whose key is bad is named itself), or
        ``body`` for the body as a whole; None when every string is text.

    """
    steps = _surrogate_steps(value)
    if steps is None:
        return None
    field = where
    for step in steps:
        field = f"{field or 'body'}[{step}]" if isinstance(step, int) else (f"{field}.{step}" if field else step)
    return field or "body"


_NESTED = (str, dict, list)  # what the walk visits; numbers, booleans and null hold no text


def _surrogate_steps(value: Any) -> list[str | int] | None:
    """The keys and indexes down to the first string or key with a surrogate, or None."""
    # Depth first, each item's path a linked (parent, key or index) pair: a batch of a million records is walked
    # without building a million field names for the one that may be bad.
    pending: list[tuple[Any, Any]] = [(value, None)]
    while pending:
        item, link = pending.pop()
        if isinstance(item, str):
            bad = _has_surrogate(item)
        elif isinstance(item, dict):
            bad = any(_has_surrogate(key) for key in item)
            pending.extend((member, (link, key)) for key, member in item.items() if isinstance(member, _NESTED))
        else:
            bad = False
            if isinstance(item, list):
                pending.extend((member, (link, i)) for i, member in enumerate(item) if isinstance(member, _NESTED))
        if bad:
            steps: list[str | int] = []
            while link is not None:
                link, step = link
                steps.append(step)
            return steps[::-1]
    return None


class InputError(ValueError):
    """An input that does not match its declared type.

    Attributes:
        field: Where the bad value is, e.g. ``body[3].hp``.
        message: What is wrong with it.

    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type[InputError], tuple[str, str]]:
        # The default reduction replays ``args`` (one string) into a two-argument __init__, so the error could
        # not cross a process boundary (a Dask worker) without this.
        return (type(self), (self.field, self.message))


class OutputError(ValueError):
    """A result value that cannot be encoded as its declared output type.

    Attributes:
        field: Which output it is, e.g. ``outputParameters.answer``.
        message: Why it cannot be encoded.

    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type[OutputError], tuple[str, str]]:
        # See InputError.__reduce__.
        return (type(self), (self.field, self.message))


def decode_inputs(definitions: Sequence[tuple[str, str]], record: object, where: str) -> dict[str, Any]:
    """Check one JSON record against the service's inputs and convert it to the Python values the code gets.

    Args:
        definitions: The service's inputs as ``(name, type)`` pairs, ``type`` one of ``PARAMETER_TYPES``.
        record: The parsed JSON record (a consume body, or one record of a batch).
        where: The field prefix for errors: ``body`` for a consume, ``body[3]`` for a batch's record 3.

    Returns:
        The inputs by name: ``bool``, ``float``, ``int``, ``str``, ``list``, ``numpy.ndarray`` (matrix) or
        ``pandas.DataFrame`` (data.frame).

    Raises:
        InputError: The record is not an object, misses an input, has an unknown one, or a value does not
            match its type; ``field`` names the culprit.

    """
    names = [name for name, _ in definitions]
    if not isinstance(record, Mapping):
        raise InputError(where, f"expected an object with the inputs ({_list_names(names)}), got {_kind(record)}")
    decoded: dict[str, Any] = {}
    for name, type_name in definitions:
        if name not in record:
            raise InputError(f"{where}.{name}", f"missing input ({type_name})")
        decoded[name] = _decode_value(type_name, record[name], f"{where}.{name}")
    for key in record:
        if key not in decoded:
            raise InputError(f"{where}.{key}", f"unknown input; the service takes: {_list_names(names)}")
    return decoded


def _is_int64(value: object) -> bool:
    return type(value) is int and _INT64_MIN <= value <= _INT64_MAX


def _is_finite_number(value: object) -> bool:
    return (type(value) is float and math.isfinite(value)) or _is_int64(value)


# Exact types on purpose (bool is an int subclass): anything else goes to decode_inputs, which decides.
_PLAIN_SCALAR_CHECKS: dict[str, Callable[[object], bool]] = {
    "integer": _is_int64,
    "numeric": _is_finite_number,
    "character": lambda value: type(value) is str,
    "logical": lambda value: type(value) is bool,
}
_MISSING = object()


def fast_record_check(definitions: Sequence[tuple[str, str]]) -> Callable[[object], bool] | None:
    """A quick test that a JSON record certainly passes ``decode_inputs``, for services with scalar inputs only.

    Checking a million records one ``decode_inputs`` call at a time was most of the time a batch start took. The
    test answers ``True`` only for a record ``decode_inputs`` accepts; on ``False`` call ``decode_inputs`` for
    the verdict and its error (the test also says ``False`` for some valid records, e.g. ``3.0`` for an integer).

    Returns:
        The test, or ``None`` when an input is a vector, matrix or data.frame (use ``decode_inputs`` alone).

    """
    checks = [(name, _PLAIN_SCALAR_CHECKS.get(type_name)) for name, type_name in definitions]
    plain = [(name, check) for name, check in checks if check is not None]
    if len(plain) != len(checks):
        return None
    count = len(plain)

    def passes(record: object) -> bool:
        if type(record) is not dict or len(record) != count:
            return False
        return all(check(record.get(name, _MISSING)) for name, check in plain)

    return passes


def coerce_text_record(definitions: Sequence[tuple[str, str]], record: Mapping[str, str], where: str) -> dict[str, Any]:
    """Turn one CSV row's text cells into the JSON values ``decode_inputs`` checks.

    Cells of unknown columns are passed through unchanged, so ``decode_inputs`` reports them the same way as for
    JSON records.

    Args:
        definitions: The service's inputs as ``(name, type)`` pairs.
        record: One CSV row, column name to cell text (as ``csv.DictReader`` gives it).
        where: The field prefix for errors, e.g. ``body[3]``.

    Returns:
        The row with each declared input's cell parsed: ``logical`` from true/false/1/0 (any case), ``integer`` and
        ``numeric`` as numbers, ``character`` as the text, ``vector``/``matrix``/``data.frame`` as JSON.

    Raises:
        InputError: A cell cannot be read as its type, or the row has more cells than the header.

    """
    types = dict(definitions)
    coerced: dict[str, Any] = {}
    for key, text in record.items():
        # csv.DictReader files surplus cells under the key None and fills missing ones with None.
        if not isinstance(key, str):
            raise InputError(where, "the row has more cells than the header")
        field = f"{where}.{key}"
        if not isinstance(text, str):
            raise InputError(field, "the row has no cell for this column")
        type_name = types.get(key)
        coerced[key] = text if type_name is None else _parse_cell(type_name, text, field)
    return coerced


def encode_output(type_name: str, value: Any, field: str) -> Any:
    """Convert a result value to JSON data of its declared type.

    ``None`` encodes as ``null`` for every type, and so do NaN and infinities (JSON has no such numbers) and
    pandas' missing values.

    Args:
        type_name: The output's declared type, one of ``PARAMETER_TYPES``.
        value: What the service's code left in the output's variable.
        field: The output's name for errors, e.g. ``outputParameters.answer``.

    Returns:
        JSON-safe data: ``bool``/``int``/``float``/``str`` for the scalar types, a list for ``vector``, a list of
        row lists for ``matrix``, and a column-oriented ``{column: [values]}`` object for ``data.frame``.

    Raises:
        OutputError: The value cannot be encoded as ``type_name`` (e.g. a ``str`` for ``numeric``).

    """
    if value is None:
        return None
    # model.predict() on one row returns a one-element array where a scalar output is declared.
    if type_name in _SCALAR_TYPES and isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if type_name == "logical":
        if isinstance(value, bool | np.bool_):
            return bool(value)
        raise OutputError(field, f"expected a logical (bool), got {_kind(value)}")
    if type_name == "integer":
        return _encode_integer(value, field)
    if type_name == "numeric":
        if not _is_number(value):
            raise OutputError(field, f"expected a number, got {_kind(value)}")
        try:
            return _finite_or_none(float(value))
        except OverflowError:
            raise OutputError(field, "the number is out of range") from None
    if type_name == "character":
        if isinstance(value, str):
            return str(value)
        raise OutputError(field, f"expected a character string, got {_kind(value)}")
    if type_name == "vector":
        return _encode_vector(value, field)
    if type_name == "matrix":
        return _encode_matrix(value, field)
    if type_name == "data.frame":
        return _encode_data_frame(value, field)
    raise OutputError(field, f"unknown parameter type {type_name!r}")


def _decode_value(type_name: str, value: object, field: str) -> Any:
    if type_name == "logical":
        if isinstance(value, bool):
            return value
        raise InputError(field, f"expected true or false, got {_kind(value)}")
    if type_name == "integer":
        return _decode_integer(value, field)
    if type_name == "numeric":
        if value is None:
            # A missing value (issue 16: the SDK's na="null" sends a table's NaN so): NaN, what pandas and numpy
            # read as missing. Only numeric takes null; other types have no missing value the code could test.
            return math.nan
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                raise InputError(field, "the number is out of range") from None
            if math.isfinite(number):
                return number
            raise InputError(field, "expected a finite number; NaN and Infinity are not JSON")
        raise InputError(field, f"expected a number, got {_kind(value)}")
    if type_name == "character":
        if isinstance(value, str):
            return value
        raise InputError(field, f"expected a string, got {_kind(value)}")
    if type_name == "vector":
        if not isinstance(value, list):
            raise InputError(field, f"expected an array of scalars, got {_kind(value)}")
        return [_decode_scalar(item, f"{field}[{i}]") for i, item in enumerate(value)]
    if type_name == "matrix":
        return _decode_matrix(value, field)
    if type_name == "data.frame":
        return _decode_data_frame(value, field)
    raise InputError(field, f"unknown parameter type {type_name!r}")


def _decode_integer(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(field, f"expected an integer, got {_kind(value)}")
    # JSON writers often emit 3.0 for an integral number; a fraction, NaN or Infinity is refused.
    if isinstance(value, float) and not value.is_integer():
        raise InputError(field, f"expected an integer, got {value!r}")
    number = int(value)
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise InputError(field, "the integer does not fit in 64 bits")
    return number


def _decode_scalar(value: object, field: str) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise InputError(field, "expected a finite number; NaN and Infinity are not JSON")
    raise InputError(field, f"expected a scalar (number, string, true/false or null), got {_kind(value)}")


def _decode_matrix(value: object, field: str) -> np.ndarray[Any, Any]:
    if not isinstance(value, list) or not value:
        raise InputError(field, f"expected a non-empty array of equal-length arrays, got {_kind(value)}")
    rows: list[list[Any]] = []
    for i, row in enumerate(value):
        if not isinstance(row, list):
            raise InputError(f"{field}[{i}]", f"expected an array (a matrix row), got {_kind(row)}")
        if len(row) != len(value[0]):
            raise InputError(f"{field}[{i}]", f"expected {len(value[0])} values like row 0, got {len(row)}")
        rows.append([_decode_scalar(cell, f"{field}[{i}][{j}]") for j, cell in enumerate(row)])
    cells = [cell for row in rows for cell in row]
    kinds = {_scalar_kind(cell) for cell in cells}
    # Left to itself numpy makes an object array of numbers with a null, and turns the numbers of a mixed matrix
    # into strings. null is a matrix's missing value, so among numbers it becomes NaN (R's NA); mixed kinds stay
    # the values they were, as objects.
    if kinds <= {"number", "null"}:
        return np.array(rows, dtype=float if "null" in kinds else None)
    return np.array(rows, dtype=None if len(kinds) == 1 else object)


def _decode_data_frame(value: object, field: str) -> Any:
    if isinstance(value, Mapping):
        columns: dict[str, list[Any]] = {}
        for name, column in value.items():
            if not isinstance(column, list):
                raise InputError(f"{field}.{name}", f"expected an array (a column), got {_kind(column)}")
            if columns and len(column) != len(next(iter(columns.values()))):
                raise InputError(f"{field}.{name}", "expected every column to have the same length")
            columns[name] = [_decode_scalar(cell, f"{field}.{name}[{i}]") for i, cell in enumerate(column)]
        return pd.DataFrame(columns)
    # A list of row objects is what pandas' to_json(orient="records") and most clients produce.
    if isinstance(value, list):
        records: list[dict[str, Any]] = []
        for i, row in enumerate(value):
            if not isinstance(row, Mapping):
                raise InputError(f"{field}[{i}]", f"expected an object (a row), got {_kind(row)}")
            records.append({name: _decode_scalar(cell, f"{field}[{i}].{name}") for name, cell in row.items()})
        return pd.DataFrame.from_records(records)
    raise InputError(field, f"expected an object of columns {{name: [values]}}, got {_kind(value)}")


def _parse_cell(type_name: str, text: str, field: str) -> Any:
    stripped = text.strip()
    if type_name == "logical":
        if stripped.lower() in _TEXT_TRUE:
            return True
        if stripped.lower() in _TEXT_FALSE:
            return False
        raise InputError(field, f"expected true/false/1/0, got {text!r}")
    if type_name == "integer":
        if _TEXT_INTEGER.fullmatch(stripped):
            return int(stripped)
        raise InputError(field, f"expected an integer, got {text!r}")
    if type_name == "numeric":
        try:
            return float(stripped)
        except ValueError:
            raise InputError(field, f"expected a number, got {text!r}") from None
    if type_name == "character":
        return text
    if type_name in {"vector", "matrix", "data.frame"}:
        if nests_too_deep(text):
            raise InputError(field, f"the {type_name} nests arrays and objects more than {MAX_JSON_DEPTH} deep")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(field, f"expected the {type_name} as JSON: {error}") from None
        bad = lone_surrogate_field(value, field) if holds_lone_surrogate(text) else None
        if bad is not None:
            raise InputError(bad, f"the text {LONE_SURROGATE}")
        return value
    raise InputError(field, f"unknown parameter type {type_name!r}")


def _encode_integer(value: Any, field: str) -> int | None:
    if isinstance(value, float | np.floating):
        # pandas turns an integer column with a missing value into floats, so NaN is integer's missing value too.
        if not math.isfinite(value):
            return None
        if not float(value).is_integer():
            raise OutputError(field, f"expected an integer, got {value!r}")
        value = int(value)
    if not isinstance(value, int | np.integer) or isinstance(value, bool):
        raise OutputError(field, f"expected an integer, got {_kind(value)}")
    if not _INT64_MIN <= int(value) <= _INT64_MAX:
        raise OutputError(field, "the integer does not fit in 64 bits")
    return int(value)


def _encode_vector(value: Any, field: str) -> list[Any]:
    if isinstance(value, pd.Series | pd.Index):
        items = value.tolist()
    elif isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise OutputError(field, f"expected a one-dimensional array, got {value.ndim} dimensions")
        items = value.tolist()
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        # R has no scalars: a single value is a vector of length one.
        items = [value]
    return [_encode_scalar(item, f"{field}[{i}]") for i, item in enumerate(items)]


def _encode_matrix(value: Any, field: str) -> list[list[Any]]:
    if isinstance(value, pd.DataFrame):
        value = value.to_numpy()
    try:
        array = np.asarray(value)
    except ValueError:
        # numpy refuses ragged nested lists.
        raise OutputError(field, "expected equal-length rows") from None
    if array.ndim != 2:
        raise OutputError(field, f"expected a two-dimensional array, got {array.ndim} dimensions")
    return [
        [_encode_scalar(cell, f"{field}[{i}][{j}]") for j, cell in enumerate(row)]
        for i, row in enumerate(array.tolist())
    ]


def _encode_data_frame(value: Any, field: str) -> dict[str, list[Any]]:
    if not isinstance(value, pd.DataFrame):
        # A dict of columns or a list of row dicts is what code builds by hand before it reaches for pandas.
        try:
            value = pd.DataFrame(value)
        except (ValueError, TypeError) as error:
            raise OutputError(field, f"expected a pandas DataFrame, got {_kind(value)} ({error})") from None
    names = [str(name) for name in value.columns]
    if len(set(names)) != len(names):
        raise OutputError(field, f"expected unique column names, got {names}")
    return {
        name: [_encode_scalar(cell, f"{field}.{name}[{i}]") for i, cell in enumerate(value.iloc[:, position].tolist())]
        for position, name in enumerate(names)
    }


def _encode_scalar(value: Any, field: str) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _finite_or_none(float(value))
    if isinstance(value, str):
        return str(value)
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
        return None if value is pd.NaT else value.isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    raise OutputError(field, f"expected a scalar (number, string, bool or None), got {_kind(value)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _finite_or_none(number: float) -> float | None:
    return number if math.isfinite(number) else None


def _scalar_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, int | float) else "string"


def _kind(value: object) -> str:
    """Name a value's type the way a JSON client thinks of it, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def _list_names(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "none"
