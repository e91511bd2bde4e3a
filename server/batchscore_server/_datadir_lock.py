"""The data directory's lock: one server at a time may use a data directory.

Two servers on one directory ran rows twice, deleted each other's uploads at start-up and ignored each other's
cancels. The lock is an OS file lock (``flock``) on ``<data_dir>/batchscore.lock``, held for the server's life: the
OS drops it when the process ends however it ends (kill -9 too), so a stale lock never needs clearing by hand. The
file records the holder's pid, for the message a second server gets. The ``batchscore users`` commands do not take
it: they only write the database, which SQLite shares safely with the running server.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_FILE_NAME = "batchscore.lock"


class DataDirLockedError(Exception):
    """Another server holds the data directory."""


class DataDirLock:
    """The held lock of one data directory (see :func:`lock_data_dir`); :meth:`release` gives it up."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        """Give the lock up (closing the file drops it); a second call does nothing."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.release()


def lock_data_dir(data_dir: Path) -> DataDirLock:
    """Lock ``data_dir`` for this process (created if missing); blocking, but it never waits for the lock.

    Raises:
        DataDirLockedError: Another server holds it; the message names the directory and the holder's pid.

    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _recorded_pid(fd)
        os.close(fd)
        by = f" by the server with pid {holder}" if holder else " by another server"
        raise DataDirLockedError(
            f"the data directory {data_dir} is in use{by} (lock file {path}); one server at a time may use a data "
            "directory: stop that server, or give this one another --data-dir"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    # Only the holder writes the file: a refused server must not overwrite the pid it reports.
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return DataDirLock(path, fd)


def _recorded_pid(fd: int) -> str:
    with contextlib.suppress(OSError):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return text
    return ""
