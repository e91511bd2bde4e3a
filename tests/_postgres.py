"""A throwaway PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` in a temporary directory.

It listens on a Unix socket in its own directory only (``listen_addresses=''``): no TCP port is chosen, so two test
runs on one machine cannot collide. PostgreSQL refuses to run as root; when the tests run as root (as CI does here)
every PostgreSQL command runs as the ``postgres`` user through ``runuser``, and the directory is given to that user.
Durability is off (``fsync=off``, ``synchronous_commit=off``, ``full_page_writes=off``): the data lives as long as
the test session.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

SYSTEM_USER = "postgres"
DATABASE_USER = "batchscore"
START_TIMEOUT_SECONDS = 300  # pg_ctl -w waits this long at most: a busy machine can take a while


@dataclass(frozen=True)
class Postgres:
    """A running PostgreSQL: where its socket is, and the SQLAlchemy URL of a database on it."""

    socket_dir: Path

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the ``postgres`` database (to create others)."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        """The SQLAlchemy URL of a database on this server (see :func:`create_database`)."""
        return f"postgresql+psycopg://{DATABASE_USER}@/{name}?host={self.socket_dir}"


def bin_dir() -> Path | None:
    """PostgreSQL's server binaries (``pg_config --bindir``, else the newest Debian one), or None."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            candidates.append(
                subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
            )
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    return None


def unavailable_reason() -> str | None:
    """Why no test PostgreSQL can start here, or None when one can."""
    if bin_dir() is None:
        return "no PostgreSQL server binaries (initdb, pg_ctl) on this machine"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            return f"running as root and there is no {SYSTEM_USER!r} user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", SYSTEM_USER, "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str]) -> None:
    done = subprocess.run(_as_owner(command), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@contextlib.contextmanager
def running_postgres(settings: Mapping[str, str] | None = None) -> Iterator[Postgres]:
    """Start a PostgreSQL for the duration of the block; it and its files are gone afterwards.

    ``settings`` are server settings given after (so overriding) the defaults above, e.g. ``{"fsync": "on"}``.

    Raises:
        RuntimeError: It cannot start here (see :func:`unavailable_reason`) or a command failed (its output says why).

    """
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    binaries = bin_dir()
    assert binaries is not None
    # Under /tmp, not pytest's tmp_path: a Unix socket path must stay under ~107 bytes, and the postgres user must
    # reach the directory (a root-owned 0700 parent would stop it).
    root = Path(tempfile.mkdtemp(prefix="bs-pg-"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        owner = pwd.getpwnam(SYSTEM_USER)
        for path in (root, sockets):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    started = False
    try:
        _run([str(binaries / "initdb"), "-D", str(data), "-U", DATABASE_USER, "-A", "trust", "-E", "UTF8", "--no-sync"])
        options = (
            f"-k {sockets} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=200"
        ) + "".join(f" -c {name}={value}" for name, value in (settings or {}).items())
        _run([
            str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-o", options,
            "-w", "-t", str(START_TIMEOUT_SECONDS), "start",
        ])  # fmt: skip
        started = True
        yield Postgres(sockets)
    finally:
        if started:
            with contextlib.suppress(RuntimeError):
                _run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def create_database(postgres: Postgres, name: str) -> str:
    """Create an empty database on ``postgres``; returns its SQLAlchemy URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return postgres.database_url(name)
