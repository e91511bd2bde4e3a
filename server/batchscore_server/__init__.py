"""batchscore_server: the reference server that implements ``openapi/batchscore.yaml``.

It is installed with the ``server`` extra (``pip install 'batchscore[server]'``) and never imports the SDK::

    from batchscore_server import running_server

    with running_server(workers=2) as server:  # server.url, server.admin_password
        ...

The names below are imported when first used: ``import batchscore_server`` (as the CLI's ``serve`` and
``users`` plugin does) costs nothing, and works without the ``server`` extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchscore_server._app import create_app
    from batchscore_server._auth import Role
    from batchscore_server._batch import DASK_CONFIG
    from batchscore_server._embedded import (
        ADMIN_PASSWORD_ENV,
        START_TIMEOUT_ENV,
        RunningServer,
        SetupError,
        add_user,
        running_server,
        serve,
    )
    from batchscore_server._settings import DEFAULT_PORT, Settings

# Public name -> the module that defines it.
_HOMES = {
    "ADMIN_PASSWORD_ENV": "batchscore_server._embedded",
    "DASK_CONFIG": "batchscore_server._batch",
    "DEFAULT_PORT": "batchscore_server._settings",
    "START_TIMEOUT_ENV": "batchscore_server._embedded",
    "Role": "batchscore_server._auth",
    "RunningServer": "batchscore_server._embedded",
    "Settings": "batchscore_server._settings",
    "SetupError": "batchscore_server._embedded",
    "add_user": "batchscore_server._embedded",
    "create_app": "batchscore_server._app",
    "running_server": "batchscore_server._embedded",
    "serve": "batchscore_server._embedded",
}

__all__ = [
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


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # found once: later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
