"""The server's public API: ``batchscore_server.__all__`` is what README, examples, bench and tests use."""

from __future__ import annotations

import subprocess
import sys

import batchscore_server

PUBLIC_NAMES = [
    "ADMIN_PASSWORD_ENV",
    "DASK_CONFIG",
    "DEFAULT_PORT",
    "START_TIMEOUT_ENV",
    "Role",
    "RunningServer",
    "Settings",
    "SetupError",
    "add_user",
    "create_app",
    "running_server",
    "serve",
]


def test_public_names_are_pinned() -> None:
    # A name added to or dropped from __all__ must be a decision: change this list with it.
    assert batchscore_server.__all__ == PUBLIC_NAMES
    assert set(dir(batchscore_server)) >= set(PUBLIC_NAMES)


def test_every_public_name_resolves_and_is_documented() -> None:
    for name in batchscore_server.__all__:
        value = getattr(batchscore_server, name)
        if callable(value):
            assert value.__doc__, f"{name} has no docstring"


def test_an_unknown_name_is_an_attribute_error() -> None:
    assert not hasattr(batchscore_server, "nothing_here")


def test_importing_the_package_and_its_cli_plugin_is_cheap() -> None:
    # The CLI imports the plugin on every command (login too): the server's stack loads only when a server
    # command runs, and `serve` can still say the extra is missing.
    code = (
        "import sys, batchscore_server, batchscore_server.cli; "
        "print([m for m in ('fastapi', 'distributed', 'uvicorn', 'sqlalchemy') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
