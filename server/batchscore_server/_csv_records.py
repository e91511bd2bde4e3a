"""Reading a ``text/csv`` batch body: a slice of rows at a time, as fast per row as an NDJSON body.

A ``csv.DictReader`` row and :func:`coerce_text_record` per row, then ``json.dumps`` of the result, made CSV ingest
about 4 times slower per row than NDJSON (a 1.7M-row CSV took longer end to end than the same rows as NDJSON,
twice its size). Here ``csv.reader`` gives a slice of rows and each column of the slice is converted at once by a
converter chosen from the header (``map(float, ...)`` and the like, run in C). Each record's JSON text is joined
from its cells: a column whose cells are all JSON numbers already (what the SDK writes) is copied as it is, like
an NDJSON line, as the number's ``repr`` would cost more than the rest together. A slice the converters do not
take whole (a bad cell, a ragged row, a NaN, a vector input) is read the old way, a row at a time through
:func:`coerce_text_record`, which gives the same values and the same errors as before, in the same order.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any, BinaryIO

from batchscore_server._errors import ApiError
from batchscore_server._types import InputError, coerce_text_record

SLICE_ROWS = 2_000
_INTEGER = re.compile(r"[+-]?[0-9]+")  # what coerce_text_record takes (int() alone also takes "1_000")
_LOGICAL = {"true": True, "1": True, "false": False, "0": False}
_LOGICAL_JSON = {True: "true", False: "false"}
_NUMBER_CHARACTERS = frozenset("0123456789.-eE,")
_NOT_JSON = (",.", "-.", ".,", ".e", ".E")  # .5 -.5 5. 5.e3: float() takes them, JSON does not
_ZERO_FIRST = (",0.", ",0e", ",0E", ",0,", "-0.", "-0e", "-0E")  # what may follow a leading 0 (not -0: an int)


def _numeric(cells: Sequence[str]) -> list[float]:
    values = list(map(float, cells))
    # A NaN or an infinity makes the sum one; the old way then hands it on for decode_inputs's own refusal.
    if not math.isfinite(sum(values)):
        raise ValueError("not all finite")
    return values


def _integer(cells: Sequence[str]) -> list[int]:
    if not all(map(_INTEGER.fullmatch, map(str.strip, cells))):
        raise ValueError("not all integers")
    return list(map(int, cells))  # int() skips the spaces around


def _json_numbers(cells: Sequence[str]) -> bool:
    """Whether cells that ``float()`` took are JSON numbers read back as the same floats (a few may be refused).

    A check of the joined column with C string methods: the regular expression of JSON's number grammar, or the
    numbers' ``repr``, took longer than the rest of the ingest together.
    """
    joined = "," + ",".join(cells) + ","
    if not _NUMBER_CHARACTERS.issuperset(joined) or any(part in joined for part in _NOT_JSON):
        return False
    # No leading zeros ("007"), and no "-0" (JSON's integer 0 loses float's sign); "1e-05" is refused too.
    return joined.count(",0") + joined.count("-0") == sum(map(joined.count, _ZERO_FIRST))


def _logical(cells: Sequence[str]) -> list[bool]:
    return list(map(_LOGICAL.__getitem__, map(str.lower, map(str.strip, cells))))


@dataclass(frozen=True)
class _Column:
    """How a column's cells become values, and values JSON text (``as_is``: cells that match are that text)."""

    convert: Callable[[Sequence[str]], list[Any]]
    encode: Callable[[Any], str]
    as_is: Callable[[Sequence[str]], bool] | None = None

    def json_texts(self, cells: Sequence[str], values: list[Any]) -> Iterator[str] | Sequence[str]:
        """The column's values as JSON texts: the cells themselves if ``as_is`` says they are."""
        if self.as_is is not None and self.as_is(cells):
            return cells  # the worker reads them back as the same numbers (decode_inputs's float() of the JSON)
        return map(self.encode, values)


# By input type; a column that is no input keeps its text, for decode_inputs to name it.
_COLUMNS: dict[str | None, _Column] = {
    "numeric": _Column(_numeric, float.__repr__, _json_numbers),  # repr: what json.dumps writes
    "integer": _Column(_integer, int.__repr__),
    "logical": _Column(_logical, _LOGICAL_JSON.__getitem__),
    "character": _Column(list, encode_basestring_ascii),
    None: _Column(list, encode_basestring_ascii),
}


def csv_records(body: BinaryIO, inputs: list[tuple[str, str]]) -> Iterator[tuple[int, dict[str, Any], str | None]]:
    """``(index, record, its JSON text or None)`` for each CSV row, coerced as :func:`coerce_text_record` does.

    Blank lines are skipped and a header alone gives no records, as with ``csv.DictReader``.

    Raises:
        ApiError: 400 for a body that is not UTF-8 or not well-formed CSV, a row with more cells than the header,
            or a cell that cannot be read as its input's type.

    """
    text = io.TextIOWrapper(body, encoding="utf-8-sig", newline="")
    # strict: a body that ends inside a quoted cell is an error (its last record was accepted cut short).
    reader = csv.reader(text, strict=True)
    header: list[str] | None = None
    index = 0
    rows: list[list[str]] = []
    try:
        header = next(reader, None)
        if header is None:
            return
        types = dict(inputs)
        # Every column of a scalar type (or no input) and none twice: else every slice goes the old way.
        fast = len(set(header)) == len(header) and all(types.get(name) in _COLUMNS for name in header)
        columns = [_COLUMNS[types.get(name)] if fast else _COLUMNS[None] for name in header]
        # The JSON text between the values: '{"hp": ', ', "wt": ', '}' (json.dumps's separators).
        keys = [encode_basestring_ascii(name) + ": " for name in header]
        between = ["{" + keys[0], *(", " + key for key in keys[1:]), "}"]
        while True:
            rows = []
            for row in reader:
                if row:  # a blank line is no record
                    rows.append(row)
                    if len(rows) == SLICE_ROWS:
                        break
            if not rows:
                return
            converted = _convert(columns, between, rows) if fast else None
            if converted is None:
                for offset, row in enumerate(rows):
                    yield index + offset, _row_record(header, row, inputs, index + offset), None
            else:
                # map in C, not a comprehension: this runs for every row.
                records = map(dict, map(zip, itertools.repeat(header), converted[0]))
                yield from zip(range(index, index + len(rows)), records, converted[1], strict=True)
            index += len(rows)
    except UnicodeDecodeError:
        raise ApiError(400, "the CSV body is not UTF-8", "body") from None
    except csv.Error as error:
        where = "body" if header is None else f"body[{index + len(rows)}]"  # the header, or the row being read
        raise ApiError(400, f"the CSV body is malformed at {where}: {error}", where) from None
    finally:
        text.detach()  # the caller closes the body


def _convert(
    columns: list[_Column], between: list[str], rows: list[list[str]]
) -> tuple[list[tuple[Any, ...]], list[str]] | None:
    """The slice's rows of values and their JSON texts, or None when a cell is not plainly its type."""
    try:
        cells = list(zip(*rows, strict=True))
        if len(cells) != len(columns):
            return None
        values = [column.convert(column_cells) for column, column_cells in zip(columns, cells, strict=True)]
    except (ValueError, KeyError):
        return None
    pieces: list[Any] = [itertools.repeat(between[0])]
    for column, column_cells, column_values, after in zip(columns, cells, values, between[1:], strict=True):
        pieces += [column.json_texts(column_cells, column_values), itertools.repeat(after)]
    return list(zip(*values, strict=True)), list(map("".join, zip(*pieces, strict=False)))


def _row_record(header: list[str], row: list[str], inputs: list[tuple[str, str]], index: int) -> dict[str, Any]:
    """The row as ``csv.DictReader`` gives it, through :func:`coerce_text_record` (400 for a bad row)."""
    if len(row) > len(header):
        raise ApiError(400, f"CSV row {index} has more cells than the header", f"body[{index}]")
    cells: dict[str, str | None] = dict.fromkeys(header)
    cells.update(zip(header, row, strict=False))
    try:
        return coerce_text_record(inputs, cells, f"body[{index}]")  # type: ignore[arg-type]  # None: no cell
    except InputError as error:
        raise ApiError(400, str(error), error.field) from None
