"""What the SDK returns: services, execution results and batch statuses, built from the generated models.

Answers are parsed by ``batchscore_client``'s models (see :mod:`batchscore._wire` for how ML Server's variations
are read: states in any casing, fields old servers do not send, keys in another casing). Each SDK type keeps the
model it was built from as ``.raw``, so a field added to the contract reaches users without an SDK release.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypedDict

from batchscore._exceptions import ServiceError
from batchscore._wire import normalize
from batchscore_client.models import (
    BatchExecutionResult,
    BatchExecutionSummary,
    BatchWebServiceResult,
    WebService,
    WebServiceResult,
)
from batchscore_client.types import Unset


class BatchState(StrEnum):
    """The state of a batch execution (ML Server's four, plus ``failed`` and ``canceled``).

    The contract's ``BatchState`` with the seed's spellings added (``batch.STATE.complete``) and ``UNKNOWN`` for a
    state a newer server may send; a test pins its values to the contract's enum, so a state added to the contract
    fails the build until it is added here.
    """

    PENDING = "pending"
    READY = "ready"
    IN_PROGRESS = "inProgress"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELED = "canceled"
    UNKNOWN = "unknown"  # a state this SDK does not know (a newer server): treated as still running

    # The seed's spelling (``batch$STATE$complete``), kept as aliases: ``batch.STATE.complete``.
    pending = "pending"
    ready = "ready"
    inProgress = "inProgress"  # ML Server spells this state in camel case
    complete = "complete"
    failed = "failed"
    canceled = "canceled"

    @classmethod
    def parse(cls, value: object) -> BatchState:
        """Read a state in any casing (ML Server 9.2 sent ``Complete``); unknown values give ``UNKNOWN``."""
        text = str(value).replace("_", "").replace(" ", "").lower()
        for state in cls:
            if state.value.lower() == text:
                return state
        return cls.UNKNOWN if text != "cancelled" else cls.CANCELED

    @property
    def is_final(self) -> bool:
        """Whether the batch has stopped (complete, failed or canceled)."""
        return self in FINAL_STATES


FINAL_STATES = frozenset({BatchState.COMPLETE, BatchState.FAILED, BatchState.CANCELED})


def _set(value: Any, default: Any) -> Any:
    """A model field's value, or ``default`` when the answer did not carry it (unset or null)."""
    return default if value is None or isinstance(value, Unset) else value


def _free_form(value: Any) -> dict[str, Any]:
    """A free-form model (outputs, output files) as a plain dict."""
    return dict(value.additional_properties) if hasattr(value, "additional_properties") else {}


def _parsed(model: Any, data: object) -> Any:
    """``model.from_dict(data)``, or from the contract's spelling of ``data`` when that fails (an old server)."""
    try:
        return model.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError):
        return model.from_dict(normalize(data))


@dataclass(frozen=True)
class ExecutionAttempt:
    """An earlier run of a batch record that failed and was run again (the batch's ``item_retries``).

    Attributes:
        attempt: Which run it was (1 is the first).
        error_message: Why that run failed.

    """

    attempt: int
    error_message: str


@dataclass(frozen=True)
class Parameter:
    """One input or output of a service: its name and ML Server type (``numeric``, ``data.frame``, ...)."""

    name: str
    type: str


@dataclass(frozen=True)
class ServiceInfo:
    """A published service version, as the server describes it."""

    name: str
    version: str
    inputs: tuple[Parameter, ...]
    outputs: tuple[Parameter, ...]
    artifacts: tuple[str, ...]
    operation_id: str
    description: str = ""
    published_by: str = ""
    creation_time: str = ""
    permission: str = ""
    runtime_type: str = "Python"
    snapshot_id: str | None = None
    code: str = ""
    init_code: str = ""
    consume_timeout: float | None = None  # seconds, when the service sets its own (an extension)
    raw: WebService | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_model(cls, model: WebService) -> ServiceInfo:
        """Build from the generated ``WebService`` model (kept as ``.raw``)."""

        def parameters(items: Any) -> tuple[Parameter, ...]:
            return tuple(Parameter(str(p.name), str(p.type_)) for p in _set(items, []))

        created = _set(model.creation_time, "")
        return cls(
            name=str(model.name),
            version=str(model.version),
            inputs=parameters(model.input_parameter_definitions),
            outputs=parameters(model.output_parameter_definitions),
            artifacts=tuple(str(name) for name in _set(model.output_file_names, [])),
            operation_id=str(_set(model.operation_id, "consume")),
            description=str(_set(model.description, "")),
            published_by=str(_set(model.version_published_by, "")),
            creation_time=created if isinstance(created, str) else _iso(created),
            permission=str(_set(model.my_permission_on_service, "")),
            runtime_type=str(_set(model.runtime_type, "Python")),
            snapshot_id=_set(model.snapshot_id, None),
            code=str(_set(model.code, "")),
            init_code=str(_set(model.init_code, "")),
            consume_timeout=_set(model.consume_timeout, None),
            raw=model,
        )

    @classmethod
    def from_json(cls, data: object) -> ServiceInfo:
        """Parse a ``WebService`` object (as the server sent it)."""
        return cls.from_model(_parsed(WebService, data))


@dataclass(frozen=True)
class ExecutionResult:
    """The result of one execution: a consume reply, or one record of a batch.

    Attributes:
        success: Whether the service's code ran without raising.
        error_message: The error and traceback when it did not.
        console_output: What the code printed.
        changed_files: Files the execution created or changed.
        outputs: The outputs by name (``data.frame`` outputs as column dictionaries).
        index: The record's position in its batch (None for a consume).
        item_state: ``complete``, ``failed`` or ``canceled`` for a batch record.
        attempt: A batch record's run that gave this result: 1 normally, 2 when the server (or replica) running
            it died while it ran, 0 when it never ran (canceled); None for a consume or an older server.
        files: Consume replies: the declared artifacts' bytes (None for one not produced).
        attempts: A batch record's earlier runs that failed and were retried (``item_retries``), oldest first;
            empty when it ran once. With :attr:`error_message`, every run's error.

    """

    success: bool
    error_message: str = ""
    console_output: str = ""
    changed_files: tuple[str, ...] = ()
    outputs: dict[str, Any] = field(default_factory=dict)
    index: int | None = None
    item_state: str | None = None
    files: dict[str, bytes | None] = field(default_factory=dict)
    attempt: int | None = None
    attempts: tuple[ExecutionAttempt, ...] = ()
    raw: WebServiceResult | BatchExecutionResult | None = field(default=None, compare=False, repr=False)

    @property
    def output_parameters(self) -> dict[str, Any]:
        """ML Server's name for :attr:`outputs`."""
        return self.outputs

    def output(self, name: str) -> Any:
        """One output by name.

        Raises:
            ServiceError: The execution failed (its ``error_message`` is the service's own message), so it has no
                outputs.
            KeyError: The execution succeeded, and the service has no output ``name``.

        """
        if not self.success and name not in self.outputs:
            # A bare KeyError('answer') hid the reason (a missing module, a NameError) in error_message.
            first_line = next((line for line in reversed(self.error_message.splitlines()) if line.strip()), "")
            raise ServiceError(
                f"the execution failed, so it has no output {name!r}: {first_line or 'no error message'}", self
            )
        try:
            return self.outputs[name]
        except KeyError:
            raise KeyError(f"{name!r}: the service has no such output (it has {sorted(self.outputs)})") from None

    def artifact(self, name: str) -> bytes | None:
        """A consume reply's artifact bytes (None when the execution did not produce it).

        Raises:
            KeyError: The service does not declare that artifact.

        """
        return self.files[name]

    @classmethod
    def from_model(cls, model: WebServiceResult | BatchExecutionResult) -> ExecutionResult:
        """Build from a generated ``WebServiceResult`` or ``BatchExecutionResult`` (kept as ``.raw``)."""
        files: dict[str, bytes | None] = {}
        for name, encoded in _free_form(_set(model.output_files, None)).items():
            try:
                files[str(name)] = base64.b64decode(encoded) if isinstance(encoded, str) else None
            except (binascii.Error, ValueError):
                files[str(name)] = None
        index = _set(getattr(model, "index", None), None)
        item_state = _set(getattr(model, "item_state", None), None)
        attempt = _set(getattr(model, "attempt", None), None)
        attempts = tuple(
            ExecutionAttempt(int(earlier.attempt), str(earlier.error_message))
            for earlier in _set(getattr(model, "attempts", None), [])
        )
        return cls(
            success=bool(model.success),
            error_message=str(_set(model.error_message, "")),
            console_output=str(_set(model.console_output, "")),
            changed_files=tuple(str(name) for name in _set(model.changed_files, [])),
            outputs=_free_form(_set(model.output_parameters, None)),
            index=int(index) if isinstance(index, int) else None,
            item_state=str(item_state) if item_state is not None else None,
            files=files,
            attempt=int(attempt) if isinstance(attempt, int) else None,
            attempts=attempts,
            raw=model,
        )

    @classmethod
    def from_json(cls, data: object) -> ExecutionResult:
        """Parse a ``WebServiceResult`` (or a batch's ``BatchExecutionResult``) as the server sent it."""
        return cls.from_model(_parsed(BatchExecutionResult, data))


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV Injection").
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _escape_formula(value: Any) -> Any:
    """``value`` with a single quote in front when it is a string a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


class BatchOptionsArguments(TypedDict, total=False):
    """The keyword arguments of :class:`BatchOptions`, for ``Service.batch(records, **options)``."""

    max_failed_items: int | None
    max_failure_ratio: float | None
    min_failure_sample: int | None
    item_retries: int | None
    retry_timeouts: bool | None
    labels: Mapping[str, str] | None
    expires_after: float | timedelta | None
    callback_url: str | None
    callback_progress: bool | None


@dataclass(frozen=True)
class BatchOptions:
    """A batch start's extension options (batchscore servers; an ML Server ignores them).

    Attributes:
        max_failed_items: Stop the batch (``failed``; pending records canceled, finished ones kept) once more than
            this many records failed after their retries. 0 stops at the first failure.
        max_failure_ratio: Stop it once more than this share (0 to 1) of the finished records failed...
        min_failure_sample: ...and at least this many finished (the server's default is 20).
        item_retries: Run a record again, with backoff, up to this many times after a retryable failure: its worker
            died, it raised :class:`batchscore.Retryable`, or it timed out with ``retry_timeouts``.
        retry_timeouts: Whether a record over ``item_timeout`` is retried.
        labels: ``key: value`` labels to find the batch by (:meth:`Client.list_batches`).
        expires_after: Seconds (or a ``timedelta``) after the batch finishes when its results and files are
            deleted; the server's retention when None.
        callback_url: Where the server POSTs the batch's signed events (``batchscore.webhooks.verify``).
        callback_progress: Also send throttled ``batch.progress`` events.

    """

    max_failed_items: int | None = None
    max_failure_ratio: float | None = None
    min_failure_sample: int | None = None
    item_retries: int | None = None
    retry_timeouts: bool | None = None
    labels: Mapping[str, str] | None = None
    expires_after: float | timedelta | None = None
    callback_url: str | None = None
    callback_progress: bool | None = None

    def request_arguments(self) -> dict[str, Any]:
        """The generated start operation's keyword arguments for the options that are set (none sent otherwise)."""
        arguments: dict[str, Any] = {
            "max_failed_items": self.max_failed_items,
            "max_failure_ratio": self.max_failure_ratio,
            "min_failure_sample": self.min_failure_sample,
            "item_retries": self.item_retries,
            "retry_timeouts": self.retry_timeouts,
            "callback_url": self.callback_url,
            "callback_progress": self.callback_progress,
        }
        if self.labels:
            arguments["label"] = [f"{key}={value}" for key, value in self.labels.items()]
        if self.expires_after is not None:
            seconds = self.expires_after
            if isinstance(seconds, timedelta):
                seconds = seconds.total_seconds()
            arguments["expires_after"] = math.ceil(seconds)
        return {key: value for key, value in arguments.items() if value is not None}


@dataclass(frozen=True)
class BatchStatus:
    """A batch execution's state, counters and (some of) its results.

    Attributes:
        execution_id: The batch execution id.
        state: Where the batch is.
        completed_item_count: Records finished, successfully or not.
        total_item_count: Records in the batch.
        failed_item_count: Records that finished with an error (0 from servers that do not report it).
        running_item_count: Records running now.
        canceled_item_count: Records canceled before they ran.
        results: Results, in index order once complete (see ``Batch.results``).
        error_message: Why the batch failed, when it did.
        cursor: Where the next incremental poll starts (None from servers without incremental polling).
        has_more: Whether a ``limit`` held results back.
        parallel_count: The effective parallelism.
        created_by: The user who started the batch.
        creation_time: When it was started (ISO 8601).
        completion_time: When it finished (ISO 8601), else empty.
        start_time: When its first record started (ISO 8601), else empty.
        labels: The labels given at start.
        rows_per_second: Records finished per second in the batch's current run (None when unknown: the server
            measures it afresh after a resume or retry).
        estimated_seconds_left: The server's estimate of the seconds left at that rate (None when unknown).
        expires_at: When the batch's results and files will be deleted (ISO 8601), else empty.
        expired: Whether they were (only the summary is left).
        retried_item_count: Records that ran more than once.

    """

    execution_id: str
    state: BatchState
    completed_item_count: int
    total_item_count: int
    failed_item_count: int = 0
    running_item_count: int = 0
    canceled_item_count: int = 0
    results: tuple[ExecutionResult, ...] = ()
    error_message: str = ""
    cursor: str | None = None
    has_more: bool = False
    parallel_count: int | None = None
    created_by: str = ""
    creation_time: str = ""
    completion_time: str = ""
    start_time: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    rows_per_second: float | None = None
    estimated_seconds_left: float | None = None
    expires_at: str = ""
    expired: bool = False
    retried_item_count: int = 0

    inputs: tuple[dict[str, Any], ...] | None = None  # the submitted records, when this client sent them
    raw: BatchWebServiceResult | BatchExecutionSummary | None = field(default=None, compare=False, repr=False)

    STATE = BatchState  # ML Server's ``batch.STATE.complete`` idiom

    def to_frame(self) -> Any:
        """One row per record in index order, as a pandas DataFrame.

        Columns: the record's inputs (when this client submitted the batch), ``success``, ``error_message``, and
        one per output.

        Raises:
            ImportError: pandas is not installed.

        """
        import pandas as pd

        rows = []
        for position, result in enumerate(self.results):
            index = result.index if result.index is not None else position
            row: dict[str, Any] = {"index": index}
            if self.inputs is not None and index < len(self.inputs):
                row.update(self.inputs[index])
            row["success"] = result.success
            row["error_message"] = result.error_message
            row.update(result.outputs)
            rows.append(row)
        return pd.DataFrame(rows).set_index("index") if rows else pd.DataFrame()

    def to_csv(self, path: str | Any, *, escape_formulas: bool = True) -> None:
        """Write :meth:`to_frame` to a CSV file.

        Args:
            path: The file (or a writable file object).
            escape_formulas: Prefix a single quote to every string cell that starts with ``=``, ``+``, ``-``, ``@``,
                a tab or a carriage return, so a spreadsheet shows it as text instead of running it as a formula
                (OWASP's advice against CSV injection: results hold whatever the service's code returned). Number
                cells are never changed. False writes every cell as it is.

        """
        frame = self.to_frame()
        if escape_formulas:
            text_columns = frame.select_dtypes(include=["object", "string"]).columns
            frame[text_columns] = frame[text_columns].map(_escape_formula)
        frame.to_csv(path)

    def to_parquet(self, path: str | Any) -> None:
        """Write :meth:`to_frame` to a Parquet file (needs pyarrow)."""
        self.to_frame().to_parquet(path)

    @property
    def is_final(self) -> bool:
        """Whether the batch has stopped."""
        return self.state.is_final

    @property
    def service_name(self) -> str:
        """The batch's service, as the server named it (empty from servers that do not)."""
        return str(_set(getattr(self.raw, "name", None), ""))

    @property
    def service_version(self) -> str:
        """The batch's service version, as the server named it (empty from servers that do not)."""
        return str(_set(getattr(self.raw, "version", None), ""))

    def execution(self, index: int) -> ExecutionResult:
        """The result of record ``index`` (ML Server's ``execution(i)``).

        Raises:
            KeyError: No result for that record is in this status (not finished, or not fetched).

        """
        for position, result in enumerate(self.results):
            if (result.index if result.index is not None else position) == index:
                return result
        raise KeyError(f"no result for record {index} in this status")

    @classmethod
    def from_model(cls, model: BatchWebServiceResult | BatchExecutionSummary, execution_id: str = "") -> BatchStatus:
        """Build from a generated ``BatchWebServiceResult`` or ``BatchExecutionSummary`` (kept as ``.raw``)."""
        items = _set(getattr(model, "batch_execution_results", None), [])
        results = tuple(ExecutionResult.from_model(item) for item in items)
        cursor = _set(getattr(model, "cursor", None), None)
        created = _set(model.creation_time, "")
        completed = _set(model.completion_time, "")
        return cls(
            execution_id=str(_set(model.batch_execution_id, execution_id)),
            state=BatchState.parse(model.state),
            completed_item_count=int(_set(model.completed_item_count, 0)),
            total_item_count=int(_set(model.total_item_count, 0)),
            failed_item_count=int(_set(model.failed_item_count, sum(1 for r in results if not r.success))),
            running_item_count=int(_set(model.running_item_count, 0)),
            canceled_item_count=int(_set(model.canceled_item_count, 0)),
            results=results,
            error_message=str(_set(model.error_message, "")),
            cursor=str(cursor) if cursor is not None else None,
            has_more=bool(_set(getattr(model, "has_more", None), False)),
            parallel_count=_set(model.parallel_count, None),
            created_by=str(_set(model.created_by, "")),
            creation_time=created if isinstance(created, str) else _iso(created),
            completion_time=completed if isinstance(completed, str) else _iso(completed),
            start_time=_moment(model.start_time),
            labels={str(k): str(v) for k, v in _free_form(_set(model.labels, None)).items()},
            rows_per_second=_set(model.rows_per_second, None),
            estimated_seconds_left=_set(model.estimated_seconds_left, None),
            expires_at=_moment(model.expires_at),
            expired=bool(_set(model.expired, False)),
            retried_item_count=int(_set(model.retried_item_count, 0)),
            raw=model,
        )

    @classmethod
    def from_json(cls, data: object, execution_id: str = "") -> BatchStatus:
        """Parse a ``BatchWebServiceResult`` (or a summary without results) as the server sent it."""
        with_results = isinstance(data, Mapping) and any(str(k).lower() == "batchexecutionresults" for k in data)
        model = BatchWebServiceResult if with_results else BatchExecutionSummary
        return cls.from_model(_parsed(model, data), execution_id)


def _moment(value: Any) -> str:
    """An optional (possibly null) ``date-time`` field in the wire's spelling, or empty."""
    moment = _set(value, "")
    return moment if isinstance(moment, str) else _iso(moment)


def _iso(moment: Any) -> str:
    """A parsed ``date-time`` back in the wire's spelling (UTC as ``Z``)."""
    return str(moment.isoformat()).replace("+00:00", "Z")
