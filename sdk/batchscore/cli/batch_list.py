"""``batchscore batch list``: the batches this user may see across services, newest first, with rate and ETA."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from batchscore import BatchStatus
from batchscore.cli._common import (
    EXIT_USAGE,
    CliError,
    JsonOption,
    PasswordOption,
    UrlOption,
    UsernameOption,
    _connect,
    _emit_json,
    _failures,
    _status_json,
    _stdout,
    parse_pairs,
)

DEFAULT_LIMIT = 100


def summary_json(status: BatchStatus) -> dict[str, Any]:
    """One batch of the list as ``--json`` prints it: the status's fields, its service, labels, rate and ETA."""
    return {
        **_status_json(status),
        "name": status.service_name,
        "version": status.service_version,
        "labels": dict(status.labels),
        "rows_per_second": status.rows_per_second,
        "estimated_seconds_left": status.estimated_seconds_left,
    }


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _table(found: list[BatchStatus]) -> Table:
    table = Table(title="batches")
    for column in ("id", "service", "state", "done", "failed", "rate", "ETA", "created", "labels"):
        table.add_column(column, justify="right" if column in ("done", "failed", "rate", "ETA") else "left")
    for status in found:
        rate, left = status.rows_per_second, status.estimated_seconds_left
        table.add_row(
            status.execution_id,
            f"{status.service_name} {status.service_version}",
            status.state.value,
            f"{status.completed_item_count}/{status.total_item_count}",
            str(status.failed_item_count),
            "-" if rate is None else f"{rate:.1f}/s",
            _duration(left),
            status.creation_time,
            ", ".join(f"{k}={v}" for k, v in status.labels.items()),
        )
    return table


def batch_list(
    state: Annotated[
        str | None,
        typer.Option("--state", help="Only batches in this state (pending, inProgress, complete, failed, canceled)."),
    ] = None,
    service: Annotated[str | None, typer.Option("--service", help="Only batches of this service.")] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Only batches of this service version (with --service).")
    ] = None,
    owner: Annotated[
        str | None, typer.Option("--owner", help="Only batches this user started (Owners; others see only theirs).")
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="Only batches labelled KEY=VALUE (repeat: all of them).", show_default=False),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="List at most this many batches.")] = DEFAULT_LIMIT,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the batches you started, across services, newest first (an Owner sees everyone's).

    Each shows its state, rows done and failed, the rate and the time left as the server measures them, when it
    started and its labels. --json prints one JSON array.
    """
    with _failures(json_output):
        labels = parse_pairs(label or [], "--label")
    with _connect(url, username, password, json_output) as client, _failures(json_output):
        try:
            pages = client.list_batches(
                state=state, service=service, version=version, owner=owner, labels=labels, limit=limit
            )
        except ValueError as error:
            raise CliError(EXIT_USAGE, str(error)) from None
        found = list(pages)
    if json_output:
        _emit_json([summary_json(status) for status in found])
        return
    _stdout.print(_table(found))
