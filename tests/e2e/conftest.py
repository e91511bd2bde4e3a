"""A real server (SQLite data dir, Dask LocalCluster workers, consume pool) shared by the end-to-end tests."""

from __future__ import annotations

import csv
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from batchscore_server._embedded import RunningServer, running_server
from tests._postgres import Postgres, create_database, running_postgres, unavailable_reason

MTCARS = Path(__file__).resolve().parent.parent / "data" / "mtcars.csv"
FINAL_STATES = {"complete", "failed", "canceled"}

# The seed's service: the model is fitted once per worker in initCode; each execution draws Histogram.png.
SEED_INIT = f"""
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
cars = pd.read_csv({str(MTCARS)!r})
cars_model = smf.glm("am ~ hp + wt", data=cars, family=sm.families.Binomial()).fit()
"""
SEED_CODE = """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

def manual_transmission(hp, wt):
    plt.figure()
    plt.hist(cars["hp"])
    plt.savefig("Histogram.png")
    plt.close()
    return float(cars_model.predict(pd.DataFrame({"hp": [hp], "wt": [wt]})).iloc[0])

answer = manual_transmission(hp, wt)
"""
NUMERIC_IO = {
    "inputParameterDefinitions": [{"name": "hp", "type": "numeric"}, {"name": "wt", "type": "numeric"}],
    "outputParameterDefinitions": [{"name": "answer", "type": "numeric"}],
}


def mtcars_records() -> list[dict[str, float]]:
    with MTCARS.open(encoding="utf-8") as handle:
        return [{"hp": float(row["hp"]), "wt": float(row["wt"])} for row in csv.DictReader(handle)]


# BATCHSCORE_TEST_DATABASE=postgresql runs these servers on a throwaway PostgreSQL (the noxfile's PostgreSQL tier
# runs a representative subset of this package so); else each has SQLite in its data directory.
TEST_DATABASE_ENV = "BATCHSCORE_TEST_DATABASE"


@pytest.fixture(scope="package")
def test_postgres() -> Iterator[Postgres | None]:
    if os.environ.get(TEST_DATABASE_ENV, "sqlite") != "postgresql":
        yield None
        return
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_postgres() as postgres:
        yield postgres


def _database(postgres: Postgres | None) -> dict[str, Any]:
    """``running_server`` settings for a fresh database: one of its own on the test PostgreSQL, if there is one."""
    if postgres is None:
        return {}
    return {"database_url": create_database(postgres, f"e2e_{uuid.uuid4().hex[:12]}")}


# Package scope: the server (its uvicorn thread, Dask cluster and consume pool) stops when the end-to-end tests
# end, so its threads cannot disturb the tests of other packages that run after them.
@pytest.fixture(scope="package")
def server(test_postgres: Postgres | None) -> Iterator[RunningServer]:
    with running_server(workers=2, **_database(test_postgres)) as running:
        yield running


# For tests that kill, restart and hang workers on purpose: a server of their module's own, so a cluster left in a
# bad state cannot reach the other end-to-end tests.
@pytest.fixture(scope="module")
def own_server(test_postgres: Postgres | None) -> Iterator[RunningServer]:
    with running_server(workers=2, **_database(test_postgres)) as running:
        yield running


@pytest.fixture(scope="module")
def own_api(own_server: RunningServer) -> Iterator[httpx.Client]:
    token = login(own_server)["access_token"]
    with httpx.Client(base_url=own_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
        yield client


def login(server: RunningServer, username: str = "admin", password: str | None = None) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/login",
        json={"username": username, "password": password or server.admin_password},
        timeout=120,  # argon2 on a busy machine takes longer than httpx's default 5 s
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="package")
def api(server: RunningServer) -> Iterator[httpx.Client]:
    token = login(server)["access_token"]
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
        yield client


def publish(api: httpx.Client, name: str, code: str, init_code: str = "", **fields: Any) -> None:
    body = {"code": code, "initCode": init_code, "runtimeType": "Python", **NUMERIC_IO, **fields}
    response = api.post(f"/services/{name}/v1", json=body)
    assert response.status_code == 201, response.text


def wait_until_finished(api: httpx.Client, name: str, execution_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = api.get(f"/api/{name}/v1/batch/{execution_id}", params={"limit": 1}).json()
        if body["state"] in FINAL_STATES:
            return body
        time.sleep(0.2)
    # The batch's counts and the cluster's worker count tell a stuck row from a cluster without workers.
    try:
        status: Any = api.get("/status").json()
    except (httpx.HTTPError, ValueError) as error:
        status = repr(error)
    raise AssertionError(f"batch {execution_id} did not finish in {timeout} s; last status: {body}; /status: {status}")
