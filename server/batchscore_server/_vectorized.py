"""Vectorized services: ``code`` runs once per chunk of rows, with each input bound to a pandas Series.

A per-row service pays its code's fixed cost (a model's ``predict`` building its design matrix, say) for every
row; a vectorized one pays it once per chunk, which is where ``model.predict(frame)`` gets its speed. For the client
nothing changes: every row still has its own result, success and error.

Semantics (the contract's ``vectorized``):

- each input name is bound to a Series of the chunk's decoded values (``RangeIndex`` 0..n-1);
- after the code runs, each output name must hold n values (a Series, a one-column DataFrame, a numpy array, a
  list or a tuple); value i is row i's output, encoded like any row's (so its type is checked per row);
- a chunk that raises, or whose outputs are missing, of the wrong length or of the wrong type, is run again one
  row at a time (chunks of one row), so only the bad rows fail, each with its own message;
- the chunk's console output and changed files are reported on its first row (console bounded as any row's);
- a vectorized service declares no output files (refused at publish).
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from batchscore_server._execution import (
    _CODE_FILE,
    ServiceInitError,
    ServiceSpec,
    _base_namespace,
    _BoundedConsole,
    _compile,
    _oversized_result,
    _run_code,
    _scan,
)
from batchscore_server._types import OutputError, encode_output

# Rows per call when the service sets no maxBatchRows: large enough that a model's fixed cost per call (patsy
# building a design matrix, numpy dispatch) is spread over many rows, small enough that a chunk's Series and its
# results stay a few megabytes and that the rows re-run alone after a failed chunk are few.
DEFAULT_MAX_BATCH_ROWS = 1024
# Rows of one Dask task of a vectorized batch (several calls): its fixed cost (a few ms of scheduling and result
# bookkeeping) then stays small against the rows' own, while chunks stay small enough to share the workers.
TASK_ROWS = 16_384


def batch_rows(spec: Mapping[str, Any]) -> int | None:
    """Rows per call of the service in a worker spec dict, or ``None`` for a per-row service."""
    if not spec.get("vectorized"):
        return None
    return int(spec.get("maxBatchRows") or DEFAULT_MAX_BATCH_ROWS)


def task_rows(rows_per_call: int, timed: bool) -> int:
    """Most rows of one Dask task of a vectorized batch; ``timed``: the batch has an ``itemTimeout``.

    A timed batch sends one call per task: the task's start is then the clock of all its rows (a call holding
    the GIL sends no start events).
    """
    return rows_per_call if timed else max(rows_per_call, TASK_ROWS)


def require_pandas() -> str | None:
    """Why a vectorized service cannot run in this process (pandas is missing), or ``None``."""
    try:
        import pandas  # noqa: F401
    except ImportError as error:
        return f"a vectorized service needs pandas where it runs, and it cannot be imported: {error}"
    return None


def _values(value: Any) -> list[Any] | None:
    """The per-row values an output holds, or ``None`` when it is not a sequence of rows."""
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return value.iloc[:, 0].tolist() if value.shape[1] == 1 else None
    if isinstance(value, pd.Series | np.ndarray):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [item.tolist() if isinstance(item, np.generic) else item for item in value]
    return None


def _outputs(spec: ServiceSpec, namespace: Mapping[str, Any], rows: int) -> list[dict[str, Any]] | str:
    """Each row's encoded outputs after the chunk's code ran, or why the chunk's outputs are wrong."""
    per_row: list[dict[str, Any]] = [{} for _ in range(rows)]
    for name, type_name in spec.outputs:
        if name not in namespace:
            return f"output {name!r} was not set by the code"
        values = _values(namespace[name])
        if values is None:
            return (
                f"output {name!r} of a vectorized service must hold one value per row (a pandas Series, a "
                f"one-column DataFrame, a numpy array, a list or a tuple), got {type(namespace[name]).__name__}"
            )
        if len(values) != rows:
            return f"output {name!r} has {len(values)} values for a chunk of {rows} rows"
        for position, value in enumerate(values):
            try:
                per_row[position][name] = encode_output(type_name, value, f"outputParameters.{name}")
            except OutputError as error:
                return str(error)
    return per_row


def run_call(spec: ServiceSpec, base: Mapping[str, Any], inputs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Run the code once on ``inputs`` (one chunk) in the current directory; each row's partial result.

    A chunk of several rows that fails is not reported as failed: each of its rows gets ``{"rerun": True}``.
    A chunk of one row reports its own error, as a per-row service would.
    """
    import pandas as pd

    series = {name: pd.Series([row[name] for row in inputs]) for name, _ in spec.inputs}
    if len(inputs) == 1:
        # One row: the per-row path (its outputs read by single_row_outputs), so errors are the per-row ones.
        return [_run_code(spec, base, series)]
    namespace = dict(base)
    namespace.update(series)
    try:
        exec(_compile(spec.code, _CODE_FILE), namespace)
    except BaseException:  # any failure: the rows run again alone, each with its own error
        return [{"rerun": True} for _ in inputs]
    outputs = _outputs(spec, namespace, len(inputs))
    if isinstance(outputs, str):
        return [{"rerun": True} for _ in inputs]
    results: list[dict[str, Any]] = []
    for row_outputs in outputs:
        too_large = _oversized_result(row_outputs, spec.max_result_bytes)
        if too_large is not None:
            results.append({"errorMessage": too_large})
        else:
            results.append({"success": True, "outputParameters": row_outputs})
    return results


def _execute_call(
    spec: ServiceSpec, inputs: Sequence[Mapping[str, Any]], workdir: Path, *, batch: bool
) -> list[dict[str, Any]]:
    """One call in the empty, absolute ``workdir``: each row's ``execute``-style result (or ``rerun``).

    The call's console output and changed files go on its first row; no row has output files.
    """
    console = _BoundedConsole(spec.max_console_bytes)
    with contextlib.redirect_stdout(console), contextlib.redirect_stderr(console):
        try:
            base = _base_namespace(spec, workdir.parent)
        except ServiceInitError as error:
            outcome: list[dict[str, Any]] = [{"errorMessage": str(error), "initFailed": True} for _ in inputs]
        else:
            with contextlib.chdir(workdir):
                outcome = run_call(spec, base, inputs)
    if any(result.get("rerun") for result in outcome):
        return outcome
    changed, _ = _scan(workdir)
    results: list[dict[str, Any]] = []
    for position, partial in enumerate(outcome):
        result: dict[str, Any] = {"success": False, "errorMessage": "", "outputParameters": {}, **partial}
        result["consoleOutput"] = console.getvalue() if position == 0 else ""
        result["changedFiles"] = changed if position == 0 else []
        if batch:
            result["storedFiles"] = []
        else:
            result["outputFiles"] = {}
        results.append(result)
    return results


def single_row_outputs(spec: ServiceSpec, namespace: Mapping[str, Any]) -> dict[str, Any] | str:
    """A one-row call's encoded outputs, or why they are wrong (the per-row message of ``_run_code``)."""
    outputs = _outputs(spec, namespace, 1)
    return outputs if isinstance(outputs, str) else outputs[0]


def run_rows(
    spec: ServiceSpec,
    rows: Sequence[tuple[int, Mapping[str, Any]]],
    scratch_root: str,
    should_stop: Callable[[], bool] | None,
    on_start: Callable[[int], None] | None,
    on_done: Callable[[int, dict[str, Any]], None] | None,
) -> dict[str, Any]:
    """``_execution.run_rows`` for a vectorized service: its rows in calls of at most ``max_batch_rows``.

    Every row of a call is started (``on_start``) when the call starts; a failed call's rows are run again one
    at a time, each started again. ``should_stop`` is asked before each call.
    """
    size = spec.max_batch_rows or DEFAULT_MAX_BATCH_ROWS
    results: dict[int, dict[str, Any]] = {}
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        pending = [chunk]
        while pending:
            call = pending.pop(0)
            if should_stop is not None and should_stop():
                return {"rows": results, "stopped": True}
            if on_start is not None:
                for index, _ in call:
                    on_start(index)
            workdir = (Path(scratch_root) / uuid.uuid4().hex).absolute()
            workdir.mkdir(parents=True)
            try:
                outcome = _execute_call(spec, [inputs for _, inputs in call], workdir, batch=True)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            if any(result.get("rerun") for result in outcome):
                pending[:0] = [[row] for row in call]  # each row alone, before the next chunk
                continue
            for (index, _), result in zip(call, outcome, strict=True):
                results[index] = result
                if on_done is not None:
                    on_done(index, result)
    return {"rows": results, "stopped": False}


def execute_one(spec: ServiceSpec, inputs: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
    """A consume of a vectorized service: its code on a chunk of one row, in ``workdir`` (then removed)."""
    try:
        return _execute_call(spec, [inputs], workdir, batch=False)[0]
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(workdir, ignore_errors=True)
