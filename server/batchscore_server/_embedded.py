"""Run the server: in the foreground (``batchscore serve``) or in a background thread for notebooks and tests."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import uvicorn

from batchscore_server._app import create_app
from batchscore_server._auth import Role, add_user, has_users
from batchscore_server._db import create_engine
from batchscore_server._settings import Settings

ADMIN_PASSWORD_ENV = "BATCHSCORE_ADMIN_PASSWORD"
# uvicorn closes idle keep-alive connections after 5 s by default; a poller that reuses one at that moment gets a
# reset (ReadError). Pollers wait up to 10 s between polls, so idle connections are kept longer than that.
KEEP_ALIVE_SECONDS = 75


class SetupError(Exception):
    """The server cannot start as configured (the message says what to set)."""


def ensure_admin(settings: Settings, admin_password: str | None) -> None:
    """Create user ``admin`` (Owner) on a new data directory; refuse to start without a password for it.

    Raises:
        SetupError: The data directory has no users and no admin password was given.

    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.database_path)
    try:
        if has_users(engine):
            return
        if not admin_password:
            raise SetupError(
                f"{settings.data_dir} has no users yet: set {ADMIN_PASSWORD_ENV} to the password the first user "
                "'admin' (role Owner) should have, then start again."
            )
        add_user(engine, "admin", admin_password, Role.OWNER)
    finally:
        engine.dispose()


def add_user_to(data_dir: Path, name: str, password: str, role: Role) -> None:
    """Create a user in a data directory, or reset an existing user's password and role."""
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(data_dir / Settings(data_dir=data_dir).database_path.name)
    try:
        add_user(engine, name, password, role)
    finally:
        engine.dispose()


def serve(settings: Settings, host: str, port: int) -> None:
    """Run the server in the foreground until interrupted.

    Raises:
        SetupError: The data directory has no users and BATCHSCORE_ADMIN_PASSWORD is not set.

    """
    ensure_admin(settings, os.environ.get(ADMIN_PASSWORD_ENV))
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", timeout_keep_alive=KEEP_ALIVE_SECONDS)


@dataclass(frozen=True)
class RunningServer:
    """A server started by :func:`running_server`."""

    url: str
    admin_password: str
    settings: Settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running_server(
    data_dir: Path | None = None, *, workers: int = 2, admin_password: str | None = None, **settings: object
) -> Iterator[RunningServer]:
    """Start a server on a free loopback port in a background thread; stop it cleanly on exit.

    Args:
        data_dir: The data directory; a temporary one (deleted afterwards) when None.
        workers: Dask workers and consume-pool processes.
        admin_password: Password for ``admin`` on a new data directory; generated when None.
        **settings: Other :class:`Settings` fields.

    Yields:
        The server's URL, the admin password and its settings.

    """
    password = admin_password or secrets.token_urlsafe(16)
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="batchscore-")))
        config = replace(Settings(data_dir=data_dir, workers=workers), **settings)  # type: ignore[arg-type]
        ensure_admin(config, password)
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(config),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                timeout_keep_alive=KEEP_ALIVE_SECONDS,
            )
        )
        thread = threading.Thread(target=server.run, name="batchscore-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise SetupError("the embedded server did not start")
            time.sleep(0.05)
        try:
            yield RunningServer(url=f"http://127.0.0.1:{port}", admin_password=password, settings=config)
        finally:
            server.should_exit = True
            thread.join(timeout=60)
