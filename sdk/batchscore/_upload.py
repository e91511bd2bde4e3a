"""A batch's request body: CSV for file sources, NDJSON otherwise; measured before it is sent, shown while it goes.

Why CSV: a CSV or Parquet file re-encoded as NDJSON is about 4x larger (every record repeats every column name),
so a 200 MB CSV became an 800 MB body over the server's 256 MiB limit. File sources (CSV, TSV, Parquet) now go up
as ``text/csv``, written so that the server's CSV reader gives back the same values with the same types: numbers
in Python's round-trip ``repr``, whole numbers without a decimal point, ``true``/``false``, text as it is (quoted
when needed) and ``vector``/``matrix``/``data.frame`` cells as JSON. CSV has no null for a scalar, so the other
sources (DataFrames, lists of dicts, dicts of columns, NDJSON files), whose values may be anything JSON allows,
keep NDJSON.

The body's exact size is counted while the records are checked (before anything is sent), so the SDK refuses a
body over the server's limit (``GET /status``'s ``details.maxBodyBytes``) without uploading it, and says how many
rows a batch may hold instead.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from batchscore._exceptions import BatchTooLargeError, InvalidRecordError
from batchscore._models import Parameter
from batchscore._records import (
    _ENCODER,
    UPLOAD_CHUNK_BYTES,
    Record,
    RecordSource,
    RecordStream,
    _plain,
    check_record,
)

CSV = "text/csv"
NDJSON = "application/x-ndjson"
_CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
_SCALAR_TYPES = {"numeric", "integer", "logical", "character"}
_PASSTHROUGH = "passthrough"  # the CSV "type" of a passthrough column: its cells go as text
UNCHECKED_BODY_BYTES = 1024 * 1024
# Records an NDJSON block encodes at once: ~25 KB for small records, under a 64 KiB upload chunk.
NDJSON_BLOCK_RECORDS = 1000
_NDJSON = msgspec.json.Encoder(enc_hook=_plain)  # `batchscore serve --max-body-mb` is at least 1
ProgressHook = Callable[[int, int], None]  # (bytes, rows) sent since the last call


def media_type_for(source: RecordSource) -> str:
    """``text/csv`` for a CSV, TSV or Parquet file, ``application/x-ndjson`` for every other source."""
    if isinstance(source, str | os.PathLike) and Path(source).suffix.lower() in _CSV_SUFFIXES:
        return CSV
    return NDJSON


def encoder(
    media_type: str, inputs: Sequence[Parameter], passthrough: Sequence[str] = ()
) -> Callable[[Iterator[Record]], Iterator[tuple[bytes, int]]]:
    """A function that turns records into the body's lines (the CSV header first): ``(bytes, records in them)``.

    CSV columns: the inputs, then the ``passthrough`` columns (their cells as text, as the server keeps them).
    """
    if media_type == CSV:
        return lambda records: _csv_lines(records, inputs, passthrough)
    return _ndjson_blocks


def _ndjson_blocks(records: Iterator[Record]) -> Iterator[tuple[bytes, int]]:
    """NDJSON lines a block of records at a time: ``(lines, records)``.

    One ``msgspec`` call encodes a block in C; ``json`` a record at a time was most of the time a 1M-row start
    spent in the client (1.3 s of 2). A block it cannot encode (a string with a lone surrogate, a type it does
    not know) is encoded the old way, record by record, for the same text ``json`` gives or the same error.
    """
    while block := list(itertools.islice(records, NDJSON_BLOCK_RECORDS)):
        try:
            lines = _NDJSON.encode_lines(block)
        except (TypeError, ValueError, UnicodeEncodeError, OverflowError):
            lines = b"".join(_ENCODER.encode(record).encode() + b"\n" for record in block)
        yield lines, len(block)


def _csv_lines(
    records: Iterator[Record], inputs: Sequence[Parameter], passthrough: Sequence[str]
) -> Iterator[tuple[bytes, int]]:
    names = [p.name for p in inputs] + list(passthrough)
    types = [p.type for p in inputs] + [_PASSTHROUGH] * len(passthrough)
    buffer = io.StringIO()
    # lineterminator "\n" and QUOTE_MINIMAL: what csv.DictReader reads back; a cell with a newline is quoted.
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    yield buffer.getvalue().encode(), 0  # the header is no record
    for index, record in enumerate(records):
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(
            [_csv_cell(kind, record.get(name), index, name) for name, kind in zip(names, types, strict=True)]
        )
        yield buffer.getvalue().encode(), 1


def _csv_cell(kind: str, value: Any, index: int, name: str) -> str:
    if kind == _PASSTHROUGH:
        return "" if value is None else str(value)
    if value is None and kind in _SCALAR_TYPES:
        # check_record refuses these first; CSV could only write an empty cell, which the server refuses anyway.
        raise InvalidRecordError(f"row {index}, column {name!r}: CSV has no missing value for {kind}", index, name)
    if kind == "logical":
        return "true" if value else "false"
    if kind == "integer":
        return str(int(value))  # 3.0 from a float column: the server's integer cell takes digits only
    if kind == "numeric":
        return repr(float(value))  # the shortest text that reads back as the same float
    if kind == "character":
        return str(value)
    return _ENCODER.encode(value)  # vector, matrix and data.frame cells hold JSON


def measure(
    factory: Callable[[], Iterator[Record]],
    inputs: Sequence[Parameter],
    media_type: str,
    passthrough: Sequence[str] = (),
    na: str = "error",
) -> tuple[int, int]:
    """Check every record (see ``check_record``) and count the body's bytes: ``(records, bytes)``.

    Raises:
        InvalidRecordError: The first record that does not match, or no records at all.

    """
    encode = encoder(media_type, inputs, passthrough)
    count = 0
    size = 0

    def checked() -> Iterator[Record]:
        nonlocal count
        for record in factory():
            check_record(record, inputs, count, passthrough, na)
            count += 1
            yield record

    for lines, _ in encode(checked()):
        size += len(lines)
    if count == 0:
        raise InvalidRecordError("the batch has no records", None, None)
    return count, size


def check_size(size: int, rows: int, limit: int | None, media_type: str) -> None:
    """Refuse a body over the server's limit before sending it, saying how many rows a batch may hold.

    Raises:
        BatchTooLargeError: ``size`` is over ``limit`` (None: the server does not say; nothing is checked).

    """
    if limit is None or size <= limit:
        return
    # 90 % of the limit: rows are not all the same length, and each batch carries its own CSV header.
    split = max(1, math.floor(rows * limit * 0.9 / size))
    kind = "CSV" if media_type == CSV else "NDJSON"
    raise BatchTooLargeError(
        f"the records are {_size_text(size)} as {kind}, over the server's limit of {_size_text(limit)}: start "
        f"several batches of at most {split} rows each (the CLI's `batchscore batch start --split-rows {split}`)",
        size=size,
        limit=limit,
        split_rows=split,
    )


def _size_text(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.0f} MiB"
    if count >= 1024:
        return f"{count / 1024:.0f} KiB"
    return f"{count} bytes"


class UploadBody(RecordStream):
    """A batch body of either media type, generated anew each time it is sent (a retry resends it).

    ``on_chunk`` hears of every chunk as it is handed to the connection, with its bytes and records.
    """

    def __init__(
        self,
        factory: Callable[[], Iterator[Record]],
        inputs: Sequence[Parameter],
        media_type: str,
        on_chunk: ProgressHook | None = None,
        passthrough: Sequence[str] = (),
    ) -> None:
        super().__init__(factory)
        self.media_type = media_type
        self._encode = encoder(media_type, inputs, passthrough)
        self.on_chunk = on_chunk

    def __iter__(self) -> Iterator[bytes]:
        """Yield the body in chunks of about 64 KiB."""
        buffer: list[bytes] = []
        size = 0
        rows = 0
        for lines, count in self._encode(self._factory()):
            buffer.append(lines)
            size += len(lines)
            rows += count
            if size >= UPLOAD_CHUNK_BYTES:
                yield self._sent(buffer, size, rows)
                buffer, size, rows = [], 0, 0
        if buffer:
            yield self._sent(buffer, size, rows)

    def _sent(self, buffer: list[bytes], size: int, rows: int) -> bytes:
        if self.on_chunk is not None:
            self.on_chunk(size, rows)
        return b"".join(buffer)


def upload_bar(total_bytes: int, rows: int) -> tuple[ProgressHook | None, Callable[[], None]]:
    """A tqdm bar of bytes sent that also shows the records sent, in a terminal or notebook: ``(hook, close)``."""
    if not (sys.stderr.isatty() or "ipykernel" in sys.modules):
        return None, lambda: None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None, lambda: None
    bar = tqdm(total=total_bytes, desc="upload", unit="B", unit_scale=True, unit_divisor=1024, dynamic_ncols=True)
    sent = 0

    def hook(size: int, count: int) -> None:
        nonlocal sent
        sent += count
        bar.update(size)
        bar.set_postfix_str(f"{sent}/{rows} rows", refresh=False)

    return hook, bar.close


def row_slice(factory: Callable[[], Iterator[Record]], start: int, stop: int) -> Callable[[], Iterator[Record]]:
    """A factory of the records ``start`` to ``stop`` of ``factory``'s (a part of a split batch)."""
    return lambda: itertools.islice(factory(), start, stop)
