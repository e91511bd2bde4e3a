"""The ``batchscore`` command line."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from batchscore._version import __version__

app = typer.Typer(
    name="batchscore",
    help="Publish Python functions as web services and consume them, one call at a time or in batches.",
    no_args_is_help=True,
    add_completion=False,
)


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


def main() -> None:
    """Run the command line (the ``batchscore`` console script)."""
    app()
