"""The SDK's side of vectorized services: the generated call, the publish body, the CLI flags, the fake."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import batchscore
from batchscore._models import Parameter
from batchscore._publish import function_code, publish_body, update_body
from batchscore.testing import FakeServer

HP_WT = [Parameter("hp", "numeric"), Parameter("wt", "numeric")]


def scores(frame: pd.DataFrame) -> pd.Series:
    return frame["hp"] / 10 + frame["wt"]


def two_scores(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"low": frame["hp"] - 1, "high": frame["hp"] + 1})


def one_column(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"x": frame["hp"] * 3})


def as_list(frame: pd.DataFrame) -> list[float]:
    return [float(v) for v in frame["hp"]]


def run_code(source: str, **columns: list[float]) -> dict[str, Any]:
    namespace: dict[str, Any] = {"pd": pd, **{name: pd.Series(values) for name, values in columns.items()}}
    exec(compile(source, "<code>", "exec"), namespace)
    return namespace


def test_vectorized_code_calls_the_function_once_with_a_frame() -> None:
    source = function_code(scores, HP_WT, [Parameter("answer", "numeric")], vectorized=True)
    namespace = run_code(source, hp=[100.0, 200.0], wt=[1.0, 2.0])
    assert namespace["answer"].tolist() == [11.0, 22.0]


def test_vectorized_code_maps_frame_columns_and_sequences() -> None:
    outputs = [Parameter("low", "numeric"), Parameter("high", "numeric")]
    namespace = run_code(function_code(two_scores, HP_WT, outputs, vectorized=True), hp=[5.0], wt=[0.0])
    assert (namespace["low"].tolist(), namespace["high"].tolist()) == ([4.0], [6.0])
    # One output: its column by name, or the only column of a one-column frame.
    namespace = run_code(
        function_code(two_scores, HP_WT, [Parameter("high", "numeric")], vectorized=True), hp=[5.0], wt=[0.0]
    )
    assert namespace["high"].tolist() == [6.0]
    namespace = run_code(
        function_code(one_column, HP_WT, [Parameter("answer", "numeric")], vectorized=True), hp=[5.0], wt=[0.0]
    )
    assert namespace["answer"].tolist() == [15.0]
    namespace = run_code(
        function_code(as_list, HP_WT, [Parameter("answer", "numeric")], vectorized=True), hp=[3.0], wt=[0.0]
    )
    assert namespace["answer"] == [3.0]


def test_several_outputs_need_a_frame() -> None:
    outputs = [Parameter("low", "numeric"), Parameter("high", "numeric")]
    with pytest.raises(TypeError, match="must return a pandas DataFrame with the columns low, high, got list"):
        run_code(function_code(as_list, HP_WT, outputs, vectorized=True), hp=[1.0], wt=[1.0])


def test_publish_body_carries_the_fields_only_when_set() -> None:
    body = publish_body(scores, None, {"hp": float, "wt": float}, {"answer": float}, None, None, None, None, True, 64)
    assert body.to_dict()["vectorized"] is True
    assert body.to_dict()["maxBatchRows"] == 64
    plain = publish_body("answer = hp", None, {"hp": float}, {"answer": float}, None, None, None).to_dict()
    assert "vectorized" not in plain
    assert "maxBatchRows" not in plain


def test_update_with_new_code_keeps_a_vectorized_service_vectorized() -> None:
    current = batchscore.ServiceInfo(
        "s", "v1", (Parameter("hp", "numeric"),), (Parameter("answer", "numeric"),), (), "consume", vectorized=True
    )
    body = update_body(current, scores, None, None, None, None, None, None)
    assert "_batchscore_pandas.DataFrame" in body.to_dict()["code"]
    assert "vectorized" in update_body(current, None, None, None, None, None, None, None, vectorized=False).to_dict()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_publish_sends_vectorized_and_the_fake_runs_it(mode: str) -> None:
    import asyncio

    fake = FakeServer()
    try:
        client: Any = fake.client() if mode == "sync" else fake.async_client()
        options: dict[str, Any] = {"inputs": {"hp": float, "wt": float}, "outputs": {"answer": float}}
        options["init"] = "import pandas as pd"  # the function's annotations name pd

        async def publish_async() -> Any:
            service = await client.publish_service("vec", scores, version="v1", vectorized=True, **options)
            return service, await service.consume(hp=120.0, wt=2.8)

        if mode == "sync":
            service = client.publish_service("vec", scores, version="v1", vectorized=True, **options)
            result = service.consume(hp=120.0, wt=2.8)
        else:
            service, result = asyncio.run(publish_async())
        assert service.info.vectorized is True
        assert result.outputs["answer"] == pytest.approx(14.8)
        bodies = [json.loads(r.content) for r in fake.requests if r.method == "POST" and b"vectorized" in r.content]
        assert bodies
        assert bodies[0]["vectorized"] is True
        with pytest.raises(batchscore.BatchscoreError, match="outputFileNames"):
            fake.client().publish_service("vec", scores, version="v2", vectorized=True, artifacts=["x.txt"], **options)
    finally:
        fake.close()


def test_cli_publish_has_the_flags() -> None:
    from batchscore.cli import app

    help_text = CliRunner().invoke(app, ["publish", "--help"], env={"COLUMNS": "200"}).output
    assert "--vectorized" in help_text
    assert "--max-batch-rows" in help_text
