"""Re-publishing against a real server: readable versions, --replace, services update, consume of the latest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import batchscore
from batchscore_server import RunningServer
from tests.e2e.test_cli import NUMERIC, clean_env, run, run_json

CODE_V1 = """
def score(hp, wt):
    return hp + wt
"""
CODE_V2 = """
def score(hp, wt):
    return hp * 100
"""


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[batchscore.Client]:
    with batchscore.Client(server.url, username="admin", password=server.admin_password) as made:
        yield made


@pytest.fixture(scope="module")
def env(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    config = tmp_path_factory.mktemp("republish-config")
    run(clean_env(config), "login", "--url", server.url, "--username", "admin", "--password", server.admin_password)
    return clean_env(config, BATCHSCORE_URL=server.url)


def test_cli_publishes_v1_v2_replaces_and_consumes_the_latest(env: dict[str, str], tmp_path: Path) -> None:
    first, second = tmp_path / "first.py", tmp_path / "second.py"
    first.write_text(CODE_V1, encoding="utf-8")
    second.write_text(CODE_V2, encoding="utf-8")
    assert run_json(env, "publish", f"{first}:score", "--name", "rpCli", *NUMERIC)["version"] == "v1"
    assert run_json(env, "publish", f"{first}:score", "--name", "rpCli", *NUMERIC)["version"] == "v2"
    latest = run_json(env, "consume", "rpCli", "hp=2", "wt=3")
    assert (latest["version"], latest["outputs"]) == ("v2", {"answer": 5.0})

    refused = run(env, "publish", f"{second}:score", "--name", "rpCli", "--version", "v1", *NUMERIC, expect=5)
    assert "exists already" in refused.stderr
    run(env, "publish", f"{second}:score", "--name", "rpCli", "--version", "v1", "--replace", *NUMERIC)
    assert run_json(env, "consume", "rpCli", "v1", "hp=2", "wt=3")["outputs"] == {"answer": 200.0}
    assert run_json(env, "consume", "rpCli", "v2", "hp=2", "wt=3")["outputs"] == {"answer": 5.0}

    run(env, "services", "update", "rpCli", "v2", f"{second}:score", "--description", "times a hundred")
    assert run_json(env, "consume", "rpCli", "hp=2", "wt=3")["outputs"] == {"answer": 200.0}
    assert run_json(env, "services", "get", "rpCli", "v2")["description"] == "times a hundred"
    assert [s["version"] for s in run_json(env, "services", "list", "rpCli")] == ["v1", "v2"]
    usage = run(env, "publish", f"{second}:score", "--name", "rpCli", "--replace", *NUMERIC, expect=2)
    assert "--replace needs --version" in usage.stderr


def test_cli_batch_start_says_when_parallel_is_capped(env: dict[str, str], tmp_path: Path) -> None:
    code = tmp_path / "code.py"
    code.write_text(CODE_V1, encoding="utf-8")
    run(env, "publish", f"{code}:score", "--name", "rpCapped", *NUMERIC)
    records = tmp_path / "records.csv"
    records.write_text("hp,wt\n1,2\n", encoding="utf-8")
    capped = run(env, "batch", "start", "rpCapped", "v1", "--input", str(records), "--parallel", "10000", "--wait")
    assert "warning: the server capped parallelCount at 100 (asked 10000)" in capped.stderr
    plain = run(env, "batch", "start", "rpCapped", "v1", "--input", str(records), "--parallel", "20", "--wait")
    assert "capped" not in plain.stderr


def test_a_running_batch_keeps_the_code_it_started_with(client: batchscore.Client, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    # The old code's rows wait for the gate, opened only after the replace: they run while the version changes.
    old = f"""
def score(hp, wt):
    import os, time
    deadline = time.monotonic() + 120
    while not os.path.exists({str(gate)!r}) and time.monotonic() < deadline:
        time.sleep(0.02)
    return hp + wt

answer = score(hp, wt)
"""
    service = client.publish_service("rpInFlight", old, inputs={"hp": float, "wt": float}, outputs={"answer": float})
    assert service.version == "v1"
    batch = service.batch([{"hp": float(i), "wt": 1.0} for i in range(6)], parallel_count=2).start()
    replaced = client.publish_service(
        "rpInFlight",
        "answer = hp * 100",
        version="v1",
        replace=True,
        inputs={"hp": float, "wt": float},
        outputs={"answer": float},
    )
    gate.touch()
    assert replaced.consume(hp=2.0, wt=1.0).output("answer") == 200.0
    finished = batch.wait(progress=False)
    assert [r.output("answer") for r in finished.results] == [i + 1.0 for i in range(6)]
    assert client.get_service("rpInFlight").version == "v1"


def test_a_capped_parallel_count_warns(client: batchscore.Client, server: RunningServer) -> None:
    service = client.publish_service("rpParallel", "answer = hp", inputs={"hp": float}, outputs={"answer": float})
    with pytest.warns(UserWarning, match="capped parallelCount"):
        batch = service.batch([{"hp": 1.0}], parallel_count=10_000).start()
    batch.wait(progress=False)
