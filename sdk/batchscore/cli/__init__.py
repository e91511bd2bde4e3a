"""The ``batchscore`` command line: run a server, log in, publish, consume, and run batches.

Every command that talks to a server takes ``--url`` (``BATCHSCORE_URL``, default: the URL ``batchscore login``
stored in the profile, ``--profile``/``BATCHSCORE_PROFILE`` or ``default``, else ``http://127.0.0.1:12800``)
and authenticates with ``--username``/``--password`` (``BATCHSCORE_USERNAME``/``BATCHSCORE_PASSWORD``) when
given, otherwise with the token ``batchscore login`` stored for that URL. ``--json`` prints machine-readable JSON
only. Everything goes through the SDK (:class:`batchscore.Client`); the CLI never speaks HTTP itself.

Commands: ``login``, ``logout`` (:mod:`.login`); ``services list|get|delete|swagger`` (:mod:`.services`);
``publish FILE.py:FUNCTION`` (:mod:`.publish`); ``consume NAME VERSION KEY=VALUE...`` (:mod:`.consume`); ``batch
start|status|wait|cancel|retry|delete|results|download`` (:mod:`.batch`); ``webhooks secret``, ``batch
webhooks|redeliver`` (:mod:`.webhooks`). Packages add commands through the
``batchscore.cli`` entry point group: the server adds ``serve`` and ``users add`` (run on the server host), so
the SDK never imports the server.

Local state lives in ``$BATCHSCORE_CONFIG_DIR`` (default: ``typer.get_app_dir("batchscore")``):
``credentials.json`` (``{url: {access_token, refresh_token, username}}``, mode 0600) and ``batches.json``
(``{execution_id: {name, version, url}}``, written by ``batch start`` so later ``batch`` commands need only the id)
and ``profiles.json`` (``{"profiles": {name: {url, username}}}``, written by ``login``; see :mod:`batchscore._profile`).

Exit codes:

====  ==========================================================================================================
code  meaning
====  ==========================================================================================================
0     done
1     finished, but some rows failed (a batch that completed with failed rows, or a consume that failed)
2     usage error: a bad option or argument, a bad KEY=VALUE, an unknown file type, an unreadable file or
      record, an unknown execution id without ``--service``/``--version``
3     the batch failed or was canceled (also a status or results whose state is ``failed`` or ``canceled``)
4     authentication: wrong user name or password, an expired or revoked token, not logged in and no credentials
5     any other API or connection error (the server's message and ``field`` are printed)
130   interrupted (Ctrl-C); a batch being waited for goes on running on the server
====  ==========================================================================================================

Errors go to stderr on one line (a JSON object ``{"error", "field", "exit_code"}`` with ``--json``).
"""

from __future__ import annotations

import functools
import inspect
from importlib.metadata import entry_points

import typer

from batchscore import __version__
from batchscore.cli import batch, batch_list, consume, login, publish, services, webhooks
from batchscore.cli._common import select_profile

PLUGIN_GROUP = "batchscore.cli"
EXIT_CODES_HELP = """Exit codes:
  0    done
  1    finished, but some rows failed (or the consumed call failed)
  2    usage error: bad option, KEY=VALUE, file or file type, unknown batch id
  3    the batch failed or was canceled
  4    authentication: wrong credentials, expired token, not logged in
  5    any other API or connection error
  130  interrupted (Ctrl-C); a batch being waited for goes on running"""
APP_HELP = (
    "Publish Python functions as web services and consume them, one call at a time or in batches.\n\n"
    "Log in once with `batchscore login --url URL --username NAME`: later commands use that server and its stored "
    "token when --url is not given (several servers: `--profile NAME`). Shell completion: "
    "`batchscore --install-completion`.\n\n" + EXIT_CODES_HELP
)

__all__ = ["PLUGIN_GROUP", "app", "build_app", "load_plugins", "main"]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"batchscore {__version__}")
        raise typer.Exit()


def root(
    context: typer.Context,
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
    ),
    profile: str | None = typer.Option(
        None,
        "--profile",
        envvar="BATCHSCORE_PROFILE",
        help="The login profile whose server commands use when --url is not given (default: `default`).",
        show_default=False,
    ),
) -> None:
    """Publish Python functions as web services and consume them, one call at a time or in batches."""
    select_profile(context, profile)


def load_plugins(app: typer.Typer) -> None:
    """Let each installed ``batchscore.cli`` entry point add its commands (``register(app)``) to ``app``.

    A plugin that fails to load is left out with a warning: the SDK's own commands still work.
    """
    for entry_point in sorted(entry_points(group=PLUGIN_GROUP), key=lambda found: found.name):
        try:
            register = entry_point.load()
        except Exception as error:  # a broken plugin may raise anything while it imports
            typer.echo(f"warning: the {entry_point.name} commands are unavailable: {error}", err=True)
            continue
        register(app)


def build_app(*, plugins: bool = True) -> typer.Typer:
    """The ``batchscore`` command line: the SDK's commands, and the plugins' when ``plugins`` is true."""
    app = typer.Typer(name="batchscore", help=APP_HELP, no_args_is_help=True, add_completion=True)
    app.callback()(root)
    # Plugins first: help lists commands, then groups, each in the order they were added, and the server's
    # `serve` and `users` have always come first.
    if plugins:
        load_plugins(app)
    for command in (login.login, login.logout, publish.publish, consume.consume):
        app.command()(command)
    app.add_typer(services.app, name="services")
    services.app.command("update")(publish.services_update)
    batch.app.command("list")(batch_list.batch_list)
    app.add_typer(batch.app, name="batch")
    app.add_typer(webhooks.app, name="webhooks")  # (importing it added `batch webhooks` and `batch redeliver`)
    _reflow_help(app)
    return app


def _reflow_help(group: typer.Typer) -> None:
    """Use each command's docstring as its help with the paragraphs' line breaks removed (rich keeps them)."""
    for info in group.registered_groups:
        if info.typer_instance is not None:
            _reflow_help(info.typer_instance)
    for command in group.registered_commands:
        if command.help is None and command.callback is not None and command.callback.__doc__:
            paragraphs = inspect.cleandoc(command.callback.__doc__).split("\n\n")
            command.help = "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)


@functools.cache
def _default_app() -> typer.Typer:
    return build_app()


def __getattr__(name: str) -> typer.Typer:
    # ``app`` is built on first use: importing this package must not import the plugins (the server among them).
    if name == "app":
        return _default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Run the command line (the ``batchscore`` console script)."""
    _default_app()()
