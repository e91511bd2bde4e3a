"""The pieces that hold off slow and numerous clients, and the consume pool's process set-up, in isolation."""

from __future__ import annotations

import errno
import logging
import resource

import pytest

from batchscore_server import _http


def out_of_files_record() -> logging.LogRecord:
    error = OSError(errno.EMFILE, "Too many open files")
    exc_info = (OSError, error, None)
    return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "Exception in callback", None, exc_info)


def test_too_many_open_files_is_logged_once_an_interval() -> None:
    limit = _http.OutOfFilesLogLimit(interval=3600)
    passed = [limit.filter(out_of_files_record()) for _ in range(1000)]
    assert passed.count(True) == 1
    other = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "something else", None, None)
    assert limit.filter(other)


def test_the_next_interval_reports_how_many_were_not_logged() -> None:
    limit = _http.OutOfFilesLogLimit(interval=0)
    limit.filter(out_of_files_record())
    limit.interval = 3600
    for _ in range(5):
        limit.filter(out_of_files_record())
    limit.interval = 0
    record = out_of_files_record()
    assert limit.filter(record)
    assert "5 more like it" in record.getMessage()


def test_the_filter_is_installed_once_on_the_accept_loops_loggers() -> None:
    _http.limit_out_of_files_logs()
    _http.limit_out_of_files_logs()
    for name in ("asyncio", "tornado.application"):
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, _http.OutOfFilesLogLimit) for f in filters) == 1


def test_the_connection_cap_leaves_half_the_open_files_to_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _kind: (1024, 4096))
    assert _http.connection_cap(5000) == 512
    assert _http.connection_cap(100) == 100


def test_the_open_files_limit_is_raised_to_the_hard_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda _kind: (1024, 4096))
    monkeypatch.setattr(resource, "setrlimit", lambda _kind, limits: calls.append(limits))
    assert _http.raise_open_files_limit() == 4096
    assert calls == [(4096, 4096)]
