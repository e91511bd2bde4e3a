"""The server's commands of the ``batchscore`` CLI: ``serve`` and ``users add|passwd|remove``, run on the server host.

They plug into the SDK's CLI through the ``batchscore.cli`` entry point group (pyproject.toml), so the SDK never
imports the server. This module imports only typer and the settings: the server's stack (FastAPI, Dask, ...) is
imported when a command runs, and a missing ``server`` extra is reported then.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import typer

from batchscore_server._settings import DEFAULT_PORT, default_workers, parse_retention

if TYPE_CHECKING:
    import sqlalchemy as sa

SERVER_MISSING = "the server is not installed: pip install 'batchscore[server]'"
USER_PASSWORD_ENV = "BATCHSCORE_USER_PASSWORD"
DATABASE_URL_ENV = "BATCHSCORE_DATABASE_URL"
WEBHOOK_ALLOW_ENV = "BATCHSCORE_WEBHOOK_ALLOW"
RETENTION_ENV = "BATCHSCORE_RETENTION"
# The users commands change the database the server uses: its data directory's SQLite, or --database-url.
_USERS_DATABASE_URL = typer.Option(
    None, envvar=DATABASE_URL_ENV, help="The server's --database-url, when it has one (else its SQLite)."
)

users_app = typer.Typer(help="Manage the server's users (run on the server host).", no_args_is_help=True)


def serve(
    data_dir: Path = typer.Option(..., "--data-dir", help="Database, secrets, models and artifacts live here."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(
        DEFAULT_PORT, envvar="BATCHSCORE_PORT", help="Port to listen on (ML Server's default; 0: any free port)."
    ),
    workers: int = typer.Option(0, help="Dask workers and consume processes (0: one per core)."),
    scheduler: str | None = typer.Option(
        None, help="Use this Dask scheduler (tcp://HOST:PORT) instead of a local one."
    ),
    max_parallel_count: int = typer.Option(100, help="Cap on a batch's parallelCount."),
    max_body_mb: int = typer.Option(
        256, min=1, help="Larger batch and workspace-object bodies are refused with 413 (and the cap of the others)."
    ),
    max_service_body_mb: int = typer.Option(16, min=1, help="Larger publish and PATCH bodies are refused with 413."),
    max_consume_body_mb: int = typer.Option(16, min=1, help="Larger consume bodies are refused with 413."),
    worker_memory: str | None = typer.Option(
        None,
        envvar="BATCHSCORE_WORKER_MEMORY",
        help="Memory limit of each worker process, e.g. 2GiB or bytes (default: the machine's memory / workers).",
    ),
    reader_max_queued_rows: int = typer.Option(
        100_000, min=0, help="Rows a Reader may have pending or running (0: no quota); over it a start is 429."
    ),
    reader_max_stored_mb: int = typer.Option(
        1024, min=0, help="MiB of batch records a Reader may keep stored (0: no quota); over it a start is 413."
    ),
    contributor_max_queued_rows: int = typer.Option(0, min=0, help="As --reader-max-queued-rows, for Contributors."),
    contributor_max_stored_mb: int = typer.Option(
        0, min=0, help="As --reader-max-stored-mb, for Contributors (their workspace objects and snapshots count too)."
    ),
    max_result_mb: int = typer.Option(16, help="A row or consume whose outputParameters are larger fails."),
    max_console_kb: int = typer.Option(1024, help="Console output kept per row or consume (the rest is dropped)."),
    max_output_file_mb: int = typer.Option(64, help="A row or consume whose output file is larger fails."),
    consume_timeout: float = typer.Option(
        600.0, min=1, help="Seconds a consume may run when its service sets no consumeTimeout (then killed)."
    ),
    read_timeout: float = typer.Option(
        30.0, min=0.1, help="Seconds a client may send nothing while the server waits for its request."
    ),
    max_connections: int = typer.Option(4096, min=1, help="Connections beyond this are answered 503 and closed."),
    database_url: str | None = typer.Option(
        None,
        envvar=DATABASE_URL_ENV,
        help="SQLAlchemy URL of the database, e.g. postgresql://user:pw@host/db for several replicas "
        "(default: SQLite in the data directory).",
    ),
    artifact_dir: Path | None = typer.Option(
        None,
        envvar="BATCHSCORE_ARTIFACT_DIR",
        help="Row files, service objects and snapshots (default: in the data directory); replicas share one, "
        "seen at the same path by every replica and Dask worker.",
    ),
    lease_seconds: float = typer.Option(
        10.0, min=1, help="A batch of a replica that died is taken over by another after this many seconds."
    ),
    retention: str = typer.Option(
        "30d",
        envvar=RETENTION_ENV,
        help="How long a finished batch's records, results and files are kept unless it was started with "
        "expiresAfter: seconds, or 30d, 12h, 90m; never (or 0) keeps them. Its summary stays after.",
    ),
    webhook_allow: list[str] = typer.Option(
        [],
        "--webhook-allow",
        help="A host a batch's callbackUrl may name: hooks.example.com, *.example.com (public addresses only) or "
        f"127.0.0.1:8080; repeat it for more (also ${WEBHOOK_ALLOW_ENV}, comma-separated). None: no callbacks.",
    ),
) -> None:
    """Run the reference server. A new data directory needs BATCHSCORE_ADMIN_PASSWORD for user admin."""
    try:
        from batchscore_server import Settings, SetupError
        from batchscore_server import serve as run_server
    except ImportError:
        typer.echo(SERVER_MISSING, err=True)
        raise typer.Exit(2) from None
    settings = Settings(
        data_dir=data_dir,
        workers=workers or default_workers(),
        scheduler=scheduler,
        max_parallel_count=max_parallel_count,
        max_body_bytes=max_body_mb * 1024 * 1024,
        max_service_body_bytes=max_service_body_mb * 1024 * 1024,
        max_consume_body_bytes=max_consume_body_mb * 1024 * 1024,
        worker_memory_bytes=_memory_bytes(worker_memory),
        reader_max_queued_rows=reader_max_queued_rows,
        reader_max_stored_bytes=reader_max_stored_mb * 1024 * 1024,
        contributor_max_queued_rows=contributor_max_queued_rows,
        contributor_max_stored_bytes=contributor_max_stored_mb * 1024 * 1024,
        max_result_bytes=max_result_mb * 1024 * 1024,
        max_console_bytes=max_console_kb * 1024,
        max_output_file_bytes=max_output_file_mb * 1024 * 1024,
        consume_timeout_seconds=consume_timeout,
        read_timeout_seconds=read_timeout,
        max_connections=max_connections,
        database_url=database_url or None,
        artifact_dir=artifact_dir,
        lease_seconds=lease_seconds,
        retention_seconds=_retention_seconds(retention),
        webhook_allow=_webhook_patterns(webhook_allow),
    )
    try:
        run_server(settings, host, port)
    except SetupError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None


def _webhook_patterns(flags: list[str]) -> tuple[str, ...]:
    """The --webhook-allow patterns and those of the environment variable, checked.

    Raises:
        typer.BadParameter: A pattern is not a host pattern.

    """
    from batchscore_server._webhooks import HostPattern

    patterns = [*flags, *os.environ.get(WEBHOOK_ALLOW_ENV, "").split(",")]
    patterns = [p.strip() for p in patterns if p.strip()]
    for pattern in patterns:
        try:
            HostPattern.parse(pattern)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--webhook-allow") from None
    return tuple(patterns)


def _memory_bytes(text: str | None) -> int | None:
    """``--worker-memory`` in bytes (``2GiB``, ``500MB``, ``1000000``); exits with a message when it is not one."""
    if not text:  # unset, or set empty in the environment: Dask's default
        return None
    from dask.utils import parse_bytes  # the server's stack: imported when serve runs, never with the CLI

    try:
        size = parse_bytes(text) if text[0].isdigit() else 0  # parse_bytes reads a bare unit ("GiB") as 1 GiB
    except (ValueError, TypeError):
        size = 0
    if size <= 0:
        typer.echo(f"--worker-memory must be a size such as 2GiB or a number of bytes, not {text!r}", err=True)
        raise typer.Exit(2)
    return size


def _retention_seconds(text: str) -> float | None:
    """``--retention`` in seconds (None: never); exits with a message when it is not a duration."""
    try:
        return parse_retention(text)
    except ValueError as error:
        typer.echo(f"--retention: {error}", err=True)
        raise typer.Exit(2) from None


@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., help="User name."),
    role: str = typer.Option("Reader", help="Owner, Contributor or Reader."),
    data_dir: Path = typer.Option(..., "--data-dir", help="The server's data directory."),
    database_url: str | None = _USERS_DATABASE_URL,
) -> None:
    """Add a user (or reset one). The password comes from BATCHSCORE_USER_PASSWORD or a prompt."""
    try:
        from batchscore_server import Role, add_user
    except ImportError:
        typer.echo(SERVER_MISSING, err=True)
        raise typer.Exit(2) from None
    try:
        chosen = Role(role.capitalize())
    except ValueError:
        typer.echo(f"--role must be Owner, Contributor or Reader, not {role!r}", err=True)
        raise typer.Exit(2) from None
    add_user(data_dir, name, _password(name), chosen, database_url or None)
    typer.echo(f"user {name} ({chosen.value}) saved")


def _password(name: str) -> str:
    return os.environ.get(USER_PASSWORD_ENV) or typer.prompt(
        f"Password for {name}", hide_input=True, confirmation_prompt=True
    )


def _on_users(
    data_dir: Path, database_url: str | None, change: Callable[[ModuleType, sa.Engine], bool], name: str
) -> None:
    """Run ``change(_auth, engine)`` on the server's database; exit 2 without the directory or the user."""
    try:
        from batchscore_server import Settings, _auth, _db
    except ImportError:
        typer.echo(SERVER_MISSING, err=True)
        raise typer.Exit(2) from None
    settings = Settings(data_dir=data_dir, database_url=database_url or None)
    if settings.database_url is None and not settings.database_path.is_file():
        typer.echo(f"{data_dir} is not a server's data directory (no {settings.database_path.name})", err=True)
        raise typer.Exit(2)
    engine = _db.create_engine(settings.database)
    try:
        found = change(_auth, engine)
    finally:
        engine.dispose()
    if not found:
        typer.echo(f"there is no user {name!r} in {data_dir}", err=True)
        raise typer.Exit(2)


@users_app.command("passwd")
def users_passwd(
    name: str = typer.Argument(..., help="User name."),
    data_dir: Path = typer.Option(..., "--data-dir", help="The server's data directory."),
    database_url: str | None = _USERS_DATABASE_URL,
) -> None:
    """Change a user's password and end its sessions. The password comes from BATCHSCORE_USER_PASSWORD or a prompt.

    A running server refuses the user's old tokens within 5 seconds (its token-check cache).
    """
    # Asked for once the data directory is known to be one.
    _on_users(data_dir, database_url, lambda auth, engine: auth.set_password(engine, name, _password(name)), name)
    typer.echo(f"password of {name} changed; its sessions are ended")


@users_app.command("remove")
def users_remove(
    name: str = typer.Argument(..., help="User name."),
    data_dir: Path = typer.Option(..., "--data-dir", help="The server's data directory."),
    database_url: str | None = _USERS_DATABASE_URL,
) -> None:
    """Remove a user and end its sessions; its services, batches and snapshots stay (Owners can delete them)."""
    _on_users(data_dir, database_url, lambda auth, engine: auth.remove_user(engine, name), name)
    typer.echo(f"user {name} removed; its sessions are ended")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``users`` to the ``batchscore`` command line (the ``batchscore.cli`` entry point)."""
    app.command()(serve)
    app.add_typer(users_app, name="users")
