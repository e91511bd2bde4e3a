"""``FakeServer``: the batchscore API in memory, as an httpx transport, for testing apps with no server and no network.

It is a test double, not a server: services run in the test's own process and thread (published code with
``exec``, registered callables by calling them), batches advance only when polled (or when the test says so), and
nothing is isolated or persisted. Every request it receives and every response it gives is checked against the
contract, so an app that would send a wrong request to a real server fails its test here too.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import inspect
import io
import json
import math
import numbers
import pickle
import secrets
import tempfile
import threading
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from batchscore._exceptions import InvalidRecordError
from batchscore._publish import TypeSpec, parameters
from batchscore._records import _convert_cell as convert_cell
from batchscore._retryable import Retryable
from batchscore.testing._contract import ContractValidator, Operation, media_type

if TYPE_CHECKING:
    from batchscore import AsyncClient, Client

FAKE_URL = "http://batchscore.fake"
FINAL_STATES = frozenset({"complete", "failed", "canceled"})
DEFAULT_OUTPUT = "answer"
# The reference server's default cap on parallelCount; the status reports the effective value, as there.
MAX_PARALLEL_COUNT = 100


@dataclass(frozen=True)
class FakeService:
    """A Python callable served by :class:`FakeServer` as a published service.

    Inputs default to the callable's parameters (annotated ``float``, ``int``, ``bool``, ``str``, ``list`` or
    ``pandas.DataFrame``; unannotated ones are ``numeric``); the output defaults to one named ``answer`` typed by
    the return annotation (``numeric`` without one).

    Attributes:
        function: Called once per record with the inputs as keyword arguments; it runs in a fresh, empty working
            directory, and the declared ``artifacts`` it writes there become the record's files. An exception
            is a failed record (``success: false`` with the traceback as ``errorMessage``).
        inputs: Input names and types, in order (``{"hp": float}`` or ML Server type names).
        outputs: Output names and types; with several, the function returns a dict by name or a sequence in order.
        artifacts: File names each execution may write (the service's ``outputFileNames``).
        description: What the service does.
        alias: The consume method's name (``operationId``); the function's name by default.

    """

    function: Callable[..., Any]
    inputs: Mapping[str, TypeSpec] | None = None
    outputs: Mapping[str, TypeSpec] | None = None
    artifacts: Sequence[str] = ()
    description: str = ""
    alias: str | None = None


@dataclass(frozen=True)
class _Call:
    """One request as a handler sees it: the request, its body, its path parameters and the caller."""

    request: httpx.Request
    body: bytes
    path: dict[str, str]
    user: str

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def params(self) -> httpx.QueryParams:
        return self.request.url.params


class _ApiError(Exception):
    """An error answer: status, message and the offending field, as the contract's ``Error`` body."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def response(self) -> httpx.Response:
        body: dict[str, Any] = {"code": self.status, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}
        return httpx.Response(self.status, json=body, headers=headers)


def _not_found(what: str, field: str) -> _ApiError:
    return _ApiError(404, f"{what} not found", field)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


# -- values ----------------------------------------------------------------------------------------------------


def _type_problem(kind: str, value: Any) -> str | None:
    """What is wrong with a JSON value for an ML Server parameter type (None when it fits)."""
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if kind == "numeric" and value is None:
        return None  # a missing value, run as NaN (as the server does)
    if kind == "numeric":
        return None if is_number and math.isfinite(float(value)) else f"expected a finite number, got {value!r}"
    if kind == "integer":
        whole = is_number and math.isfinite(float(value)) and float(value).is_integer()
        return None if whole else f"expected an integer, got {value!r}"
    if kind == "logical":
        return None if isinstance(value, bool) else f"expected true or false, got {value!r}"
    if kind == "character":
        return None if isinstance(value, str) else f"expected a string, got {value!r}"
    if kind == "vector":
        return None if isinstance(value, list) else f"expected an array, got {type(value).__name__}"
    if kind == "matrix":
        rows = isinstance(value, list) and all(isinstance(row, list) for row in value)
        return None if rows else f"expected an array of arrays, got {type(value).__name__}"
    if kind == "data.frame":
        table = isinstance(value, Mapping | list)
        return None if table else f"expected columns ({{name: [values]}}), got {type(value).__name__}"
    return f"unknown parameter type {kind!r}"


def _plain(value: Any) -> Any:
    """A service's output as JSON: DataFrames as columns, numpy values as Python ones."""
    if type(value).__name__ == "DataFrame" and hasattr(value, "to_dict"):
        return value.to_dict(orient="list")
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def _argument(kind: str, value: Any) -> Any:
    """An input as the service's code receives it: a ``data.frame`` as a DataFrame when pandas is installed."""
    if kind == "numeric" and value is None:
        return math.nan  # a missing number (na="null"), as the server gives it
    if kind != "data.frame":
        return value
    try:
        import pandas
    except ImportError:
        return value
    return pandas.DataFrame(value)


def _split_passthrough(service: Any, records: list[Any], names: tuple[str, ...]) -> list[dict[str, Any] | None]:
    """Take each record's passthrough values out of it (the server's rules for the names); None without names."""
    if not names:
        return [None] * len(records)
    taken = {name for name, _ in [*service.inputs, *service.outputs]}
    if len(names) > 32 or any(name in taken or not 1 <= len(name) <= 128 for name in names):
        raise _ApiError(
            400, "passthrough: at most 32 names of 1 to 128 characters, none an input or output", "passthrough"
        )
    return [
        {name: record.pop(name) for name in names if name in record} if isinstance(record, dict) else {}
        for record in records
    ]


def _check_inputs(definitions: Sequence[tuple[str, str]], record: Any, where: str) -> None:
    """Refuse a record that does not match the inputs, naming the field as the server does (``body[3].hp``)."""
    if not isinstance(record, Mapping):
        raise _ApiError(400, f"{where}: expected an object with the inputs", where)
    names = [name for name, _ in definitions]
    for name, kind in definitions:
        if name not in record:
            raise _ApiError(400, f"{where}.{name}: missing input ({kind})", f"{where}.{name}")
        problem = _type_problem(kind, record[name])
        if problem is not None:
            raise _ApiError(400, f"{where}.{name}: {problem}", f"{where}.{name}")
    for key in record:
        if key not in names:
            raise _ApiError(
                400, f"{where}.{key}: unknown input; the service takes: {', '.join(names)}", f"{where}.{key}"
            )


# -- services --------------------------------------------------------------------------------------------------


class _Runner:
    """Runs one record of a service and returns its outputs by name (raising when the service fails)."""

    def __init__(self, outputs: Sequence[str]) -> None:
        self.outputs = list(outputs)

    def __call__(self, inputs: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class _CallableRunner(_Runner):
    def __init__(self, function: Callable[..., Any], outputs: Sequence[str]) -> None:
        super().__init__(outputs)
        self.function = function

    def __call__(self, inputs: dict[str, Any]) -> dict[str, Any]:
        value = self.function(**inputs)
        if len(self.outputs) == 1:
            return {self.outputs[0]: value}
        if isinstance(value, Mapping):
            return {name: value[name] for name in self.outputs}
        return dict(zip(self.outputs, value, strict=True))


class _CodeRunner(_Runner):
    """Published source, run with ``exec`` in this process.

    The snapshot's objects and ``initCode`` make a namespace once; ``code`` then runs per record in a copy of it
    with the inputs bound, as the real server's workers do.
    """

    def __init__(self, code: str, init_code: str, objects: Mapping[str, bytes], outputs: Sequence[str]) -> None:
        super().__init__(outputs)
        self.code = compile(code, "<code>", "exec", dont_inherit=True)
        self.init_code = init_code
        self.objects = dict(objects)
        self._namespace: dict[str, Any] | None = None
        self.vectorized = False  # the code gets each input as a Series of the rows (here always one row)

    def _base(self) -> dict[str, Any]:
        if self._namespace is None:
            namespace: dict[str, Any] = {"__name__": "__main__"}
            namespace.update({name: pickle.loads(data) for name, data in self.objects.items()})
            if self.init_code:
                exec(compile(self.init_code, "<initCode>", "exec", dont_inherit=True), namespace)
            self._namespace = namespace
        return self._namespace

    def __call__(self, inputs: dict[str, Any]) -> dict[str, Any]:
        if self.vectorized:  # a chunk of one row, as the server runs a consume: each input a one-value Series
            import pandas

            inputs = {name: pandas.Series([value]) for name, value in inputs.items()}
        namespace = {**self._base(), **inputs}
        exec(self.code, namespace)
        missing = [name for name in self.outputs if name not in namespace]
        if missing:
            raise NameError(f"output {missing[0]!r} was not set by the code")
        if self.vectorized:
            return {name: _one_value(name, namespace[name]) for name in self.outputs}
        return {name: namespace[name] for name in self.outputs}


def _one_value(name: str, value: Any) -> Any:
    """The one row's value of a vectorized output (a Series, one-column DataFrame, array, list or tuple)."""
    if hasattr(value, "columns") and len(value.columns) == 1:
        value = value.iloc[:, 0]
    values = value.tolist() if hasattr(value, "tolist") else list(value) if isinstance(value, list | tuple) else None
    if values is None or len(values) != 1:
        raise ValueError(f"output {name!r} must hold one value per row (1 row), got {value!r}")
    return values[0]


@dataclass
class _Service:
    name: str
    version: str
    owner: str
    seq: int
    definition: dict[str, Any]
    runner: _Runner
    created: str = field(default_factory=_now)

    @property
    def inputs(self) -> list[tuple[str, str]]:
        return [(p["name"], p["type"]) for p in self.definition.get("inputParameterDefinitions", [])]

    @property
    def outputs(self) -> list[tuple[str, str]]:
        return [(p["name"], p["type"]) for p in self.definition.get("outputParameterDefinitions", [])]

    @property
    def files(self) -> list[str]:
        return list(self.definition.get("outputFileNames", []))

    def web_service(self) -> dict[str, Any]:
        """The contract's ``WebService``."""
        service = {
            "name": self.name,
            "version": self.version,
            "versionPublishedBy": self.owner,
            "creationTime": self.created,
            "runtimeType": "Python",
            "code": self.definition["code"],
            "initCode": self.definition.get("initCode", ""),
            "description": self.definition.get("description", ""),
            "operationId": self.definition.get("operationId") or "consume",
            "inputParameterDefinitions": self.definition.get("inputParameterDefinitions", []),
            "outputParameterDefinitions": self.definition.get("outputParameterDefinitions", []),
            "outputFileNames": self.files,
            "myPermissionOnService": "read/write",
        }
        if self.definition.get("snapshotId"):
            service["snapshotId"] = self.definition["snapshotId"]
        if self.definition.get("consumeTimeout") is not None:
            service["consumeTimeout"] = self.definition["consumeTimeout"]
        for key in ("vectorized", "maxBatchRows"):  # extensions, sent when set
            if self.definition.get(key):
                service[key] = self.definition[key]
        return service

    def execute(self, inputs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
        """Run one record in a fresh working directory: its ``WebServiceResult`` and the declared files it wrote."""
        console = io.StringIO()
        result: dict[str, Any] = {"success": False, "errorMessage": "", "outputParameters": {}}
        kinds = dict(self.inputs)
        arguments = {name: _argument(kinds.get(name, ""), value) for name, value in inputs.items()}
        with tempfile.TemporaryDirectory(prefix="batchscore-fake-") as folder:
            work = Path(folder)
            with contextlib.chdir(work), contextlib.redirect_stdout(console), contextlib.redirect_stderr(console):
                try:
                    outputs = self.runner(arguments)
                except Exception as error:  # the service's own failure is the record's result, as on the server
                    result["errorMessage"] = traceback.format_exc()
                    if isinstance(error, Retryable):
                        result["retryable"] = True  # for the batch's itemRetries; not part of the result
                else:
                    result.update(self._encoded(outputs))
            result["consoleOutput"] = console.getvalue()
            result["changedFiles"] = sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file())
            files = {name: (work / name).read_bytes() for name in self.files if (work / name).is_file()}
        return result, files

    def _encoded(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        encoded = {}
        for name, kind in self.outputs:
            value = _plain(outputs[name])
            problem = _type_problem(kind, value)
            if problem is not None:
                return {"errorMessage": f"outputParameters.{name}: {problem}"}
            encoded[name] = value
        return {"success": True, "outputParameters": encoded}


def _callable_definition(service: FakeService) -> dict[str, Any]:
    signature = inspect.signature(service.function)
    inputs = service.inputs
    if inputs is None:
        inputs = {
            name: "numeric" if p.annotation is inspect.Parameter.empty else p.annotation
            for name, p in signature.parameters.items()
        }
    outputs = service.outputs
    if outputs is None:
        returned = signature.return_annotation
        outputs = {DEFAULT_OUTPUT: "numeric" if returned is inspect.Signature.empty else returned}
    name = getattr(service.function, "__qualname__", repr(service.function))
    # A lambda's name is no identifier, so it cannot be the consume method's name: it gets the default then.
    function_name = getattr(service.function, "__name__", "")
    return {
        "code": f"# {name}: a Python callable registered with FakeServer, called in-process\n",
        "description": service.description,
        "operationId": service.alias or (function_name if function_name.isidentifier() else "consume"),
        "inputParameterDefinitions": [vars(p) for p in parameters(inputs)],
        "outputParameterDefinitions": [vars(p) for p in parameters(outputs)],
        "outputFileNames": list(service.artifacts),
        "runtimeType": "Python",
    }


# -- batches ---------------------------------------------------------------------------------------------------


@dataclass
class _Row:
    index: int
    inputs: dict[str, Any]
    state: str = "pending"  # pending, running, complete, failed, canceled
    result: dict[str, Any] | None = None
    seq: int | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    runs: int = 0
    attempts: list[dict[str, Any]] = field(default_factory=list)  # earlier runs that failed and were retried
    passthrough: dict[str, Any] | None = None  # its passthrough values, when the batch declared columns

    def result_json(self) -> dict[str, Any]:
        # In-process rows never die mid-run: each ran once (or again after a retryable failure), or never.
        attempt = self.runs if self.runs or self.state == "canceled" else 1
        body = {"index": self.index, "itemState": self.state, "attempt": attempt, **(self.result or {})}
        if self.attempts:
            body["attempts"] = list(self.attempts)
        if self.passthrough is not None:
            body["passthrough"] = dict(self.passthrough)
        return body


@dataclass
class _Batch:
    id: str
    service: _Service
    rows: list[_Row]
    parallel: int
    owner: str
    item_timeout: float | None = None
    state: str = "pending"
    last_seq: int = 0
    error_message: str = ""
    created: str = field(default_factory=_now)
    completed: str | None = None
    labels: dict[str, str] = field(default_factory=dict)  # given at start, for the batch list's filters
    expired_at: str | None = None  # set by FakeServer.expire_batch: its results and files are gone
    item_retries: int = 0
    max_failed_items: int | None = None
    max_failure_ratio: float | None = None
    min_failure_sample: int = 20
    passthrough: tuple[str, ...] = ()  # the passthrough column names given at start

    def count(self, state: str) -> int:
        return sum(1 for row in self.rows if row.state == state)

    def summary(self) -> dict[str, Any]:
        """The contract's ``BatchExecutionSummary``."""
        body: dict[str, Any] = {
            "batchExecutionId": self.id,
            "name": self.service.name,
            "version": self.service.version,
            "state": self.state,
            "completedItemCount": self.count("complete") + self.count("failed"),
            "totalItemCount": len(self.rows),
            "failedItemCount": self.count("failed"),
            "runningItemCount": self.count("running"),
            "canceledItemCount": self.count("canceled"),
            "parallelCount": self.parallel,
            "createdBy": self.owner,
            "creationTime": self.created,
        }
        if self.item_timeout is not None:
            body["itemTimeout"] = self.item_timeout
        if self.completed is not None:
            body["completionTime"] = self.completed
        if self.error_message:
            body["errorMessage"] = self.error_message
        body["labels"] = dict(self.labels)
        if self.passthrough:
            body["passthrough"] = list(self.passthrough)
        if self.expired_at is not None:
            body.update(expiresAt=self.expired_at, expired=True)
        return body

    def check_not_expired(self) -> None:
        """Refuse what needs the records or files of an expired batch: the contract's ``Gone``."""
        if self.expired_at is not None:
            raise _ApiError(
                410, f"batch {self.id} expired at {self.expired_at}; its results were deleted", "executionId"
            )

    def finish_row(self, row: _Row, state: str, result: dict[str, Any]) -> None:
        self.last_seq += 1
        row.state, row.result, row.seq = state, result, self.last_seq

    def schedule(self) -> None:
        """Mark pending rows running, up to ``parallelCount`` at a time."""
        free = self.parallel - self.count("running")
        for row in self.rows:
            if free <= 0:
                break
            if row.state == "pending":
                row.state = "running"
                free -= 1

    def step(self) -> None:
        """One tick: pending -> inProgress (rows start), then each tick finishes the running rows and starts more."""
        if self.state == "pending":
            self.state = "inProgress"
            self.schedule()
            return
        if self.state != "inProgress":
            return
        for row in self.rows:
            if row.state == "running":
                result, files = self.service.execute(row.inputs)
                row.runs += 1
                retryable = result.pop("retryable", False)
                if not result["success"] and retryable and len(row.attempts) < self.item_retries:
                    # Run again at a later step (the fake does not wait out the server's backoff).
                    row.attempts.append({"attempt": row.runs, "errorMessage": result["errorMessage"]})
                    row.state = "pending"
                    continue
                row.files = files
                self.finish_row(row, "complete" if result["success"] else "failed", result)
        reason = self.policy_breach()
        if reason is not None:
            self.end("failed", reason, leftover="canceled")
            return
        self.schedule()
        if not self.count("running"):
            self.end("complete")

    def policy_breach(self) -> str | None:
        """Why the failure policy stops the batch now (the server's wording), or None."""
        failed, finished = self.count("failed"), self.count("failed") + self.count("complete")
        if self.max_failed_items is not None and failed > self.max_failed_items:
            return (
                f"stopped by the failure policy: {failed} of {finished} finished rows failed, "
                f"over maxFailedItems={self.max_failed_items}"
            )
        sample = min(self.min_failure_sample, len(self.rows))
        ratio = self.max_failure_ratio
        if ratio is not None and finished and finished >= sample and failed / finished > ratio:
            return (
                f"stopped by the failure policy: {failed} of {finished} finished rows failed "
                f"({failed / finished:.1%}), over maxFailureRatio={ratio:g} (judged from minFailureSample={sample} "
                "finished rows)"
            )
        return None

    def end(self, state: str, reason: str = "", leftover: str | None = None) -> None:
        """Close the batch: rows that have not finished get a failed (or canceled) result (or ``leftover``)."""
        message = reason or "canceled: the batch was canceled before this row ran"
        if leftover == "canceled" and reason:
            message = "canceled: the batch was stopped by its failure policy before this row ran"
        for row in self.rows:
            if row.state in ("pending", "running"):
                closed = {"success": False, "errorMessage": message, "consoleOutput": "", "changedFiles": []}
                row_state = leftover or ("canceled" if state == "canceled" else "failed")
                self.finish_row(row, row_state, {**closed, "outputParameters": {}})
        self.state, self.error_message, self.completed = state, reason, _now()


# -- the server ------------------------------------------------------------------------------------------------


class FakeServer(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The batchscore API in memory: an httpx transport (sync and async) for testing an app with no server.

    Give it to a client as its transport: ``batchscore.Client(FakeServer.url, transport=fake, ...)``, or use
    :meth:`client` / :meth:`async_client`. Every request and response is checked with
    :class:`~batchscore.testing.ContractValidator`; a violation raises ``ContractViolation`` in the test.

    Services are Python callables registered up front, or code published through the API (run with ``exec``
    in this process: it is a test double, so only publish code you trust, as on a real server). Batches move
    pending -> inProgress -> complete one step per status poll (``auto_advance``, ``steps_per_poll``), at most
    ``parallelCount`` rows finishing per step; with ``auto_advance=False`` they move only on :meth:`advance` and
    :meth:`finish`.

    A batch's ``itemTimeout`` is kept and reported but not enforced: a record runs to its end.

    Records run one at a time, under a lock, each with the process's working directory changed to an empty
    temporary one (how a service's files are found); an app that relies on its own working directory from other
    threads while a record runs would see the change.

    Args:
        services: ``{(name, version): callable or FakeService}`` published before the first request.
        users: User names and passwords accepted by ``POST /login``; None accepts any. Any bearer token is
            accepted unless ``users`` is given (then only tokens this fake issued are).
        auto_advance: Advance a batch on each status poll.
        steps_per_poll: How many steps a poll advances a batch (a large number finishes it on the first poll).
        validator: The contract checker (the shared one for the shipped contract when None).
        owner: The user registered services belong to.

    Attributes:
        requests: Every request received, in order (to assert on what the app sent).
        auto_advance: As given; a test may change it at any time.
        steps_per_poll: As given.

    Example:
        >>> fake = FakeServer(services={("mtService", "v1.0.0"): manual_transmission})
        >>> client = batchscore.Client(fake.url, username="admin", password="x", transport=fake)
        >>> client.get_service("mtService", "v1.0.0").consume(120, 2.8)

    """

    url = FAKE_URL

    def __init__(
        self,
        services: Mapping[tuple[str, str], Callable[..., Any] | FakeService] | None = None,
        *,
        users: Mapping[str, str] | None = None,
        auto_advance: bool = True,
        steps_per_poll: int = 1,
        validator: ContractValidator | None = None,
        owner: str = "admin",
    ) -> None:
        self.validator = validator or ContractValidator.shipped()
        self.users = dict(users) if users is not None else None
        self.auto_advance = auto_advance
        self.steps_per_poll = steps_per_poll
        self.requests: list[httpx.Request] = []
        self._owner = owner
        self._lock = threading.RLock()
        self._services: dict[tuple[str, str], _Service] = {}
        self._batches: dict[str, _Batch] = {}
        self._idempotency: dict[str, tuple[str, str]] = {}  # key -> (request hash, batch id)
        self._sessions: dict[str, dict[str, bytes]] = {}
        self._snapshots: dict[str, dict[str, Any]] = {}
        self._access: dict[str, str] = {}  # issued access token -> user
        self._refresh: dict[str, str] = {}  # live refresh token -> user
        self._expired: set[str] = set()
        self._clients: list[Client] = []
        self._seq = 0
        # Webhooks: each user's secret, each batch's callbackUrl and its deliveries (recorded, never sent).
        self._webhook_secrets: dict[str, str] = {}
        self._callbacks: dict[str, str | None] = {}
        self._deliveries: dict[str, list[dict[str, Any]]] = {}
        for (name, version), service in (services or {}).items():
            self.add_service(name, version, service)
        self._handlers: dict[str, Callable[[_Call], httpx.Response]] = {
            name[len("_op_") :]: getattr(self, name) for name in dir(self) if name.startswith("_op_")
        }

    # -- the test's controls -----------------------------------------------------------------------------------

    def add_service(self, name: str, version: str, service: Callable[..., Any] | FakeService) -> None:
        """Publish a Python callable (or a :class:`FakeService`) as service ``name`` ``version``.

        Raises:
            TypeError: The callable is a coroutine function (records run synchronously, as on a real server).
            ValueError: A type has no ML Server equivalent.

        """
        spec = service if isinstance(service, FakeService) else FakeService(service)
        if inspect.iscoroutinefunction(spec.function):
            raise TypeError(f"{spec.function.__name__} is async: a FakeService calls a plain function")
        definition = _callable_definition(spec)
        runner = _CallableRunner(spec.function, [p["name"] for p in definition["outputParameterDefinitions"]])
        with self._lock:
            self._seq += 1
            self._services[(name, version)] = _Service(name, version, self._owner, self._seq, definition, runner)

    def advance(self, execution_id: str | None = None, steps: int = 1) -> None:
        """Move one batch (every unfinished batch when None) ``steps`` steps on."""
        with self._lock:
            batches = [self._batch_by_id(execution_id)] if execution_id else list(self._batches.values())
            for _ in range(steps):
                for batch in batches:
                    batch.step()

    def finish(self, execution_id: str | None = None) -> None:
        """Run one batch (every batch when None) until it is complete, failed or canceled."""
        with self._lock:
            batches = [self._batch_by_id(execution_id)] if execution_id else list(self._batches.values())
            for batch in batches:
                while batch.state not in FINAL_STATES:
                    batch.step()

    def fail_batch(self, execution_id: str, reason: str = "the batch failed (FakeServer.fail_batch)") -> None:
        """End a batch in state ``failed`` with ``reason``, as a server does when a batch cannot run at all."""
        with self._lock:
            self._batch_by_id(execution_id).end("failed", reason)

    def expire_batch(self, execution_id: str) -> None:
        """Expire a finished batch now, as the server's retention sweep does: its results and files are deleted.

        Its status keeps the summary, with ``expired`` true and no results; its files and a retry answer 410
        (``batchscore.ExpiredError``).
        """
        with self._lock:
            batch = self._batch_by_id(execution_id)
            if batch.state not in FINAL_STATES:
                raise ValueError(f"batch {execution_id} has not finished: only a finished batch expires")
            batch.expired_at = _now()
            for row in batch.rows:
                row.result, row.seq, row.files = None, None, {}

    def batch_state(self, execution_id: str) -> str:
        """A batch's state as the contract spells it (``pending``, ``inProgress``, ``complete`` ...)."""
        with self._lock:
            return self._batch_by_id(execution_id).state

    def expire_tokens(self) -> None:
        """Make every access token issued so far expire: the next request with one is a 401 (tests renewal)."""
        with self._lock:
            self._expired.update(self._access)

    def client(self, **options: Any) -> Client:
        """A ``batchscore.Client`` on this fake (logging in as ``admin``), closed by :meth:`close`.

        Args:
            options: More ``batchscore.Client`` arguments (``token=``, ``username=``, ``headers=`` ...).

        """
        import batchscore

        client = batchscore.Client(self.url, transport=self, **self._login(options))
        self._clients.append(client)
        return client

    def async_client(self, **options: Any) -> AsyncClient:
        """A ``batchscore.AsyncClient`` on this fake (logging in as ``admin``); close it (``async with``)."""
        import batchscore

        return batchscore.AsyncClient(self.url, transport=self, **self._login(options))

    def _login(self, options: dict[str, Any]) -> dict[str, Any]:
        """A client's options with credentials this fake accepts, unless the test gave a token or its own."""
        if "token" not in options:
            options.setdefault("username", "admin")
            options.setdefault("password", (self.users or {}).get(options["username"], "fake-password"))
        return options

    def close(self) -> None:
        """Close the clients :meth:`client` made (the transport itself holds nothing to close)."""
        for client in self._clients:
            client.close()
        self._clients.clear()

    # -- transport -----------------------------------------------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (sync clients)."""
        return self._answer(request, request.read())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (async clients)."""
        return self._answer(request, await request.aread())

    def _answer(self, request: httpx.Request, body: bytes) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            operation: Operation = self.validator.check_request(request, body)
            _, path = self.validator.operation(request.method, request.url)
            try:
                user = "" if operation.public else self._authenticate(request)
                handler = self._handlers.get(operation.operation_id)
                if handler is None:
                    raise NotImplementedError(f"FakeServer does not implement {operation.operation_id} yet")
                response = handler(_Call(request, body, path, user))
            except _ApiError as error:
                response = error.response()
            self.validator.check_response(request, response)
            return response

    # -- authentication ----------------------------------------------------------------------------------------

    def _authenticate(self, request: httpx.Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _ApiError(401, "the bearer token is missing", "Authorization")
        if token in self._expired:
            raise _ApiError(401, "the access token has expired", "Authorization")
        if token in self._access:
            return self._access[token]
        if self.users is not None:
            raise _ApiError(401, "the access token is invalid", "Authorization")
        return self._owner

    def _tokens(self, user: str) -> httpx.Response:
        access, refresh = f"fake-access-{uuid.uuid4().hex}", f"fake-refresh-{uuid.uuid4().hex}"
        self._access[access] = user
        self._refresh[refresh] = user
        body = {
            "token_type": "Bearer",
            "access_token": access,
            "expires_in": 3600,
            "expires_on": str(int(datetime.now(UTC).timestamp()) + 3600),
            "refresh_token": refresh,
        }
        return httpx.Response(200, json=body)

    def _op_login(self, call: _Call) -> httpx.Response:
        credentials = call.json()
        name, password = credentials["username"], credentials["password"]
        if self.users is not None and self.users.get(name) != password:
            raise _ApiError(401, "invalid user name or password", "password")
        return self._tokens(name)

    def _op_renewToken(self, call: _Call) -> httpx.Response:
        refresh = call.json()["refreshToken"]
        if refresh not in self._refresh:
            raise _ApiError(401, "the refresh token is invalid, expired or revoked", "refreshToken")
        return self._tokens(self._refresh.pop(refresh))

    def _op_revokeRefreshToken(self, call: _Call) -> httpx.Response:
        if self._refresh.pop(call.params["refreshToken"], None) is None:
            raise _ApiError(401, "the refresh token is invalid, expired or revoked", "refreshToken")
        return httpx.Response(200)

    def _op_status(self, call: _Call) -> httpx.Response:
        return httpx.Response(200, json={"statusCode": "pass", "details": {"fake": True}, "components": {}})

    # -- services ----------------------------------------------------------------------------------------------

    def _service(self, path: dict[str, str]) -> _Service:
        service = self._services.get((path["name"], path["version"]))
        if service is None:
            raise _not_found(f"service {path['name']} version {path['version']}", "version")
        return service

    def _listed(self, services: Sequence[_Service]) -> httpx.Response:
        return httpx.Response(200, json=[s.web_service() for s in sorted(services, key=lambda s: s.seq)])

    def _op_getAllWebServices(self, call: _Call) -> httpx.Response:
        return self._listed(list(self._services.values()))

    def _op_getAllWebServiceVersionsByName(self, call: _Call) -> httpx.Response:
        return self._listed([s for s in self._services.values() if s.name == call.path["name"]])

    def _op_getWebServiceVersion(self, call: _Call) -> httpx.Response:
        return self._listed([self._service(call.path)])

    def _op_publishWebService(self, call: _Call) -> httpx.Response:
        return self._publish({**call.path, "version": str(uuid.uuid4())}, call.json(), call.user)

    def _op_publishWebServiceVersion(self, call: _Call) -> httpx.Response:
        return self._publish(call.path, call.json(), call.user)

    def _publish(self, path: dict[str, str], definition: dict[str, Any], user: str) -> httpx.Response:
        name, version = path["name"], path["version"]
        if (name, version) in self._services:
            raise _ApiError(409, f"service {name} version {version} exists already; use PATCH to update it", "version")
        if definition.get("vectorized") and definition.get("outputFileNames"):
            raise _ApiError(422, "a vectorized service declares no outputFileNames", "outputFileNames")
        runner = self._code_runner(definition)
        self._seq += 1
        self._services[(name, version)] = _Service(name, version, user, self._seq, definition, runner)
        return httpx.Response(201, json=version, headers={"Location": f"/services/{name}/{version}"})

    def _code_runner(self, definition: Mapping[str, Any]) -> _Runner:
        for key in ("inputParameterDefinitions", "outputParameterDefinitions"):
            names = [p["name"] for p in definition.get(key, [])]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise _ApiError(422, f"{key}: {repeated[0]!r} is defined twice", key)
        objects: dict[str, bytes] = {}
        if definition.get("snapshotId"):
            snapshot = self._snapshots.get(definition["snapshotId"])
            if snapshot is None:
                raise _ApiError(422, f"snapshot {definition['snapshotId']} does not exist", "snapshotId")
            objects = snapshot["objects"]
        outputs = [p["name"] for p in definition.get("outputParameterDefinitions", [])]
        try:
            runner = _CodeRunner(definition["code"], definition.get("initCode", ""), objects, outputs)
            runner.vectorized = bool(definition.get("vectorized"))
            return runner
        except SyntaxError as error:
            raise _ApiError(422, f"code does not compile: {error}", "code") from None

    def _op_patchWebServiceVersion(self, call: _Call) -> httpx.Response:
        service = self._service(call.path)
        changes = call.json()
        if "code" in changes or "snapshotId" in changes or "initCode" in changes:
            merged = {**service.definition, **changes}
            service.runner = self._code_runner(merged)
        service.definition = {**service.definition, **changes}
        return httpx.Response(200, json=service.version)

    def _op_deleteWebServiceVersion(self, call: _Call) -> httpx.Response:
        service = self._service(call.path)
        del self._services[(service.name, service.version)]
        for batch in self._batches.values():
            if batch.service is service and batch.state not in FINAL_STATES:
                batch.end("failed", f"service {service.name} version {service.version} was deleted while the batch ran")
        return httpx.Response(200)

    # -- sessions and snapshots --------------------------------------------------------------------------------

    def _session(self, path: dict[str, str]) -> dict[str, bytes]:
        session = self._sessions.get(path["id"])
        if session is None:
            raise _not_found(f"session {path['id']}", "id")
        return session

    def _op_createSession(self, call: _Call) -> httpx.Response:
        if call.json().get("runtimeType", "Python") != "Python":
            raise _ApiError(422, "only runtimeType Python is supported", "runtimeType")
        session_id = str(uuid.uuid4())
        self._sessions[session_id] = {}
        return httpx.Response(201, json={"sessionId": session_id})

    def _op_closeSession(self, call: _Call) -> httpx.Response:
        self._session(call.path)
        del self._sessions[call.path["id"]]
        return httpx.Response(200)

    def _op_listWorkspaceObjects(self, call: _Call) -> httpx.Response:
        return httpx.Response(200, json=sorted(self._session(call.path)))

    def _op_setWorkspaceObject(self, call: _Call) -> httpx.Response:
        self._session(call.path)[call.path["objectName"]] = call.body
        return httpx.Response(200)

    def _op_CreateSnapshot(self, call: _Call) -> httpx.Response:
        objects = self._session(call.path)
        snapshot_id = str(uuid.uuid4())
        self._snapshots[snapshot_id] = {
            "id": snapshot_id,
            "name": call.json().get("name", ""),
            "owner": call.user,
            "creationTime": _now(),
            "objects": dict(objects),
        }
        return httpx.Response(201, json={"snapshotId": snapshot_id})

    def _op_ListSnapshots(self, call: _Call) -> httpx.Response:
        listed = [
            {**{k: v for k, v in s.items() if k != "objects"}, "contentSize": sum(map(len, s["objects"].values()))}
            for s in self._snapshots.values()
        ]
        return httpx.Response(200, json=listed)

    def _op_DeleteSnapshot(self, call: _Call) -> httpx.Response:
        if self._snapshots.pop(call.path["id"], None) is None:
            raise _not_found(f"snapshot {call.path['id']}", "id")
        return httpx.Response(200)

    # -- consume -----------------------------------------------------------------------------------------------

    def _op_ConsumeWebService(self, call: _Call) -> httpx.Response:
        service = self._service(call.path)
        record = call.json()
        _check_inputs(service.inputs, record, "body")
        result, files = service.execute(record)
        if service.files:
            result["outputFiles"] = {
                name: base64.b64encode(files[name]).decode("ascii") if name in files else None for name in service.files
            }
        return httpx.Response(200, json=result)

    def _op_GetWebServiceSwagger(self, call: _Call) -> httpx.Response:
        service = self._service(call.path)
        document = {"openapi": "3.1.0", "info": {"title": service.name, "version": service.version}, "paths": {}}
        return httpx.Response(200, json=document)

    # -- batches -----------------------------------------------------------------------------------------------

    def _batch_by_id(self, execution_id: str) -> _Batch:
        batch = self._batches.get(execution_id)
        if batch is None:
            raise KeyError(f"FakeServer has no batch execution {execution_id}")
        return batch

    def _batch(self, path: dict[str, str]) -> _Batch:
        batch = self._batches.get(path["executionId"])
        if batch is None or (batch.service.name, batch.service.version) != (path["name"], path["version"]):
            raise _not_found(f"batch execution {path['executionId']}", "executionId")
        return batch

    def _op_StartBatchExecution(self, call: _Call) -> httpx.Response:
        service = self._service(call.path)
        kind = media_type(call.request.headers.get("content-type"))
        params = call.params
        key = call.request.headers.get("idempotency-key")
        passthrough = tuple(dict.fromkeys(params.get_list("passthrough")))
        parts = [call.path, params.get("parallelCount"), params.get("itemTimeout"), kind, list(passthrough)]
        digest = hashlib.sha256(json.dumps(parts).encode() + call.body).hexdigest()
        earlier_digest, earlier_id = self._idempotency.get(key or "", ("", ""))
        if earlier_id in self._batches:  # a deleted batch frees its key
            if earlier_digest != digest:
                raise _ApiError(409, "this Idempotency-Key was used with another request", "Idempotency-Key")
            return self._started(self._batches[earlier_id])
        records = _batch_records(kind, call.body, service.inputs)
        extras = _split_passthrough(service, records, passthrough)
        for index, record in enumerate(records):
            _check_inputs(service.inputs, record, f"body[{index}]")
        timeout = params.get("itemTimeout")
        batch = _Batch(
            id=str(uuid.uuid4()),
            service=service,
            rows=[_Row(index, record, passthrough=extras[index]) for index, record in enumerate(records)],
            parallel=min(int(params.get("parallelCount", "10")), MAX_PARALLEL_COUNT),
            owner=call.user,
            item_timeout=float(timeout) if timeout is not None else None,
            labels=dict(label.split("=", 1) for label in params.get_list("label")),
            item_retries=int(params.get("itemRetries", "0")),
            max_failed_items=int(params["maxFailedItems"]) if "maxFailedItems" in params else None,
            max_failure_ratio=float(params["maxFailureRatio"]) if "maxFailureRatio" in params else None,
            min_failure_sample=int(params.get("minFailureSample", "20")),
            passthrough=passthrough,
        )
        self._batches[batch.id] = batch
        self._callbacks[batch.id] = params.get("callbackUrl")
        if key is not None:
            self._idempotency[key] = (digest, batch.id)
        return self._started(batch)

    @staticmethod
    def _started(batch: _Batch) -> httpx.Response:
        name, version = batch.service.name, batch.service.version
        body = {
            "batchExecutionId": batch.id,
            "BatchExecutionId": batch.id,
            "name": name,
            "version": version,
            "totalItemCount": len(batch.rows),
        }
        return httpx.Response(202, json=body, headers={"Location": f"/api/{name}/{version}/batch/{batch.id}"})

    def _op_GetBatchExecutions(self, call: _Call) -> httpx.Response:
        service = self._service(call.path)
        return httpx.Response(200, json=[b.id for b in self._batches.values() if b.service is service])

    def _op_ListBatchExecutions(self, call: _Call) -> httpx.Response:
        # Newest first: the batches in reverse order of their start. The cursor is the last listed batch's id,
        # urlsafe base64 (opaque to the client, as the server's); the caller's own batches unless an Owner's.
        params = call.params
        if "version" in params and "service" not in params:
            raise _ApiError(400, "version filters a service's batches: give service too", "version")
        wanted_labels = dict(label.split("=", 1) for label in params.get_list("label"))
        state = params.get("state")
        listed = [
            batch
            for batch in reversed(self._batches.values())
            if (call.user == self._owner or batch.owner == call.user)
            and params.get("owner", batch.owner) == batch.owner
            and (state is None or batch.state.lower() == state.lower())
            and params.get("service", batch.service.name) == batch.service.name
            and params.get("version", batch.service.version) == batch.service.version
            and wanted_labels.items() <= batch.labels.items()
        ]
        if "cursor" in params:
            try:
                after = base64.urlsafe_b64decode(params["cursor"] + "=" * (-len(params["cursor"]) % 4)).decode()
                position = next(i for i, batch in enumerate(listed) if batch.id == after)
            except (ValueError, StopIteration):
                raise _ApiError(400, "cursor must be a nextCursor from an earlier page", "cursor") from None
            listed = listed[position + 1 :]
        limit = int(params.get("limit", "100"))
        page, more = listed[:limit], len(listed) > limit
        next_cursor = base64.urlsafe_b64encode(page[-1].id.encode()).decode().rstrip("=") if more else None
        return httpx.Response(200, json={"batches": [batch.summary() for batch in page], "nextCursor": next_cursor})

    def _op_GetBatchExecutionStatus(self, call: _Call) -> httpx.Response:
        batch = self._batch(call.path)
        if self.auto_advance:
            for _ in range(self.steps_per_poll):
                batch.step()
        params = call.params
        partial = params.get("showPartialResults", params.get("showPartialResult", "true")) == "true"
        limit = int(params["limit"]) if "limit" in params else None
        since = int(params["since"]) if "since" in params else (0 if limit is not None else None)
        finished = [row for row in batch.rows if row.seq is not None]
        has_more = False
        if not partial and batch.state not in FINAL_STATES:
            selected, cursor = [], since or 0
        elif since is None:
            selected, cursor = finished, batch.last_seq
        else:
            newer = sorted((row for row in finished if (row.seq or 0) > since), key=lambda row: row.seq or 0)
            has_more = limit is not None and len(newer) > limit
            selected = newer[:limit] if limit is not None else newer
            cursor = (selected[-1].seq or 0) if selected else since
        reply = {
            **batch.summary(),
            "batchExecutionResults": [row.result_json() for row in selected],
            "cursor": str(cursor),
            "hasMore": has_more,
        }
        # "Retry-After: 0" while it runs: the next step is one poll away, so an app's wait() never sleeps long.
        headers = {} if batch.state in FINAL_STATES else {"Retry-After": "0"}
        return httpx.Response(200, json=reply, headers=headers)

    def _op_CancelAndDeleteBatchExecution(self, call: _Call) -> httpx.Response:
        batch = self._batch(call.path)
        del self._batches[batch.id]
        return httpx.Response(200, json=[batch.id])

    def _op_CancelBatchExecution(self, call: _Call) -> httpx.Response:
        batch = self._batch(call.path)
        if batch.state in ("complete", "failed"):
            raise _ApiError(409, f"the batch is {batch.state} already; there is nothing to cancel", "executionId")
        if batch.state != "canceled":
            # Rows already running finish and keep their results; the rest never run.
            for row in batch.rows:
                if row.state == "running":
                    result, row.files = batch.service.execute(row.inputs)
                    batch.finish_row(row, "complete" if result["success"] else "failed", result)
            batch.end("canceled")
        return httpx.Response(200, json=batch.summary())

    def _op_RetryBatchExecution(self, call: _Call) -> httpx.Response:
        batch = self._batch(call.path)
        batch.check_not_expired()
        if batch.state not in FINAL_STATES:
            raise _ApiError(409, "the batch is still running; retry it once it has finished", "executionId")
        retried = [row for row in batch.rows if row.state in ("failed", "canceled")]
        if not retried:
            raise _ApiError(409, "no row failed or was canceled; there is nothing to retry", "executionId")
        for row in retried:
            row.state, row.result, row.seq, row.files = "pending", None, None, {}
        batch.state, batch.completed, batch.error_message = "pending", None, ""
        return httpx.Response(202, json=batch.summary())

    # -- webhooks: the fake records a batch's end event as delivered when it is asked for it; it sends nothing.

    def _secret(self, user: str, rotate: bool = False) -> httpx.Response:
        if rotate or user not in self._webhook_secrets:
            self._webhook_secrets[user] = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        return httpx.Response(200, json={"secret": self._webhook_secrets[user]})

    def _op_GetWebhookSecret(self, call: _Call) -> httpx.Response:
        return self._secret(call.user)

    def _op_RotateWebhookSecret(self, call: _Call) -> httpx.Response:
        return self._secret(call.user, rotate=True)

    def _webhook_log(self, batch: _Batch) -> list[dict[str, Any]]:
        log = self._deliveries.setdefault(batch.id, [])
        url = self._callbacks.get(batch.id)
        events = {"complete": "batch.completed", "failed": "batch.failed", "canceled": "batch.canceled"}
        if url and batch.state in events and not any(d["event"] == events[batch.state] for d in log):
            now = _now()
            log.append(
                {
                    "id": f"msg_{uuid.uuid4().hex}",
                    "event": events[batch.state],
                    "url": url,
                    "state": "delivered",
                    "attempts": 1,
                    "lastStatusCode": 200,
                    "lastError": "",
                    "createdTime": now,
                    "deliveredTime": now,
                    "nextAttemptTime": None,
                }
            )
        return log

    def _op_ListBatchWebhookDeliveries(self, call: _Call) -> httpx.Response:
        return httpx.Response(200, json=self._webhook_log(self._batch(call.path)))

    def _op_RedeliverBatchWebhook(self, call: _Call) -> httpx.Response:
        log = self._webhook_log(self._batch(call.path))
        delivery = next((d for d in log if d["id"] == call.path["deliveryId"]), None)
        if delivery is None:
            raise _not_found(f"webhook delivery {call.path['deliveryId']}", "deliveryId")
        delivery.update(state="delivered", attempts=1, deliveredTime=_now())
        return httpx.Response(202, json=delivery)

    def _op_ExportBatchExecutionResults(self, call: _Call) -> httpx.Response:
        batch = self._batch(call.path)
        if self.auto_advance:
            for _ in range(self.steps_per_poll):
                batch.step()
        params, accept = call.params, call.request.headers.get("accept", "*/*")
        order = params.get("order", "input")
        if order not in ("input", "completion"):
            raise _ApiError(400, "order must be input or completion", "order")
        since_text = params.get("since", "0")
        if not since_text.isdigit() or len(since_text) > 18:
            raise _ApiError(400, "since must be a cursor from an earlier export (or 0)", "since")
        as_csv = "text/csv" in accept and "ndjson" not in accept
        if not as_csv and not any(kind in accept for kind in ("ndjson", "*/*", "application/*")):
            raise _ApiError(406, "Accept: send application/x-ndjson or text/csv", "Accept")
        since = int(since_text)
        finished = [row for row in batch.rows if row.seq is not None]
        if order == "input":  # a record's cursor is its index + 1
            chosen = [(row, row.index + 1) for row in finished if row.index + 1 > since]
        else:
            chosen = sorted(((row, row.seq or 0) for row in finished if (row.seq or 0) > since), key=lambda p: p[1])
        summary = batch.summary()
        end = {
            "end": True,
            "records": len(chosen),
            "cursor": str(chosen[-1][1] if chosen else since),
            **{key: summary[key] for key in ("state", "totalItemCount", "completedItemCount", "failedItemCount")},
            "canceledItemCount": summary["canceledItemCount"],
        }
        if not as_csv:
            inputs = "inputs" in params.get_list("include")
            lines = [
                json.dumps({**row.result_json(), **({"inputs": row.inputs} if inputs else {}), "cursor": str(cursor)})
                for row, cursor in chosen
            ]
            text = "".join(f"{line}\n" for line in [*lines, json.dumps(end)])
            return httpx.Response(200, content=text.encode(), headers={"Content-Type": "application/x-ndjson"})
        outputs = [name for name, _ in batch.service.outputs]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["index", "itemState", "attempt", "success", "errorMessage", "cursor", *outputs])
        for row, cursor in chosen:
            data = row.result_json()
            values = data.get("outputParameters") or {}
            cells = [_csv_cell(values.get(name)) for name in outputs]
            fixed = [row.index, row.state, data["attempt"], "true" if data.get("success") else "false"]
            writer.writerow([*fixed, data.get("errorMessage", ""), cursor, *cells])
        buffer.write(f"#end {json.dumps(end)}\n")
        return httpx.Response(200, content=buffer.getvalue().encode(), headers={"Content-Type": "text/csv"})

    def _row(self, path: dict[str, str]) -> _Row:
        batch = self._batch(path)
        batch.check_not_expired()
        index = int(path["index"])
        if index >= len(batch.rows):
            raise _not_found(f"record {index} of batch execution {batch.id}", "index")
        return batch.rows[index]

    def _op_GetBatchExecutionFiles(self, call: _Call) -> httpx.Response:
        return httpx.Response(200, json=sorted(self._row(call.path).files))

    def _op_GetBatchExecutionFile(self, call: _Call) -> httpx.Response:
        row, name = self._row(call.path), call.path["fileName"]
        if name not in row.files:
            raise _not_found(f"file {name} of record {row.index}", "fileName")
        headers = {"Content-Type": "application/octet-stream", "Content-Disposition": f'attachment; filename="{name}"'}
        return httpx.Response(200, content=row.files[name], headers=headers)


def _csv_cell(value: Any) -> Any:
    """An export's CSV cell as the server writes it: scalars as themselves, anything else as JSON text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, int | float | str) else json.dumps(value, separators=(",", ":"))


def _batch_records(kind: str, body: bytes, inputs: Sequence[tuple[str, str]]) -> list[Any]:
    """The records of a batch body in any of its media types (CSV cells converted to the input types)."""
    text = body.decode("utf-8")
    if kind == "application/json":
        records: list[Any] = json.loads(text)
        return records
    if kind == "application/x-ndjson":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    types = dict(inputs)
    try:
        # The SDK's own reading of CSV cells: the fake accepts what the SDK reads from a CSV file.
        return [
            {name: convert_cell(types.get(name), cell, index, name) for name, cell in row.items()}
            for index, row in enumerate(csv.DictReader(io.StringIO(text)))
        ]
    except InvalidRecordError as error:
        where = f"body[{error.index}].{error.field}"
        raise _ApiError(400, f"{where}: {error}", where) from None
