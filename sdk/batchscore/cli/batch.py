"""``batchscore batch start|status|wait|cancel|retry|delete|results|download``, and the local batch index."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from batchscore import (
    Batch,
    BatchError,
    BatchState,
    BatchStatus,
    Client,
)
from batchscore.cli._common import (
    BATCHES_FILE,
    EXIT_BATCH_STOPPED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_ROWS_FAILED,
    EXIT_USAGE,
    RECORD_SUFFIXES,
    RESULT_SUFFIXES,
    CliError,
    ExecutionArgument,
    JsonOption,
    PasswordOption,
    ServiceOption,
    UrlOption,
    UsernameOption,
    VersionOption,
    _connect,
    _emit_json,
    _failures,
    _read_state,
    _short_error,
    _show_status,
    _status_json,
    _stderr,
    _stdout,
    _suffix,
    _write_state,
    config_dir,
    normalize_url,
    status_exit_code,
)

app = typer.Typer(
    help="Run a service over many records asynchronously, and follow, control and collect batches.",
    no_args_is_help=True,
)

EscapeFormulasOption = Annotated[
    bool,
    typer.Option(
        "--escape-formulas/--no-escape-formulas",
        help="In a .csv --output, prefix a single quote to text cells starting with = + - @ (or a tab or CR), "
        "so a spreadsheet does not run them as formulas. Numbers are never changed.",
    ),
]


STDOUT = "-"  # --output - writes the results to standard output
OutputFormatOption = Annotated[
    str | None,
    typer.Option(
        "--output-format",
        help="With --output -: csv (default) or ndjson. Parquet is binary: write it to a file.",
        show_default=False,
    ),
]


def _check_output(output: Path | None, output_format: str | None, json_output: bool) -> None:
    """Refuse an --output that cannot be written: an unknown suffix, Parquet to stdout, stdout twice."""
    if output is None:
        return
    if str(output) != STDOUT:
        _suffix(output, RESULT_SUFFIXES, "results")
        return
    if json_output:
        raise CliError(EXIT_USAGE, "--output - and --json both write to stdout: use one, or --output FILE")
    if (output_format or "csv") not in ("csv", "ndjson"):
        raise CliError(
            EXIT_USAGE,
            f"--output - writes text (csv or ndjson), not {output_format}: write Parquet to a file, "
            "e.g. --output results.parquet",
        )


def _remember_batch(execution_id: str, name: str, version: str, url: str) -> None:
    index = _read_state(BATCHES_FILE)
    index[execution_id] = {"name": name, "version": version, "url": url}
    _write_state(BATCHES_FILE, index)


def _forget_batch(execution_id: str) -> None:
    index = _read_state(BATCHES_FILE)
    if index.pop(execution_id, None) is not None:
        _write_state(BATCHES_FILE, index)


def _show_results(status: BatchStatus) -> None:
    outputs: list[str] = []
    for result in status.results:
        outputs.extend(name for name in result.outputs if name not in outputs)
    table = Table(title=f"batch {status.execution_id}: {status.state.value}")
    table.add_column("index", justify="right")
    table.add_column("state")
    for name in outputs:
        table.add_column(name)
    table.add_column("error")
    for position, result in enumerate(status.results):
        index = result.index if result.index is not None else position
        state = result.item_state or ("complete" if result.success else "failed")
        cells = [str(result.outputs.get(name, "")) for name in outputs]
        table.add_row(str(index), state, *cells, _short_error(result.error_message))
    _stdout.print(table)


# --- Batches: finding them, waiting, writing results -------------------------------------------------------------


def _batch_target(execution_id: str, service: str | None, version: str | None) -> tuple[str, str | None, str]:
    """The batch's service name, version and the URL it was started on (from the index when not given)."""
    entry = _read_state(BATCHES_FILE).get(execution_id)
    known = entry if isinstance(entry, dict) else {}
    name = service or known.get("name")
    if name is None:
        raise CliError(
            EXIT_USAGE,
            f"execution {execution_id} is not in the local batch index ({config_dir() / BATCHES_FILE}): "
            "pass --service NAME --version VERSION",
        )
    if version is None and (service is None or service == known.get("name")):
        version = known.get("version")
    return str(name), (str(version) if version is not None else None), str(known.get("url") or "")


@contextlib.contextmanager
def _open_batch(
    execution_id: str,
    service: str | None,
    version: str | None,
    url: str | None,
    username: str | None,
    password: str | None,
    json_output: bool,
) -> Iterator[Batch]:
    with _failures(json_output):
        name, found_version, started_on = _batch_target(execution_id, service, version)
    with _connect(url, username, password, json_output, fallback_url=started_on or None) as client:
        yield client.get_service(name, found_version).get_batch(execution_id)


class _RateColumn(ProgressColumn):
    """Rows finished per second: the server's measure when it gives one, else the bar's own."""

    def render(self, task: Task) -> Text:
        speed = task.fields.get("server_rate") or task.finished_speed or task.speed
        return Text(f"{speed:.1f} rows/s" if speed else "- rows/s", style="progress.data.speed")


class _EtaColumn(TimeRemainingColumn):
    """The time left: the server's estimate when it gives one (right after a resume too), else the bar's own."""

    def render(self, task: Task) -> Text:
        left = task.fields.get("server_eta")
        if left is None or task.finished:
            return super().render(task)
        minutes, seconds = divmod(round(left), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"{hours:d}:{minutes:02d}:{seconds:02d}", style="progress.remaining")


def _wait(batch: Batch, json_output: bool) -> BatchStatus:
    """Wait for the batch (see :func:`_wait_for`); Ctrl-C says how to resume instead of leaving a traceback."""
    try:
        return _wait_for(batch, json_output)
    except KeyboardInterrupt:
        raise CliError(
            EXIT_INTERRUPTED,
            f"interrupted; batch {batch.id} goes on running: `batchscore batch wait {batch.id}` resumes waiting",
        ) from None


def _wait_for(batch: Batch, json_output: bool) -> BatchStatus:
    """Wait for the batch: a live progress bar on a terminal, a line per change otherwise, silence with --json.

    Raises:
        BatchFailedError: The batch failed.
        BatchCanceledError: The batch was canceled.

    """
    if json_output:
        return batch.wait(progress=False)
    label = f"batch {(batch.id or '')[:8]}"
    if sys.stderr.isatty():
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            _RateColumn(),
            TextColumn("ETA"),
            _EtaColumn(),
        )
        with Progress(*columns, console=_stderr) as progress:
            task = progress.add_task(label, total=None, failed=0, server_rate=None, server_eta=None)

            def advance(status: BatchStatus) -> None:
                progress.update(
                    task,
                    description=_bar_label(label, status),
                    total=status.total_item_count or None,
                    completed=status.completed_item_count,  # canceled rows never ran: the label counts them
                    failed=status.failed_item_count,
                    server_rate=status.rows_per_second,
                    server_eta=status.estimated_seconds_left,
                )

            return batch.wait(progress=False, on_progress=advance)

    last: tuple[object, ...] = ()

    def report(status: BatchStatus) -> None:
        nonlocal last
        seen = (status.state, status.completed_item_count, status.failed_item_count, status.canceled_item_count)
        if seen != last:
            last = seen
            typer.echo(
                f"{label}: {status.state.value}, {status.completed_item_count}/{status.total_item_count} done, "
                f"{status.failed_item_count} failed",
                err=True,
            )

    return batch.wait(progress=False, on_progress=report)


def _bar_label(label: str, status: BatchStatus) -> str:
    """The bar's label: ``batch 1234abcd``, a final state other than complete, and how many rows were canceled."""
    if status.is_final and status.state is not BatchState.COMPLETE:
        label = f"{label} {status.state.value}"
    if status.canceled_item_count:
        label = f"{label}, {status.canceled_item_count} rows canceled"
    return label


def _write_results(status: BatchStatus, path: Path, escape_formulas: bool, output_format: str | None = None) -> None:
    suffix = "" if str(path) == STDOUT else _suffix(path, RESULT_SUFFIXES, "results")
    try:
        if not suffix and output_format == "ndjson":
            status.to_frame().reset_index().to_json(sys.stdout, orient="records", lines=True)
            sys.stdout.write("\n")
        elif not suffix:
            status.to_csv(sys.stdout, escape_formulas=escape_formulas)
        elif suffix == ".csv":
            status.to_csv(path, escape_formulas=escape_formulas)
        else:
            status.to_parquet(path)
    except ImportError as error:
        raise CliError(
            EXIT_USAGE, f"writing results needs pandas and pyarrow: pip install 'batchscore[pandas]' ({error})"
        ) from None
    except OSError as error:
        raise CliError(EXIT_USAGE, f"cannot write {path}: {error}") from None


def _download(batch: Batch, indexes: Sequence[int], dest: Path, per_row: bool) -> list[Path]:
    """Download every file of the given rows into ``dest/<index>/`` (or ``dest`` itself for one row)."""
    written: list[Path] = []
    for index in indexes:
        names = batch.list_artifacts(index)
        if not names:
            continue
        folder = dest / str(index) if per_row else dest
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CliError(EXIT_USAGE, f"cannot create {folder}: {error}") from None
        for name in names:
            written.extend(batch.download(index, name, dest=folder))
    return written


def _finish_batch(
    status: BatchStatus, json_output: bool, extra: dict[str, Any] | None = None, *, show: bool = True
) -> NoReturn:
    """Print a final status (unless the results went to stdout: ``show`` False) and exit with its code."""
    if json_output:
        _emit_json({**_status_json(status), **(extra or {})})
    elif show:
        _show_status(status)
    code = status_exit_code(status)
    if code == EXIT_ROWS_FAILED and not json_output:
        typer.echo(f"{status.failed_item_count} of {status.total_item_count} rows failed", err=True)
    raise typer.Exit(code)


# --- Commands: batch ---------------------------------------------------------------------------------------------


def _labels(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` options as a mapping (the server checks the keys and values).

    Raises:
        CliError: An option without ``=``, or a key given twice.

    """
    labels: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise CliError(EXIT_USAGE, f"--label must be KEY=VALUE, got {pair!r}")
        if key in labels:
            raise CliError(EXIT_USAGE, f"--label {key} is given twice")
        labels[key] = value
    return labels


@app.command("start")
def batch_start(
    name: Annotated[str, typer.Argument(help="Service name.", show_default=False)],
    version: Annotated[str, typer.Argument(help="Version.", show_default=False)],
    records: Annotated[
        Path,
        typer.Option("--input", help="The records: a .csv, .tsv, .parquet or .ndjson file.", show_default=False),
    ],
    parallel: Annotated[int, typer.Option("--parallel", min=1, help="Records that may run at once.")] = 10,
    item_timeout: Annotated[
        float | None, typer.Option("--item-timeout", help="Seconds one record may run.", show_default=False)
    ] = None,
    max_failed: Annotated[
        int | None,
        typer.Option("--max-failed", min=0, help="Stop the batch once more than N records failed.", show_default=False),
    ] = None,
    max_failure_ratio: Annotated[
        float | None,
        typer.Option(
            "--max-failure-ratio",
            min=0,
            max=1,
            help="Stop the batch once more than this share of finished records failed.",
            show_default=False,
        ),
    ] = None,
    min_failure_sample: Annotated[
        int | None,
        typer.Option(
            "--min-failure-sample",
            min=1,
            help="Records --max-failure-ratio waits for (server: 20).",
            show_default=False,
        ),
    ] = None,
    retries: Annotated[
        int | None,
        typer.Option(
            "--retries", min=0, max=10, help="Retries of a record after a retryable failure.", show_default=False
        ),
    ] = None,
    retry_timeouts: Annotated[
        bool, typer.Option("--retry-timeouts", help="Also retry records over --item-timeout.")
    ] = False,
    labels: Annotated[
        list[str] | None,
        typer.Option("--label", help="A label KEY=VALUE (repeatable).", show_default=False),
    ] = None,
    expires_after: Annotated[
        int | None,
        typer.Option(
            "--expires-after",
            min=60,
            help="Seconds after the batch ends when its results and files are deleted (server default otherwise).",
            show_default=False,
        ),
    ] = None,
    callback_url: Annotated[
        str | None,
        typer.Option("--callback-url", help="Where the server sends the batch's signed events.", show_default=False),
    ] = None,
    passthrough: Annotated[
        list[str] | None,
        typer.Option(
            "--passthrough",
            help="An extra column of the records (an ID, say) kept with the batch and returned with the results "
            "(repeatable).",
            show_default=False,
        ),
    ] = None,
    na: Annotated[
        str,
        typer.Option("--na", help="A missing value: error (refuse the batch) or null (send null to numeric inputs)."),
    ] = "error",
    split_rows: Annotated[
        int | None,
        typer.Option(
            "--split-rows",
            min=1,
            help="Start several batches of at most N records each (for a file over the server's body limit); "
            "prints every id, and `batch wait ID...` follows them all.",
            show_default=False,
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the batch to finish, with progress.")] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            help="With --wait: write the results to a .csv or .parquet file (- : stdout).",
            show_default=False,
        ),
    ] = None,
    output_format: OutputFormatOption = None,
    escape_formulas: EscapeFormulasOption = True,
    artifacts: Annotated[
        Path | None,
        typer.Option(
            "--artifacts", help="With --wait: download every row's files into DIR/<index>/.", show_default=False
        ),
    ] = None,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Start a batch over the records in a file and print its execution id.

    The records are checked against the service's inputs before anything is uploaded. The id is remembered in the
    local batch index, so the other batch commands need only the id. With --wait the exit code says how the batch
    ended (0 complete, 1 some rows failed, 3 failed or canceled).
    """
    with _failures(json_output):
        _suffix(records, RECORD_SUFFIXES, "records")
        if (output is not None or artifacts is not None) and not wait:
            raise CliError(EXIT_USAGE, "--output and --artifacts need --wait")
        _check_output(output, output_format, json_output)
        if na not in ("error", "null"):
            raise CliError(EXIT_USAGE, f"--na must be error or null, not {na!r}")
        if split_rows is not None and wait:
            raise CliError(EXIT_USAGE, "--split-rows starts several batches: follow them with `batch wait ID...`")
        label_map = _labels(labels or [])
    with _connect(url, username, password, json_output) as client:
        service = client.get_service(name, version)
        try:
            batch = service.batch(
                records,
                parallel_count=parallel,
                item_timeout=item_timeout,
                max_failed_items=max_failed,
                max_failure_ratio=max_failure_ratio,
                min_failure_sample=min_failure_sample,
                item_retries=retries,
                retry_timeouts=retry_timeouts or None,
                labels=label_map or None,
                expires_after=expires_after,
                callback_url=callback_url,
                passthrough=passthrough or None,
                na="null" if na == "null" else "error",
            )
        except FileNotFoundError as error:
            raise CliError(EXIT_USAGE, str(error)) from None
        with warnings.catch_warnings(record=True) as caught:  # the SDK warns of a capped --parallel
            warnings.simplefilter("always")
            if split_rows is None:
                batch.start(progress=not json_output)
            else:
                _start_parts(client, batch.split(split_rows), json_output)
        for warning in caught:
            typer.echo(f"warning: {warning.message}", err=True)
        if split_rows is not None:
            return
        execution_id = str(batch.id)
        try:
            _remember_batch(execution_id, service.name, service.version, normalize_url(str(client.base_url)))
        except CliError as error:  # the batch runs anyway: say so rather than fail
            typer.echo(f"warning: {error.message}; later batch commands need --service and --version", err=True)
        started = {"execution_id": execution_id, "name": service.name, "version": service.version}
        if not wait:
            if json_output:
                _emit_json({**started, "record_count": batch.record_count})
            else:
                typer.echo(execution_id)
            return
        to_stdout = output is not None and str(output) == STDOUT
        if not json_output:
            typer.echo(execution_id, err=to_stdout)  # stdout carries the results then
        try:
            status = _wait(batch, json_output)
        except BatchError as error:
            if output is not None:
                _write_results(error.batch, output, escape_formulas, output_format)
            if json_output:
                _emit_json({**started, **_status_json(error.batch)})
            raise
        extra: dict[str, Any] = {}
        if output is not None:
            _write_results(status, output, escape_formulas, output_format)
            extra["output"] = str(output)
        if artifacts is not None:
            files = _download(batch, range(status.total_item_count), artifacts, per_row=True)
            extra["artifacts"] = [str(path) for path in files]
    if not json_output:
        if output is not None and not to_stdout:
            _stdout.print(f"results written to {output}")
        if artifacts is not None:
            _stdout.print(f"{len(extra['artifacts'])} artifact files downloaded to {artifacts}")
    _finish_batch(status, json_output, {**started, **extra}, show=not to_stdout)


def _start_parts(client: Client, parts: list[Batch], json_output: bool) -> None:
    """Start the parts of a split batch in order, remembering and printing each id as it starts."""
    started = []
    for part in parts:
        part.start(progress=not json_output)
        execution_id = str(part.id)
        name, version = part._service_info.name, part._service_info.version
        try:
            _remember_batch(execution_id, name, version, normalize_url(str(client.base_url)))
        except CliError as error:  # the batch runs anyway: say so rather than fail
            typer.echo(f"warning: {error.message}; later batch commands need --service and --version", err=True)
        started.append({"execution_id": execution_id, "record_count": part.record_count})
        if not json_output:
            typer.echo(execution_id)
    if json_output:
        _emit_json({"name": parts[0]._service_info.name, "version": parts[0]._service_info.version, "batches": started})


@app.command("status")
def batch_status(
    execution_id: ExecutionArgument,
    service: ServiceOption = None,
    version: VersionOption = None,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print a batch's state and counters (exit code 3 when it failed or was canceled, 1 when rows failed)."""
    with _open_batch(execution_id, service, version, url, username, password, json_output) as batch:
        status = batch.results(show_partial_results=False)
    _finish_batch(status, json_output)


@app.command("wait")
def batch_wait(
    execution_ids: Annotated[
        list[str], typer.Argument(help="The batch execution ids (several: e.g. a --split-rows start's).")
    ],
    service: ServiceOption = None,
    version: VersionOption = None,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Wait for batches to finish, with progress (exit code 0 complete, 1 rows failed, 3 failed or canceled).

    With several ids each is followed in turn (they all run meanwhile) and the exit code is the worst of them.
    """
    if len(execution_ids) > 1:
        _wait_all(execution_ids, service, version, url, username, password, json_output)
    execution_id = execution_ids[0]
    with _open_batch(execution_id, service, version, url, username, password, json_output) as batch:
        try:
            status = _wait(batch, json_output)
        except BatchError as error:
            if json_output:
                _emit_json(_status_json(error.batch))
            raise
    _finish_batch(status, json_output)


def _wait_all(
    execution_ids: list[str],
    service: str | None,
    version: str | None,
    url: str | None,
    username: str | None,
    password: str | None,
    json_output: bool,
) -> NoReturn:
    """Follow several batches in turn, print each one's final status, and exit with the worst code."""
    worst = EXIT_OK
    statuses = []
    for execution_id in execution_ids:
        with _open_batch(execution_id, service, version, url, username, password, json_output) as batch:
            try:
                status = _wait(batch, json_output)
            except BatchError as error:
                status = error.batch
            if not json_output:
                _show_status(status)
        statuses.append(_status_json(status))
        worst = max(worst, status_exit_code(status), key=_severity)
    if json_output:
        _emit_json({"batches": statuses})
    raise typer.Exit(worst)


def _severity(code: int) -> int:
    """How bad an exit code of a batch is: a stopped batch (3) is worse than failed rows (1)."""
    return {EXIT_OK: 0, EXIT_ROWS_FAILED: 1, EXIT_BATCH_STOPPED: 2}.get(code, 3)


@app.command("cancel")
def batch_cancel(
    execution_id: ExecutionArgument,
    service: ServiceOption = None,
    version: VersionOption = None,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Cancel a batch: running rows finish and keep their results, the rest are canceled (exit code 0)."""
    with _open_batch(execution_id, service, version, url, username, password, json_output) as batch:
        status = batch.cancel()
    if json_output:
        _emit_json(_status_json(status))
    else:
        _show_status(status)


@app.command("retry")
def batch_retry(
    execution_id: ExecutionArgument,
    service: ServiceOption = None,
    version: VersionOption = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the rerun to finish, with progress.")] = False,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run a finished batch's failed and canceled rows again (the others keep their results)."""
    with _open_batch(execution_id, service, version, url, username, password, json_output) as batch:
        status = batch.retry_failed()
        if wait:
            try:
                status = _wait(batch, json_output)
            except BatchError as error:
                if json_output:
                    _emit_json(_status_json(error.batch))
                raise
    if wait:
        _finish_batch(status, json_output)
    if json_output:
        _emit_json(_status_json(status))
    else:
        _show_status(status)


@app.command("delete")
def batch_delete(
    execution_id: ExecutionArgument,
    service: ServiceOption = None,
    version: VersionOption = None,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete a batch with its results and artifacts (canceling it first if it runs)."""
    with _open_batch(execution_id, service, version, url, username, password, json_output) as batch:
        batch.delete()
    with _failures(json_output):
        _forget_batch(execution_id)
    if json_output:
        _emit_json({"execution_id": execution_id, "deleted": True})
    else:
        _stdout.print(f"deleted batch {execution_id}")


@app.command("results")
def batch_results(
    execution_id: ExecutionArgument,
    service: ServiceOption = None,
    version: VersionOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Write the results to a .csv or .parquet file (- : stdout).", show_default=False),
    ] = None,
    output_format: OutputFormatOption = None,
    escape_formulas: EscapeFormulasOption = True,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print a batch's results (finished rows so far), or write them to a file with --output.

    The exit code follows the batch's state: 3 failed or canceled, 1 complete with failed rows, 0 otherwise.
    """
    with _failures(json_output):
        _check_output(output, output_format, json_output)
    with _open_batch(execution_id, service, version, url, username, password, json_output) as batch:
        # Streamed from the export (the server's memory stays flat however large the batch), checked whole.
        status = batch.exported_results()
    with _failures(json_output):
        if output is not None:
            _write_results(status, output, escape_formulas, output_format)
    if json_output:
        extra = {"output": str(output)} if output is not None else {}
        _emit_json({**_status_json(status, results=output is None), **extra})
    elif output is not None and str(output) == STDOUT:
        typer.echo(f"{len(status.results)} results written to stdout", err=True)
    elif output is not None:
        _stdout.print(f"{len(status.results)} results written to {output}")
    else:
        _show_results(status)
    raise typer.Exit(status_exit_code(status))


@app.command("download")
def batch_download(
    execution_id: ExecutionArgument,
    service: ServiceOption = None,
    version: VersionOption = None,
    index: Annotated[
        int | None,
        typer.Option(
            "--index", min=0, help="Only this row, into DEST itself (default: every row).", show_default=False
        ),
    ] = None,
    dest: Annotated[
        Path, typer.Option("--dest", help="The folder to write to (created); every row goes to DEST/<index>/.")
    ] = Path(),
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Download the files (artifacts) the batch's rows produced."""
    with _open_batch(execution_id, service, version, url, username, password, json_output) as batch:
        if index is None:
            total = batch.results(show_partial_results=False).total_item_count
            written = _download(batch, range(total), dest, per_row=True)
        else:
            written = _download(batch, [index], dest, per_row=False)
    if json_output:
        _emit_json({"execution_id": execution_id, "files": [str(path) for path in written]})
        return
    for path in written:
        _stdout.print(str(path))
    if not written:
        _stdout.print("no files")
