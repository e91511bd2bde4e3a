"""Running a service's code: the one function both consume requests and Dask batch workers call.

Each process keeps the namespace a service's snapshot and ``initCode`` build, so loading a model happens once per
process and service revision instead of once per record. A record's code then runs in a copy of that namespace
with the record's inputs bound by name, inside a fresh working directory that is removed afterwards.

Running code changes process-wide state (the working directory, ``sys.stdout``), so a process must run one record
at a time: a request-response pool of processes, or Dask workers with one thread each.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import importlib
import io
import json
import linecache
import os
import pickle
import shutil
import tempfile
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import CodeType
from typing import Any, NamedTuple

from batchscore_server._types import PARAMETER_TYPES, OutputError, encode_output

# The file names compiled code carries: tracebacks show them, and _format_user_error finds the user's frames
# (and their source lines) by them.
_CODE_FILE = "<code>"
_INIT_CODE_FILE = "<initCode>"

# Per process: ServiceSpec.key -> the namespace its snapshot and initCode built.
_BASE_NAMESPACES: dict[str, dict[str, Any]] = {}


class ServiceInitError(Exception):
    """A service's snapshot could not be loaded or its ``initCode`` raised; the message says which, and why."""


@dataclass(frozen=True)
class ServiceSpec:
    """What a worker needs to run one revision of a service; picklable, so it can travel to Dask workers.

    Attributes:
        key: Unique per service definition revision; the per-process namespace cache is keyed by it.
        code: Python source run for every record.
        init_code: Python source run once per process before the first record (may be empty).
        inputs: The inputs as ``(name, type)`` pairs.
        outputs: The outputs as ``(name, type)`` pairs.
        output_file_names: Files (relative to the working directory) the service declares it produces.
        snapshot_dir: A directory with one file per workspace object (file name = object name, content = its
            pickle), or ``None``.
        max_result_bytes: A record whose ``outputParameters`` are longer as JSON fails (None: no cap).
        max_console_bytes: Console output kept per record; the rest is dropped, and a note says how much.
        max_output_file_bytes: A record that produced a declared output file larger than this fails, naming it.
        vectorized: ``code`` runs once per chunk of rows, inputs bound to pandas Series (see ``_vectorized``).
        max_batch_rows: Most rows per call of a vectorized service (None: ``_vectorized``'s default).

    """

    key: str
    code: str
    init_code: str
    inputs: tuple[tuple[str, str], ...]
    outputs: tuple[tuple[str, str], ...]
    output_file_names: tuple[str, ...]
    snapshot_dir: str | None
    max_result_bytes: int | None = None
    max_console_bytes: int | None = None
    max_output_file_bytes: int | None = None
    vectorized: bool = False
    max_batch_rows: int | None = None

    def __post_init__(self) -> None:
        """Refuse definitions that could not run correctly, before any record does.

        Raises:
            ValueError: A parameter type is unknown, or an output file name is not a relative path inside the
                working directory (it is moved to a path built from it).

        """
        for name, type_name in (*self.inputs, *self.outputs):
            if type_name not in PARAMETER_TYPES:
                raise ValueError(f"parameter {name!r} has an unknown type {type_name!r}")
        for file_name in self.output_file_names:
            path = PurePosixPath(file_name)
            if not file_name or path.is_absolute() or ".." in path.parts or "\\" in file_name:
                raise ValueError(f"output file name {file_name!r} must be a relative path inside the working directory")


class StoredResult(NamedTuple):
    """A batch row's result as it travels to the server and is stored: the JSON text made once, on the worker.

    The server never parses a row's result: it stores this text and splices it into poll responses, which took
    a JSON decode and encode of every result off the process that also hosts the scheduler.

    Attributes:
        success: Whether the row succeeded (its item state).
        init_failure: Why the service could not start (its snapshot or ``initCode``), else ``None``.
        text: The ``WebServiceResult`` as JSON text.
        retryable: A failure the batch's ``itemRetries`` may run again (see :func:`is_retryable_error`, and the
            engine's own: a dead worker, a timeout with ``retryTimeouts``).

    """

    success: bool
    init_failure: str | None
    text: str
    retryable: bool = False


def is_retryable_error(error: BaseException) -> bool:
    """Whether service code raised a ``batchscore.Retryable``: the only exception of its own a batch retries.

    The server never imports the SDK (it may not even be installed where the workers run), so the class is
    recognised by name: any class named ``Retryable`` in the exception's MRO whose module is ``batchscore`` or
    one of its submodules (the SDK's class, or a subclass of it).
    """
    return any(
        cls.__name__ == "Retryable"
        and isinstance(cls.__module__, str)
        and (cls.__module__ == "batchscore" or cls.__module__.startswith("batchscore."))
        for cls in type(error).__mro__
    )


# What json.dumps(allow_nan=False, separators=(",", ":")) builds on every call, built once (a row's result is
# encoded with it on the worker).
_RESULT_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))


def stored_result(result: Mapping[str, Any]) -> StoredResult:
    """The stored form of an ``execute`` result (without its ``storedFiles``, ``initFailed`` and ``retryable``)."""
    public = {key: value for key, value in result.items() if key not in ("storedFiles", "initFailed", "retryable")}
    try:
        text = _RESULT_ENCODER.encode(public)
    except (TypeError, ValueError) as error:  # the result must stay JSON for every client that reads it
        public = {
            **public,
            "success": False,
            "errorMessage": f"the result is not JSON: {error}",
            "outputParameters": {},
        }
        text = json.dumps(public, allow_nan=False, separators=(",", ":"), default=repr)
    init_failure = str(result["errorMessage"]) if result.get("initFailed") else None
    success = bool(public["success"])
    return StoredResult(success, init_failure, text, not success and bool(result.get("retryable")))


def clear_cache() -> None:
    """Forget every service namespace this process built, so the next record of each reloads and re-inits."""
    _BASE_NAMESPACES.clear()


def execute(
    spec: ServiceSpec, inputs: Mapping[str, Any], workdir: Path, artifact_dir: Path | None = None
) -> dict[str, Any]:
    """Run the service's code for one record and report it as a ``WebServiceResult``.

    Failures of the service (its snapshot, its ``initCode``, its code, or an output that does not match its type)
    are reported in the result, never raised.

    Args:
        spec: The service revision to run.
        inputs: The record's inputs, already checked and converted by ``decode_inputs``.
        workdir: The record's working directory: created, made the current directory while the code runs, and
            removed afterwards. It must not exist yet or be empty.
        artifact_dir: For a batch: where the declared output files the code produced are moved (created when
            there is one). ``None`` for a consume, whose reply carries the files base64-encoded.

    Returns:
        ``success``, ``errorMessage`` (``""`` on success), ``consoleOutput`` (stdout and stderr),
        ``changedFiles`` (POSIX paths relative to the working directory), ``outputParameters`` (JSON-encoded),
        and ``outputFiles`` (name to base64 text, ``None`` for a declared file not produced) without
        ``artifact_dir``, or ``storedFiles`` (the declared names moved to ``artifact_dir``) with it. A failed
        snapshot or ``initCode`` adds ``initFailed: True``; code that raised a ``batchscore.Retryable`` adds
        ``retryable: True``.

    Raises:
        ValueError: ``workdir`` exists and is not empty (removing it afterwards would destroy someone's files).

    """
    workdir = workdir.absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    if not _is_empty_directory(workdir):
        raise ValueError(f"working directory {workdir} is not empty")
    if spec.vectorized:
        from batchscore_server import _vectorized  # imported here: it imports this module

        return _vectorized.execute_one(spec, inputs, workdir)
    try:
        result, _ = _execute_in(spec, inputs, workdir, artifact_dir)
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _execute_in(
    spec: ServiceSpec, inputs: Mapping[str, Any], workdir: Path, artifact_dir: Path | None
) -> tuple[dict[str, Any], bool]:
    """``execute`` in an existing, empty, absolute ``workdir``, which is left in place.

    Returns the result, and whether the record left the directory empty (the next record may then reuse it).
    """
    console = _BoundedConsole(spec.max_console_bytes)
    result: dict[str, Any] = {"success": False, "errorMessage": "", "consoleOutput": "", "outputParameters": {}}
    with contextlib.redirect_stdout(console), contextlib.redirect_stderr(console):
        try:
            # Built inside the capture, so what initCode prints shows in the first record's consoleOutput.
            base = _base_namespace(spec, workdir.parent)
        except ServiceInitError as error:
            result.update(errorMessage=str(error), initFailed=True)
        else:
            with contextlib.chdir(workdir):
                result.update(_run_code(spec, base, inputs))
    result["consoleOutput"] = console.getvalue()
    changed, empty = _scan(workdir)
    result["changedFiles"] = changed
    oversized = _oversized_output_file(spec, workdir)
    if oversized is not None:
        # Not stored, nor read: a file over the cap is never copied nor held in memory, and the record fails.
        result.update(success=False, errorMessage=oversized, outputParameters={})
        if artifact_dir is None:
            result["outputFiles"] = {}
        else:
            result["storedFiles"] = []
    elif artifact_dir is None:
        result["outputFiles"] = _read_output_files(spec, workdir)
    else:
        result["storedFiles"] = _store_output_files(spec, workdir, artifact_dir)
        if result["storedFiles"]:
            empty = _is_empty_directory(workdir)  # the declared files were moved out; maybe they were all
    return result, empty


class _BoundedConsole(io.TextIOBase):
    """A record's console (stdout and stderr): keeps its first ``limit`` bytes (UTF-8), counts the rest.

    Printing megabytes per record held them all in the worker, then in the server's memory and in every result
    message on the way (40 records of 10 MB of prints grew the server by 630 MB); kept bounded, the rest is only
    counted, and :meth:`getvalue` ends with a note saying how much was dropped.
    """

    def __init__(self, limit: int | None) -> None:
        super().__init__()
        self._limit = limit
        self._kept = io.StringIO()
        self._room = limit
        self._dropped = 0

    def writable(self) -> bool:
        """It is."""
        return True

    def write(self, text: str) -> int:
        """Keep ``text`` while there is room, count what does not fit."""
        if self._room is None:
            return self._kept.write(text)
        if self._dropped or not self._room:
            self._dropped += len(text.encode("utf-8", "surrogatepass"))
            return len(text)
        encoded = text.encode("utf-8", "surrogatepass")
        if len(encoded) <= self._room:
            self._room -= len(encoded)
            return self._kept.write(text)
        kept = encoded[: self._room].decode("utf-8", "ignore")  # a character cut in two is dropped whole
        self._kept.write(kept)
        self._dropped += len(encoded) - self._room
        self._room = 0
        return len(text)

    def getvalue(self) -> str:
        """What was kept, and a note when anything was dropped."""
        if not self._dropped:
            return self._kept.getvalue()
        return (
            f"{self._kept.getvalue()}\n[console output truncated: {self._dropped} more bytes were not kept; the "
            f"server keeps {self._limit} bytes of a record's console output (max_console_bytes)]\n"
        )


def run_rows(
    spec: ServiceSpec,
    rows: Sequence[tuple[int, Mapping[str, Any]]],
    scratch_root: str,
    artifact_root: str,
    should_stop: Callable[[], bool] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run a batch's records one after another in this process (a Dask task's body).

    Every record starts in an empty working directory. The chunk's records share one while they leave it empty,
    as creating and removing a directory for each record was most of a trivial record's cost; a record that
    leaves anything behind gets the directory removed, and the next record a new one.

    Args:
        spec: The service revision to run.
        rows: ``(index, inputs)`` pairs: the record's position in the batch and its decoded inputs.
        scratch_root: Where the records' working directories are made.
        artifact_root: Where record ``index``'s declared output files are kept, under ``<artifact_root>/<index>``.
        should_stop: Asked before each record; when it returns ``True`` (the batch was canceled) the rest are
            not run.
        on_start: Told each record's index just before it runs (the server's clock for item timeouts).
        on_done: Told each record's index and result as soon as it has one (results stream to the server
            instead of waiting for the whole chunk).

    Returns:
        ``{"rows": {index: result}, "stopped": bool}``, each result as ``execute`` returns it, ``stopped`` telling
        whether records were left unrun. A dict rather than a bare list because Dask serializes lists element by
        element, which is slow for large batches.

    """
    if spec.vectorized:
        from batchscore_server import _vectorized  # imported here: it imports this module

        return _vectorized.run_rows(spec, rows, scratch_root, should_stop, on_start, on_done)
    results: dict[int, dict[str, Any]] = {}
    workdir: Path | None = None
    try:
        for index, inputs in rows:
            if should_stop is not None and should_stop():
                return {"rows": results, "stopped": True}
            if on_start is not None:
                on_start(index)
            if workdir is None:
                workdir = (Path(scratch_root) / uuid.uuid4().hex).absolute()
                workdir.mkdir(parents=True)
            results[index], empty = _execute_in(spec, inputs, workdir, Path(artifact_root) / str(index))
            if not empty:
                shutil.rmtree(workdir, ignore_errors=True)
                workdir = None
            if on_done is not None:
                on_done(index, results[index])
        return {"rows": results, "stopped": False}
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def _base_namespace(spec: ServiceSpec, scratch: Path) -> dict[str, Any]:
    cached = _BASE_NAMESPACES.get(spec.key)
    if cached is not None:
        return cached
    # "__main__", as if the code were a script; without it classes the code defines would claim "builtins".
    namespace: dict[str, Any] = {"__name__": "__main__"}
    if spec.snapshot_dir is not None:
        namespace.update(_load_snapshot(Path(spec.snapshot_dir)))
    _run_init_code(spec, namespace, scratch)
    _BASE_NAMESPACES[spec.key] = namespace
    return namespace


def _run_init_code(spec: ServiceSpec, namespace: dict[str, Any], scratch: Path) -> None:
    """Run the service's ``initCode`` (if any) in ``namespace``; a ServiceInitError says why it failed."""
    if not spec.init_code:
        return
    # A throwaway working directory: initCode runs once per process, so files it writes must neither land
    # in the worker's own directory nor count as the first record's changed files.
    with (
        tempfile.TemporaryDirectory(dir=scratch, ignore_cleanup_errors=True) as init_dir,
        contextlib.chdir(init_dir),
    ):
        try:
            exec(_compile(spec.init_code, _INIT_CODE_FILE), namespace)
        # Any BaseException (CancelledError, KeyboardInterrupt, ...): escaping, it ended the task's row running.
        except BaseException as error:
            raise ServiceInitError(f"initCode failed:\n{_format_user_error(error, spec)}") from None


def check_service(spec: ServiceSpec, scratch: Path) -> tuple[str, str] | None:
    """Start the service as a first record would (load its snapshot, run its ``initCode``), without keeping it.

    A publish runs this so a service that cannot start fails there, not at its first consume. Nothing is cached:
    the namespace is dropped (its objects with it), as the version it would be cached for is not stored yet.

    Returns:
        ``None`` when the service starts, else the definition field to blame (``snapshotId`` or ``initCode``)
        and the message its first record would have failed with.

    """
    namespace: dict[str, Any] = {"__name__": "__main__"}
    # What initCode prints is nobody's console output here: counted, not kept, and off the worker's own streams.
    if spec.vectorized:
        from batchscore_server import _vectorized  # imported here: it imports this module

        missing = _vectorized.require_pandas()
        if missing is not None:
            return "vectorized", missing
    console = _BoundedConsole(0)
    with contextlib.redirect_stdout(console), contextlib.redirect_stderr(console):
        if spec.snapshot_dir is not None:
            try:
                namespace.update(_load_snapshot(Path(spec.snapshot_dir)))
            except ServiceInitError as error:
                return "snapshotId", str(error)
        try:
            _run_init_code(spec, namespace, scratch)
        except ServiceInitError as error:
            return "initCode", str(error)
    return None


def _load_snapshot(snapshot_dir: Path) -> dict[str, Any]:
    objects: dict[str, Any] = {}
    for path in sorted(snapshot_dir.iterdir()):
        if path.is_file():
            try:
                objects[path.name] = _unpickle(path.read_bytes())
            except Exception as error:
                raise ServiceInitError(
                    f"snapshot object {path.name!r} could not be loaded: {type(error).__name__}: {error}"
                ) from None
    return objects


def _unpickle(data: bytes) -> Any:
    try:
        return pickle.loads(data)
    except Exception:
        # Sessions may pickle with dill, whose own Unpickler resolves references plain pickle cannot (e.g. to
        # the session's __main__). cloudpickle needs no fallback: its loads *is* pickle.loads.
        try:
            dill = importlib.import_module("dill")
        except ImportError:
            dill = None
        if dill is None:
            raise  # the unpickling error, not the ImportError: that handler has finished
        return dill.loads(data)


def _run_code(spec: ServiceSpec, base: Mapping[str, Any], inputs: Mapping[str, Any]) -> dict[str, Any]:
    # A copy, so names one record binds cannot leak into the next; it is shallow, as deep-copying a model per
    # record would cost more than running it.
    namespace = dict(base)
    namespace.update(inputs)
    try:
        exec(_compile(spec.code, _CODE_FILE), namespace)
    # Any BaseException: sys.exit(), a CancelledError or KeyboardInterrupt the code raises fails its record instead
    # of ending the worker or leaving its batch waiting for a row that never reports.
    except BaseException as error:
        failure: dict[str, Any] = {"errorMessage": _format_user_error(error, spec)}
        if is_retryable_error(error):
            failure["retryable"] = True  # reported beside the result (see StoredResult), never stored in it
        return failure
    if spec.vectorized:  # a vectorized call of one row: its outputs hold one value each
        from batchscore_server import _vectorized  # imported here: it imports this module

        single = _vectorized.single_row_outputs(spec, namespace)
        if isinstance(single, str):
            return {"errorMessage": single}
        too_large = _oversized_result(single, spec.max_result_bytes)
        return {"errorMessage": too_large} if too_large is not None else {"success": True, "outputParameters": single}
    outputs: dict[str, Any] = {}
    for name, type_name in spec.outputs:
        if name not in namespace:
            return {"errorMessage": f"output {name!r} was not set by the code"}
        try:
            outputs[name] = encode_output(type_name, namespace[name], f"outputParameters.{name}")
        except OutputError as error:
            return {"errorMessage": str(error)}
    too_large = _oversized_result(outputs, spec.max_result_bytes)
    if too_large is not None:
        return {"errorMessage": too_large}
    return {"success": True, "outputParameters": outputs}


def _oversized_result(outputs: Mapping[str, Any], limit: int | None) -> str | None:
    """Why ``outputs`` are too large to keep (their JSON is over ``limit`` bytes), or None."""
    if limit is None:
        return None
    bound = _scalar_json_bound(outputs)
    if bound is not None and bound <= limit:
        return None  # surely small enough: encoding them only to measure was a tenth of a trivial row's cost
    try:
        size = len(json.dumps(outputs, separators=(",", ":")).encode("utf-8", "surrogatepass"))
    except (TypeError, ValueError):
        return None  # not JSON: stored_result fails the record and says why
    if size <= limit:
        return None
    return (
        f"the outputParameters are {size} bytes as JSON, over the server's limit of {limit} bytes "
        "(max_result_bytes): write large results to an output file instead"
    )


def _scalar_json_bound(outputs: Mapping[str, Any]) -> int | None:
    """At least the length of ``outputs`` as compact JSON (``json.dumps``, ASCII) when every value is a scalar.

    ``None`` when a value is not a scalar (a list, a dict): only encoding them tells their size.
    """
    bound = 2  # {}
    for key, value in outputs.items():
        if not isinstance(key, str):
            return None
        if value is None or isinstance(value, bool):
            size = 5  # null, true, false
        elif isinstance(value, int):
            size = value.bit_length() // 3 + 3  # digits (at most bits * log10(2) + 1) and a sign
        elif isinstance(value, float):
            size = 24  # the longest repr of a float (-2.2250738585072014e-308); NaN and Infinity are shorter
        elif isinstance(value, str):
            size = 12 * len(value) + 2  # a character outside the BMP is two \uXXXX escapes
        else:
            return None
        bound += 12 * len(key) + 2 + 1 + size + 1  # "key":value,
    return bound


# Cached: compiling the same few lines again for every record costs more than running them.
@functools.lru_cache(maxsize=64)
def _compile(source: str, file_name: str) -> CodeType:
    return compile(source, file_name, "exec", dont_inherit=True)


def _is_empty_directory(path: Path) -> bool:
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except OSError:
        return False


def _format_user_error(error: BaseException, spec: ServiceSpec) -> str:
    # Start the traceback at the first frame of the service's own code, dropping this module's frames; a
    # SyntaxError has none and is shown alone (with its line and caret).
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename not in {_CODE_FILE, _INIT_CODE_FILE}:
        tb = tb.tb_next
    # Compiled source has no file to read lines from; lending linecache the text puts each frame's line in
    # the traceback. Removed again, as another service's text goes under the same names.
    sources = {_CODE_FILE: spec.code, _INIT_CODE_FILE: spec.init_code}
    for file_name, source in sources.items():
        linecache.cache[file_name] = (len(source), None, source.splitlines(keepends=True), file_name)
    try:
        return "".join(traceback.format_exception(type(error), error, tb))
    finally:
        for file_name in sources:
            linecache.cache.pop(file_name, None)


def _scan(directory: Path) -> tuple[list[str], bool]:
    """The files under ``directory`` (POSIX paths relative to it), and whether it holds nothing at all."""
    try:
        with os.scandir(directory) as entries:
            if next(entries, None) is None:
                return [], True  # the common case, without os.walk's machinery (a third of a trivial row's cost)
    except OSError:
        return [], False  # gone (the code removed it): not to be used again
    files: list[str] = []
    empty = True
    for root, directories, names in os.walk(directory):
        empty = empty and not directories and not names
        files.extend((Path(root) / name).relative_to(directory).as_posix() for name in names)
    return sorted(files), empty


def _oversized_output_file(spec: ServiceSpec, workdir: Path) -> str | None:
    """Why a declared output file is too large to keep (over ``max_output_file_bytes``), or None."""
    limit = spec.max_output_file_bytes
    if limit is None:
        return None
    for name in spec.output_file_names:
        path = workdir / name
        size = path.stat().st_size if path.is_file() else 0
        if size > limit:
            return (
                f"output file {name!r} is {size} bytes, over the server's limit of {limit} bytes "
                "(max_output_file_bytes); it was not kept"
            )
    return None


def _read_output_files(spec: ServiceSpec, workdir: Path) -> dict[str, str | None]:
    files: dict[str, str | None] = {}
    for name in spec.output_file_names:
        path = workdir / name
        files[name] = base64.b64encode(path.read_bytes()).decode("ascii") if path.is_file() else None
    return files


def _store_output_files(spec: ServiceSpec, workdir: Path, artifact_dir: Path) -> list[str]:
    stored: list[str] = []
    for name in spec.output_file_names:
        path = workdir / name
        if path.is_file():
            target = artifact_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target)
            stored.append(name)
    return stored
