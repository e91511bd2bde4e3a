"""``GET /batches`` against a real server: who sees what, the filters, keyset pages and a tampered cursor; the same
through the sync and async SDK (``client.list_batches``) and the CLI (``batchscore batch list``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import batchscore
from batchscore_server import Role, RunningServer, add_user
from tests.e2e.conftest import NUMERIC_IO, login, wait_until_finished

SERVICE, OTHER = "blist_svc", "blist_other"
USERS = ("bl_alice", "bl_bob")
# A row sleeps wt seconds: the slow batch stays in progress while the tests run (it is canceled at the end).
CODE = "import time\ntime.sleep(wt)\nanswer = hp + wt\n"


@dataclass
class World:
    server: RunningServer
    clients: dict[str, httpx.Client]
    alice: list[str]  # Alice's batches, oldest first: 3 on SERVICE (2 labelled team=risk), 1 on OTHER, 1 slow
    bob: list[str]
    slow: str


def _start(client: httpx.Client, service: str, labels: dict[str, str] | None = None, wt: float = 0.0) -> str:
    params = [("label", f"{key}={value}") for key, value in (labels or {}).items()]
    rows = [{"hp": 1, "wt": wt}] * (100 if wt else 2)
    response = client.post(f"/api/{service}/v1/batch", json=rows, params=[*params, ("parallelCount", "1")])
    assert response.status_code == 202, response.text
    return str(response.json()["batchExecutionId"])


@pytest.fixture(scope="module")
def world(server: RunningServer, api: httpx.Client) -> Iterator[World]:
    for service in (SERVICE, OTHER):
        body = {"code": CODE, "runtimeType": "Python", **NUMERIC_IO}
        assert api.post(f"/services/{service}/v1", json=body).status_code == 201
    clients = {"admin": api}
    for user in USERS:
        add_user(server.settings.data_dir, user, f"pw-{user}", Role.CONTRIBUTOR, server.settings.database_url)
        token = login(server, user, f"pw-{user}")["access_token"]
        clients[user] = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    alice, bob = clients["bl_alice"], clients["bl_bob"]
    try:
        mine = [
            _start(alice, SERVICE, {"team": "risk", "run": "a=b"}),
            _start(alice, SERVICE),
            _start(alice, SERVICE, {"team": "risk"}),
            _start(alice, OTHER, {"team": "ops"}),
        ]
        theirs = [_start(bob, SERVICE, {"team": "risk"})]
        for execution_id in mine:
            wait_until_finished(alice, SERVICE if execution_id != mine[3] else OTHER, execution_id)
        wait_until_finished(bob, SERVICE, theirs[0])
        slow = _start(alice, SERVICE, wt=2.0)
        yield World(server, clients, [*mine, slow], theirs, slow)
        alice.post(f"/api/{SERVICE}/v1/batch/{slow}/cancel")
    finally:
        for user in USERS:
            clients[user].close()


def _ids(client: httpx.Client, **params: object) -> list[str]:
    response = client.get("/batches", params=params)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    return [summary["batchExecutionId"] for summary in response.json()["batches"]]


def test_a_user_sees_their_own_newest_first_and_an_owner_sees_all(world: World) -> None:
    assert _ids(world.clients["bl_alice"]) == world.alice[::-1]
    assert _ids(world.clients["bl_bob"]) == world.bob
    everyone = _ids(world.clients["admin"], limit=1000)
    assert set(world.alice) | set(world.bob) <= set(everyone)
    assert everyone.index(world.slow) < everyone.index(world.bob[0]) < everyone.index(world.alice[3])


def test_the_owner_filter_narrows_an_owners_list_and_never_widens_a_users(world: World) -> None:
    assert _ids(world.clients["admin"], owner="bl_bob") == world.bob
    assert _ids(world.clients["bl_alice"], owner="bl_bob") == []
    assert _ids(world.clients["bl_alice"], owner="bl_alice") == world.alice[::-1]


def test_filters_by_state_service_version_and_labels(world: World) -> None:
    alice = world.clients["bl_alice"]
    a1, a2, a3, a4, slow = world.alice
    assert _ids(alice, state="inProgress") == [slow]
    assert _ids(alice, state="COMPLETE") == [a4, a3, a2, a1]  # states compare case-insensitively
    assert _ids(alice, service=OTHER) == [a4]
    assert _ids(alice, service=SERVICE, version="v1") == [slow, a3, a2, a1]
    assert _ids(alice, service=SERVICE, version="v2") == []
    assert _ids(alice, label="team=risk") == [a3, a1]
    assert _ids(alice, label=["team=risk", "run=a=b"]) == [a1]  # labels combine with AND; a value may hold =
    assert _ids(alice, label="team=") == []
    assert _ids(world.clients["admin"], label="team=risk", owner="bl_bob") == world.bob


def test_each_item_is_the_summary_the_status_gives(world: World) -> None:
    alice = world.clients["bl_alice"]
    a1 = world.alice[0]
    [listed] = alice.get("/batches", params={"label": ["team=risk", "run=a=b"]}).json()["batches"]
    status = alice.get(f"/api/{SERVICE}/v1/batch/{a1}", params={"showPartialResults": "false"}).json()
    status.pop("batchExecutionResults")
    status.pop("cursor")
    status.pop("hasMore")
    assert listed == status
    assert listed["labels"] == {"team": "risk", "run": "a=b"}
    assert (listed["name"], listed["version"], listed["createdBy"]) == (SERVICE, "v1", "bl_alice")


def test_the_running_batch_reports_its_running_rows(world: World) -> None:
    # The list's runningItemCount is the live one the status computes (a row of the slow batch runs now).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        [summary] = world.clients["bl_alice"].get("/batches", params={"state": "inProgress"}).json()["batches"]
        if summary["runningItemCount"] > 0:
            break
        time.sleep(0.2)
    assert summary["runningItemCount"] == 1  # parallelCount 1


def test_pages_follow_the_cursor_without_gaps_or_repeats(world: World) -> None:
    alice = world.clients["bl_alice"]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = alice.get("/batches", params=params).json()  # type: ignore[arg-type]
        pages += 1
        assert len(body["batches"]) <= 2
        seen.extend(summary["batchExecutionId"] for summary in body["batches"])
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == world.alice[::-1]


def test_a_tampered_cursor_is_refused(world: World) -> None:
    alice = world.clients["bl_alice"]
    cursor = alice.get("/batches", params={"limit": 1}).json()["nextCursor"]
    assert isinstance(cursor, str)
    tampered = cursor[:10] + ("A" if cursor[10] != "A" else "B") + cursor[11:]
    response = alice.get("/batches", params={"limit": 1, "cursor": tampered})
    assert response.status_code == 400
    assert response.json()["field"] == "cursor"


# --- the SDK, sync and async ------------------------------------------------------------------------------------


def test_the_sdk_lists_lazily_by_pages(world: World) -> None:
    with batchscore.Client(world.server.url, username="bl_alice", password="pw-bl_alice") as client:
        listed = list(client.list_batches(page_size=2))
        assert [s.execution_id for s in listed] == world.alice[::-1]
        assert [s.execution_id for s in client.list_batches(labels={"team": "risk"})] == world.alice[2::-2]
        assert [s.execution_id for s in client.list_batches(state="inProgress")] == [world.slow]
        assert [s.execution_id for s in client.list_batches(limit=3, page_size=2)] == world.alice[:1:-1]
        batch = client.get_batch(listed[-1])
        assert batch.results(show_partial_results=False).state is batchscore.BatchState.COMPLETE


def test_the_async_sdk_lists_the_same(world: World) -> None:
    async def listed() -> tuple[list[str], list[str], str]:
        async with batchscore.AsyncClient(
            world.server.url, username="admin", password=world.server.admin_password
        ) as client:
            bob = [s.execution_id async for s in client.list_batches(owner="bl_bob")]
            alice = [s.execution_id async for s in client.list_batches(owner="bl_alice", service=OTHER, page_size=1)]
            summary = [s async for s in client.list_batches(owner="bl_alice", limit=1)].pop()
            batch = await client.get_batch(summary)
            return bob, alice, str(batch.id)

    bob, alice, handle = asyncio.run(listed())
    assert bob == world.bob
    assert alice == [world.alice[3]]
    assert handle == world.slow


def test_the_sdk_raises_the_servers_400_naming_the_field(world: World) -> None:
    client = batchscore.Client(world.server.url, username="bl_bob", password="pw-bl_bob")
    with client, pytest.raises(batchscore.BadRequestError) as refused:
        list(client.list_batches(service="x y"))
    assert refused.value.field == "service"


# --- the CLI ----------------------------------------------------------------------------------------------------


def _cli(world: World, config: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    env = {"BATCHSCORE_CONFIG_DIR": str(config), "PATH": "/usr/bin:/bin", "COLUMNS": "250"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from batchscore.cli import main; main()",
            "batch",
            "list",
            "--url",
            world.server.url,
            "--username",
            "bl_alice",
            "--password",
            "pw-bl_alice",
            *args,
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == expect, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done


def test_the_cli_lists_as_json_and_as_a_table(world: World, tmp_path: Path) -> None:
    listed = json.loads(_cli(world, tmp_path, "--json", "--label", "team=risk").stdout)
    assert [item["execution_id"] for item in listed] == world.alice[2::-2]
    assert listed[0]["name"] == SERVICE
    assert listed[0]["labels"] == {"team": "risk"}
    assert "rows_per_second" in listed[0]

    two = json.loads(_cli(world, tmp_path, "--json", "--limit", "2").stdout)
    assert [item["execution_id"] for item in two] == world.alice[:2:-1]

    table = _cli(world, tmp_path, "--state", "inProgress").stdout
    assert world.slow in table
    assert world.alice[0] not in table
    assert f"{SERVICE} v1" in table


def test_the_cli_refuses_a_label_without_equals(world: World, tmp_path: Path) -> None:
    done = _cli(world, tmp_path, "--label", "team", expect=2)
    assert "KEY=VALUE" in done.stderr
    done = _cli(world, tmp_path, "--state", "running", expect=2)
    assert "unknown batch state" in done.stderr
