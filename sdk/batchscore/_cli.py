"""The ``batchscore`` command line: run a server, log in, publish, consume, and run batches.

Every command that talks to a server takes ``--url`` (``BATCHSCORE_URL``, default ``http://127.0.0.1:12800``)
and authenticates with ``--username``/``--password`` (``BATCHSCORE_USERNAME``/``BATCHSCORE_PASSWORD``) when
given, otherwise with the token ``batchscore login`` stored for that URL. ``--json`` prints machine-readable JSON
only. Everything goes through the SDK (:class:`batchscore.Client`); the CLI never speaks HTTP itself.

Commands: ``serve``, ``users add`` (on the server host); ``login``, ``logout``; ``services list|get|delete|swagger``;
``publish FILE.py:FUNCTION``; ``consume NAME VERSION KEY=VALUE...``; ``batch start|status|wait|cancel|retry|delete|
results|download``.

Local state lives in ``$BATCHSCORE_CONFIG_DIR`` (default: ``typer.get_app_dir("batchscore")``):
``credentials.json`` (``{url: {access_token, refresh_token, username}}``, mode 0600) and ``batches.json``
(``{execution_id: {name, version, url}}``, written by ``batch start`` so later ``batch`` commands need only the id).

Exit codes:

====  ==========================================================================================================
code  meaning
====  ==========================================================================================================
0     done
1     finished, but some rows failed (a batch that completed with failed rows, or a consume that failed)
2     usage error: a bad option or argument, a bad KEY=VALUE, an unknown file type, an unreadable file or
      record, an unknown execution id without ``--service``/``--version``
3     the batch failed or was canceled (also a status or results whose state is ``failed`` or ``canceled``)
4     authentication: wrong user name or password, an expired or revoked token, not logged in and no credentials
5     any other API or connection error (the server's message and ``field`` are printed)
130   interrupted (Ctrl-C); a batch being waited for goes on running on the server
====  ==========================================================================================================

Errors go to stderr on one line (a JSON object ``{"error", "field", "exit_code"}`` with ``--json``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import inspect
import json
import os
import pickle
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
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

from batchscore._client import Client
from batchscore._exceptions import (
    APIError,
    APIStatusError,
    AuthenticationError,
    BatchError,
    BatchscoreError,
    DownloadError,
    InvalidRecordError,
)
from batchscore._models import BatchState, BatchStatus, ExecutionResult, ServiceInfo
from batchscore._service import Batch
from batchscore._version import __version__

EXIT_OK = 0
EXIT_ROWS_FAILED = 1
EXIT_USAGE = 2
EXIT_BATCH_STOPPED = 3
EXIT_AUTH = 4
EXIT_API = 5
EXIT_INTERRUPTED = 130

DEFAULT_URL = "http://127.0.0.1:12800"
CONFIG_DIR_ENV = "BATCHSCORE_CONFIG_DIR"
CREDENTIALS_FILE = "credentials.json"
BATCHES_FILE = "batches.json"
RESULT_SUFFIXES = (".csv", ".parquet", ".pq")
RECORD_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".ndjson", ".jsonl")

EXIT_CODES_HELP = """Exit codes:
  0    done
  1    finished, but some rows failed (or the consumed call failed)
  2    usage error: bad option, KEY=VALUE, file or file type, unknown batch id
  3    the batch failed or was canceled
  4    authentication: wrong credentials, expired token, not logged in
  5    any other API or connection error
  130  interrupted (Ctrl-C); a batch being waited for goes on running"""
APP_HELP = (
    "Publish Python functions as web services and consume them, one call at a time or in batches.\n\n"
    "Log in once with `batchscore login`; later commands use the stored token for --url.\n\n" + EXIT_CODES_HELP
)

app = typer.Typer(
    name="batchscore",
    help=APP_HELP,
    no_args_is_help=True,
    add_completion=False,
)

_stdout = Console(highlight=False, soft_wrap=True)
_stderr = Console(stderr=True, highlight=False)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"batchscore {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
    ),
) -> None:
    """Publish Python functions as web services and consume them, one call at a time or in batches."""


SERVER_MISSING = "the server is not installed: pip install 'batchscore[server]'"


@app.command()
def serve(
    data_dir: Path = typer.Option(..., "--data-dir", help="Database, secrets, models and artifacts live here."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(12800, help="Port to listen on (ML Server's default)."),
    workers: int = typer.Option(0, help="Dask workers and consume processes (0: one per core)."),
    scheduler: str | None = typer.Option(
        None, help="Use this Dask scheduler (tcp://HOST:PORT) instead of a local one."
    ),
    max_parallel_count: int = typer.Option(100, help="Cap on a batch's parallelCount."),
    max_body_mb: int = typer.Option(256, help="Larger request bodies are refused with 413."),
) -> None:
    """Run the reference server. A new data directory needs BATCHSCORE_ADMIN_PASSWORD for user admin."""
    try:
        from batchscore_server._embedded import SetupError
        from batchscore_server._embedded import serve as run_server
        from batchscore_server._settings import Settings, default_workers
    except ImportError:
        typer.echo(SERVER_MISSING, err=True)
        raise typer.Exit(2) from None
    settings = Settings(
        data_dir=data_dir,
        workers=workers or default_workers(),
        scheduler=scheduler,
        max_parallel_count=max_parallel_count,
        max_body_bytes=max_body_mb * 1024 * 1024,
    )
    try:
        run_server(settings, host, port)
    except SetupError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None


users = typer.Typer(help="Manage the server's users (run on the server host).", no_args_is_help=True)
app.add_typer(users, name="users")


@users.command("add")
def users_add(
    name: str = typer.Argument(..., help="User name."),
    role: str = typer.Option("Reader", help="Owner, Contributor or Reader."),
    data_dir: Path = typer.Option(..., "--data-dir", help="The server's data directory."),
) -> None:
    """Add a user (or reset one). The password comes from BATCHSCORE_USER_PASSWORD or a prompt."""
    try:
        from batchscore_server._auth import Role
        from batchscore_server._embedded import add_user_to
    except ImportError:
        typer.echo(SERVER_MISSING, err=True)
        raise typer.Exit(2) from None
    try:
        chosen = Role(role.capitalize())
    except ValueError:
        typer.echo(f"--role must be Owner, Contributor or Reader, not {role!r}", err=True)
        raise typer.Exit(2) from None
    password = os.environ.get("BATCHSCORE_USER_PASSWORD") or typer.prompt(
        f"Password for {name}", hide_input=True, confirmation_prompt=True
    )
    add_user_to(data_dir, name, password, chosen)
    typer.echo(f"user {name} ({chosen.value}) saved")


services = typer.Typer(help="List, describe and delete published services.", no_args_is_help=True)
app.add_typer(services, name="services")
batch_app = typer.Typer(
    help="Run a service over many records asynchronously, and follow, control and collect batches.",
    no_args_is_help=True,
)
app.add_typer(batch_app, name="batch")


# --- Options every server command shares -------------------------------------------------------------------------

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="BATCHSCORE_URL",
        help=f"The server (default {DEFAULT_URL}; batch commands: the URL the batch was started on).",
        show_default=False,
    ),
]
UsernameOption = Annotated[
    str | None,
    typer.Option(
        "--username",
        envvar="BATCHSCORE_USERNAME",
        help="Log in as this user instead of using the stored token.",
        show_default=False,
    ),
]
PasswordOption = Annotated[
    str | None,
    typer.Option(
        "--password",
        envvar="BATCHSCORE_PASSWORD",
        help="The password (prompted for, or read from stdin, when omitted).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]
ServiceOption = Annotated[
    str | None,
    typer.Option("--service", help="The batch's service (default: from the local batch index).", show_default=False),
]
VersionOption = Annotated[
    str | None,
    typer.Option("--version", help="The service version (default: from the local batch index).", show_default=False),
]
ExecutionArgument = Annotated[str, typer.Argument(help="The batch execution id.", show_default=False)]


# --- Errors and exit codes ---------------------------------------------------------------------------------------


class CliError(Exception):
    """A failure the CLI reports on one line and turns into an exit code."""

    def __init__(self, code: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fail(code: int, message: str, field: str | None, json_output: bool) -> NoReturn:
    if json_output:
        typer.echo(json.dumps({"error": _one_line(message), "field": field, "exit_code": code}), err=True)
    else:
        suffix = f" (field: {field})" if field else ""
        typer.echo(f"error: {_one_line(message)}{suffix}", err=True)
    raise typer.Exit(code)


def exit_code_for(error: BaseException) -> int:
    """The exit code an SDK or CLI error maps to (see the module's table)."""
    if isinstance(error, CliError):
        return error.code
    if isinstance(error, AuthenticationError):
        return EXIT_AUTH
    if isinstance(error, BatchError):
        return EXIT_BATCH_STOPPED if error.batch.state in (BatchState.FAILED, BatchState.CANCELED) else EXIT_API
    if isinstance(error, InvalidRecordError):
        return EXIT_USAGE
    return EXIT_API


@contextlib.contextmanager
def _failures(json_output: bool, *, stored_token: bool = False) -> Iterator[None]:
    """Turn the errors of a command's body into one stderr line and the matching exit code."""
    try:
        yield
    except CliError as error:
        _fail(error.code, error.message, error.field, json_output)
    except AuthenticationError as error:
        hint = "; run `batchscore login` again" if stored_token else ""
        _fail(EXIT_AUTH, f"{error.message}{hint}", error.field, json_output)
    except APIStatusError as error:
        _fail(EXIT_API, error.message, error.field, json_output)
    except APIError as error:
        _fail(EXIT_API, error.message, None, json_output)
    except InvalidRecordError as error:
        _fail(EXIT_USAGE, str(error), error.field, json_output)
    except BatchError as error:
        _fail(exit_code_for(error), str(error), None, json_output)
    except DownloadError as error:
        _fail(EXIT_API, str(error), None, json_output)
    except BatchscoreError as error:
        _fail(EXIT_API, str(error), None, json_output)
    except KeyboardInterrupt:
        _fail(EXIT_INTERRUPTED, "interrupted", None, json_output)


def status_exit_code(status: BatchStatus) -> int:
    """The exit code a batch status stands for: 3 failed or canceled, 1 complete with failed rows, else 0."""
    if status.state in (BatchState.FAILED, BatchState.CANCELED):
        return EXIT_BATCH_STOPPED
    if status.state is BatchState.COMPLETE and status.failed_item_count > 0:
        return EXIT_ROWS_FAILED
    return EXIT_OK


# --- Local state: credentials and the batch index ----------------------------------------------------------------


def config_dir() -> Path:
    """Where the CLI keeps credentials and the batch index (``$BATCHSCORE_CONFIG_DIR`` or the app directory)."""
    configured = os.environ.get(CONFIG_DIR_ENV)
    return Path(configured) if configured else Path(typer.get_app_dir("batchscore"))


def normalize_url(url: str) -> str:
    """The key a server's credentials are stored under: the URL without a trailing slash."""
    return url.strip().rstrip("/")


def _read_state(name: str) -> dict[str, Any]:
    path = config_dir() / name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise CliError(EXIT_USAGE, f"cannot read {path}: {error}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise CliError(EXIT_USAGE, f"{path} is not valid JSON: fix or delete it") from None
    return data if isinstance(data, dict) else {}


def write_private_json(path: Path, data: object) -> None:
    """Write JSON atomically to a file readable by its owner only (mode 0600, directory 0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _write_state(name: str, data: object) -> None:
    path = config_dir() / name
    try:
        write_private_json(path, data)
    except OSError as error:
        raise CliError(EXIT_USAGE, f"cannot write {path}: {error}") from None


def _remember_batch(execution_id: str, name: str, version: str, url: str) -> None:
    index = _read_state(BATCHES_FILE)
    index[execution_id] = {"name": name, "version": version, "url": url}
    _write_state(BATCHES_FILE, index)


def _forget_batch(execution_id: str) -> None:
    index = _read_state(BATCHES_FILE)
    if index.pop(execution_id, None) is not None:
        _write_state(BATCHES_FILE, index)


# --- Connecting --------------------------------------------------------------------------------------------------


def _read_password(username: str) -> str:
    if sys.stdin.isatty():
        password: str = typer.prompt(f"Password for {username}", hide_input=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError(EXIT_AUTH, f"no password for {username}: pass --password or set BATCHSCORE_PASSWORD")
    return password


@contextlib.contextmanager
def _connect(
    url: str | None, username: str | None, password: str | None, json_output: bool, fallback_url: str | None = None
) -> Iterator[Client]:
    """A client for the server: logged in with the given credentials, or with the token stored for the URL.

    A stored token the SDK renewed on the way (with the refresh token) is saved again afterwards.
    """
    base = normalize_url(url or fallback_url or DEFAULT_URL)
    stored: dict[str, Any] | None = None
    with _failures(json_output):
        if username:
            client = Client(base, username=username, password=password or _read_password(username))
        else:
            entry = _read_state(CREDENTIALS_FILE).get(base)
            if not isinstance(entry, dict) or not isinstance(entry.get("access_token"), str):
                raise CliError(
                    EXIT_AUTH,
                    f"not logged in to {base}: run `batchscore login --url {base} --username NAME`, "
                    "or pass --username and --password",
                )
            stored = entry
            refresh = entry.get("refresh_token")
            # The refresh token lets the SDK renew an expired access token by itself.
            client = Client(
                base,
                token=entry["access_token"],
                refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            )
    try:
        with client, _failures(json_output, stored_token=stored is not None):
            yield client
    finally:
        if stored is not None and client.tokens.access_token != stored["access_token"]:
            try:
                _save_tokens(base, client, str(stored.get("username", "")))
            except CliError as error:  # the command itself went through; the renewed token is only not kept
                typer.echo(f"warning: {error.message}", err=True)


def _save_tokens(url: str, client: Client, username: str) -> None:
    credentials = _read_state(CREDENTIALS_FILE)
    credentials[url] = {
        "access_token": client.tokens.access_token,
        "refresh_token": client.tokens.refresh_token,
        "username": username,
    }
    _write_state(CREDENTIALS_FILE, credentials)


# --- Output helpers ----------------------------------------------------------------------------------------------


def _emit_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _service_json(info: ServiceInfo) -> dict[str, Any]:
    data = dataclasses.asdict(info)
    data["inputs"] = {p.name: p.type for p in info.inputs}
    data["outputs"] = {p.name: p.type for p in info.outputs}
    data["artifacts"] = list(info.artifacts)
    return data


def _result_json(result: ExecutionResult) -> dict[str, Any]:
    return {
        "index": result.index,
        "success": result.success,
        "item_state": result.item_state,
        "outputs": result.outputs,
        "error_message": result.error_message,
        "console_output": result.console_output,
        "changed_files": list(result.changed_files),
    }


def _status_json(status: BatchStatus, *, results: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "execution_id": status.execution_id,
        "state": status.state.value,
        "total_item_count": status.total_item_count,
        "completed_item_count": status.completed_item_count,
        "failed_item_count": status.failed_item_count,
        "running_item_count": status.running_item_count,
        "canceled_item_count": status.canceled_item_count,
        "error_message": status.error_message,
        "parallel_count": status.parallel_count,
        "created_by": status.created_by,
        "creation_time": status.creation_time,
        "completion_time": status.completion_time,
    }
    if results:
        data["results"] = [_result_json(r) for r in status.results]
    return data


def _short_error(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _show_status(status: BatchStatus) -> None:
    table = Table(title=f"batch {status.execution_id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in _status_json(status).items():
        if key != "execution_id" and value not in (None, ""):
            table.add_row(key.replace("_", " "), str(value))
    _stdout.print(table)


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


# --- Parsing -----------------------------------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """A KEY=VALUE value: JSON when it parses (``120`` -> int, ``2.8`` -> float, ``true``), the text otherwise."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_pairs(pairs: Sequence[str], what: str, convert: Callable[[str], Any] = str) -> dict[str, Any]:
    """``["hp=120", "wt=2.8"]`` to ``{"hp": 120, "wt": 2.8}`` (values through ``convert``).

    Raises:
        CliError: A pair without ``=``, with an empty key, or a key given twice (exit code 2).

    """
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CliError(EXIT_USAGE, f"{what} must be KEY=VALUE, not {pair!r}")
        if key in parsed:
            raise CliError(EXIT_USAGE, f"{what} {key!r} is given twice")
        parsed[key] = convert(value)
    return parsed


def _suffix(path: Path, allowed: Sequence[str], what: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise CliError(EXIT_USAGE, f"unknown {what} file type {suffix or path.name!r}: use {', '.join(allowed)}")
    return suffix


def load_function(target: str) -> Callable[..., Any]:
    """Import ``FILE.py:FUNCTION`` from its file and return the function.

    Raises:
        CliError: The target is malformed, the file cannot be imported, or it has no such function (exit code 2).

    """
    path_text, sep, name = target.rpartition(":")
    if not sep or not path_text or not name.isidentifier():
        raise CliError(EXIT_USAGE, f"give the function as FILE.py:FUNCTION, not {target!r}")
    path = Path(path_text)
    if not path.is_file():
        raise CliError(EXIT_USAGE, f"no such file: {path}")
    module_name = "_batchscore_publish_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise CliError(EXIT_USAGE, f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the user's module may raise anything while it loads
        sys.modules.pop(module_name, None)
        raise CliError(EXIT_USAGE, f"cannot import {path}: {type(error).__name__}: {error}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise CliError(EXIT_USAGE, f"{path} has no function {name!r}")
    return function  # type: ignore[no-any-return]


def _load_model(text: str) -> Any:
    path = Path(text)
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)  # the user's own model file, loaded as they asked
    except OSError as error:
        raise CliError(EXIT_USAGE, f"cannot read model file {path}: {error}") from None
    except Exception as error:  # unpickling runs arbitrary code and may raise anything
        raise CliError(EXIT_USAGE, f"cannot unpickle {path}: {type(error).__name__}: {error}") from None


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
    """Rows finished per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} rows/s" if speed else "- rows/s", style="progress.data.speed")


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
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=_stderr) as progress:
            task = progress.add_task(label, total=None, failed=0)

            def advance(status: BatchStatus) -> None:
                progress.update(
                    task,
                    total=status.total_item_count or None,
                    completed=status.completed_item_count + status.canceled_item_count,
                    failed=status.failed_item_count,
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


def _write_results(status: BatchStatus, path: Path) -> None:
    suffix = _suffix(path, RESULT_SUFFIXES, "results")
    try:
        if suffix == ".csv":
            status.to_csv(path)
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


def _finish_batch(status: BatchStatus, json_output: bool, extra: dict[str, Any] | None = None) -> NoReturn:
    """Print a final status and exit with the code it stands for."""
    if json_output:
        _emit_json({**_status_json(status), **(extra or {})})
    else:
        _show_status(status)
    code = status_exit_code(status)
    if code == EXIT_ROWS_FAILED and not json_output:
        typer.echo(f"{status.failed_item_count} of {status.total_item_count} rows failed", err=True)
    raise typer.Exit(code)


# --- Commands: login ---------------------------------------------------------------------------------------------


@app.command()
def login(
    username: Annotated[
        str, typer.Option("--username", envvar="BATCHSCORE_USERNAME", help="User name.", show_default=False)
    ],
    url: UrlOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Log in and store the tokens for the URL, for later commands (credentials.json in the config directory).

    The password comes from --password, BATCHSCORE_PASSWORD, a prompt, or the first line of stdin. The file is
    created with mode 0600 in $BATCHSCORE_CONFIG_DIR (default: the user's batchscore config directory).
    """
    base = normalize_url(url or DEFAULT_URL)
    with _failures(json_output):
        secret = password or _read_password(username)
        with Client(base, username=username, password=secret) as client:
            client.login()
            _save_tokens(base, client, username)
    if json_output:
        _emit_json({"url": base, "username": username, "credentials": str(config_dir() / CREDENTIALS_FILE)})
    else:
        _stdout.print(f"logged in to {base} as {username}")


@app.command()
def logout(url: UrlOption = None, json_output: JsonOption = False) -> None:
    """Forget the tokens stored for the URL."""
    base = normalize_url(url or DEFAULT_URL)
    with _failures(json_output):
        credentials = _read_state(CREDENTIALS_FILE)
        removed = credentials.pop(base, None) is not None
        if removed:
            _write_state(CREDENTIALS_FILE, credentials)
    if json_output:
        _emit_json({"url": base, "removed": removed})
    else:
        _stdout.print(f"logged out of {base}" if removed else f"no stored login for {base}")


# --- Commands: services ------------------------------------------------------------------------------------------


@services.command("list")
def services_list(
    name: Annotated[str | None, typer.Argument(help="Only this service's versions.", show_default=False)] = None,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the published services (every version of NAME when given)."""
    with _connect(url, username, password, json_output) as client:
        found = client.list_services(name)
    if json_output:
        _emit_json([_service_json(info) for info in found])
        return
    table = Table(title="services")
    for column in ("name", "version", "inputs", "outputs", "artifacts", "published by", "created"):
        table.add_column(column)
    for info in found:
        table.add_row(
            info.name,
            info.version,
            ", ".join(f"{p.name}: {p.type}" for p in info.inputs),
            ", ".join(f"{p.name}: {p.type}" for p in info.outputs),
            ", ".join(info.artifacts),
            info.published_by,
            info.creation_time,
        )
    _stdout.print(table)


@services.command("get")
def services_get(
    name: Annotated[str, typer.Argument(help="Service name.", show_default=False)],
    version: Annotated[str | None, typer.Argument(help="Version (default: the latest).", show_default=False)] = None,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Describe a service version: inputs, outputs, artifacts, code (the latest version when VERSION is omitted)."""
    with _connect(url, username, password, json_output) as client:
        info = client.get_service(name, version).info
    if json_output:
        _emit_json(_service_json(info))
        return
    table = Table(title=f"{info.name} {info.version}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = {
        "description": info.description,
        "inputs": ", ".join(f"{p.name}: {p.type}" for p in info.inputs),
        "outputs": ", ".join(f"{p.name}: {p.type}" for p in info.outputs),
        "artifacts": ", ".join(info.artifacts),
        "consume method": info.operation_id,
        "published by": info.published_by,
        "created": info.creation_time,
        "your permission": info.permission,
        "runtime": info.runtime_type,
    }
    for key, value in rows.items():
        if value:
            table.add_row(key, value)
    _stdout.print(table)
    if info.code:
        _stdout.print("code:", style="bold")
        _stdout.print(Text(info.code))


@services.command("delete")
def services_delete(
    name: Annotated[str, typer.Argument(help="Service name.", show_default=False)],
    version: Annotated[str, typer.Argument(help="Version.", show_default=False)],
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete a service version."""
    with _connect(url, username, password, json_output) as client:
        client.delete_service(name, version)
    if json_output:
        _emit_json({"name": name, "version": version, "deleted": True})
    else:
        _stdout.print(f"deleted {name} {version}")


@services.command("swagger")
def services_swagger(
    name: Annotated[str, typer.Argument(help="Service name.", show_default=False)],
    version: Annotated[str, typer.Argument(help="Version.", show_default=False)],
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the service's own OpenAPI document (JSON), to generate an application client from."""
    with _connect(url, username, password, json_output) as client:
        document = client.get_service(name, version).swagger()
    _emit_json(document)


# --- Commands: publish and consume -------------------------------------------------------------------------------


@app.command()
def publish(
    target: Annotated[
        str, typer.Argument(metavar="FILE.py:FUNCTION", help="The function to publish.", show_default=False)
    ],
    name: Annotated[str, typer.Option("--name", help="Service name.", show_default=False)],
    version: Annotated[
        str | None, typer.Option("--version", help="Version (the server assigns one when omitted).")
    ] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input", help="An input as NAME=TYPE (numeric, integer, logical, character, ...).", show_default=False
        ),
    ] = None,
    outputs: Annotated[
        list[str] | None, typer.Option("--output", help="An output as NAME=TYPE.", show_default=False)
    ] = None,
    artifacts: Annotated[
        list[str] | None,
        typer.Option("--artifact", help="A file each execution writes that clients can fetch.", show_default=False),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model", help="NAME=FILE.pkl: a pickled object bound to NAME in the service.", show_default=False
        ),
    ] = None,
    description: Annotated[str | None, typer.Option("--description", help="What the service does.")] = None,
    alias: Annotated[
        str | None, typer.Option("--alias", help="The consume method's name (default: the function's name).")
    ] = None,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Publish a function from a Python file as a web service.

    Only the function's own source is published: imports it needs go inside the function. Types are ML Server
    type names (numeric, integer, logical, character, vector, matrix, data.frame) or Python names (float, int,
    bool, str). Model files are unpickled locally, so load only files you trust.
    """
    with _failures(json_output):
        input_types = parse_pairs(inputs or [], "--input")
        output_types = parse_pairs(outputs or [], "--output")
        function = load_function(target)
        loaded = {key: _load_model(path) for key, path in parse_pairs(models or [], "--model").items()}
    with _connect(url, username, password, json_output) as client:
        try:
            published = client.publish_service(
                name,
                function,
                version=version,
                models=loaded or None,
                inputs=input_types,
                outputs=output_types,
                artifacts=artifacts or None,
                description=description,
                alias=alias,
            )
        except ValueError as error:  # a type without an ML Server name, or no source for the function
            raise CliError(EXIT_USAGE, str(error)) from None
    if json_output:
        _emit_json(published.capabilities())
    else:
        _stdout.print(f"published {published.name} {published.version}")


@app.command()
def consume(
    name: Annotated[str, typer.Argument(help="Service name.", show_default=False)],
    version: Annotated[str, typer.Argument(help="Version.", show_default=False)],
    values: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="KEY=VALUE...", help="Inputs; values are read as JSON when they parse.", show_default=False
        ),
    ] = None,
    artifacts: Annotated[
        Path | None,
        typer.Option("--artifacts", help="Write the artifacts the call produced into this folder.", show_default=False),
    ] = None,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run a service once with KEY=VALUE inputs and print its outputs (exit code 1 when the code raised).

    Values are JSON when they parse (120 is a number, true a boolean, "[1, 2]" a list), text otherwise.
    """
    with _failures(json_output):
        inputs = parse_pairs(values or [], "an input", parse_value)
    with _connect(url, username, password, json_output) as client:
        result = client.get_service(name, version).consume(**inputs)
    written: list[str] = []
    with _failures(json_output):
        if artifacts is not None:
            try:
                artifacts.mkdir(parents=True, exist_ok=True)
                for file_name, content in result.files.items():
                    if content is not None and file_name == Path(file_name).name:
                        (artifacts / file_name).write_bytes(content)
                        written.append(str(artifacts / file_name))
            except OSError as error:
                raise CliError(EXIT_USAGE, f"cannot write artifacts to {artifacts}: {error}") from None
    if json_output:
        data = _result_json(result)
        data["artifacts"] = sorted(name for name, content in result.files.items() if content is not None)
        data["written"] = written
        _emit_json(data)
    else:
        if result.outputs:
            table = Table(title=f"{name} {version}")
            table.add_column("output", style="bold")
            table.add_column("value")
            for key, value in result.outputs.items():
                table.add_row(key, json.dumps(value, default=str))
            _stdout.print(table)
        if result.console_output.strip():
            _stdout.print(Text(result.console_output.rstrip()))
        for path in written:
            _stdout.print(f"wrote {path}")
        if not result.success:
            typer.echo(f"error: the service failed: {_short_error(result.error_message)}", err=True)
    if not result.success:
        raise typer.Exit(EXIT_ROWS_FAILED)


# --- Commands: batch ---------------------------------------------------------------------------------------------


@batch_app.command("start")
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
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the batch to finish, with progress.")] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="With --wait: write the results to a .csv or .parquet file.", show_default=False),
    ] = None,
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
        if output is not None:
            _suffix(output, RESULT_SUFFIXES, "results")
    with _connect(url, username, password, json_output) as client:
        service = client.get_service(name, version)
        try:
            batch = service.batch(records, parallel_count=parallel, item_timeout=item_timeout)
        except FileNotFoundError as error:
            raise CliError(EXIT_USAGE, str(error)) from None
        batch.start()
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
        if not json_output:
            typer.echo(execution_id)
        try:
            status = _wait(batch, json_output)
        except BatchError as error:
            if output is not None:
                _write_results(error.batch, output)
            if json_output:
                _emit_json({**started, **_status_json(error.batch)})
            raise
        extra: dict[str, Any] = {}
        if output is not None:
            _write_results(status, output)
            extra["output"] = str(output)
        if artifacts is not None:
            files = _download(batch, range(status.total_item_count), artifacts, per_row=True)
            extra["artifacts"] = [str(path) for path in files]
    if not json_output:
        if output is not None:
            _stdout.print(f"results written to {output}")
        if artifacts is not None:
            _stdout.print(f"{len(extra['artifacts'])} artifact files downloaded to {artifacts}")
    _finish_batch(status, json_output, {**started, **extra})


@batch_app.command("status")
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


@batch_app.command("wait")
def batch_wait(
    execution_id: ExecutionArgument,
    service: ServiceOption = None,
    version: VersionOption = None,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Wait for a batch to finish, with progress (exit code 0 complete, 1 rows failed, 3 failed or canceled)."""
    with _open_batch(execution_id, service, version, url, username, password, json_output) as batch:
        try:
            status = _wait(batch, json_output)
        except BatchError as error:
            if json_output:
                _emit_json(_status_json(error.batch))
            raise
    _finish_batch(status, json_output)


@batch_app.command("cancel")
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


@batch_app.command("retry")
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


@batch_app.command("delete")
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


@batch_app.command("results")
def batch_results(
    execution_id: ExecutionArgument,
    service: ServiceOption = None,
    version: VersionOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Write the results to a .csv or .parquet file.", show_default=False),
    ] = None,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print a batch's results (finished rows so far), or write them to a file with --output.

    The exit code follows the batch's state: 3 failed or canceled, 1 complete with failed rows, 0 otherwise.
    """
    with _failures(json_output):
        if output is not None:
            _suffix(output, RESULT_SUFFIXES, "results")
    with _open_batch(execution_id, service, version, url, username, password, json_output) as batch:
        status = batch.results()
    with _failures(json_output):
        if output is not None:
            _write_results(status, output)
    if json_output:
        extra = {"output": str(output)} if output is not None else {}
        _emit_json({**_status_json(status, results=output is None), **extra})
    elif output is not None:
        _stdout.print(f"{len(status.results)} results written to {output}")
    else:
        _show_results(status)
    raise typer.Exit(status_exit_code(status))


@batch_app.command("download")
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


def _reflow_help(*groups: typer.Typer) -> None:
    """Use each command's docstring as its help with the paragraphs' line breaks removed (rich keeps them)."""
    for group in groups:
        for command in group.registered_commands:
            if command.help is None and command.callback is not None and command.callback.__doc__:
                paragraphs = inspect.cleandoc(command.callback.__doc__).split("\n\n")
                command.help = "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)


_reflow_help(app, services, batch_app)


def main() -> None:
    """Run the command line (the ``batchscore`` console script)."""
    app()
