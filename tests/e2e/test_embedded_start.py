"""running_server's start: a timeout and a failed stage are reported by stage, after a clean teardown."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import dask
import pytest

from batchscore_server import START_TIMEOUT_ENV, SetupError, running_server

# A start given far too little time: it must say which stage it was in, stop what it started, and let the
# interpreter exit normally (it failed with "cannot schedule new futures after interpreter shutdown" before).
GIVES_UP_EARLY = """
from batchscore_server import SetupError, running_server

if __name__ == "__main__":
    try:
        with running_server(workers=1, start_timeout=0.01):
            raise SystemExit("the server started in 10 ms")
    except SetupError as error:
        print(f"SetupError: {error}")
"""


def test_a_start_that_times_out_names_its_stage_and_exits_cleanly() -> None:
    result = subprocess.run([sys.executable, "-c", GIVES_UP_EARLY], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "did not start within 0.01 s" in result.stdout
    assert re.search(r"the (database|Dask cluster|consume pool|HTTP) stage did not finish", result.stdout)
    assert START_TIMEOUT_ENV in result.stdout
    assert "cannot schedule new futures" not in result.stderr


def test_a_failed_stage_is_named_with_its_error() -> None:
    # Bound and never listening, for the whole test: connections to it are refused, and no one else can take it.
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        scheduler = f"tcp://127.0.0.1:{refusing.getsockname()[1]}"
        with (
            dask.config.set({"distributed.comm.timeouts.connect": "2s"}),
            pytest.raises(SetupError, match=r"the Dask cluster stage failed: OSError") as raised,
            running_server(workers=1, scheduler=scheduler),
        ):
            pytest.fail("the server started without its scheduler")
    assert isinstance(raised.value.__cause__, OSError)


def test_the_start_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(START_TIMEOUT_ENV, "soon")
    with pytest.raises(SetupError, match=START_TIMEOUT_ENV), running_server(workers=1):
        pytest.fail("started with a timeout of 'soon'")
