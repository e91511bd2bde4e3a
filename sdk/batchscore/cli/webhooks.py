"""``batchscore webhooks secret [--rotate]``, and ``batchscore batch webhooks|redeliver`` (a batch's deliveries).

The two batch commands join the ``batch`` group when this module is imported (by :func:`batchscore.cli.build_app`).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from rich.table import Table

from batchscore.cli import batch
from batchscore.cli._common import (
    ExecutionArgument,
    JsonOption,
    PasswordOption,
    ServiceOption,
    UrlOption,
    UsernameOption,
    VersionOption,
    _connect,
    _emit_json,
    _short_error,
    _stdout,
)
from batchscore.webhooks import WebhookDelivery

app = typer.Typer(help="The secret that signs your batches' webhooks.", no_args_is_help=True)


@app.command("secret")
def webhooks_secret(
    rotate: Annotated[bool, typer.Option("--rotate", help="Replace it; the old one still signs for 24 hours.")] = False,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print your webhook signing secret (whsec_...; created on first use), for batchscore.webhooks.verify."""
    with _connect(url, username, password, json_output) as client:
        secret = client.rotate_webhook_secret() if rotate else client.webhook_secret()
    if json_output:
        _emit_json({"secret": secret, "rotated": rotate})
    else:
        typer.echo(secret)


def _show_deliveries(deliveries: list[WebhookDelivery], json_output: bool) -> None:
    if json_output:
        _emit_json([dataclasses.asdict(delivery) for delivery in deliveries])
        return
    table = Table(title="webhook deliveries")
    for column in ("id", "event", "state", "attempts", "status", "last error", "created", "next attempt"):
        table.add_column(column)
    for d in deliveries:
        status = "" if d.last_status_code is None else str(d.last_status_code)
        table.add_row(
            d.id,
            d.event,
            d.state,
            str(d.attempts),
            status,
            _short_error(d.last_error),
            d.created_time,
            d.next_attempt_time or "",
        )
    _stdout.print(table)


@batch.app.command("webhooks")
def batch_webhooks(
    execution_id: ExecutionArgument,
    service: ServiceOption = None,
    version: VersionOption = None,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the events sent (or to be sent) to a batch's callback URL, with their attempts and last error."""
    with batch._open_batch(execution_id, service, version, url, username, password, json_output) as started:
        deliveries = started.webhook_deliveries()
    _show_deliveries(deliveries, json_output)


@batch.app.command("redeliver")
def batch_redeliver(
    execution_id: ExecutionArgument,
    delivery_id: Annotated[str, typer.Argument(help="The delivery's id (msg_...).", show_default=False)],
    service: ServiceOption = None,
    version: VersionOption = None,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Send one of a batch's webhook events again (same webhook-id, attempts from 0)."""
    with batch._open_batch(execution_id, service, version, url, username, password, json_output) as started:
        delivery = started.redeliver_webhook(delivery_id)
    _show_deliveries([delivery], json_output)
