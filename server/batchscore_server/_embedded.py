"""Run the server: in the foreground (``batchscore serve``) or in a background thread for notebooks and tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI

from batchscore_server import _auth, _http, _startup
from batchscore_server._app import create_app
from batchscore_server._auth import Role, has_users
from batchscore_server._datadir_lock import DataDirLockedError
from batchscore_server._db import SchemaError, create_engine
from batchscore_server._settings import Settings
from batchscore_server._startup import StartupProgress
from batchscore_server._state import Server

log = logging.getLogger("batchscore_server.embedded")

ADMIN_PASSWORD_ENV = "BATCHSCORE_ADMIN_PASSWORD"
START_TIMEOUT_ENV = "BATCHSCORE_START_TIMEOUT"
# Starting a Dask cluster and the consume pool spawns interpreters: about 2 s on a quiet 2-core machine, and
# well over a minute when four test suites share it.
DEFAULT_START_TIMEOUT = 300.0
# How long a server that failed to start gets to close what it started (threads cannot be interrupted).
TEARDOWN_SECONDS = 60.0
LISTEN_BACKLOG = 2048  # uvicorn's default
# uvicorn closes idle keep-alive connections after 5 s by default; a poller that reuses one at that moment gets a
# reset (ReadError). Pollers wait up to 10 s between polls, so idle connections are kept longer than that.
KEEP_ALIVE_SECONDS = 75
# How long a stop waits for open requests (other than consumes, which it stops at once) before canceling them.
GRACEFUL_SHUTDOWN_SECONDS = 30


class SetupError(Exception):
    """The server cannot start as configured (the message says what to set)."""


def open_database(settings: Settings) -> sa.Engine:
    """The server's database, its schema brought up to date.

    Raises:
        SetupError: It cannot be reached, or its schema is newer than this release's (or not batchscore's).

    """
    try:
        return create_engine(settings.database)
    except SchemaError as error:
        raise SetupError(f"the database cannot be used: {error}") from error
    except sa.exc.OperationalError as error:  # a database URL whose server does not answer, or refuses the login
        where = settings.database_url and sa.make_url(settings.database_url).render_as_string(hide_password=True)
        raise SetupError(f"cannot open the database {where or settings.database_path}: {error.orig}") from error


def ensure_admin(settings: Settings, admin_password: str | None) -> None:
    """Create user ``admin`` (Owner) on a new data directory; refuse to start without a password for it.

    On a data directory with users the password is not used: when it is not admin's, a warning says so (a changed
    ``BATCHSCORE_ADMIN_PASSWORD`` was silently ignored) and names the command that changes it.

    Raises:
        SetupError: The data directory has no users and no admin password was given.

    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = open_database(settings)
    try:
        if has_users(engine):
            if admin_password and _auth.password_matches(engine, "admin", admin_password) is False:
                log.warning(
                    "%s (or admin_password) is not the password of user admin in %s and was ignored: it only sets "
                    "the password of a new data directory; change it with `batchscore users passwd admin --data-dir "
                    "%s` (which ends admin's sessions)",
                    ADMIN_PASSWORD_ENV,
                    settings.data_dir,
                    settings.data_dir,
                )
            return
        if not admin_password:
            raise SetupError(
                f"{settings.data_dir} has no users yet: set {ADMIN_PASSWORD_ENV} to the password the first user "
                "'admin' (role Owner) should have, then start again."
            )
        # Another replica on the same database, starting at the same moment, may create admin first.
        with contextlib.suppress(sa.exc.IntegrityError):
            _auth.add_user(engine, "admin", admin_password, Role.OWNER)
    finally:
        engine.dispose()


def add_user(
    data_dir: Path, name: str, password: str, role: Role = Role.READER, database_url: str | None = None
) -> None:
    """Create a user in a server's database, or reset an existing user's password and role.

    Args:
        data_dir: The server's data directory (its SQLite database, unless ``database_url``).
        name: User name.
        password: Its password.
        role: Its role.
        database_url: The server's ``--database-url``, when it has one.

    """
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(Settings(data_dir=data_dir, database_url=database_url).database)
    try:
        _auth.add_user(engine, name, password, role)
    finally:
        engine.dispose()


def listen(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` (port 0: one the system picks), before anything else starts.

    The server is then handed this socket: a port probed free and bound later was taken in between on a busy
    machine (by the Dask cluster the server starts, or another test run).

    Raises:
        SetupError: The address cannot be bound (in use, or not an address of this machine).

    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=LISTEN_BACKLOG)
    except OSError as error:
        raise SetupError(f"cannot listen on {host}:{port}: {error}") from error


def _uvicorn_config(app: FastAPI, sock: socket.socket, settings: Settings, log_level: str) -> uvicorn.Config:
    host, port = sock.getsockname()[:2]
    _http.limit_out_of_files_logs()
    # h11, not httptools: a proxy in front (Prism's, for one) streams an upload with both Content-Length and
    # Transfer-Encoding; httptools refuses that with a plain-text 400, h11 reads the body by Transfer-Encoding as
    # RFC 9112 section 6.1 allows. The event loop is still uvloop when installed (the `standard` extra). The
    # protocol is h11's with a read timeout and a connection cap, which uvicorn has no setting for.
    max_connections = _http.connection_cap(settings.max_connections)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        http=_http.protocol_class(settings.read_timeout_seconds, max_connections),
        # A request that does not end (a stalled upload) cannot hold a stop for ever; consumes are stopped at once.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    _auth.redact_access_log()  # after the Config: it configures uvicorn's loggers
    return config


class _Server(uvicorn.Server):
    """uvicorn's server, saying where it listens once started (uvicorn is silent when handed its sockets).

    Its stop first kills the running consumes: uvicorn waits for open requests before the app's own shutdown, and
    an hour-long consume held the stop (SIGTERM) for that hour.
    """

    def __init__(self, config: uvicorn.Config, state: Server) -> None:
        super().__init__(config)
        self.state = state

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and sockets:
            host, port = sockets[0].getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            logging.getLogger("uvicorn.error").info(
                "Uvicorn running on http://%s:%d (Press CTRL+C to quit)", shown, port
            )

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.state.stop_consumes()
        await super().shutdown(sockets)


def serve(settings: Settings, host: str, port: int) -> None:
    """Run the server in the foreground until interrupted.

    Raises:
        SetupError: The address cannot be bound, the data directory has no users and BATCHSCORE_ADMIN_PASSWORD
            is not set, or another server uses the data directory.

    """
    # Every connection holds a file descriptor: the soft limit (often 1,024) is no limit an attacker respects.
    _http.raise_open_files_limit()
    with listen(host, port) as sock:
        ensure_admin(settings, os.environ.get(ADMIN_PASSWORD_ENV))
        try:
            app = create_app(settings)
        except DataDirLockedError as error:
            raise SetupError(str(error)) from None
        _Server(_uvicorn_config(app, sock, settings, "info"), app.state.server).run(sockets=[sock])


@dataclass(frozen=True)
class RunningServer:
    """A server started by :func:`running_server`."""

    url: str
    admin_password: str
    settings: Settings


def _resolve_start_timeout(given: float | None = None) -> float:
    """The start timeout in seconds: ``given``, else ``$BATCHSCORE_START_TIMEOUT``, else 300.

    Raises:
        SetupError: ``$BATCHSCORE_START_TIMEOUT`` is not a positive number.

    """
    if given is not None:
        return given
    text = os.environ.get(START_TIMEOUT_ENV)
    if not text:
        return DEFAULT_START_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not seconds > 0:
        raise SetupError(f"{START_TIMEOUT_ENV} must be a positive number of seconds, not {text!r}")
    return seconds


class _ServerThread(threading.Thread):
    """Runs uvicorn on its own event loop; the start can be given up on (:meth:`cancel`) from another thread."""

    def __init__(self, server: uvicorn.Server, sock: socket.socket) -> None:
        super().__init__(name="batchscore-server", daemon=True)
        self.server = server
        self.sock = sock
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()

    def run(self) -> None:
        try:
            with asyncio.Runner(loop_factory=self.server.config.get_loop_factory()) as runner:
                runner.run(self._serve())
        except BaseException as error:  # SystemExit too: uvicorn exits that way when the app's start failed
            self.error = error
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._ready.set()
        await self.server.serve(sockets=[self.sock])

    def cancel(self) -> None:
        """Stop a start in progress: its awaits raise CancelledError, and the app's lifespan closes what it began."""
        self._ready.wait()
        if self._loop is not None and self._task is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing left to stop
                self._loop.call_soon_threadsafe(self._task.cancel)


def _start_error(progress: StartupProgress, thread: _ServerThread, timeout: float) -> SetupError:
    """Why the start failed: the stage that did not finish, and its exception when it raised one."""
    if progress.failure is not None:
        stage, error = progress.failure
        return SetupError(f"the embedded server did not start: the {stage} stage failed: {error!r}")
    if thread.is_alive():
        return SetupError(
            f"the embedded server did not start within {timeout:g} s: the {progress.current} stage did not finish "
            f"(a busy machine may need more: pass start_timeout= or set {START_TIMEOUT_ENV})"
        )
    return SetupError(f"the embedded server did not start: the {progress.current} stage ended with {thread.error!r}")


def _wait_started(server: uvicorn.Server, thread: _ServerThread, progress: StartupProgress, timeout: float) -> None:
    """Wait until the server serves; on a failure or timeout stop it, wait for its teardown, and raise."""
    deadline = time.monotonic() + timeout
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        thread.join(timeout=0.05)
    if server.started:
        return
    error = _start_error(progress, thread, timeout)
    # The cause is the stage's own exception, or what ended the thread; not the cancel that stops a slow start.
    cause = progress.failure[1] if progress.failure is not None else None if thread.is_alive() else thread.error
    # Wait for the server's own teardown before raising: a thread left starting a Dask cluster while the
    # interpreter exited failed with "cannot schedule new futures after interpreter shutdown".
    thread.cancel()
    thread.join(timeout=TEARDOWN_SECONDS)
    if thread.is_alive():
        log.warning("the embedded server was still stopping after %g s", TEARDOWN_SECONDS)
    raise error from cause


@contextlib.contextmanager
def running_server(
    data_dir: Path | None = None,
    *,
    workers: int = 2,
    admin_password: str | None = None,
    start_timeout: float | None = None,
    **settings: object,
) -> Iterator[RunningServer]:
    """Start a server on a free loopback port in a background thread; stop it cleanly on exit.

    The port is bound first, and the server is handed the socket, so no other program can take it meanwhile.

    Args:
        data_dir: The data directory; a temporary one (deleted afterwards) when None.
        workers: Dask workers and consume-pool processes.
        admin_password: Password for ``admin`` on a new data directory; generated when None.
        start_timeout: Seconds the start may take; None: ``$BATCHSCORE_START_TIMEOUT``, else 300.
        **settings: Other :class:`Settings` fields.

    Yields:
        The server's URL, the admin password and its settings.

    Raises:
        SetupError: The server did not start in time, or a start-up stage failed: the message names the stage
            (database, Dask cluster, consume pool, HTTP) and the error.

    """
    timeout = _resolve_start_timeout(start_timeout)
    password = admin_password or secrets.token_urlsafe(16)
    with contextlib.ExitStack() as stack:
        sock = stack.enter_context(listen("127.0.0.1", 0))
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="batchscore-")))
        config = replace(Settings(data_dir=data_dir, workers=workers), **settings)  # type: ignore[arg-type]
        try:
            ensure_admin(config, password)
            app = create_app(config)
        except SetupError:
            raise
        except Exception as error:
            raise SetupError(
                f"the embedded server did not start: the {_startup.DATABASE} stage failed: {error!r}"
            ) from error
        progress: StartupProgress = app.state.startup
        server = _Server(_uvicorn_config(app, sock, config, "warning"), app.state.server)
        thread = _ServerThread(server, sock)
        thread.start()
        _wait_started(server, thread, progress, timeout)
        try:
            yield RunningServer(
                url=f"http://127.0.0.1:{sock.getsockname()[1]}", admin_password=password, settings=config
            )
        finally:
            server.should_exit = True
            thread.join(timeout=TEARDOWN_SECONDS)
