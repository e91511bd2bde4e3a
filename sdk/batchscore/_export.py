"""The streamed results export (``GET .../results``): one flow, driven by both clients, that reads it line by line.

The export ends with an end record whose ``records`` counts the lines before it: a download without it, or with
another count, was cut short. A connection that breaks mid-stream is resumed with ``since`` from the last whole
record's ``cursor`` (a few times, with backoff); a stream that ends cleanly but without its end record, or with
a wrong count, raises :class:`~batchscore.IncompleteExportError`.

Nothing here holds more than one network chunk of text plus the records it completed: the caller gets each
chunk's records (:class:`~batchscore._wire.Emit`) before the next chunk is read.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from batchscore._exceptions import APIConnectionError, BatchCanceledError, BatchFailedError, IncompleteExportError
from batchscore._files import partial_file
from batchscore._models import BatchState, BatchStatus, ExecutionAttempt, ExecutionResult
from batchscore._retry import PollPolicy
from batchscore._wire import CloseStream, Emit, OpenStream, ReadStream, Sleep
from batchscore_client.api.batch import export_batch_execution_results
from batchscore_client.models import ExportBatchExecutionResultsOrder

ExportFormat = Literal["ndjson", "csv"]
ExportOrder = Literal["input", "completion"]
MEDIA_TYPES: dict[str, str] = {"ndjson": "application/x-ndjson", "csv": "text/csv"}
CSV_END = "#end "
CURSOR_COLUMN = 5  # index,itemState,attempt,success,errorMessage,cursor,...
MAX_RESUMES = 5  # connections broken mid-stream in a row before giving up
RESUME_DELAY = 0.5  # seconds before the first resume, doubled each time (at most MAX_RESUME_DELAY)
MAX_RESUME_DELAY = 8.0


@dataclass
class ExportState:
    """Where an export is: updated as records arrive, so a caller (or a resume) knows how far it got.

    Attributes:
        cursor: The last whole record's cursor (or the end record's, once read): resume after it.
        records: Record lines received in all (over resumed requests).
        end: The last end record read (None until one is).
        csv_header: The CSV header line, once read (a resumed request's header is not handed out again).

    """

    cursor: str = "0"
    records: int = 0
    end: dict[str, Any] | None = None
    csv_header: str | None = None
    request: httpx.Request = field(default_factory=lambda: httpx.Request("GET", "http://unknown.invalid/"))

    @classmethod
    def after(cls, since: str) -> ExportState:
        """The state of an export that starts after the cursor ``since`` (no CSV header when it is not 0).

        Raises:
            ValueError: ``since`` is not a cursor (1 to 18 digits).

        """
        if not (since.isascii() and since.isdigit() and len(since) <= 18):
            raise ValueError(f"since must be a cursor (1 to 18 digits), not {since!r}")
        return cls(cursor=since, csv_header=None if since == "0" else "")


def check_options(order: str, format: str) -> None:  # the public keyword is ``format``
    """Refuse an unknown order or format before any request.

    Raises:
        ValueError: Neither ``input`` nor ``completion``, or neither ``ndjson`` nor ``csv``.

    """
    if order not in ("input", "completion"):
        raise ValueError(f"order must be 'input' or 'completion', not {order!r}")
    if format not in MEDIA_TYPES:
        raise ValueError(f"format must be 'ndjson' or 'csv', not {format!r}")


class _Reader:
    """Splits one response's text into whole records; knows the end record and checks the count."""

    def __init__(self, state: ExportState, csv_format: bool, parsed: bool) -> None:
        self._state = state
        self._csv = csv_format
        self._parsed = parsed
        self._carry = ""
        self._pending = ""  # a CSV record whose quoted field goes on over more lines
        self._header_seen = False
        self.count = 0
        self.end: dict[str, Any] | None = None

    def feed(self, text: str) -> list[Any]:
        """The whole records ``text`` completes (raw lines, or parsed objects with ``parsed``)."""
        lines = (self._carry + text).split("\n")
        self._carry = lines.pop()
        items: list[Any] = []
        for line in lines:
            self._line(line, items)
        return items

    def _line(self, line: str, items: list[Any]) -> None:
        if self.end is not None:
            if line.strip():
                raise self._incomplete("the export sent more after its end record")
            return
        if self._csv:
            self._csv_line(line, items)
            return
        if not line.strip():
            return
        record = json.loads(line)
        if record.get("end") is True:
            self.end = record
            return
        self._took(str(record["cursor"]))
        items.append(record if self._parsed else line + "\n")

    def _csv_line(self, line: str, items: list[Any]) -> None:
        if not self._pending and line.startswith(CSV_END):
            self.end = json.loads(line[len(CSV_END) :])
            return
        self._pending += line + "\n"
        if self._pending.count('"') % 2:  # inside a quoted field: the record goes on
            return
        text, self._pending = self._pending, ""
        if not self._header_seen:
            self._header_seen = True
            if self._state.csv_header is None:
                self._state.csv_header = text
                items.append(text)
            return
        row = next(csv.reader(io.StringIO(text)))
        self._took(row[CURSOR_COLUMN])
        items.append(row if self._parsed else text)

    def _took(self, cursor: str) -> None:
        self.count += 1
        self._state.records += 1
        self._state.cursor = cursor

    def finish(self) -> dict[str, Any]:
        """The end record, after the last chunk.

        Raises:
            IncompleteExportError: None arrived, or its ``records`` is not the count of records received.

        """
        if self._carry:
            self._line(self._carry, [])  # a last line without its newline (only the end record can be one)
            self._carry = ""
        if self.end is None:
            raise self._incomplete(f"the export ended without its end record after {self.count} records")
        if self.end.get("records") != self.count:
            counted = self.end.get("records")
            raise self._incomplete(f"the export's end record counts {counted} records, {self.count} came")
        self._state.end = self.end
        self._state.cursor = str(self.end.get("cursor", self._state.cursor))
        return self.end

    def _incomplete(self, message: str) -> IncompleteExportError:
        return IncompleteExportError(message, self._state.request, self._state.records, self._state.cursor)


def export(
    name: str,
    version: str,
    execution_id: str,
    order: str,
    format: str,
    state: ExportState,
    *,
    parsed: bool,
) -> Any:
    """The export flow: stream every record after ``state.cursor``, handing out each chunk's records.

    Records are the raw lines (CSV: the header once, then each record's text) or, with ``parsed``, NDJSON
    objects or CSV rows as lists. ``state`` says how far it got; ``state.end`` is the end record once whole.

    Raises:
        IncompleteExportError: The stream ended without its end record, with a wrong count, or broke more than
            ``MAX_RESUMES`` times in a row.

    """
    resumes = 0
    media = MEDIA_TYPES[format]
    order_value = ExportBatchExecutionResultsOrder(order)
    while True:
        reader = _Reader(state, format == "csv", parsed)
        arguments = (name, version, execution_id)
        kwargs = {"order": order_value, "since": state.cursor}
        state.request = httpx.Request("GET", str(export_batch_execution_results._get_kwargs(*arguments)["url"]))
        handle = yield OpenStream(export_batch_execution_results, arguments, kwargs, {"Accept": media})
        try:
            while (chunk := (yield ReadStream(handle))) is not None:
                items = reader.feed(chunk)
                if items:
                    resumes = 0  # progress: a later break gets its own resumes
                    yield Emit(items)
        except IncompleteExportError:
            raise
        except APIConnectionError as error:
            yield CloseStream(handle)
            resumes += 1
            if resumes > MAX_RESUMES:
                message = f"the export broke off {resumes} times in a row: {error}"
                raise IncompleteExportError(message, state.request, state.records, state.cursor) from error
            yield Sleep(min(RESUME_DELAY * 2 ** (resumes - 1), MAX_RESUME_DELAY))
            continue
        yield CloseStream(handle)
        reader.finish()
        return


def follow(
    name: str,
    version: str,
    execution_id: str,
    state: ExportState,
    policy: PollPolicy,
    poll_interval: float | None,
    final_status: Callable[[], Any],
) -> Any:
    """Export in completion order until the batch has finished, resuming from each end record's cursor.

    Hands out each record as an :class:`ExecutionResult` once; between exports of an unfinished batch it
    sleeps as ``wait()`` does (longer while nothing new came).

    Raises:
        BatchFailedError: The batch failed (after every finished record was handed out).
        BatchCanceledError: The batch was canceled.

    """
    delay = poll_interval if poll_interval is not None else policy.initial
    while True:
        before = state.records
        yield from _results(export(name, version, execution_id, "completion", "ndjson", state, parsed=True))
        end = state.end or {}
        batch_state = BatchState.parse(end.get("state"))
        if batch_state.is_final:
            break
        if poll_interval is None:
            delay = policy.initial if state.records > before else min(delay * policy.multiplier, policy.maximum)
        yield Sleep(delay)
    if batch_state in (BatchState.FAILED, BatchState.CANCELED):
        final: BatchStatus = yield from final_status()
        if final.state is BatchState.FAILED:
            raise BatchFailedError(f"batch {execution_id} failed: {final.error_message or 'no reason given'}", final)
        raise BatchCanceledError(
            f"batch {execution_id} was canceled ({final.completed_item_count} of {final.total_item_count} rows "
            "finished)",
            final,
        )


def _results(flow: Any) -> Any:
    """``flow``'s emitted NDJSON objects as :class:`ExecutionResult`s."""
    sent: Any = None
    try:
        instruction = flow.send(None)
        while True:
            if isinstance(instruction, Emit):
                instruction = Emit([result_of(record) for record in instruction.items])
            try:
                sent = yield instruction
            except Exception as error:  # the driver's error, for the inner flow to handle (resume) or raise
                instruction = flow.throw(error)
                continue
            instruction = flow.send(sent)
    except StopIteration:
        return


def result_of(record: dict[str, Any]) -> ExecutionResult:
    """An export record as an :class:`ExecutionResult` (built directly: a million of them must be cheap)."""
    outputs = record.get("outputParameters")
    return ExecutionResult(
        success=bool(record.get("success")),
        error_message=str(record.get("errorMessage") or ""),
        console_output=str(record.get("consoleOutput") or ""),
        changed_files=tuple(str(name) for name in record.get("changedFiles") or ()),
        outputs=dict(outputs) if isinstance(outputs, dict) else {},
        index=int(record["index"]),
        item_state=str(record.get("itemState")) if record.get("itemState") is not None else None,
        attempt=int(record["attempt"]) if isinstance(record.get("attempt"), int) else None,
        attempts=tuple(
            ExecutionAttempt(int(earlier["attempt"]), str(earlier.get("errorMessage") or ""))
            for earlier in record.get("attempts") or ()
            if isinstance(earlier, dict) and isinstance(earlier.get("attempt"), int)
        ),
    )


def status_of(execution_id: str, end: dict[str, Any], results: tuple[ExecutionResult, ...] = ()) -> BatchStatus:
    """A status from an export's end record (the batch as it was when the export began)."""
    return BatchStatus(
        execution_id=execution_id,
        state=BatchState.parse(end.get("state")),
        completed_item_count=int(end.get("completedItemCount", 0)),
        total_item_count=int(end.get("totalItemCount", 0)),
        failed_item_count=int(end.get("failedItemCount", 0)),
        canceled_item_count=int(end.get("canceledItemCount", 0)),
        results=results,
        cursor=str(end.get("cursor")) if end.get("cursor") is not None else None,
    )


class FrameColumns:
    """A DataFrame's columns built record by record (lists, not a dict per row: a million rows stay compact)."""

    def __init__(self) -> None:
        self.index: list[int] = []
        self.columns: dict[str, list[Any]] = {"success": [], "error_message": []}

    def add(self, record: dict[str, Any]) -> None:
        """Append one export record."""
        position = len(self.index)
        self.index.append(int(record["index"]))
        self.columns["success"].append(bool(record.get("success")))
        self.columns["error_message"].append(str(record.get("errorMessage") or ""))
        outputs = record.get("outputParameters")
        for key, value in (outputs if isinstance(outputs, dict) else {}).items():
            column = self.columns.get(key)
            if column is None:
                column = self.columns[key] = [None] * position
            column.append(value)
        for column in self.columns.values():
            if len(column) <= position:
                column.append(None)

    def frame(self, inputs: list[dict[str, Any]] | None) -> Any:
        """The DataFrame, indexed by ``index``, with the submitted inputs in front when known."""
        import pandas as pd

        if not self.index:
            return pd.DataFrame()
        data: dict[str, list[Any]] = {}
        if inputs is not None:
            names = list(dict.fromkeys(key for record in inputs[:1] for key in record))
            data = {name: [inputs[i].get(name) if i < len(inputs) else None for i in self.index] for name in names}
        data.update(self.columns)
        return pd.DataFrame(data, index=pd.Index(self.index, name="index"))


Destination = str | os.PathLike[str] | io.IOBase | Any | None


@contextlib.contextmanager
def sink(destination: Destination, default_name: str) -> Iterator[Callable[[str], Any]]:
    """A writer of export text to a path (``default_name`` in the working directory when None) or a file object.

    A path gets the text under a temporary name, renamed when the export is whole: a cut download never
    leaves a file that looks complete. A file object gets it as it comes (encoded for a binary one).
    """
    if destination is not None and hasattr(destination, "write"):
        binary = not isinstance(destination, io.TextIOBase) and "b" in str(getattr(destination, "mode", "b"))
        yield (lambda text: destination.write(text.encode())) if binary else destination.write
        return
    target = Path(default_name if destination is None else os.fspath(destination))
    descriptor, temporary = partial_file(target)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            yield handle.write
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
