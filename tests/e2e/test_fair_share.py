"""Fair share: a small batch of one user, started while another user's large batch runs, is not queued behind it.

User A's batch has slow rows (20 ms each, 3,000 rows: about 30 s of work on the 2 workers); user B's has 100
fast ones, each a task of its own (B sets an itemTimeout), so each of B's rows needs a free worker thread.
Without fair share, each of B's tasks waited in Dask's queue behind one of A's chunks (of up to several seconds
each): B finished after A (seen: 33 s after its start, A complete). With it, B gets a thread as soon as one of A's
chunks (sized to last about half a second) ends, and keeps one: it finished 4 s after its start, with 172 of A's
rows done. No time is asserted: only the order in which the two batches end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from batchscore_server import Role, RunningServer, add_user
from tests.e2e.conftest import FINAL_STATES, NUMERIC_IO, login

SLOW = "import time\ntime.sleep(0.02)\nanswer = hp + wt\n"
FAST = "answer = hp + wt\n"
A_ROWS = 3_000
B_ROWS = 100


@pytest.fixture(scope="module")
def users(server: RunningServer) -> Iterator[dict[str, httpx.Client]]:
    made = {}
    for name in ("fairA", "fairB"):
        add_user(server.settings.data_dir, name, f"pw-{name}", Role.CONTRIBUTOR, server.settings.database_url)
        token = login(server, name, f"pw-{name}")["access_token"]
        made[name] = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    yield made
    for client in made.values():
        client.close()


def _publish(client: httpx.Client, name: str, code: str) -> None:
    body = {"code": code, "runtimeType": "Python", **NUMERIC_IO}
    response = client.post(f"/services/{name}/v1", json=body)
    assert response.status_code == 201, response.text


def _status(client: httpx.Client, name: str, execution_id: str) -> dict[str, object]:
    body: dict[str, object] = client.get(f"/api/{name}/v1/batch/{execution_id}", params={"limit": 1}).json()
    return body


def test_a_small_batch_started_after_a_large_one_of_another_user_finishes_first(
    users: dict[str, httpx.Client],
) -> None:
    a, b = users["fairA"], users["fairB"]
    _publish(a, "fairSlow", SLOW)
    _publish(b, "fairFast", FAST)
    big = a.post(
        "/api/fairSlow/v1/batch", params={"parallelCount": 2}, json=[{"hp": float(i), "wt": 1.0} for i in range(A_ROWS)]
    ).json()["batchExecutionId"]
    try:
        # A's first chunks have run (its rate is known, its chunks are sized by it) before B starts.
        deadline = time.monotonic() + 240
        while int(_status(a, "fairSlow", big)["completedItemCount"]) < 50:  # type: ignore[call-overload]
            assert time.monotonic() < deadline, "A's batch did not start"
            time.sleep(0.05)
        small = b.post(
            "/api/fairFast/v1/batch",
            # With an itemTimeout each row is a task of its own: every one of B's rows needs a free worker thread.
            params={"parallelCount": 2, "itemTimeout": 120},
            json=[{"hp": float(i), "wt": 1.0} for i in range(B_ROWS)],
        ).json()["batchExecutionId"]
        while (small_status := _status(b, "fairFast", small))["state"] not in FINAL_STATES:
            assert time.monotonic() < deadline, f"B's batch did not finish: {small_status}"
            time.sleep(0.05)
        big_status = _status(a, "fairSlow", big)
        assert small_status["state"] == "complete", small_status
        assert small_status["completedItemCount"] == B_ROWS
        # The order of the ends: B's small batch ended while A's large one still had rows to run.
        assert big_status["state"] == "inProgress", big_status
        assert int(big_status["completedItemCount"]) < A_ROWS  # type: ignore[call-overload]
    finally:
        a.post(f"/api/fairSlow/v1/batch/{big}/cancel")
