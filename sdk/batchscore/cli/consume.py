"""``batchscore consume NAME VERSION KEY=VALUE...``: run a service once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from batchscore.cli._common import (
    EXIT_ROWS_FAILED,
    EXIT_USAGE,
    CliError,
    JsonOption,
    PasswordOption,
    UrlOption,
    UsernameOption,
    _connect,
    _emit_json,
    _failures,
    _result_json,
    _short_error,
    _stdout,
    parse_pairs,
    parse_value,
)


def consume(
    name: Annotated[str, typer.Argument(help="Service name.", show_default=False)],
    version: Annotated[
        str | None,
        typer.Argument(help="Version (default: the latest; may be left out before KEY=VALUE).", show_default=False),
    ] = None,
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

    Without VERSION the latest published version runs (the last one published, whatever its name).

    Values are JSON when they parse (120 is a number, true a boolean, "[1, 2]" a list), text otherwise.
    """
    if version is not None and "=" in version:  # no version ('=' is not allowed in one): it is the first input
        values, version = [version, *(values or [])], None
    with _failures(json_output):
        inputs = parse_pairs(values or [], "an input", parse_value)
    with _connect(url, username, password, json_output) as client:
        service = client.get_service(name, version)
        result = service.consume(**inputs)
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
        data["version"] = service.version  # the one that ran (the latest when VERSION was left out)
        data["artifacts"] = sorted(name for name, content in result.files.items() if content is not None)
        data["written"] = written
        _emit_json(data)
    else:
        if result.outputs:
            table = Table(title=f"{name} {service.version}")
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
