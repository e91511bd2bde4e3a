"""The seed's workflow through the SDK, sync and async, against a real server with real Dask workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import batchscore
from batchscore_server import RunningServer
from tests.e2e.conftest import MTCARS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def manual_transmission(hp: float, wt: float) -> float:
    """The seed's function: draws Histogram.png and returns the model's probability of a manual gearbox."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    plt.figure()
    plt.hist([hp, wt])
    plt.savefig("Histogram.png")
    plt.close()
    return float(cars_model.predict(pd.DataFrame({"hp": [hp], "wt": [wt]})).iloc[0])  # type: ignore[name-defined]  # noqa: F821


def flaky(hp: float, wt: float) -> float:
    """Fails for negative horsepower."""
    if hp < 0:
        raise ValueError(f"negative horsepower {hp}")
    return hp + wt


def slow(hp: float, wt: float) -> float:
    """Takes a quarter of a second."""
    import time

    time.sleep(0.25)
    return hp + wt


@pytest.fixture(scope="module")
def cars() -> pd.DataFrame:
    return pd.read_csv(MTCARS)


@pytest.fixture(scope="module")
def local_predictions(cars: pd.DataFrame) -> list[float]:
    model = smf.glm("am ~ hp + wt", data=cars, family=sm.families.Binomial()).fit()
    return [float(p) for p in model.predict(cars[["hp", "wt"]])]


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[batchscore.Client]:
    with batchscore.Client(server.url, username="admin", password=server.admin_password) as made:
        yield made


@pytest.fixture(scope="module")
def seed(client: batchscore.Client, cars: pd.DataFrame) -> batchscore.Service:
    model = smf.glm("am ~ hp + wt", data=cars, family=sm.families.Binomial()).fit()
    return client.publish_service(
        "sdkSeed",
        code=manual_transmission,
        models={"cars_model": model},
        inputs={"hp": float, "wt": float},
        outputs={"answer": float},
        artifacts=["Histogram.png"],
        version="v1.0.0",
    )


def test_publish_and_consume(seed: batchscore.Service) -> None:
    assert seed.manual_transmission(120, 2.8).output("answer") == pytest.approx(0.6418125, abs=1e-6)
    result = seed.consume(hp=120, wt=2.8)
    artifact = result.artifact("Histogram.png")
    assert artifact is not None
    assert artifact.startswith(PNG_MAGIC)


def test_the_seed_batch(
    client: batchscore.Client,
    seed: batchscore.Service,
    cars: pd.DataFrame,
    local_predictions: list[float],
    tmp_path: Path,
) -> None:
    svc = client.get_service("sdkSeed", "v1.0.0")
    batch = svc.batch(cars[["hp", "wt"]].astype(float), parallel_count=5).start()
    assert batch.id in svc.get_batch_executions()
    seen: list[batchscore.BatchStatus] = []
    res = batch.wait(progress=False, on_progress=seen.append)
    assert res.state == batch.STATE.complete
    assert res.total_item_count == 32
    assert res.execution(0).output_parameters["answer"] == pytest.approx(local_predictions[0])
    frame = res.to_frame()
    assert list(frame.index) == list(range(32))
    assert frame["answer"].tolist() == pytest.approx(local_predictions)
    assert frame["hp"].tolist() == cars["hp"].astype(float).tolist()
    assert frame["success"].all()
    assert seen
    for index in range(32):
        assert batch.list_artifacts(index) == ["Histogram.png"]
        folder = tmp_path / f"row{index}"
        folder.mkdir()
        assert batch.download(index, "Histogram.png", dest=folder) == [folder / "Histogram.png"]
        assert (folder / "Histogram.png").read_bytes().startswith(PNG_MAGIC)
    assert batch.artifact(0, "Histogram.png").startswith(PNG_MAGIC)

    # Resume from a new client (another process would do the same with the execution id).
    with batchscore.Client(str(client.base_url), username="admin", password=_password(client)) as other:
        again = other.get_service("sdkSeed").get_batch(str(batch.id)).wait(progress=False)
    assert [r.output("answer") for r in again.results] == pytest.approx(local_predictions)


def _password(client: batchscore.Client) -> str:
    password: str = client._auth._password  # type: ignore[assignment]
    return password


def test_the_download_folder_must_exist(seed: batchscore.Service, tmp_path: Path) -> None:
    batch = seed.batch([{"hp": 100.0, "wt": 2.0}]).start()
    batch.wait(progress=False)
    with pytest.raises(batchscore.DownloadError):
        batch.download(0, dest=tmp_path / "missing")


def test_cancel_keeps_finished_rows_and_retry_reruns_failures(client: batchscore.Client) -> None:
    svc = client.publish_service(
        "sdkSlow", slow, inputs={"hp": float, "wt": float}, outputs={"answer": float}, version="v1"
    )
    batch = svc.batch([{"hp": float(i), "wt": 0.5} for i in range(40)], parallel_count=2).start()
    deadline = time.monotonic() + 60
    while batch.results().completed_item_count < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    stopped = batch.cancel()
    assert stopped.state is batchscore.BatchState.CANCELED
    with pytest.raises(batchscore.BatchCanceledError) as raised:
        batch.wait(progress=False)
    kept = [r for r in raised.value.batch.results if r.success]
    assert len(kept) >= 3
    assert all(r.output("answer") == r.index + 0.5 for r in kept if r.index is not None)

    flaky_svc = client.publish_service(
        "sdkFlaky", flaky, inputs={"hp": float, "wt": float}, outputs={"answer": float}, version="v1"
    )
    flaky_batch = flaky_svc.batch([{"hp": h, "wt": 1.0} for h in (1.0, -1.0, 2.0)]).start()
    first = flaky_batch.wait(progress=False)
    assert [r.success for r in first.results] == [True, False, True]
    assert "negative horsepower -1.0" in first.execution(1).error_message
    flaky_batch.retry_failed()
    rerun = flaky_batch.wait(progress=False)
    assert [r.success for r in rerun.results] == [True, False, True]
    assert rerun.failed_item_count == 1


def test_invalid_records_are_refused_before_upload(seed: batchscore.Service) -> None:
    before = seed.get_batch_executions()
    with pytest.raises(batchscore.InvalidRecordError) as raised:
        seed.batch([{"hp": 1.0, "wt": 1.0}, {"hp": "fast", "wt": 1.0}])
    assert (raised.value.index, raised.value.field) == (1, "hp")
    assert seed.get_batch_executions() == before


def test_the_async_twin(
    server: RunningServer, seed: batchscore.Service, local_predictions: list[float], tmp_path: Path
) -> None:
    async def run() -> tuple[Any, list[Path], float]:
        async with batchscore.AsyncClient(server.url, username="admin", password=server.admin_password) as client:
            svc = await client.get_service("sdkSeed")
            consumed = await svc.manual_transmission(120, 2.8)
            batch = await svc.batch(
                [{"hp": float(hp), "wt": float(wt)} for hp, wt in pd.read_csv(MTCARS)[["hp", "wt"]].values],
                parallel_count=5,
            ).start()
            res = await batch.wait(progress=False)
            paths = await batch.download(3, dest=tmp_path)
            return res, paths, consumed.output("answer")

    res, paths, answer = asyncio.run(run())
    assert answer == pytest.approx(0.6418125, abs=1e-6)
    assert [r.output("answer") for r in res.results] == pytest.approx(local_predictions)
    assert [p.name for p in paths] == ["Histogram.png"]
    assert paths[0].read_bytes().startswith(PNG_MAGIC)
