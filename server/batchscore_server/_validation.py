"""Checks of path parameters and request bodies; every failure names its field."""

from __future__ import annotations

import io
import itertools
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, BinaryIO

from batchscore_server._csv_records import csv_records
from batchscore_server._errors import ApiError
from batchscore_server._ndjson_fast import ndjson_slices, slice_checker
from batchscore_server._types import (
    LONE_SURROGATE,
    MAX_JSON_DEPTH,
    PARAMETER_TYPES,
    InputError,
    decode_inputs,
    fast_record_check,
    holds_lone_surrogate,
    lone_surrogate_field,
    nests_too_deep,
)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
ID_PATTERN = re.compile(r"^[A-Za-z0-9\-]{1,64}$")
IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
FILE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_. \-]{0,254}$")


def check(pattern: re.Pattern[str], value: str, field: str, what: str) -> str:
    """Return ``value`` when it matches ``pattern``, else raise a 400 naming ``field``."""
    if not pattern.fullmatch(value):
        raise ApiError(400, f"{field} {value[:80]!r} is not a valid {what}", field)
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every call: json.loads with an option builds a new one each time, which was a third of the
# cost of checking a batch's small records.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
# (text, start) -> (value, end): set by JSONDecoder.__init__, though typeshed does not declare it.
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def parse_json(raw: bytes | str, field: str = "body", *, scan_depth: bool = True) -> Any:
    """Parse a JSON body, or a batch's record named ``field``.

    Refused with a 400: what is not JSON (NaN and Infinity included), arrays and objects nested more than
    ``MAX_JSON_DEPTH`` deep (naming ``field``), and strings holding a lone surrogate (naming the string's field).
    ``scan_depth=False`` skips the depth scan of a batch's records, whose types nest at most three deep and are
    checked next; nesting beyond the parser's recursion limit is still a 400.
    """
    try:
        if isinstance(raw, bytes | bytearray):
            raw = raw.decode(json.detect_encoding(raw), "surrogatepass")  # what json.loads does with bytes
        if scan_depth and nests_too_deep(raw):
            raise _too_deep(field)
        value = _DECODER.decode(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, f"the body is not valid JSON: {error}", field) from None
    except RecursionError:
        raise _too_deep(field) from None
    if holds_lone_surrogate(raw):
        _refuse_lone_surrogates(value, field)
    return value


def _too_deep(field: str) -> ApiError:
    return ApiError(400, f"the JSON nests arrays and objects more than {MAX_JSON_DEPTH} deep", field)


def _refuse_lone_surrogates(value: Any, field: str) -> None:
    # The members of a body's object are named bare (password, description), as their other errors are.
    bad = lone_surrogate_field(value, "" if field == "body" else field)
    if bad is not None:
        raise ApiError(400, f"{bad} {LONE_SURROGATE}", bad)


def refresh_token(value: str) -> str:
    """A refresh token within the contract's length limit (longer is a 400, not an unknown token's 401)."""
    if len(value) > 512:
        raise ApiError(400, "refreshToken must have at most 512 characters", "refreshToken")
    return value


def string_fields(body: Any, limits: dict[str, int]) -> dict[str, str]:
    """Check a JSON object whose known fields are optional strings with a length limit; return those present.

    Unknown fields are ignored (old clients send extra ones); a known field of the wrong type or length is a 400.
    """
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object", "body")
    found: dict[str, str] = {}
    for key, limit in limits.items():
        if key not in body:
            continue
        value = body[key]
        if not isinstance(value, str):
            raise ApiError(400, f"{key} must be a string", key)
        if len(value) > limit:
            raise ApiError(400, f"{key} must have at most {limit} characters", key)
        found[key] = value
    return found


def _definitions(value: Any, field: str) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        raise ApiError(400, f"{field} must be a list of {{name, type}} objects", field)
    found: list[tuple[str, str]] = []
    for position, item in enumerate(value):
        where = f"{field}[{position}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(item.get("type"), str):
            raise ApiError(400, f"{where} must be an object with string name and type", where)
        check(IDENTIFIER_PATTERN, item["name"], f"{where}.name", "Python identifier")
        if item["type"] not in PARAMETER_TYPES:
            raise ApiError(400, f"{where}.type must be one of {', '.join(sorted(PARAMETER_TYPES))}", f"{where}.type")
        if any(name == item["name"] for name, _ in found):
            # 422, not 400: the body is schema-valid; uniqueness is a rule the contract states in words.
            raise ApiError(422, f"{where}.name {item['name']!r} is defined twice", f"{where}.name")
        found.append((item["name"], item["type"]))
    return found


# The contract's maxLength / maxItems of a service definition's fields.
_LIMITS = {
    "code": 1_048_576,
    "initCode": 1_048_576,
    "description": 4096,
    "inputParameterDefinitions": 1024,
    "outputParameterDefinitions": 1024,
    "outputFileNames": 1024,
}


def service_definition(body: Any, *, partial: bool) -> dict[str, Any]:
    """Check a publish (or, with ``partial``, a PATCH) body and return the fields it sets, normalised.

    Raises:
        ApiError: 400 naming the field for a wrong shape or value; 422 for code that does not compile or an
            unsupported runtimeType.

    """
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object", "body")
    known = {
        "snapshotId",
        "code",
        "description",
        "operationId",
        "inputParameterDefinitions",
        "outputParameterDefinitions",
        "runtimeType",
        "initCode",
        "outputFileNames",
        "consumeTimeout",
        *VECTORIZED_FIELDS,
    }
    fields: dict[str, Any] = {}
    for key, value in body.items():
        if key not in known:
            continue  # be liberal: old clients send extra fields
        if key in ("code", "initCode", "description", "snapshotId", "operationId", "runtimeType") and not isinstance(
            value, str
        ):
            raise ApiError(400, f"{key} must be a string", key)
        limit = _LIMITS.get(key)
        if limit is not None and isinstance(value, str | list) and len(value) > limit:
            unit = "items" if isinstance(value, list) else "characters"
            raise ApiError(400, f"{key} must have at most {limit} {unit}", key)
        fields[key] = value
    if not partial and not fields.get("code"):
        raise ApiError(400, "code is required and must not be empty", "code")
    for key in ("inputParameterDefinitions", "outputParameterDefinitions"):
        if key in fields:
            fields[key] = [{"name": n, "type": t} for n, t in _definitions(fields[key], key)]
    if "outputFileNames" in fields:
        names = fields["outputFileNames"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ApiError(400, "outputFileNames must be a list of file names", "outputFileNames")
        for position, name in enumerate(names):
            check(FILE_NAME_PATTERN, name, f"outputFileNames[{position}]", "plain file name")
    if "consumeTimeout" in fields:
        seconds = fields["consumeTimeout"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 1 <= seconds <= 86400:
            raise ApiError(400, "consumeTimeout must be a number of seconds from 1 to 86400", "consumeTimeout")
    if "vectorized" in fields and not isinstance(fields["vectorized"], bool):
        raise ApiError(400, "vectorized must be a boolean", "vectorized")
    if "maxBatchRows" in fields:
        rows = fields["maxBatchRows"]
        # 3385.0 is an integer to JSON Schema (and to the contract): taken as 3385.
        if isinstance(rows, float) and rows.is_integer():
            rows = fields["maxBatchRows"] = int(rows)
        if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= 100_000):
            raise ApiError(400, "maxBatchRows must be an integer from 1 to 100000", "maxBatchRows")
    if "operationId" in fields:
        check(IDENTIFIER_PATTERN, fields["operationId"], "operationId", "Python identifier")
    if "snapshotId" in fields:
        check(ID_PATTERN, fields["snapshotId"], "snapshotId", "snapshot id")
    if "runtimeType" in fields and fields["runtimeType"].lower() != "python":
        raise ApiError(
            422, f"runtimeType {fields['runtimeType']!r} is not supported; batchscore runs Python", "runtimeType"
        )
    for key in ("code", "initCode"):
        if fields.get(key):
            try:
                compile(fields[key], f"<{key}>", "exec")
            except (SyntaxError, ValueError) as error:
                raise ApiError(422, f"{key} does not compile: {error}", key) from None
    return fields


# A vectorized service's fields; a PATCH changing one of these or outputFileNames runs check_vectorized.
VECTORIZED_FIELDS = ("vectorized", "maxBatchRows")
VECTORIZED_CHECKED_FIELDS = (*VECTORIZED_FIELDS, "outputFileNames")


def check_vectorized(definition: dict[str, Any]) -> None:
    """Check a whole definition's vectorized fields against each other (a PATCH may set them one at a time).

    ``maxBatchRows`` without ``vectorized`` is kept and ignored, so turning ``vectorized`` off needs no second field.

    Raises:
        ApiError: 422 naming ``outputFileNames`` for a vectorized service that declares output files (its rows
            share one call of its code, so a file could not be told to a row).

    """
    if definition.get("vectorized") and definition.get("outputFileNames"):
        raise ApiError(
            422,
            "a vectorized service declares no outputFileNames: its rows run together in one call of its code",
            "outputFileNames",
        )


BATCH_MEDIA_TYPES = (
    "application/json",
    "application/x-ndjson",
    "application/jsonl",
    "application/json-seq",
    "text/csv",
)


def batch_media_type(content_type: str) -> str:
    """The media type of a batch body (JSON when none is given), or a 415 naming ``Content-Type``."""
    media_type = content_type.split(";")[0].strip().lower() or "application/json"
    if media_type not in BATCH_MEDIA_TYPES:
        raise ApiError(
            415,
            f"Content-Type {media_type} is not accepted; use application/json, application/x-ndjson or text/csv",
            "Content-Type",
        )
    return media_type


def iter_batch_records(body: BinaryIO, media_type: str, inputs: list[tuple[str, str]]) -> Iterator[str]:
    """Read, check and yield every record of a batch body, as the JSON text to store.

    NDJSON and CSV are read a line at a time, so memory does not grow with the batch; a JSON array is parsed
    whole (the SDK sends NDJSON).

    Args:
        body: The body, opened for reading in binary mode.
        media_type: From :func:`batch_media_type`.
        inputs: The service's inputs as ``(name, type)`` pairs.

    Yields:
        Each record as a JSON object's text, in order.

    Raises:
        ApiError: 400 naming ``body[<index>].<input>`` for the first invalid record, or ``body`` for a body that
            is not of its media type or has no records.

    """
    for text, _ in iter_batch_rows(body, media_type, inputs):
        yield text


def iter_batch_rows(
    body: BinaryIO,
    media_type: str,
    inputs: list[tuple[str, str]],
    passthrough: Sequence[str] = (),
    first_index: int = 0,
    *,
    slice_of_body: bool = False,
) -> Iterator[tuple[str, str | None]]:
    """As :func:`iter_batch_records`, with each record's passthrough values kept apart from its inputs.

    A record may carry the keys named in ``passthrough`` besides its inputs (any other key is still refused);
    they are taken out before the inputs are checked. ``first_index`` and ``slice_of_body``: the body is an NDJSON
    slice of a larger one, whose records are numbered from ``first_index`` in errors, and which may hold none.

    Yields:
        ``(inputs JSON text, passthrough JSON object text)``; the second is None when ``passthrough`` is empty.

    """
    count = 0
    passes = fast_record_check(inputs)
    for index, record, text in _parsed_records(body, media_type, inputs, first_index):
        extra = None
        if passthrough:
            extra, text = _split_passthrough(record, passthrough), None
        if passes is None or not passes(record):
            try:
                decode_inputs(inputs, record, f"body[{index}]")
            except InputError as error:
                raise ApiError(400, str(error), error.field) from None
        count += 1
        yield text if text is not None else json.dumps(record), extra
    if not count and not slice_of_body:
        raise ApiError(400, "the batch has no records", "body")


def iter_batch_slices(
    body: BinaryIO, media_type: str, inputs: list[tuple[str, str]], slice_rows: int
) -> Iterator[tuple[int, str]]:
    """Read and check a batch body a slice of records at a time: ``(records, their JSON array's text)``.

    What :func:`iter_batch_records` yields, joined into slices of about ``slice_rows`` records, with the same
    records and the same errors. An NDJSON body of scalar inputs is checked a slice at a time in C
    (``_ndjson_fast``), falling back to the record-at-a-time check for a slice that it does not accept whole.

    Raises:
        ApiError: As :func:`iter_batch_records`.

    """
    check = slice_checker(inputs) if media_type == "application/x-ndjson" else None
    if check is None:
        records = iter_batch_records(body, media_type, inputs)
        while texts := list(itertools.islice(records, slice_rows)):
            yield len(texts), "[" + ",".join(texts) + "]"
        return
    total = 0
    for lines in ndjson_slices(body, slice_rows):
        count = check(lines)
        if count is not None:
            # Each line is one whole JSON object (JSON text holds no raw newline), and valid UTF-8.
            yield count, "[" + lines.replace(b"\n", b",").decode() + "]"
        else:
            rows = iter_batch_rows(io.BytesIO(lines), media_type, inputs, (), total, slice_of_body=True)
            texts = [text for text, _ in rows]
            count = len(texts)
            if count:
                yield count, "[" + ",".join(texts) + "]"
        total += count
    if not total:
        raise ApiError(400, "the batch has no records", "body")


def _split_passthrough(record: Any, passthrough: Sequence[str]) -> str:
    """Take the passthrough keys out of a record (in place); their values as a JSON object's text."""
    values = {name: record.pop(name) for name in passthrough if name in record} if isinstance(record, dict) else {}
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False)


def _parsed_records(
    body: BinaryIO, media_type: str, inputs: list[tuple[str, str]], first_index: int = 0
) -> Iterator[tuple[int, Any, str | None]]:
    """``(index, record, its JSON text when the body already has it)`` for each record, parsed but not checked."""
    if media_type == "application/json":
        records = parse_json(body.read(), scan_depth=False)
        if not isinstance(records, list):
            raise ApiError(400, "the body must be a JSON array of input records", "body")
        yield from ((index, record, None) for index, record in enumerate(records))
    elif media_type == "text/csv":
        yield from csv_records(body, inputs)
    else:
        index = first_index
        for line in body:
            try:
                record_text = line.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise ApiError(400, f"body[{index}] is not UTF-8", f"body[{index}]") from None
            if not record_text:
                continue
            # The C scanner straight away (what JSONDecoder.decode calls after Python-level checks), as this runs
            # a million times for a large batch; anything short of one whole value gets parse_json's verdict.
            try:
                record, end = _SCAN(record_text, 0)
            except (StopIteration, ValueError, RecursionError):
                end = -1
            if end != len(record_text):
                record = parse_json(record_text, f"body[{index}]")  # named like a JSON array's records
            elif "\\u" in record_text and holds_lone_surrogate(record_text):
                _refuse_lone_surrogates(record, f"body[{index}]")
            # Valid JSON text once parsed, so it is stored as it came instead of being encoded again.
            yield index, record, record_text
            index += 1


def positive_number(
    value: str | None, field: str, *, integer: bool, maximum: float, minimum: float | None = None
) -> float | None:
    """Parse an optional positive query number, at least ``minimum`` if given (400 naming the field if not)."""
    if value is None:
        return None
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ApiError(400, f"{field} must be {kind}, got {value[:40]!r}", field) from None
    if not math.isfinite(number) or number <= 0 or number > maximum:
        raise ApiError(400, f"{field} must be greater than 0 and at most {maximum:.0f}", field)
    if minimum is not None and number < minimum:
        raise ApiError(400, f"{field} must be at least {minimum:g} and at most {maximum:.0f}", field)
    return number
