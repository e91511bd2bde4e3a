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
    worker_memory: str | None = typer.Option(
        None,
        envvar="BATCHSCORE_WORKER_MEMORY",
        help="Memory limit of each worker process, e.g. 2GiB or bytes (default: the machine's memory / workers).",
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
        worker_memory_bytes=_memory_bytes(worker_memory),
    )
    try:
        run_server(settings, host, port)
    except SetupError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None


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
