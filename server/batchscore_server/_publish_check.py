"""A publish (or a PATCH of code, initCode or snapshot) starts the service once before it is stored.

A service whose snapshot needs a module the server lacks, or whose ``initCode`` raises, used to be stored and then
fail every consume with the reason only in the result's ``errorMessage``. The check loads the snapshot's objects
and runs ``initCode`` in the warm consume pool (off the event loop, with a consume's time limit and its handling of
a stuck process) and refuses the request with a 422 that quotes the error.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Mapping
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from pebble import ProcessExpired

from batchscore_server._errors import ApiError
from batchscore_server._state import Server

# The fields whose change makes a service start differently: a PATCH changing none of them is not checked.
CHECKED_FIELDS = ("code", "initCode", "snapshotId")


def _spec(definition: Mapping[str, Any], snapshot_dir: Path | None) -> dict[str, Any]:
    """The worker's spec for ``definition`` (the form ``_worker.spec_from_dict`` reads); its key is never cached."""
    return {
        "key": f"publish-check-{uuid.uuid4().hex}",
        "code": definition["code"],
        "initCode": definition.get("initCode", ""),
        "inputs": [(d["name"], d["type"]) for d in definition.get("inputParameterDefinitions", [])],
        "outputs": [(d["name"], d["type"]) for d in definition.get("outputParameterDefinitions", [])],
        "outputFileNames": definition.get("outputFileNames", []),
        "snapshotDir": str(snapshot_dir) if snapshot_dir is not None and snapshot_dir.exists() else None,
    }


async def check_starts(
    server: Server, definition: Mapping[str, Any], snapshot_dir: Path | None, client_gone: Awaitable[object]
) -> None:
    """Load the snapshot's objects and run ``initCode`` of ``definition`` in the consume pool.

    The time limit is the one its consumes will have (its ``consumeTimeout``, else the server's consume timeout):
    an ``initCode`` slower than that would time out the first consume anyway.

    Raises:
        ApiError: 422 naming ``snapshotId`` or ``initCode`` with the error the first record would have failed
            with (also for a check that timed out or whose process died); 503 when the server is stopping or the
            client went away (nobody reads that answer).

    """
    if server.stopping:
        raise ApiError(503, "the server is shutting down", None)
    service_timeout = definition.get("consumeTimeout")
    timeout = float(service_timeout or server.settings.consume_timeout_seconds)
    future = await server.check_service(_spec(definition, snapshot_dir), timeout, client_gone)
    if future.cancelled():
        why = "the server is shutting down" if server.stopping else "the client disconnected"
        raise ApiError(503, f"the service check was stopped: {why}", None)
    error = future.exception()
    if isinstance(error, TimeoutError):
        limit = "consumeTimeout" if service_timeout else "the server's consume timeout"
        raise ApiError(
            422,
            f"the service did not start within {limit} ({timeout:g} s): loading its snapshot and running initCode "
            "took longer; its process was killed",
            "initCode",
        )
    if isinstance(error, ProcessExpired | BrokenProcessPool):
        raise ApiError(
            422,
            "the worker process starting the service died (crashed, was killed, or ran out of memory) while it "
            "loaded the snapshot or ran initCode",
            "initCode",
        )
    if error is not None:
        raise error
    failure: tuple[str, str] | None = future.result()
    if failure is not None:
        field, message = failure
        raise ApiError(422, f"the service cannot start: {message}", field)
