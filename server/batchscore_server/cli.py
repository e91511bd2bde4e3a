"""The server's commands of the ``batchscore`` CLI: ``serve`` and ``users add``, run on the server host.

They plug into the SDK's CLI through the ``batchscore.cli`` entry point group (pyproject.toml), so the SDK never
imports the server. This module imports only typer and the settings: the server's stack (FastAPI, Dask, ...) is
imported when a command runs, and a missing ``server`` extra is reported then.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from batchscore_server._settings import DEFAULT_PORT, default_workers

SERVER_MISSING = "the server is not installed: pip install 'batchscore[server]'"

users_app = typer.Typer(help="Manage the server's users (run on the server host).", no_args_is_help=True)


def serve(
    data_dir: Path = typer.Option(..., "--data-dir", help="Database, secrets, models and artifacts live here."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(DEFAULT_PORT, help="Port to listen on (ML Server's default)."),
    workers: int = typer.Option(0, help="Dask workers and consume processes (0: one per core)."),
    scheduler: str | None = typer.Option(
        None, help="Use this Dask scheduler (tcp://HOST:PORT) instead of a local one."
    ),
    max_parallel_count: int = typer.Option(100, help="Cap on a batch's parallelCount."),
    max_body_mb: int = typer.Option(256, help="Larger request bodies are refused with 413."),
    consume_timeout: float = typer.Option(
        600.0, min=1, help="Seconds a consume may run when its service sets no consumeTimeout (then killed)."
    ),
    read_timeout: float = typer.Option(
        30.0, min=0.1, help="Seconds a client may send nothing while the server waits for its request."
    ),
    max_connections: int = typer.Option(4096, min=1, help="Connections beyond this are answered 503 and closed."),
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
        consume_timeout_seconds=consume_timeout,
        read_timeout_seconds=read_timeout,
        max_connections=max_connections,
    )
    try:
        run_server(settings, host, port)
    except SetupError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None


@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., help="User name."),
    role: str = typer.Option("Reader", help="Owner, Contributor or Reader."),
    data_dir: Path = typer.Option(..., "--data-dir", help="The server's data directory."),
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
    password = os.environ.get("BATCHSCORE_USER_PASSWORD") or typer.prompt(
        f"Password for {name}", hide_input=True, confirmation_prompt=True
    )
    add_user(data_dir, name, password, chosen)
    typer.echo(f"user {name} ({chosen.value}) saved")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``users`` to the ``batchscore`` command line (the ``batchscore.cli`` entry point)."""
    app.command()(serve)
    app.add_typer(users_app, name="users")
