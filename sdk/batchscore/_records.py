"""Batch records from any tabular source, checked against a service's inputs, uploaded as a streamed NDJSON body.

Sources: a pandas DataFrame, a list of dicts, a dict of columns, or a path to a CSV, TSV, Parquet or NDJSON
file. Every record is checked before anything is sent (an error names the row and the column), then the body is
generated again while it uploads, so a large batch is never held in memory as one JSON array.
"""

from __future__ import annotations

import csv
import json
import math
import numbers
import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from batchscore._exceptions import InvalidRecordError
from batchscore._models import Parameter

Record = dict[str, Any]
RecordSource = Any  # a DataFrame, a sequence of mappings, a mapping of columns, or a path
UPLOAD_CHUNK_BYTES = 64 * 1024
_DATAFRAME_SLICE_ROWS = 10_000
_TEXT_TYPES = {"logical", "numeric", "integer", "character"}


def record_factory(source: RecordSource, inputs: Sequence[Parameter]) -> Callable[[], Iterator[Record]]:
    """Return a function that yields the source's records afresh each time it is called.

    Raises:
        InvalidRecordError: The source is of no supported kind, or a file type is unknown.
        FileNotFoundError: A path that does not exist.

    """
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no such records file: {path}")
        suffix = path.suffix.lower()
        if suffix in (".csv", ".tsv", ".txt"):
            delimiter = "\t" if suffix == ".tsv" else ","
            return lambda: _delimited_records(path, delimiter, inputs)
        if suffix in (".ndjson", ".jsonl"):
            return lambda: _ndjson_records(path)
        if suffix in (".parquet", ".pq"):
            return lambda: _parquet_records(path)
        raise InvalidRecordError(
            f"unknown records file type {suffix!r}: use .csv, .tsv, .parquet or .ndjson", None, None
        )
    if _is_dataframe(source):
        return lambda: _dataframe_records(source)
    if isinstance(source, Mapping):
        columns = {str(name): list(values) for name, values in source.items()}
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            raise InvalidRecordError("the columns of a dict of columns must have the same length", None, None)
        count = lengths.pop() if lengths else 0
        return lambda: ({name: values[row] for name, values in columns.items()} for row in range(count))
    if isinstance(source, Sequence) and not isinstance(source, str | bytes):
        rows = list(source)
        return lambda: (dict(row) if isinstance(row, Mapping) else row for row in rows)
    raise InvalidRecordError(
        f"records must be a DataFrame, a list of dicts, a dict of columns or a file path, not {type(source).__name__}",
        None,
        None,
    )


def check_records(
    records: Iterable[Any], inputs: Sequence[Parameter], passthrough: Sequence[str] = (), na: str = "error"
) -> int:
    """Check every record against the service's inputs; return how many there are.

    Args:
        records: The records.
        inputs: The service's inputs.
        passthrough: Extra columns the records may carry (kept with the batch, not given to the service).
        na: ``"null"``: a missing value (None) of a ``numeric`` input passes (the server takes it as NaN).

    Raises:
        InvalidRecordError: The first record that does not match, naming its row and column.

    """
    count = 0
    for index, record in enumerate(records):
        check_record(record, inputs, index, passthrough, na)
        count += 1
    if count == 0:
        raise InvalidRecordError("the batch has no records", None, None)
    return count


def check_record(
    record: Any, inputs: Sequence[Parameter], index: int | None, passthrough: Sequence[str] = (), na: str = "error"
) -> None:
    """Check one record (a consume's inputs when ``index`` is None); see :func:`check_records`.

    Raises:
        InvalidRecordError: Naming the row and the column that do not match.

    """
    where = "the inputs" if index is None else f"row {index}"
    if not isinstance(record, Mapping):
        raise InvalidRecordError(f"{where}: a record must be a mapping of input names to values", index, None)
    names = {p.name for p in inputs}
    for key in record:
        if key not in names and key not in passthrough:
            raise InvalidRecordError(_unknown_column(where, str(key), names, record, index), index, str(key))
    for parameter in inputs:
        if parameter.name not in record:
            raise InvalidRecordError(f"{where}: input {parameter.name!r} is missing", index, parameter.name)
        value = record[parameter.name]
        if _is_missing(value) and index is not None:
            if parameter.type == "numeric" and na == "null" and value is None:
                continue
            raise InvalidRecordError(_missing_value(where, parameter, na), index, parameter.name)
        problem = _type_problem(parameter.type, value)
        if problem is not None:
            raise InvalidRecordError(f"{where}, column {parameter.name!r}: {problem}", index, parameter.name)


def _unknown_column(where: str, key: str, names: set[str], record: Mapping[str, Any], index: int | None) -> str:
    message = f"{where}, column {key!r}: the service has no such input (it takes {', '.join(sorted(names))})"
    if index is None:
        return message
    # A table's ID or other extra columns: say how to keep them instead of refusing the batch without a way out.
    extra = [str(name) for name in record if name not in names]
    return f"{message}; to keep extra columns with the results, use passthrough={extra!r}"


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _missing_value(where: str, parameter: Parameter, na: str) -> str:
    message = f"{where}, column {parameter.name!r}: a missing value (NaN or None)"
    if parameter.type != "numeric":
        return f'{message}; an input of type {parameter.type} cannot take one (only numeric inputs can, with na="null")'
    return f'{message}; use na="null" to send it as null (the service gets NaN)'


def missing_as_null(factory: Callable[[], Iterator[Record]]) -> Callable[[], Iterator[Record]]:
    """The records of ``factory`` with NaN values as None (``na="null"``: sent as JSON null)."""

    def records() -> Iterator[Record]:
        for record in factory():
            if isinstance(record, dict) and any(isinstance(v, float) and math.isnan(v) for v in record.values()):
                record = {key: None if isinstance(v, float) and math.isnan(v) else v for key, v in record.items()}
            yield record

    return records


def _type_problem(kind: str, value: Any) -> str | None:
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool) and type(value).__name__ != "bool_"
    if kind == "numeric":
        if not is_number:
            return f"expected a number, got {value!r}"
        if not math.isfinite(float(value)):
            return f"expected a finite number, got {value!r}"
    elif kind == "integer":
        if not (isinstance(value, numbers.Integral) and is_number) and not (
            is_number and math.isfinite(float(value)) and float(value).is_integer()
        ):
            return f"expected a whole number, got {value!r}"
    elif kind == "logical":
        if not isinstance(value, bool):
            return f"expected true or false, got {value!r}"
    elif kind == "character":
        if not isinstance(value, str):
            return f"expected text, got {value!r}"
    elif kind in ("vector", "matrix"):
        if not isinstance(value, list):
            return f"expected a list, got {type(value).__name__}"
    elif kind == "data.frame" and not isinstance(value, Mapping | list):
        return f"expected columns ({{name: [values]}}), got {type(value).__name__}"
    return None


class RecordStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """An NDJSON request body generated from the records each time it is sent (so a retry can resend it)."""

    replayable = True

    def __init__(self, factory: Callable[[], Iterator[Record]]) -> None:
        self._factory = factory

    def __iter__(self) -> Iterator[bytes]:
        """Yield the body in chunks of about 64 KiB."""
        buffer: list[bytes] = []
        size = 0
        for record in self._factory():
            line = _ENCODER.encode(record).encode() + b"\n"
            buffer.append(line)
            size += len(line)
            if size >= UPLOAD_CHUNK_BYTES:
                yield b"".join(buffer)
                buffer, size = [], 0
        if buffer:
            yield b"".join(buffer)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Yield the body in chunks of about 64 KiB."""
        for chunk in self:
            yield chunk

    def for_async(self) -> AsyncRecordStream:
        """The same body as an async iterable only (httpx picks the sync form of an object that has both)."""
        return AsyncRecordStream(self)


class AsyncRecordStream:
    """A :class:`RecordStream` seen as an async iterable, generated anew each time it is sent."""

    replayable = True

    def __init__(self, stream: RecordStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Yield the body in chunks of about 64 KiB."""
        for chunk in self._stream:
            yield chunk


def _plain(value: Any) -> Any:
    """JSON for numpy scalars and arrays found in lists of dicts (``json`` knows only Python's own types)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# One encoder for every record: json.dumps with options builds a new one per call, a third of the time it takes.
_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"), default=_plain)


def _is_dataframe(source: object) -> bool:
    return type(source).__name__ == "DataFrame" and hasattr(source, "to_json")


def _dataframe_records(frame: Any) -> Iterator[Record]:
    # to_json turns NaN into null and numpy scalars and timestamps into JSON, which json.dumps of the raw
    # values would not; slicing keeps the memory of one slice, not of the whole frame as text.
    for start in range(0, len(frame), _DATAFRAME_SLICE_ROWS):
        chunk = frame.iloc[start : start + _DATAFRAME_SLICE_ROWS]
        yield from json.loads(chunk.to_json(orient="records", date_format="iso"))


def _delimited_records(path: Path, delimiter: str, inputs: Sequence[Parameter]) -> Iterator[Record]:
    types = {p.name: p.type for p in inputs}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for index, row in enumerate(csv.DictReader(handle, delimiter=delimiter)):
            yield {name: _convert_cell(types.get(name), value, index, name) for name, value in row.items()}


def _convert_cell(kind: str | None, text: str | None, index: int, name: str) -> Any:
    if text is None:
        raise InvalidRecordError(f"row {index}: the line has fewer cells than the header", index, name)
    try:
        if kind == "numeric":
            return float(text) if text.strip() else math.nan  # an empty cell is a missing value (see na=)
        if kind == "integer":
            return int(text)
        if kind == "logical":
            lowered = text.strip().lower()
            if lowered in ("true", "t", "1", "yes"):
                return True
            if lowered in ("false", "f", "0", "no"):
                return False
            raise ValueError(text)
        if kind in _TEXT_TYPES or kind is None:
            return text
        return json.loads(text)  # vector, matrix and data.frame cells hold JSON
    except ValueError:
        raise InvalidRecordError(f"row {index}, column {name!r}: cannot read {text!r} as {kind}", index, name) from None


def _ndjson_records(path: Path) -> Iterator[Record]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as error:
                    raise InvalidRecordError(
                        f"line {number + 1} of {path.name} is not JSON: {error}", None, None
                    ) from None


def _parquet_records(path: Path) -> Iterator[Record]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidRecordError("reading Parquet needs pyarrow: pip install pyarrow", None, None) from None
    for batch in pq.ParquetFile(path).iter_batches(batch_size=_DATAFRAME_SLICE_ROWS):
        yield from _dataframe_records(batch.to_pandas())
