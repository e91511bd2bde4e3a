"""Services and batches, sync and async twins with the same method names.

A service consumes one record at a time (``consume``, or the method named by its alias) and starts batches.
A batch mirrors the seed's R object: ``start``, ``id``, ``results``, ``wait``, ``cancel``, ``list_artifacts``,
``artifact`` and ``download``, plus ``retry_failed``, ``delete`` and ``iter_results``.
"""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self, Unpack

from batchscore import _export, _upload
from batchscore import _flows as flows
from batchscore import _republish as republish
from batchscore import _webhook_flows as webhook_flows
from batchscore._exceptions import BatchscoreError, NotFoundError
from batchscore._models import (
    BatchOptions,
    BatchOptionsArguments,
    BatchState,
    BatchStatus,
    ExecutionResult,
    ServiceInfo,
)
from batchscore._records import RecordSource, check_record, missing_as_null, record_factory
from batchscore._shared import ProgressCallback, WaitTracker
from batchscore.webhooks import WebhookDelivery

if TYPE_CHECKING:
    from batchscore._client import AsyncClient, Client

NaPolicy = Literal["error", "null"]  # what a batch does with a missing value (see Service.batch)


def _consume_inputs(info: ServiceInfo, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    names = [p.name for p in info.inputs]
    if len(args) > len(names):
        raise TypeError(f"{info.operation_id}() takes {len(names)} inputs ({', '.join(names)}), got {len(args)}")
    inputs = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key in inputs:
            raise TypeError(f"{info.operation_id}() got input {key!r} twice")
        inputs[key] = value
    check_record(inputs, info.inputs, None)
    return inputs


class _ServiceBase:
    """What both service twins know: the service's description and its consume alias."""

    info: ServiceInfo

    @property
    def name(self) -> str:
        """The service name."""
        return self.info.name

    @property
    def version(self) -> str:
        """The service version."""
        return self.info.version

    def capabilities(self) -> dict[str, Any]:
        """A summary: name, version, inputs, outputs, artifacts and the consume method's name."""
        return {
            "name": self.info.name,
            "version": self.info.version,
            "inputs": {p.name: p.type for p in self.info.inputs},
            "outputs": {p.name: p.type for p in self.info.outputs},
            "artifacts": list(self.info.artifacts),
            "operation_id": self.info.operation_id,
            "api": flows.consume_path(self.info.name, self.info.version),
        }

    def _alias(self, attribute: str) -> bool:
        aliases = {self.info.operation_id, _snake_case(self.info.operation_id)}
        return attribute in aliases

    def __repr__(self) -> str:
        inputs = ", ".join(f"{p.name}: {p.type}" for p in self.info.inputs)
        return f"<{type(self).__name__} {self.info.name} {self.info.version} ({inputs})>"


def _snake_case(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


class Service(_ServiceBase):
    """A published service version (from ``Client.get_service`` or ``Client.publish_service``).

    Besides :meth:`consume`, the service has a method named by its alias (``operationId``), in the alias's
    spelling and in snake case: ``api.manualTransmission(120, 2.8)`` or ``api.manual_transmission(120, 2.8)``.
    """

    def __init__(self, client: Client, info: ServiceInfo) -> None:
        self._client = client
        self.info = info

    def __getattr__(self, attribute: str) -> Callable[..., ExecutionResult]:
        if attribute.startswith("_") or not self._alias(attribute):
            raise AttributeError(f"{type(self).__name__} has no attribute {attribute!r}")
        return self.consume

    def consume(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        """Run the service once and wait for the result (inputs positionally in order, or by name).

        Returns:
            The result; a failure of the service's code is ``success=False`` with ``error_message``.

        Raises:
            InvalidRecordError: The inputs do not match the service's (checked before sending).
            APIStatusError: The server refused the request.

        """
        return self._client._run(flows.consume(self.name, self.version, _consume_inputs(self.info, args, kwargs)))

    def swagger(self) -> dict[str, Any]:
        """The service's own OpenAPI document (to generate an application client from)."""
        return self._client._run(flows.swagger(self.name, self.version))

    def update(self, **changes: Any) -> Service:
        """Change this version in place (a new revision); the arguments are :meth:`Client.update_service`'s.

        Batches already running keep the revision they started with. Returns this service, refreshed.

        Raises:
            PermissionDeniedError: The service belongs to another user, or the user is a Reader.
            NotFoundError: The version was deleted.

        """
        self.info = self._client.update_service(self.name, self.version, **changes).info
        return self

    def batch(
        self,
        records: RecordSource,
        *,
        parallel_count: int = 10,
        item_timeout: float | None = None,
        idempotency_key: str | None = None,
        na: NaPolicy = "error",
        **options: Unpack[BatchOptionsArguments],
    ) -> Batch:
        """A batch of records to run (not started yet: call ``start()``).

        Args:
            records: A DataFrame, a list of dicts, a dict of columns, or a CSV/TSV/Parquet/NDJSON path.
            parallel_count: How many records may run at once (the server may cap it).
            item_timeout: Seconds one record may run before it fails.
            idempotency_key: Starting twice with the same key gives the same execution (one is generated).
            na: A missing value (NaN, None, an empty CSV cell): ``"error"`` refuses the batch naming the row and
                column; ``"null"`` sends it as JSON null to ``numeric`` inputs (the service gets NaN).
            **options: Extension options, each a field of :class:`batchscore.BatchOptions`: ``max_failed_items``,
                ``max_failure_ratio``, ``min_failure_sample``, ``item_retries``, ``retry_timeouts``, ``labels``,
                ``expires_after``, ``callback_url``, ``callback_progress``, ``passthrough`` (extra columns such as
                an ID kept with the batch and returned with the results, e.g. ``passthrough=["car"]``).

        Raises:
            InvalidRecordError: A record does not match the service's inputs (row and column named).

        """
        return Batch(
            self,
            records,
            parallel_count=parallel_count,
            item_timeout=item_timeout,
            idempotency_key=idempotency_key,
            options=BatchOptions(**options),
            na=na,
        )

    def get_batch(self, execution_id: str) -> Batch:
        """An existing batch execution, e.g. to resume waiting from another process."""
        return Batch(self, None, execution_id=execution_id)

    def get_batch_executions(self) -> list[str]:
        """The ids of this service's batch executions that the user may see."""
        return self._client._run(flows.list_batches(self.name, self.version))

    list_batch_executions = get_batch_executions


class AsyncService(_ServiceBase):
    """The asynchronous twin of :class:`Service`."""

    def __init__(self, client: AsyncClient, info: ServiceInfo) -> None:
        self._client = client
        self.info = info

    def __getattr__(self, attribute: str) -> Callable[..., Any]:
        if attribute.startswith("_") or not self._alias(attribute):
            raise AttributeError(f"{type(self).__name__} has no attribute {attribute!r}")
        return self.consume

    async def consume(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        """Run the service once (see :meth:`Service.consume`)."""
        return await self._client._run(flows.consume(self.name, self.version, _consume_inputs(self.info, args, kwargs)))

    async def swagger(self) -> dict[str, Any]:
        """The service's own OpenAPI document."""
        return await self._client._run(flows.swagger(self.name, self.version))

    async def update(self, **changes: Any) -> AsyncService:
        """Change this version in place (see :meth:`Service.update`). Returns this service, refreshed."""
        self.info = (await self._client.update_service(self.name, self.version, **changes)).info
        return self

    def batch(
        self,
        records: RecordSource,
        *,
        parallel_count: int = 10,
        item_timeout: float | None = None,
        idempotency_key: str | None = None,
        na: NaPolicy = "error",
        **options: Unpack[BatchOptionsArguments],
    ) -> AsyncBatch:
        """A batch of records to run (see :meth:`Service.batch`)."""
        return AsyncBatch(
            self,
            records,
            parallel_count=parallel_count,
            item_timeout=item_timeout,
            idempotency_key=idempotency_key,
            options=BatchOptions(**options),
            na=na,
        )

    def get_batch(self, execution_id: str) -> AsyncBatch:
        """An existing batch execution."""
        return AsyncBatch(self, None, execution_id=execution_id)

    async def get_batch_executions(self) -> list[str]:
        """The ids of this service's batch executions that the user may see."""
        return await self._client._run(flows.list_batches(self.name, self.version))

    list_batch_executions = get_batch_executions


class _BatchBase:
    """What both batch twins share: the records, the request parts and the execution id."""

    STATE = BatchState

    def __init__(
        self,
        service: Service | AsyncService,
        records: RecordSource | None,
        *,
        parallel_count: int = 10,
        item_timeout: float | None = None,
        idempotency_key: str | None = None,
        execution_id: str | None = None,
        options: BatchOptions | None = None,
        na: NaPolicy = "error",
    ) -> None:
        self._service_info = service.info
        self.options = options or BatchOptions()
        self.parallel_count = parallel_count
        self.item_timeout = item_timeout
        self.idempotency_key = idempotency_key or str(uuid.uuid4())
        self.execution_id = execution_id
        self._factory = None
        self.record_count = 0
        self.body_bytes = 0  # the encoded records' size, counted while they are checked
        self._media_type = _upload.media_type_for(records)
        self._passthrough: tuple[str, ...] = ()
        self._na = na
        if records is not None:
            if na not in ("error", "null"):
                raise ValueError(f'na must be "error" or "null", not {na!r}')
            self._factory = record_factory(records, service.info.inputs)
            if na == "null":
                self._factory = missing_as_null(self._factory)
                # CSV has no null for a number: records with missing values go up as NDJSON.
                self._media_type = _upload.NDJSON
            self._passthrough = tuple(self.options.passthrough or ())
            self.record_count, self.body_bytes = _upload.measure(
                self._factory, service.info.inputs, self._media_type, self._passthrough, na
            )

    @property
    def id(self) -> str | None:
        """The execution id once started (mrsdeploy's ``batch$id()``)."""
        return self.execution_id

    @property
    def api(self) -> str:
        """The batch collection's path."""
        return flows.batch_path(self._service_info.name, self._service_info.version)

    def split(self, rows: int) -> list[Self]:
        """Split the batch into several of at most ``rows`` records each, in order, not started yet.

        Each part has its own Idempotency-Key (this batch's, with ``.1``, ``.2``, ... appended, so starting the
        parts again after a dropped connection does not start any twice). Each part is measured again (its records
        are read once more), so each is checked against the server's body limit exactly.

        Raises:
            BatchscoreError: The batch was fetched by id or already started, or ``rows`` is under 1.

        """
        if self._factory is None or self.execution_id is not None:
            raise BatchscoreError("only a batch made from records and not started yet can be split")
        if rows < 1:
            raise BatchscoreError(f"a part of a split batch holds at least 1 row, not {rows}")
        parts = []
        for number, start in enumerate(range(0, self.record_count, rows), 1):
            part = copy.copy(self)
            part.idempotency_key = f"{self.idempotency_key}.{number}"
            part._factory = _upload.row_slice(self._factory, start, start + rows)
            part.record_count, part.body_bytes = _upload.measure(
                part._factory, self._service_info.inputs, self._media_type, self._passthrough, self._na
            )
            parts.append(part)
        return parts

    def _ids(self) -> tuple[str, str, str]:
        """Service name, version and execution id, for a flow on the started batch."""
        if self.execution_id is None:
            raise BatchscoreError("the batch has not been started: call start() first")
        return self._service_info.name, self._service_info.version, self.execution_id

    def _start_flow(self, on_chunk: _upload.ProgressHook | None = None) -> flows.Flow[str]:
        if self._factory is None:
            raise BatchscoreError("this batch has no records (it was fetched by id); start a new one instead")
        return flows.start_within_limit(
            self.body_bytes,
            self.record_count,
            self._service_info.name,
            self._service_info.version,
            _upload.UploadBody(self._factory, self._service_info.inputs, self._media_type, on_chunk, self._passthrough),
            self.parallel_count,
            self.item_timeout,
            self.idempotency_key,
            self.options,
        )

    def _parallel_flow(self) -> flows.Flow[int | None]:
        """Warn (``UserWarning``) when the server capped the ``parallel_count`` asked for."""
        return republish.check_parallel(*self._ids(), self.parallel_count)

    def _tracker(
        self,
        client: Client | AsyncClient,
        timeout: float | None,
        poll_interval: float | None,
        progress: bool,
        on_progress: ProgressCallback | None,
        *,
        collect: bool = True,
        on_result: Callable[[ExecutionResult], None] | None = None,
    ) -> WaitTracker:
        if self.execution_id is None:
            raise BatchscoreError("the batch has not been started: call start() first")
        return WaitTracker(
            self.execution_id,
            timeout=timeout,
            poll_interval=poll_interval,
            policy=client.polling,
            clock=client._clock,
            progress=progress,
            on_progress=on_progress,
            collect=collect,
            on_result=on_result,
        )

    def _export_flow(
        self, order: str, format: str, state: _export.ExportState, parsed: bool, include_inputs: bool = False
    ) -> Any:
        _export.check_options(order, format)
        return _export.export(*self._ids(), order, format, state, parsed=parsed, include_inputs=include_inputs)

    def _follow_flow(
        self, client: Client | AsyncClient, state: _export.ExportState, poll_interval: float | None
    ) -> Any:
        name, version, execution_id = self._ids()
        return _export.follow(
            name,
            version,
            execution_id,
            state,
            client.polling,
            poll_interval,
            lambda: flows.status(name, version, execution_id, False),
        )

    def _export_name(self, format: str) -> str:
        return f"{self._ids()[2]}.{format}"

    def _inputs(self) -> list[dict[str, Any]] | None:
        return list(self._factory()) if self._factory is not None else None

    def _with_inputs(self, status: BatchStatus) -> BatchStatus:
        """Attach the submitted records, so ``to_frame()`` shows inputs beside outputs (when this client sent them)."""
        if self._factory is None:
            return status
        return replace(status, inputs=tuple(self._factory()))

    def __repr__(self) -> str:
        started = self.execution_id or "not started"
        return f"<{type(self).__name__} {self._service_info.name} {self._service_info.version} {started}>"


class Batch(_BatchBase):
    """A batch of records for one service (mrsdeploy's batch object)."""

    def __init__(self, service: Service, records: RecordSource | None, **options: Any) -> None:
        super().__init__(service, records, **options)
        self._client = service._client

    def start(self, progress: bool = True) -> Batch:
        """Send the records and start the batch (a no-op once started). Returns the batch, for chaining.

        The records go up as a streamed body (CSV for a CSV, TSV or Parquet file, NDJSON otherwise) with an
        Idempotency-Key, so a retry after a dropped connection cannot start the batch twice.

        Args:
            progress: Show the upload's bytes and rows in a terminal or notebook.

        Raises:
            BatchTooLargeError: The records are over the server's body limit (nothing was sent).

        """
        if self.execution_id is None:
            hook, close = _upload.upload_bar(self.body_bytes, self.record_count) if progress else (None, None)
            try:
                self.execution_id = self._client._run(self._start_flow(hook))
            finally:
                if close is not None:
                    close()
            if self.parallel_count > republish.DEFAULT_PARALLEL:  # the check costs a request
                self._client._run(self._parallel_flow())
        return self

    def results(self, show_partial_results: bool = True) -> BatchStatus:
        """The batch's state and results in index order (mrsdeploy's ``batch$results()``).

        Args:
            show_partial_results: Include results of finished records while the batch runs.

        """
        return self._with_inputs(self._client._run(flows.status(*self._ids(), show_partial_results)))

    def wait(
        self,
        timeout: float | None = None,
        poll_interval: float | None = None,
        progress: bool = True,
        on_progress: ProgressCallback | None = None,
    ) -> BatchStatus:
        """Poll until the batch finishes; return its status with every result, in index order.

        Polls fetch only results that are new since the previous poll; the delay between polls grows while
        nothing changes and follows the server's ``Retry-After``.

        Args:
            timeout: Seconds to wait in all (None: as long as it takes).
            poll_interval: Fixed seconds between polls instead of the adaptive schedule.
            progress: Show a progress bar (completed and failed rows) in a terminal or notebook.
            on_progress: Called with each status seen.

        Raises:
            BatchFailedError: The batch failed (``.batch`` holds the last status and the results so far).
            BatchCanceledError: The batch was canceled.
            WaitTimeoutError: ``timeout`` ran out; the batch goes on running.

        """
        tracker = self._tracker(self._client, timeout, poll_interval, progress, on_progress)
        return self._with_inputs(self._client._run(flows.wait(*self._ids(), tracker)))

    def iter_results(self, poll_interval: float | None = None) -> Iterator[ExecutionResult]:
        """Yield each record's result as it becomes available, in the order records finish, without keeping them.

        Reads the streamed export (``order=completion``), again from where it stopped until the batch has
        finished, so memory stays flat however large the batch; each result carries its ``index``. A server
        without the export (ML Server) is polled instead.

        Raises:
            BatchFailedError: The batch failed (after every finished record's result was yielded).
            BatchCanceledError: The batch was canceled.
            IncompleteExportError: The export was cut short and could not be resumed.

        """
        state = _export.ExportState()
        try:
            yield from self._client._iterate(self._follow_flow(self._client, state, poll_interval))
        except NotFoundError:
            if state.records or state.end is not None:
                raise
            # A server without the export (ML Server): poll (a missing batch raises NotFoundError there again).
            yield from self._poll_results(poll_interval)

    def export(
        self,
        path_or_file: _export.Destination = None,
        *,
        order: _export.ExportOrder = "input",
        format: _export.ExportFormat = "ndjson",
        since: str = "0",
    ) -> BatchStatus:
        """Download every finished record's result as one streamed NDJSON or CSV file.

        The file is written as the records arrive (memory stays flat for a million rows) and checked against the
        export's end record; a connection that breaks is resumed where it stopped. The end record (and the CSV
        trailer) is not written: the file holds the records alone (NDJSON: one result per line with ``index``,
        ``itemState``, ``attempt`` and ``cursor``; CSV: a header, then one row per record).

        Args:
            path_or_file: A path (written under a temporary name, renamed once whole) or a writable file object;
                ``<execution id>.<format>`` in the working directory when None.
            order: ``input`` (by index; records not finished yet are left out) or ``completion``.
            format: ``ndjson`` or ``csv``.
            since: Only the records after this cursor (an :class:`IncompleteExportError`'s ``cursor``, or an
                earlier export's returned ``cursor``), e.g. to append to a file object; the CSV header is then
                left out.

        Returns:
            The batch's state and counts when the export began (``cursor``: resume after it).

        Raises:
            IncompleteExportError: The export was cut short and could not be resumed.
            ValueError: An unknown order or format.

        """
        state = _export.ExportState.after(since)
        flow = self._export_flow(order, format, state, parsed=False)
        with _export.sink(path_or_file, self._export_name(format)) as write:
            for text in self._client._iterate(flow):
                write(text)
        return _export.status_of(self._ids()[2], state.end or {})

    def exported_results(self, order: _export.ExportOrder = "input") -> BatchStatus:
        """The batch's state and every finished record's result, read from the streamed export.

        Unlike :meth:`results` (one poll), the results stream in: the server's memory stays flat. The state,
        counts and error are those of a summary poll made just before (the results hold at least every record
        finished then); the records submitted by this client are attached (``to_frame()`` shows them). A server
        without the export (ML Server) answers one poll instead.
        """
        summary = self.results(show_partial_results=False)
        state = _export.ExportState()
        sent: dict[int, dict[str, Any]] = {}  # the stored inputs, from a server that knows include=inputs
        flow = _export._results(self._export_flow(order, "ndjson", state, True, include_inputs=True), sent)
        try:
            results = tuple(self._client._iterate(flow))
        except NotFoundError:
            if state.records or state.end is not None:
                raise
            return self.results()
        return replace(summary, results=results, inputs=_export.inputs_by_index(sent) or summary.inputs)

    def to_frame(self, order: _export.ExportOrder = "input") -> Any:
        """Every finished record's result as a pandas DataFrame, streamed from the export (see :meth:`export`).

        Columns: the record's inputs, its passthrough columns, ``success``, ``error_message`` and one per output;
        indexed by ``index``; the same in any process (the server sends the stored inputs; from a server that does
        not, the inputs are those this client submitted, when it did). Records are added to the columns as they
        arrive (the raw text is never held whole).

        Raises:
            ImportError: pandas is not installed.
            IncompleteExportError: The export was cut short and could not be resumed.

        """
        import pandas  # noqa: F401  # fail before the download, not after it

        columns = _export.FrameColumns()
        state = _export.ExportState()
        for record in self._client._iterate(self._export_flow(order, "ndjson", state, True, include_inputs=True)):
            columns.add(record)
        return columns.frame(self._inputs())

    def _poll_results(self, poll_interval: float | None) -> Iterator[ExecutionResult]:
        """``iter_results`` by cursor polls (servers without the export)."""
        pending: list[ExecutionResult] = []
        tracker = self._tracker(self._client, None, poll_interval, False, None, collect=False, on_result=pending.append)
        while True:
            delay = self._client._run(flows.poll_once(*self._ids(), tracker))
            yield from pending
            pending.clear()
            if delay is None:
                break
            if delay:
                self._client._sleep(delay)
        tracker.finish()

    def cancel(self) -> BatchStatus:
        """Stop the batch: records already running finish and keep their results; the rest are canceled."""
        return self._client._run(flows.cancel(*self._ids()))

    def retry_failed(self) -> BatchStatus:
        """Run the failed and canceled records again (the others keep their results)."""
        return self._client._run(flows.retry_failed(*self._ids()))

    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """The events sent (or to be sent) to the batch's ``callback_url``, oldest first, with their attempts."""
        return self._client._run(webhook_flows.webhook_deliveries(*self._ids()))

    def redeliver_webhook(self, delivery_id: str) -> WebhookDelivery:
        """Send an event again (same ``webhook-id``, attempts from 0).

        Raises:
            NotFoundError: The batch has no such delivery.

        """
        return self._client._run(webhook_flows.redeliver_webhook(*self._ids(), delivery_id))

    def delete(self) -> None:
        """Cancel the batch if it runs, then delete it with its results and artifacts."""
        self._client._run(flows.delete_batch(*self._ids()))

    def list_artifacts(self, index: int) -> list[str]:
        """The files record ``index`` produced (mrsdeploy's ``batch$listArtifacts(i)``)."""
        return self._client._run(flows.list_artifacts(*self._ids(), index))

    def artifact(self, index: int, file_name: str) -> bytes:
        """The bytes of one file of record ``index`` (mrsdeploy's ``batch$artifact(i, name)``)."""
        return self._client._run(flows.artifact(*self._ids(), index, file_name))

    def download(
        self, index: int, file_name: str | None = None, dest: str | os.PathLike[str] | None = None
    ) -> list[Path]:
        """Write files of record ``index`` to ``dest`` (default: the working directory, which must exist).

        Files stream to disk (a large artifact is never held in memory) and appear under their final name only
        once complete.

        Args:
            index: The record.
            file_name: One file; every file of the record when None.
            dest: The folder to write to; it must exist.

        Returns:
            The paths written.

        Raises:
            DownloadError: ``dest`` does not exist, or the server named a file unsafely.

        """
        return self._client._run(flows.download(*self._ids(), index, file_name, dest))


class AsyncBatch(_BatchBase):
    """The asynchronous twin of :class:`Batch`."""

    def __init__(self, service: AsyncService, records: RecordSource | None, **options: Any) -> None:
        super().__init__(service, records, **options)
        self._client = service._client

    async def start(self, progress: bool = True) -> AsyncBatch:
        """Send the records and start the batch (see :meth:`Batch.start`)."""
        if self.execution_id is None:
            hook, close = _upload.upload_bar(self.body_bytes, self.record_count) if progress else (None, None)
            try:
                self.execution_id = await self._client._run(self._start_flow(hook))
            finally:
                if close is not None:
                    close()
            if self.parallel_count > republish.DEFAULT_PARALLEL:  # the check costs a request
                await self._client._run(self._parallel_flow())
        return self

    async def results(self, show_partial_results: bool = True) -> BatchStatus:
        """The batch's state and results in index order (see :meth:`Batch.results`)."""
        return self._with_inputs(await self._client._run(flows.status(*self._ids(), show_partial_results)))

    async def wait(
        self,
        timeout: float | None = None,
        poll_interval: float | None = None,
        progress: bool = True,
        on_progress: ProgressCallback | None = None,
    ) -> BatchStatus:
        """Poll until the batch finishes (see :meth:`Batch.wait`)."""
        tracker = self._tracker(self._client, timeout, poll_interval, progress, on_progress)
        return self._with_inputs(await self._client._run(flows.wait(*self._ids(), tracker)))

    async def iter_results(self, poll_interval: float | None = None) -> AsyncIterator[ExecutionResult]:
        """Yield each record's result as it becomes available (see :meth:`Batch.iter_results`)."""
        state = _export.ExportState()
        try:
            async for result in self._client._iterate(self._follow_flow(self._client, state, poll_interval)):
                yield result
        except NotFoundError:
            if state.records or state.end is not None:
                raise
            async for result in self._poll_results(poll_interval):
                yield result

    async def export(
        self,
        path_or_file: _export.Destination = None,
        *,
        order: _export.ExportOrder = "input",
        format: _export.ExportFormat = "ndjson",
        since: str = "0",
    ) -> BatchStatus:
        """Download every finished record's result as one streamed file (see :meth:`Batch.export`)."""
        state = _export.ExportState.after(since)
        flow = self._export_flow(order, format, state, parsed=False)
        with _export.sink(path_or_file, self._export_name(format)) as write:
            async for text in self._client._iterate(flow):
                write(text)
        return _export.status_of(self._ids()[2], state.end or {})

    async def exported_results(self, order: _export.ExportOrder = "input") -> BatchStatus:
        """The batch's state and every finished result, from the export (see :meth:`Batch.exported_results`)."""
        summary = await self.results(show_partial_results=False)
        state = _export.ExportState()
        sent: dict[int, dict[str, Any]] = {}  # the stored inputs, from a server that knows include=inputs
        flow = _export._results(self._export_flow(order, "ndjson", state, True, include_inputs=True), sent)
        try:
            results = tuple([result async for result in self._client._iterate(flow)])
        except NotFoundError:
            if state.records or state.end is not None:
                raise
            return await self.results()
        return replace(summary, results=results, inputs=_export.inputs_by_index(sent) or summary.inputs)

    async def to_frame(self, order: _export.ExportOrder = "input") -> Any:
        """Every finished record's result as a pandas DataFrame (see :meth:`Batch.to_frame`)."""
        import pandas  # noqa: F401  # fail before the download, not after it

        columns = _export.FrameColumns()
        state = _export.ExportState()
        async for record in self._client._iterate(self._export_flow(order, "ndjson", state, True, include_inputs=True)):
            columns.add(record)
        return columns.frame(self._inputs())

    async def _poll_results(self, poll_interval: float | None) -> AsyncIterator[ExecutionResult]:
        """``iter_results`` by cursor polls (servers without the export)."""
        pending: list[ExecutionResult] = []
        tracker = self._tracker(self._client, None, poll_interval, False, None, collect=False, on_result=pending.append)
        while True:
            delay = await self._client._run(flows.poll_once(*self._ids(), tracker))
            for result in pending:
                yield result
            pending.clear()
            if delay is None:
                break
            if delay:
                await self._client._sleep(delay)
        tracker.finish()

    async def cancel(self) -> BatchStatus:
        """Stop the batch (see :meth:`Batch.cancel`)."""
        return await self._client._run(flows.cancel(*self._ids()))

    async def retry_failed(self) -> BatchStatus:
        """Run the failed and canceled records again."""
        return await self._client._run(flows.retry_failed(*self._ids()))

    async def webhook_deliveries(self) -> list[WebhookDelivery]:
        """The events sent (or to be sent) to the batch's ``callback_url`` (see :meth:`Batch.webhook_deliveries`)."""
        return await self._client._run(webhook_flows.webhook_deliveries(*self._ids()))

    async def redeliver_webhook(self, delivery_id: str) -> WebhookDelivery:
        """Send an event again (see :meth:`Batch.redeliver_webhook`)."""
        return await self._client._run(webhook_flows.redeliver_webhook(*self._ids(), delivery_id))

    async def delete(self) -> None:
        """Cancel the batch if it runs, then delete it."""
        await self._client._run(flows.delete_batch(*self._ids()))

    async def list_artifacts(self, index: int) -> list[str]:
        """The files record ``index`` produced."""
        return await self._client._run(flows.list_artifacts(*self._ids(), index))

    async def artifact(self, index: int, file_name: str) -> bytes:
        """The bytes of one file of record ``index``."""
        return await self._client._run(flows.artifact(*self._ids(), index, file_name))

    async def download(
        self, index: int, file_name: str | None = None, dest: str | os.PathLike[str] | None = None
    ) -> list[Path]:
        """Write files of record ``index`` to ``dest`` (see :meth:`Batch.download`)."""
        return await self._client._run(flows.download(*self._ids(), index, file_name, dest))
