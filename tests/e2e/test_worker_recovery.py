"""A nanny that closed itself is replaced at once by the engine's watchdog, not after lost-worker-timeout.

Dask's LocalCluster keeps a closed nanny in its ``workers`` until ``distributed.deploy.lost-worker-timeout`` (120 s
here) has passed since its worker left, and ``scale`` starts no replacement for a nanny it still holds: before the
fix, the cluster stayed a worker short for over two minutes (the CI failure of
``test_a_row_over_item_timeout_fails_and_is_not_rerun[gil]`` after two timeout kills in a row).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import httpx
import pytest
from distributed import Client as DaskClient

from tests.e2e.conftest import publish, wait_until_finished

# Below the 120 s lost-worker-timeout, which the cluster without the fix cannot beat; generous for a replacement
# worker's start on a busy 2-core machine (about 50 s measured at worst).
RECOVERY_SECONDS = 100.0
# A preload given as script text: the worker process runs it before it registers, so its start fails.
FAILING_PRELOAD = "raise RuntimeError('test: this worker cannot start')"


def fail_the_restart(dask_worker: Any) -> None:
    """Run in a nanny: kill its worker, so that the replacement it starts fails (the nanny then closes itself)."""
    kwargs = dask_worker.process.worker_kwargs
    kwargs["preload"] = [*kwargs["preload"], FAILING_PRELOAD]
    os.kill(dask_worker.pid, signal.SIGKILL)


async def close_the_nanny(dask_worker: Any) -> None:
    """Run in a nanny (``wait=False``: closing, it could not answer the call): close it and its worker."""
    await dask_worker.close(reason="test: the nanny closes itself")


def workers_now(api: httpx.Client) -> int:
    return int(api.get("/status").json()["components"]["cluster"]["details"]["workers"])


def wait_for_workers(api: httpx.Client, count: int, deadline: float, what: str) -> None:
    while workers_now(api) != count:
        assert time.monotonic() < deadline, f"{what}: the cluster has {workers_now(api)} workers, not {count}"
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("fault", "service"), [("its replacement worker fails to start", "restartfails"), ("it closes itself", "closes")]
)
def test_a_closed_nanny_is_replaced_at_once(own_api: httpx.Client, fault: str, service: str) -> None:
    publish(own_api, service, "answer = hp + wt\n")
    wait_for_workers(own_api, 2, time.monotonic() + RECOVERY_SECONDS, "before the fault")
    address = own_api.get("/status").json()["components"]["cluster"]["details"]["scheduler"]
    with DaskClient(address, timeout=60) as dask:
        victim = sorted(dask.nthreads())[0]
        started = time.monotonic()
        if fault == "it closes itself":
            dask.run(close_the_nanny, workers=[victim], nanny=True, wait=False)
        else:
            dask.run(fail_the_restart, workers=[victim], nanny=True)
        # Its worker leaves the scheduler before (or while) the nanny closes; a replacement has a new address.
        while victim in dask.nthreads():
            assert time.monotonic() < started + RECOVERY_SECONDS, "the worker did not leave"
            time.sleep(0.1)
    deadline = started + RECOVERY_SECONDS
    wait_for_workers(own_api, 2, deadline, f"a nanny that closed because {fault} was not replaced in time")
    print(f"{fault}: 2 workers again after {time.monotonic() - started:.1f} s")
    records = [{"hp": 1.0, "wt": float(i)} for i in range(8)]
    batch = own_api.post(f"/api/{service}/v1/batch", params={"parallelCount": 2}, json=records)
    final = wait_until_finished(own_api, service, batch.json()["batchExecutionId"], timeout=RECOVERY_SECONDS)
    assert (final["state"], final["completedItemCount"]) == ("complete", 8), final
