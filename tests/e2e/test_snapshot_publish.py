"""Publishing the ML Server way: upload a model into a session workspace, snapshot it, publish with snapshotId."""

from __future__ import annotations

import pickle

import httpx
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from tests.e2e.conftest import MTCARS, NUMERIC_IO

CODE = 'import pandas as pd\nanswer = float(cars_model.predict(pd.DataFrame({"hp": [hp], "wt": [wt]})).iloc[0])\n'


def test_a_model_uploaded_through_a_snapshot(api: httpx.Client) -> None:
    cars = pd.read_csv(MTCARS)
    model = smf.glm("am ~ hp + wt", data=cars, family=sm.families.Binomial()).fit()

    session_id = api.post("/sessions", json={"runtimeType": "Python"}).json()["sessionId"]
    upload = api.post(
        f"/sessions/{session_id}/workspace/cars_model",
        content=pickle.dumps(model),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert upload.status_code == 200
    assert api.get(f"/sessions/{session_id}/workspace").json() == ["cars_model"]
    snapshot_id = api.post(f"/sessions/{session_id}/snapshot", json={"name": "cars"}).json()["snapshotId"]
    assert snapshot_id in [s["id"] for s in api.get("/snapshots").json()]

    body = {"code": CODE, "snapshotId": snapshot_id, "runtimeType": "Python", **NUMERIC_IO}
    assert api.post("/services/snapService/v1", json=body).status_code == 201
    # As the Python SDK does after publishing: the session and the snapshot go; the service keeps its model.
    assert api.delete(f"/sessions/{session_id}").status_code == 200
    assert api.delete(f"/snapshots/{snapshot_id}").status_code == 200
    assert api.get(f"/sessions/{session_id}/workspace").status_code == 404

    result = api.post("/api/snapService/v1", json={"hp": 120, "wt": 2.8}).json()
    assert result["success"], result["errorMessage"]
    assert result["outputParameters"]["answer"] == pytest.approx(0.6418125, abs=1e-6)


def test_publishing_with_an_unknown_snapshot_is_422(api: httpx.Client) -> None:
    body = {"code": "answer = hp", "snapshotId": "0000-no-such-snapshot", "runtimeType": "Python", **NUMERIC_IO}
    response = api.post("/services/noSnapshot/v1", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == "snapshotId"
    assert api.get("/services/noSnapshot").json() == []


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"code": "answer = (", "runtimeType": "Python"}, 422, "code"),
        ({"code": "answer = 1", "runtimeType": "R"}, 422, "runtimeType"),
        ({"code": ""}, 400, "code"),
        (
            {"code": "answer = 1", "inputParameterDefinitions": [{"name": "x", "type": "complex"}]},
            400,
            "inputParameterDefinitions[0].type",
        ),
        ({"code": "answer = 1", "outputFileNames": ["../escape.txt"]}, 400, "outputFileNames[0]"),
    ],
)
def test_bad_publish_bodies(api: httpx.Client, body: dict[str, object], status: int, field: str) -> None:
    response = api.post("/services/badPublish/v1", json=body)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert api.get("/services/badPublish").json() == []
