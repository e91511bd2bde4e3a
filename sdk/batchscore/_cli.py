"""The ``batchscore`` command line."""

from __future__ import annotations

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


def main() -> None:
    """Run the command line (the ``batchscore`` console script)."""
    app()
