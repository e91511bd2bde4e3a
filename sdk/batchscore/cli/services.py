"""``batchscore services list|get|delete|swagger``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from batchscore.cli._common import (
    JsonOption,
    PasswordOption,
    UrlOption,
    UsernameOption,
    _connect,
    _emit_json,
    _service_json,
    _stdout,
)

app = typer.Typer(help="List, describe and delete published services.", no_args_is_help=True)


# --- Commands: services ------------------------------------------------------------------------------------------


@app.command("list")
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


@app.command("get")
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


@app.command("delete")
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


@app.command("swagger")
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
