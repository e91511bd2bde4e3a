"""What holds off slow and numerous clients: a read timeout and a connection cap on uvicorn's h11 protocol.

uvicorn times out only idle keep-alive connections, after a response: a connection that sent half a request line,
headers without their end, or a body that stopped was held forever, and 1,100 of them took every file descriptor
(the server became unreachable). uvicorn has no setting for either, so its protocol class is extended here and
handed to it as ``Config(http=...)``. In front of the Internet, a reverse proxy should still do this (README).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import time
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

log = logging.getLogger("batchscore_server.http")

_BUSY = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
# File descriptors kept for what is not a client connection (Dask, SQLite, the consume pool's pipes).
_RESERVED_FDS_SHARE = 2


def protocol_class(read_timeout: float, max_connections: int) -> type[H11Protocol]:
    """Build uvicorn's h11 protocol with a read timeout of ``read_timeout`` seconds and at most ``max_connections``."""

    class Protocol(_GuardedH11Protocol):
        _read_timeout_seconds = read_timeout
        _max_connections = max_connections

    return Protocol


class _GuardedH11Protocol(H11Protocol):
    """Closes a connection whose client stalls while the server waits for its request, and connections over a cap.

    The read timeout bounds the wait for a request's line and headers (from the connection's start, and from the
    first byte of each next request) and each pause in its body. It does not run while the server, not the
    client, is the one not reading (uvicorn paused reading, or a ``100 Continue`` is owed).
    """

    _read_timeout_seconds = 30.0
    _max_connections = 4096

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(config, server_state, app_state, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._max_connections:
            # Refused at once, so that stalled connections can never take every file descriptor of the server.
            transport.write(_BUSY)
            transport.close()
            return
        self._watch_reads()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_reads()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_read_timer()
        super().connection_lost(exc)

    def _stop_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _watch_reads(self) -> None:
        """Start, keep or stop the read timeout for what the server now waits for from the client.

        A request's line and headers must all arrive within the timeout (bytes that trickle in do not extend it,
        as nginx's ``client_header_timeout``); a body must not pause longer than it (``client_body_timeout``).
        """
        state = self.conn.their_state
        if state is h11.IDLE and self._read_timer is not None:
            return
        self._stop_read_timer()
        if state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self._read_timer = self.loop.call_later(self._read_timeout_seconds, self._on_read_timeout)

    def _on_read_timeout(self) -> None:
        self._read_timer = None
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY) or self.transport.is_closing():
            return
        if self.flow.read_paused or (self.cycle is not None and self.cycle.waiting_for_100_continue):
            self._watch_reads()
            return
        log.debug("closing a connection whose client sent nothing for %g s", self._read_timeout_seconds)
        self.transport.close()


def raise_open_files_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit; return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as error:
            log.warning("could not raise the open files limit from %d to %d: %s", soft, hard, error)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_cap(max_connections: int) -> int:
    """``max_connections``, lowered to leave half of the open files limit to everything else."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    room = max(16, soft // _RESERVED_FDS_SHARE) if soft != resource.RLIM_INFINITY else max_connections
    if room < max_connections:
        log.warning("serving at most %d connections (the open files limit is %d)", room, soft)
    return min(max_connections, room)


class OutOfFilesLogLimit(logging.Filter):
    """Lets one "too many open files" error through per interval (and counts the others).

    An event loop whose listening socket cannot accept (no file descriptor left) logs the error on every turn:
    75 MB of log in 13 s. Once a minute says the same.
    """

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self._last = -interval
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, OSError) or error.errno not in (errno.EMFILE, errno.ENFILE):
            return True
        now = time.monotonic()
        if now - self._last < self.interval:
            self._suppressed += 1
            return False
        if self._suppressed:
            record.msg = f"{record.msg} ({self._suppressed} more like it in the last {self.interval:g} s not logged)"
        self._last, self._suppressed = now, 0
        return True


_LOGGERS_OF_ACCEPT_LOOPS = ("asyncio", "tornado.application", "tornado.general")


def limit_out_of_files_logs() -> None:
    """Install :class:`OutOfFilesLogLimit` on the loggers of the event loops' accept errors (once)."""
    for name in _LOGGERS_OF_ACCEPT_LOOPS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, OutOfFilesLogLimit) for f in logger.filters):
            logger.addFilter(OutOfFilesLogLimit())
