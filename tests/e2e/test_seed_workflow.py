"""The seed's workflow against a real server with real Dask workers: publish, consume, batch, poll, artifacts."""

from __future__ import annotations

import base64
import time

import httpx
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from batchscore_client import AuthenticatedClient
from batchscore_client.api.batch import get_batch_execution_status
from batchscore_client.models import BatchState, BatchWebServiceResult
from tests.e2e.conftest import MTCARS, SEED_CODE, SEED_INIT, mtcars_records, publish, wait_until_finished

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def seed_service(api: httpx.Client) -> str:
    publish(api, "mtService", SEED_CODE, SEED_INIT, outputFileNames=["Histogram.png"], operationId="manualTransmission")
    return "mtService"


def local_predictions() -> list[float]:
    cars = pd.read_csv(MTCARS)
    model = smf.glm("am ~ hp + wt", data=cars, family=sm.families.Binomial()).fit()
    return [float(p) for p in model.predict(cars[["hp", "wt"]])]


def test_consume_gives_the_seed_probability(api: httpx.Client, seed_service: str) -> None:
    result = api.post(f"/api/{seed_service}/v1", json={"hp": 120, "wt": 2.8}).json()
    assert result["success"], result["errorMessage"]
    assert result["outputParameters"]["answer"] == pytest.approx(0.6418125, abs=1e-6)
    assert "Histogram.png" in result["changedFiles"]
    assert base64.b64decode(result["outputFiles"]["Histogram.png"]).startswith(PNG_MAGIC)


def test_batch_of_all_mtcars_rows(api: httpx.Client, seed_service: str, server: object) -> None:
    records = mtcars_records()
    started = api.post(f"/api/{seed_service}/v1/batch", params={"parallelCount": 5}, json=records)
    assert started.status_code == 202, started.text
    execution_id = started.json()["batchExecutionId"]
    assert started.json()["BatchExecutionId"] == execution_id

    # Incremental polling: every row arrives exactly once, whatever the timing.
    seen: list[int] = []
    cursor = "0"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        page = api.get(f"/api/{seed_service}/v1/batch/{execution_id}", params={"since": cursor}).json()
        seen.extend(result["index"] for result in page["batchExecutionResults"])
        cursor = page["cursor"]
        if page["state"] == "complete" and not page["hasMore"]:
            break
        time.sleep(0.2)
    assert sorted(seen) == list(range(32))

    final = api.get(f"/api/{seed_service}/v1/batch/{execution_id}").json()
    assert final["completedItemCount"] == final["totalItemCount"] == 32
    assert final["failedItemCount"] == 0
    assert [r["index"] for r in final["batchExecutionResults"]] == list(range(32))
    answers = [r["outputParameters"]["answer"] for r in final["batchExecutionResults"]]
    assert answers == pytest.approx(local_predictions(), abs=1e-9)
    for index in range(32):
        assert api.get(f"/api/{seed_service}/v1/batch/{execution_id}/{index}/files").json() == ["Histogram.png"]
        png = api.get(f"/api/{seed_service}/v1/batch/{execution_id}/{index}/files/Histogram.png")
        assert png.status_code == 200
        assert png.content.startswith(PNG_MAGIC)


def test_the_generated_client_reads_a_finished_batch(api: httpx.Client, seed_service: str) -> None:
    started = api.post(f"/api/{seed_service}/v1/batch", json=mtcars_records()[:3]).json()
    wait_until_finished(api, seed_service, started["batchExecutionId"])
    client = AuthenticatedClient(base_url=str(api.base_url), token=api.headers["Authorization"].split()[1])
    with client:
        result = get_batch_execution_status.sync(seed_service, "v1", started["batchExecutionId"], client=client)
    assert isinstance(result, BatchWebServiceResult)
    assert result.state is BatchState.COMPLETE
    assert [r.index for r in result.batch_execution_results] == [0, 1, 2]


def test_csv_and_ndjson_bodies(api: httpx.Client, seed_service: str) -> None:
    csv_body = "hp,wt\n110,2.62\n93,2.32\n"
    ndjson_body = '{"hp": 110, "wt": 2.62}\n{"hp": 93, "wt": 2.32}\n'
    for content_type, body in (("text/csv", csv_body), ("application/x-ndjson", ndjson_body)):
        started = api.post(f"/api/{seed_service}/v1/batch", content=body, headers={"Content-Type": content_type})
        assert started.status_code == 202, started.text
        final = wait_until_finished(api, seed_service, started.json()["batchExecutionId"])
        assert final["completedItemCount"] == 2


def test_an_invalid_record_refuses_the_whole_batch(api: httpx.Client, seed_service: str) -> None:
    before = api.get(f"/api/{seed_service}/v1/batch").json()
    records: list[dict[str, object]] = list(mtcars_records()[:5])
    records[3] = {"hp": "fast", "wt": 2.8}
    response = api.post(f"/api/{seed_service}/v1/batch", json=records)
    assert response.status_code == 400
    assert response.json()["field"] == "body[3].hp"
    assert api.get(f"/api/{seed_service}/v1/batch").json() == before


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"parallelCount": 0}, "parallelCount"),
        ({"parallelCount": -3}, "parallelCount"),
        ({"itemTimeout": 0}, "itemTimeout"),
    ],
)
def test_bad_parameters_are_400(api: httpx.Client, seed_service: str, params: dict[str, int], field: str) -> None:
    response = api.post(f"/api/{seed_service}/v1/batch", params=params, json=[{"hp": 1, "wt": 2}])
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_idempotency_key(api: httpx.Client, seed_service: str) -> None:
    records = mtcars_records()[:2]
    headers = {"Idempotency-Key": "seed-idempotency-test"}
    first = api.post(f"/api/{seed_service}/v1/batch", json=records, headers=headers).json()
    again = api.post(f"/api/{seed_service}/v1/batch", json=records, headers=headers).json()
    assert again["batchExecutionId"] == first["batchExecutionId"]
    other = api.post(f"/api/{seed_service}/v1/batch", json=records[:1], headers=headers)
    assert other.status_code == 409
    assert other.json()["field"] == "Idempotency-Key"
