"""Tables that fit (issue 16) against a real server: passthrough columns, null for a missing number, inputs in the
export, and ``to_frame()`` with the same columns in any client."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import batchscore
from batchscore.cli._common import EXIT_USAGE
from batchscore_server import RunningServer
from tests.e2e.conftest import publish, wait_until_finished
from tests.e2e.test_cli import clean_env, run

SERVICE = "tablesSvc"
CODE = "answer = hp + wt if wt == wt else -1.0\n"  # NaN != NaN: a missing wt answers -1


@pytest.fixture(scope="module")
def published(api: httpx.Client) -> str:
    publish(api, SERVICE, CODE)
    return SERVICE


def start(api: httpx.Client, body: Any, passthrough: list[str] | None = None, **kwargs: Any) -> httpx.Response:
    params = [("passthrough", name) for name in passthrough or []]
    return api.post(f"/api/{SERVICE}/v1/batch", params=params, **({"json": body} if body is not None else kwargs))


def finished(api: httpx.Client, response: httpx.Response) -> tuple[str, dict[str, Any]]:
    assert response.status_code == 202, response.text
    execution_id: str = response.json()["batchExecutionId"]
    return execution_id, wait_until_finished(api, SERVICE, execution_id)


def export(api: httpx.Client, execution_id: str, accept: str = "application/x-ndjson", **params: Any) -> str:
    response = api.get(f"/api/{SERVICE}/v1/batch/{execution_id}/results", params=params, headers={"Accept": accept})
    assert response.status_code == 200, response.text
    return response.text


def test_passthrough_values_come_back_in_the_status_and_the_export(api: httpx.Client, published: str) -> None:
    records = [{"hp": 1, "wt": 2, "car": "Mazda", "row": 7}, {"hp": 3, "wt": 4, "car": "Fiat"}]
    execution_id, summary = finished(api, start(api, records, ["car", "row"]))
    assert summary["passthrough"] == ["car", "row"]
    status = api.get(f"/api/{SERVICE}/v1/batch/{execution_id}").json()
    by_index = {item["index"]: item for item in status["batchExecutionResults"]}
    assert by_index[0]["passthrough"] == {"car": "Mazda", "row": 7}
    assert by_index[1]["passthrough"] == {"car": "Fiat"}
    assert by_index[0]["outputParameters"] == {"answer": 3.0}
    lines = [json.loads(line) for line in export(api, execution_id, include="inputs").splitlines()[:-1]]
    assert [(line["passthrough"], line["inputs"]) for line in lines] == [
        ({"car": "Mazda", "row": 7}, {"hp": 1, "wt": 2}),
        ({"car": "Fiat"}, {"hp": 3, "wt": 4}),
    ]
    rows = list(csv.reader(io.StringIO(export(api, execution_id, "text/csv", include="inputs"))))
    fixed = ["itemState", "attempt", "success", "errorMessage", "cursor"]
    assert rows[0] == ["index", "car", "row", "hp", "wt", *fixed, "answer"]
    assert rows[1][:5] == ["0", "Mazda", "7", "1", "2"]
    assert rows[2][:5] == ["1", "Fiat", "", "3", "4"]


def test_a_batch_without_passthrough_answers_as_before(api: httpx.Client, published: str) -> None:
    execution_id, summary = finished(api, start(api, [{"hp": 1, "wt": 2}]))
    assert "passthrough" not in summary
    status = api.get(f"/api/{SERVICE}/v1/batch/{execution_id}").json()
    assert "passthrough" not in status["batchExecutionResults"][0]
    (line, _end) = [json.loads(text) for text in export(api, execution_id).splitlines()]
    assert "passthrough" not in line
    assert "inputs" not in line
    assert export(api, execution_id, "text/csv").splitlines()[0].startswith("index,itemState,")


def test_an_unknown_column_is_still_refused(api: httpx.Client, published: str) -> None:
    response = start(api, [{"hp": 1, "wt": 2, "car": "Mazda", "other": 1}], ["car"])
    assert response.status_code == 400
    assert response.json()["field"] == "body[0].other"


def test_a_csv_body_keeps_passthrough_as_strings(api: httpx.Client, published: str) -> None:
    body = "car,hp,wt\nMazda RX4,110,2.62\n007,93,2.32\n"
    response = start(api, None, ["car"], content=body, headers={"Content-Type": "text/csv"})
    execution_id, _summary = finished(api, response)
    lines = [json.loads(line) for line in export(api, execution_id).splitlines()[:-1]]
    assert [line["passthrough"] for line in lines] == [{"car": "Mazda RX4"}, {"car": "007"}]


@pytest.mark.parametrize("name", ["hp", "answer"])
def test_passthrough_naming_an_input_or_output_is_a_400(api: httpx.Client, published: str, name: str) -> None:
    response = start(api, [{"hp": 1, "wt": 2}], [name])
    assert response.status_code == 400
    assert response.json()["field"] == "passthrough"


def test_more_than_32_passthrough_names_is_a_400(api: httpx.Client, published: str) -> None:
    response = start(api, [{"hp": 1, "wt": 2}], [f"c{i}" for i in range(33)])
    assert response.status_code == 400
    assert response.json()["field"] == "passthrough"


def test_the_idempotency_key_compares_passthrough(api: httpx.Client, published: str) -> None:
    headers = {"Idempotency-Key": "tables-idem-1"}
    first = api.post(
        f"/api/{SERVICE}/v1/batch", params={"passthrough": "car"}, json=[{"hp": 1, "wt": 2}], headers=headers
    )
    assert first.status_code == 202, first.text
    again = api.post(
        f"/api/{SERVICE}/v1/batch", params={"passthrough": "car"}, json=[{"hp": 1, "wt": 2}], headers=headers
    )
    assert again.json()["batchExecutionId"] == first.json()["batchExecutionId"]
    other = api.post(
        f"/api/{SERVICE}/v1/batch", params={"passthrough": "id"}, json=[{"hp": 1, "wt": 2}], headers=headers
    )
    assert other.status_code == 409


def test_null_for_a_numeric_input_runs_as_nan(api: httpx.Client, published: str) -> None:
    execution_id, summary = finished(api, start(api, [{"hp": 1, "wt": None}]))
    assert summary["failedItemCount"] == 0
    status = api.get(f"/api/{SERVICE}/v1/batch/{execution_id}").json()
    assert status["batchExecutionResults"][0]["outputParameters"] == {"answer": -1.0}


def test_include_takes_only_inputs(api: httpx.Client, published: str) -> None:
    execution_id, _summary = finished(api, start(api, [{"hp": 1, "wt": 2}]))
    response = api.get(f"/api/{SERVICE}/v1/batch/{execution_id}/results", params={"include": "outputs"})
    assert response.status_code == 400
    assert response.json()["field"] == "include"


def sdk_client(server: RunningServer) -> batchscore.Client:
    return batchscore.Client(server.url, username="admin", password=server.admin_password, timeout=120)


def test_a_dataframe_with_an_id_column_and_nan_in_any_client(server: RunningServer, published: str) -> None:
    frame = pd.DataFrame({"car": ["Mazda RX4", "Fiat 128"], "hp": [110.0, 66.0], "wt": [2.62, math.nan]})
    with sdk_client(server) as client:
        service = client.get_service(SERVICE, "v1")
        with pytest.raises(batchscore.InvalidRecordError, match=r"use passthrough=\['car'\]"):
            service.batch(frame)
        with pytest.raises(batchscore.InvalidRecordError, match='na="null"'):
            service.batch(frame, passthrough=["car"])
        batch = service.batch(frame, passthrough=["car"], na="null").start()
        batch.wait(progress=False)
        here = batch.to_frame()
    with sdk_client(server) as fresh:  # another process: only the batch id
        there = fresh.get_service(SERVICE, "v1").get_batch(str(batch.id)).to_frame()
    assert list(here.columns) == list(there.columns) == ["hp", "wt", "car", "success", "error_message", "answer"]
    assert there["car"].tolist() == ["Mazda RX4", "Fiat 128"]
    assert there["answer"].tolist() == [112.62, -1.0]  # the NaN ran as NaN
    assert math.isnan(there.loc[1, "wt"]) or there.loc[1, "wt"] is None


def test_cli_passthrough_and_output_to_stdout(server: RunningServer, published: str, tmp_path: Path) -> None:
    records = tmp_path / "cars.csv"
    records.write_text("car,hp,wt\nMazda RX4,110,2.62\nFiat 128,66,\n")
    env = clean_env(tmp_path, BATCHSCORE_URL=server.url)
    run(env, "login", "--url", server.url, "--username", "admin", "--password", server.admin_password)
    start = ("batch", "start", SERVICE, "v1", "--input", str(records), "--wait")
    refused = run(env, *start, expect=EXIT_USAGE)
    assert "passthrough=['car']" in refused.stderr
    done = run(env, *start, "--passthrough", "car", "--na", "null", "--output", "-")
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(row["car"], row["answer"]) for row in rows] == [("Mazda RX4", "112.62"), ("Fiat 128", "-1.0")]
    execution_id = done.stderr.split()[0]
    again = run(env, "batch", "results", execution_id, "--output", "-", "--output-format", "ndjson")
    lines = [json.loads(line) for line in again.stdout.splitlines() if line]
    assert [line["car"] for line in lines] == ["Mazda RX4", "Fiat 128"]
    assert lines[0]["hp"] == 110.0
