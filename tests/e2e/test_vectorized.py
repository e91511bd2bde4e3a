"""Vectorized services on a real server: the seed model once per chunk, bad rows failing alone, cancel, refusals."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from batchscore_server import RunningServer
from tests.e2e.conftest import MTCARS, SEED_INIT, mtcars_records, publish, wait_until_finished

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

import mtcars_vectorized

# The seed model on a whole chunk: hp and wt are Series of the chunk's rows.
VECTOR_CODE = 'answer = cars_model.predict(pd.DataFrame({"hp": hp, "wt": wt}))\n'
# Fails every chunk holding a car heavier than 5 (three mtcars rows); alone, only those rows fail.
PICKY_CODE = (
    "if (wt > 5).any():\n"
    "    raise ValueError(f'too heavy: {list(wt[wt > 5])}')\n"
    'answer = cars_model.predict(pd.DataFrame({"hp": hp, "wt": wt}))\n'
)


def local_predictions() -> list[float]:
    cars = pd.read_csv(MTCARS)
    model = smf.glm("am ~ hp + wt", data=cars, family=sm.families.Binomial()).fit()
    return [float(p) for p in model.predict(cars[["hp", "wt"]])]


def run_batch(api: httpx.Client, name: str, records: list[dict[str, float]]) -> dict[str, object]:
    started = api.post(f"/api/{name}/v1/batch", params={"parallelCount": 2}, json=records)
    assert started.status_code == 202, started.text
    execution_id = started.json()["batchExecutionId"]
    wait_until_finished(api, name, execution_id)
    final: dict[str, object] = api.get(f"/api/{name}/v1/batch/{execution_id}").json()
    return final


def test_the_seed_model_vectorized_gives_the_32_answers(api: httpx.Client) -> None:
    publish(api, "mtVec", VECTOR_CODE, SEED_INIT, vectorized=True, maxBatchRows=8)
    info = api.get("/services/mtVec/v1").json()[0]
    assert (info["vectorized"], info["maxBatchRows"]) == (True, 8)
    consumed = api.post("/api/mtVec/v1", json={"hp": 120, "wt": 2.8}).json()
    assert consumed["success"], consumed["errorMessage"]
    assert consumed["outputParameters"]["answer"] == pytest.approx(0.6418125, abs=1e-6)

    final = run_batch(api, "mtVec", mtcars_records())
    assert final["completedItemCount"] == 32
    results = final["batchExecutionResults"]
    assert isinstance(results, list)
    assert [r["index"] for r in results] == list(range(32))
    answers = [r["outputParameters"]["answer"] for r in results]
    assert answers == pytest.approx(local_predictions(), abs=1e-9)


def test_a_bad_row_fails_alone(api: httpx.Client) -> None:
    publish(api, "mtPicky", PICKY_CODE, SEED_INIT, vectorized=True)
    records = mtcars_records()
    final = run_batch(api, "mtPicky", records)
    results = final["batchExecutionResults"]
    assert isinstance(results, list)
    failed = {r["index"] for r in results if not r["success"]}
    assert failed == {index for index, record in enumerate(records) if record["wt"] > 5}
    assert final["failedItemCount"] == len(failed) == 3
    for result in results:
        if not result["success"]:
            weight = records[result["index"]]["wt"]
            assert f"too heavy: [{weight}]" in result["errorMessage"]


def test_output_files_and_vectorized_are_refused(api: httpx.Client) -> None:
    body = {"code": "answer = hp", "vectorized": True, "outputFileNames": ["a.png"]}
    response = api.post("/services/vecFiles/v1", json=body)
    assert response.status_code == 422
    assert "outputFileNames" in response.text
    publish(api, "vecPatch", "answer = hp", vectorized=True)
    patched = api.patch("/services/vecPatch/v1", json={"outputFileNames": ["a.png"]})
    assert patched.status_code == 422, patched.text


def test_cancel_stops_between_chunks(api: httpx.Client) -> None:
    publish(api, "vecSlow", "import time\ntime.sleep(0.3)\nanswer = hp + wt\n", vectorized=True, maxBatchRows=2)
    records = [{"hp": float(i), "wt": 0.5} for i in range(40)]
    started = api.post("/api/vecSlow/v1/batch", params={"parallelCount": 1}, json=records)
    execution_id = started.json()["batchExecutionId"]
    deadline = time.monotonic() + 120
    while api.get(f"/api/vecSlow/v1/batch/{execution_id}").json()["completedItemCount"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    body = api.post(f"/api/vecSlow/v1/batch/{execution_id}/cancel").json()
    assert body["state"] == "canceled"
    assert body["canceledItemCount"] > 0
    assert body["completedItemCount"] + body["canceledItemCount"] == 40
    after = api.get(f"/api/vecSlow/v1/batch/{execution_id}").json()
    done = [r for r in after["batchExecutionResults"] if r["itemState"] == "complete"]
    assert all(r["outputParameters"]["answer"] == r["index"] + 0.5 for r in done)


def test_the_vectorized_example_checks_its_numbers(server: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert mtcars_vectorized.run(server.url, "admin", server.admin_password) == 0
    printed = capsys.readouterr().out
    assert "manualTransmission(hp=120, wt=2.8) = 0.6418125" in printed
    assert "32/32 complete" in printed
