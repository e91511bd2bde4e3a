"""What every command group shares: exit codes, options, errors, local state, connecting, output, parsing."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from batchscore import (
    APIError,
    APIStatusError,
    AuthenticationError,
    BatchError,
    BatchscoreError,
    BatchState,
    BatchStatus,
    Client,
    DownloadError,
    ExecutionResult,
    InvalidRecordError,
    ServiceInfo,
    _profile,
)
from batchscore._profile import write_private_json

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


_stdout = Console(highlight=False, soft_wrap=True)
_stderr = Console(stderr=True, highlight=False)


# --- Options every server command shares -------------------------------------------------------------------------

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="BATCHSCORE_URL",
        help=(
            f"The server (default: the login profile's URL, else {DEFAULT_URL}; batch commands: the URL the batch "
            "was started on)."
        ),
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
    return _profile.config_dir()


# The root's --profile while a command runs (set by the root callback, reset when its context closes).
_SELECTED_PROFILE: ContextVar[str | None] = ContextVar("batchscore_cli_profile", default=None)


def select_profile(context: typer.Context, name: str | None) -> None:
    """Make ``name`` (the root's ``--profile``) the profile of the command ``context`` runs."""
    token = _SELECTED_PROFILE.set(name or None)
    context.call_on_close(lambda: _SELECTED_PROFILE.reset(token))


def selected_profile() -> str | None:
    """The profile named by the root's ``--profile`` in the command being run (None: the environment's or default)."""
    return _SELECTED_PROFILE.get()


def current_profile(name: str | None = None) -> _profile.Profile | None:
    """The stored profile in use (``name``, else ``--profile``, else ``$BATCHSCORE_PROFILE``, else ``default``)."""
    try:
        return _profile.load_profile(name or selected_profile())
    except BatchscoreError as error:
        raise CliError(EXIT_USAGE, str(error)) from None


def _profile_url() -> str | None:
    found = current_profile()
    return found.url if found is not None else None


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


def _write_state(name: str, data: object) -> None:
    path = config_dir() / name
    try:
        write_private_json(path, data)
    except OSError as error:
        raise CliError(EXIT_USAGE, f"cannot write {path}: {error}") from None


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
    stored: dict[str, Any] | None = None
    with _failures(json_output):
        # The batch index's URL before the profile's: a batch lives on the server it was started on.
        base = normalize_url(url or fallback_url or _profile_url() or DEFAULT_URL)
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
        "attempt": result.attempt,
        "attempts": [{"attempt": a.attempt, "error_message": a.error_message} for a in result.attempts],
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
        # Retention: when the results and files go, and whether they went (only the summary is left).
        "expires_at": status.expires_at,
        "expired": status.expired,
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
