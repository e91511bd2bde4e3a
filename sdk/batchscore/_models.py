"""What the SDK returns: services, execution results and batch statuses, parsed leniently.

The server's answers are read with ML Server's variations in mind (be liberal in what you accept): keys in any
casing (``BatchExecutionId``), states in any casing (``Complete``), and extension fields that old servers do not
send (the counters, ``index``, ``cursor``) are optional.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class BatchState(StrEnum):
    """The state of a batch execution (ML Server's four, plus ``failed`` and ``canceled``)."""

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


class _Fields:
    """A JSON object read by key, case-insensitively."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = {str(key).lower(): value for key, value in data.items()}

    def get(self, key: str, default: Any = None) -> Any:
        value = self._data.get(key.lower(), default)
        return default if value is None else value


def _as_mapping(data: object) -> Mapping[str, Any]:
    return data if isinstance(data, Mapping) else {}


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

    @classmethod
    def from_json(cls, data: object) -> ServiceInfo:
        """Parse a ``WebService`` object."""
        fields = _Fields(_as_mapping(data))

        def parameters(key: str) -> tuple[Parameter, ...]:
            items = fields.get(key, [])
            return tuple(
                Parameter(str(_Fields(_as_mapping(p)).get("name")), str(_Fields(_as_mapping(p)).get("type")))
                for p in items
                if isinstance(p, Mapping)
            )

        return cls(
            name=str(fields.get("name", "")),
            version=str(fields.get("version", "")),
            inputs=parameters("inputParameterDefinitions"),
            outputs=parameters("outputParameterDefinitions"),
            artifacts=tuple(str(name) for name in fields.get("outputFileNames", [])),
            operation_id=str(fields.get("operationId", "consume")),
            description=str(fields.get("description", "")),
            published_by=str(fields.get("versionPublishedBy", "")),
            creation_time=str(fields.get("creationTime", "")),
            permission=str(fields.get("myPermissionOnService", "")),
            runtime_type=str(fields.get("runtimeType", "Python")),
            snapshot_id=fields.get("snapshotId"),
            code=str(fields.get("code", "")),
            init_code=str(fields.get("initCode", "")),
        )


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
        files: Consume replies: the declared artifacts' bytes (None for one not produced).

    """

    success: bool
    error_message: str = ""
    console_output: str = ""
    changed_files: tuple[str, ...] = ()
    outputs: dict[str, Any] = field(default_factory=dict)
    index: int | None = None
    item_state: str | None = None
    files: dict[str, bytes | None] = field(default_factory=dict)

    @property
    def output_parameters(self) -> dict[str, Any]:
        """ML Server's name for :attr:`outputs`."""
        return self.outputs

    def output(self, name: str) -> Any:
        """One output by name.

        Raises:
            KeyError: The service has no such output (or the execution failed before setting it).

        """
        return self.outputs[name]

    def artifact(self, name: str) -> bytes | None:
        """A consume reply's artifact bytes (None when the execution did not produce it).

        Raises:
            KeyError: The service does not declare that artifact.

        """
        return self.files[name]

    @classmethod
    def from_json(cls, data: object) -> ExecutionResult:
        """Parse a ``WebServiceResult`` (or a batch's ``BatchExecutionResult``)."""
        fields = _Fields(_as_mapping(data))
        files: dict[str, bytes | None] = {}
        for name, encoded in _as_mapping(fields.get("outputFiles", {})).items():
            try:
                files[str(name)] = base64.b64decode(encoded) if isinstance(encoded, str) else None
            except (binascii.Error, ValueError):
                files[str(name)] = None
        index = fields.get("index")
        item_state = fields.get("itemState")
        return cls(
            success=bool(fields.get("success", False)),
            error_message=str(fields.get("errorMessage", "")),
            console_output=str(fields.get("consoleOutput", "")),
            changed_files=tuple(str(name) for name in fields.get("changedFiles", [])),
            outputs=dict(_as_mapping(fields.get("outputParameters", {}))),
            index=int(index) if isinstance(index, int) else None,
            item_state=str(item_state) if item_state is not None else None,
            files=files,
        )


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

    inputs: tuple[dict[str, Any], ...] | None = None  # the submitted records, when this client sent them

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

    def to_csv(self, path: str | Any) -> None:
        """Write :meth:`to_frame` to a CSV file."""
        self.to_frame().to_csv(path)

    def to_parquet(self, path: str | Any) -> None:
        """Write :meth:`to_frame` to a Parquet file (needs pyarrow)."""
        self.to_frame().to_parquet(path)

    @property
    def is_final(self) -> bool:
        """Whether the batch has stopped."""
        return self.state.is_final

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
    def from_json(cls, data: object, execution_id: str = "") -> BatchStatus:
        """Parse a ``BatchWebServiceResult`` (or a summary without results)."""
        fields = _Fields(_as_mapping(data))
        results = tuple(ExecutionResult.from_json(item) for item in fields.get("batchExecutionResults", []))
        cursor = fields.get("cursor")
        return cls(
            execution_id=str(fields.get("batchExecutionId", execution_id)),
            state=BatchState.parse(fields.get("state", "unknown")),
            completed_item_count=int(fields.get("completedItemCount", 0)),
            total_item_count=int(fields.get("totalItemCount", 0)),
            failed_item_count=int(fields.get("failedItemCount", sum(1 for r in results if not r.success))),
            running_item_count=int(fields.get("runningItemCount", 0)),
            canceled_item_count=int(fields.get("canceledItemCount", 0)),
            results=results,
            error_message=str(fields.get("errorMessage", "")),
            cursor=str(cursor) if cursor is not None else None,
            has_more=bool(fields.get("hasMore", False)),
            parallel_count=fields.get("parallelCount"),
            created_by=str(fields.get("createdBy", "")),
            creation_time=str(fields.get("creationTime", "")),
            completion_time=str(fields.get("completionTime", "")),
        )
