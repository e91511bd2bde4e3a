"""The streamed results export against a real server: NDJSON and CSV, both orders, since, the SDK twins, the CLI,
who may read it, and an expired batch."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

import batchscore
from batchscore_server import Role, RunningServer, _db, add_user
from tests.e2e.conftest import login, publish, wait_until_finished
from tests.e2e.test_cli import clean_env, run, run_json

SERVICE = "exportSvc"
CODE = "if hp == 2:\n    raise ValueError('two\\n#end not the trailer, \"q\"')\nanswer = hp + wt\n"
ROWS = 7


@pytest.fixture(scope="module")
def execution(api: httpx.Client) -> str:
    publish(api, SERVICE, CODE)
    started = api.post(f"/api/{SERVICE}/v1/batch", json=[{"hp": i, "wt": 0.5} for i in range(ROWS)])
    assert started.status_code == 202, started.text
    execution_id: str = started.json()["batchExecutionId"]
    wait_until_finished(api, SERVICE, execution_id)
    return execution_id


def export(api: httpx.Client, execution_id: str, accept: str | None = None, **params: str) -> httpx.Response:
    headers = {} if accept is None else {"Accept": accept}
    return api.get(f"/api/{SERVICE}/v1/batch/{execution_id}/results", params=params, headers=headers)


def ndjson(response: httpx.Response) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    lines = [json.loads(line) for line in response.text.splitlines()]
    return lines[:-1], lines[-1]


def test_ndjson_in_input_order_ends_with_the_counts(api: httpx.Client, execution: str) -> None:
    response = export(api, execution)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    records, end = ndjson(response)
    assert [r["index"] for r in records] == list(range(ROWS))
    assert [r["cursor"] for r in records] == [str(i + 1) for i in range(ROWS)]
    assert records[3]["outputParameters"] == {"answer": 3.5}
    assert records[2]["itemState"] == "failed"
    assert end == {
        "end": True,
        "records": ROWS,
        "cursor": str(ROWS),
        "state": "complete",
        "totalItemCount": ROWS,
        "completedItemCount": ROWS,
        "failedItemCount": 1,
        "canceledItemCount": 0,
    }


def test_since_resumes_in_both_orders(api: httpx.Client, execution: str) -> None:
    records, end = ndjson(export(api, execution, since="4"))
    assert [r["index"] for r in records] == [4, 5, 6]
    assert end["records"] == 3
    by_completion, last = ndjson(export(api, execution, "*/*", order="completion"))
    assert sorted(r["index"] for r in by_completion) == list(range(ROWS))
    seqs = [int(r["cursor"]) for r in by_completion]
    assert seqs == sorted(seqs)
    rest, _ = ndjson(export(api, execution, order="completion", since=str(seqs[2])))
    assert [r["index"] for r in rest] == [r["index"] for r in by_completion[3:]]
    after_all, nothing = ndjson(export(api, execution, order="completion", since=last["cursor"]))
    assert after_all == []
    assert nothing["records"] == 0


def test_csv_has_the_header_rows_and_trailer(api: httpx.Client, execution: str) -> None:
    response = export(api, execution, "text/csv;q=0.9, application/x-ndjson;q=0.1")
    assert response.headers["content-type"].startswith("text/csv")
    body, _, trailer = response.text.rstrip("\n").rpartition("\n")
    assert trailer.startswith("#end ")
    assert json.loads(trailer[5:])["records"] == ROWS
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["index", "itemState", "attempt", "success", "errorMessage", "cursor", "answer"]
    assert rows[4] == ["3", "complete", "1", "true", "", "4", "3.5"]
    assert rows[3][3] == "false"
    assert "#end not the trailer" in rows[3][4]


@pytest.mark.parametrize(
    ("params", "accept", "status", "field"),
    [
        ({"order": "random"}, None, 400, "order"),
        ({"since": "-1"}, None, 400, "since"),
        ({}, "application/json", 406, "Accept"),
    ],
)
def test_bad_requests_name_the_field(
    api: httpx.Client, execution: str, params: dict[str, str], accept: str | None, status: int, field: str
) -> None:
    response = export(api, execution, accept, **params)
    assert response.status_code == status
    assert response.json()["field"] == field


def test_another_user_gets_404_and_an_owner_200(server: RunningServer, execution: str) -> None:
    add_user(
        server.settings.data_dir, "export_other", "pw-export-other", Role.CONTRIBUTOR, server.settings.database_url
    )
    token = login(server, "export_other", "pw-export-other")["access_token"]
    url = f"{server.url}/api/{SERVICE}/v1/batch/{execution}/results"
    assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=120).status_code == 404
    admin = login(server)["access_token"]
    assert httpx.get(url, headers={"Authorization": f"Bearer {admin}"}, timeout=120).status_code == 200


def test_sdk_sync_and_async(server: RunningServer, execution: str, tmp_path: Path) -> None:
    with batchscore.Client(server.url, username="admin", password=server.admin_password, timeout=120) as client:
        batch = client.get_service(SERVICE, "v1").get_batch(execution)
        status = batch.export(tmp_path / "r.csv", format="csv", order="completion")
        assert status.completed_item_count == ROWS
        assert len(list(csv.reader(io.StringIO((tmp_path / "r.csv").read_text())))) == ROWS + 1
        assert sorted(r.index for r in batch.iter_results()) == list(range(ROWS))
        frame = batch.to_frame()
        assert list(frame.index) == list(range(ROWS))
        assert frame.loc[3, "answer"] == 3.5

    async def run_async() -> list[int]:
        async with batchscore.AsyncClient(server.url, username="admin", password=server.admin_password) as client:
            batch = (await client.get_service(SERVICE, "v1")).get_batch(execution)
            await batch.export(tmp_path / "r.ndjson")
            return [result.index async for result in batch.iter_results()]

    assert sorted(asyncio.run(run_async())) == list(range(ROWS))
    assert len((tmp_path / "r.ndjson").read_text().splitlines()) == ROWS


def test_cli_batch_results_reads_the_export(server: RunningServer, execution: str, tmp_path: Path) -> None:
    base = clean_env(tmp_path)
    run(base, "login", "--url", server.url, "--username", "admin", "--password", server.admin_password)
    env = clean_env(tmp_path, BATCHSCORE_URL=server.url)
    results = run_json(env, "batch", "results", execution, "--service", SERVICE, "--version", "v1", expect=1)
    assert [r["index"] for r in results["results"]] == list(range(ROWS))


def test_an_expired_batch_answers_410(server: RunningServer, api: httpx.Client, execution: str) -> None:
    started = api.post(f"/api/{SERVICE}/v1/batch", json=[{"hp": 1, "wt": 1}])
    expired_id = started.json()["batchExecutionId"]
    wait_until_finished(api, SERVICE, expired_id)
    engine = _db.create_engine(server.settings.database_url or server.settings.database_path)
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(_db.batches).where(_db.batches.c.id == expired_id).values(expired=True))
    finally:
        engine.dispose()
    response = export(api, expired_id)
    assert response.status_code == 410
    assert response.json()["field"] == "executionId"
    with batchscore.Client(server.url, username="admin", password=server.admin_password, timeout=120) as client:
        batch = client.get_service(SERVICE, "v1").get_batch(expired_id)
        with pytest.raises(batchscore.ExpiredError):
            batch.export(io.StringIO())
