"""Tables that fit (issue 16), SDK side: passthrough columns, missing values, to_frame's columns, the writers."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

import batchscore
from batchscore import BatchStatus, ExecutionResult, InvalidRecordError
from batchscore._export import cursor_column
from batchscore.cli import app
from batchscore.cli._common import EXIT_USAGE
from tests.unit._harness import Harness

EXECUTION = "9c6be3d2-1f5e-4a8b-9a0e-3f2d1c0b9a87"
FRAME = pd.DataFrame({"car": ["Mazda", "Fiat"], "hp": [110.0, 66.0], "wt": [2.62, 1.94]})


@pytest.fixture(params=["sync", "async"])
def h(request: pytest.FixtureRequest) -> Iterator[Harness]:
    harness = Harness(request.param, check_responses=False)
    yield harness
    harness.close()


def starter(bodies: list[tuple[httpx.Request, list[dict[str, Any]]]]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        lines = b"".join(request.stream).decode().splitlines()  # type: ignore[union-attr]
        bodies.append((request, [json.loads(line) for line in lines]))
        return httpx.Response(202, json={"batchExecutionId": EXECUTION, "name": "svc", "version": "v1"})

    return handler


def test_an_extra_column_is_refused_with_the_passthrough_hint(h: Harness) -> None:
    service = h.service(starter([]))
    with pytest.raises(InvalidRecordError, match=r"use passthrough=\['car'\]") as caught:
        service.batch(FRAME)
    assert caught.value.field == "car"


def test_passthrough_columns_go_up_with_the_records_and_the_names_as_a_parameter(h: Harness) -> None:
    bodies: list[tuple[httpx.Request, list[dict[str, Any]]]] = []
    batch = h.service(starter(bodies)).batch(FRAME, passthrough=["car"])
    h.run(batch.start())
    (request, records) = bodies[0]
    assert request.url.params.get_list("passthrough") == ["car"]
    assert records == [{"car": "Mazda", "hp": 110.0, "wt": 2.62}, {"car": "Fiat", "hp": 66.0, "wt": 1.94}]


def test_a_missing_number_is_refused_by_default_naming_row_column_and_na(h: Harness) -> None:
    frame = pd.DataFrame({"hp": [110.0, math.nan], "wt": [2.62, 1.94]})
    with pytest.raises(InvalidRecordError, match=r'row 1, column .hp.: a missing value.*na="null"') as caught:
        h.service(starter([])).batch(frame)
    assert (caught.value.index, caught.value.field) == (1, "hp")


def test_na_null_sends_a_missing_number_as_null(h: Harness) -> None:
    bodies: list[tuple[httpx.Request, list[dict[str, Any]]]] = []
    records = [{"hp": 1.0, "wt": math.nan}, {"hp": None, "wt": 2.0}]
    h.run(h.service(starter(bodies)).batch(records, na="null").start())
    assert bodies[0][1] == [{"hp": 1.0, "wt": None}, {"hp": None, "wt": 2.0}]


def test_na_must_be_error_or_null(h: Harness) -> None:
    with pytest.raises(ValueError, match="na must be"):
        h.service(starter([])).batch([{"hp": 1, "wt": 2}], na="zero")


def test_an_empty_numeric_csv_cell_is_a_missing_value(h: Harness, tmp_path: Path) -> None:
    path = tmp_path / "cars.csv"
    path.write_text("hp,wt\n110,\n")
    with pytest.raises(InvalidRecordError, match='na="null"'):
        h.service(starter([])).batch(path)
    bodies: list[tuple[httpx.Request, list[dict[str, Any]]]] = []
    h.run(h.service(starter(bodies)).batch(path, na="null").start())
    assert bodies[0][1] == [{"hp": 110.0, "wt": None}]


def exported(with_inputs: bool) -> Any:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        lines = []
        for index, (car, hp) in enumerate([("Mazda", 110.0), ("Fiat", 66.0)]):
            record = {"index": index, "itemState": "complete", "attempt": 1, "success": True, "errorMessage": ""}
            record.update(outputParameters={"answer": hp + 1}, passthrough={"car": car}, cursor=str(index + 1))
            if with_inputs:
                record["inputs"] = {"hp": hp, "wt": 2.0}
            lines.append(json.dumps(record))
        counts = {"totalItemCount": 2, "completedItemCount": 2, "failedItemCount": 0, "canceledItemCount": 0}
        lines.append(json.dumps({"end": True, "records": 2, "cursor": "2", "state": "complete", **counts}))
        return httpx.Response(200, text="\n".join(lines) + "\n", headers={"Content-Type": "application/x-ndjson"})

    return handler, seen


def test_to_frame_of_a_batch_fetched_by_id_has_inputs_passthrough_and_outputs(h: Harness) -> None:
    handler, seen = exported(with_inputs=True)
    frame = h.run(h.service(handler).get_batch(EXECUTION).to_frame())
    assert seen[0].url.params.get_list("include") == ["inputs"]
    assert list(frame.columns) == ["hp", "wt", "car", "success", "error_message", "answer"]
    assert frame.index.name == "index"
    assert frame.loc[1].to_dict() == {"hp": 66.0, "wt": 2.0, "car": "Fiat", "success": True, "error_message": ""} | {
        "answer": 67.0
    }


def test_to_frame_from_a_server_without_include_still_has_passthrough(h: Harness) -> None:
    handler, _seen = exported(with_inputs=False)
    frame = h.run(h.service(handler).get_batch(EXECUTION).to_frame())
    assert list(frame.columns) == ["car", "success", "error_message", "answer"]


def test_exported_results_carry_the_servers_inputs_and_passthrough(h: Harness) -> None:
    handler, _seen = exported(with_inputs=True)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/results"):
            return handler(request)  # type: ignore[no-any-return]
        body = {"batchExecutionId": EXECUTION, "state": "complete", "completedItemCount": 2, "totalItemCount": 2}
        return httpx.Response(200, json={**body, "batchExecutionResults": []})

    status = h.run(h.service(answer).get_batch(EXECUTION).exported_results())
    assert [result.passthrough for result in status.results] == [{"car": "Mazda"}, {"car": "Fiat"}]
    assert list(status.to_frame().columns) == ["hp", "wt", "car", "success", "error_message", "answer"]


def test_the_csv_cursor_is_found_after_passthrough_and_input_columns() -> None:
    assert cursor_column("index,itemState,attempt,success,errorMessage,cursor,answer\n") == 5
    assert cursor_column("index,car,hp,itemState,attempt,success,errorMessage,cursor,answer\n") == 7


def test_writers_take_pandas_options(tmp_path: Path) -> None:
    status = BatchStatus(
        execution_id=EXECUTION,
        state=batchscore.BatchState.COMPLETE,
        completed_item_count=1,
        total_item_count=1,
        results=(ExecutionResult(True, outputs={"answer": 1.5}, index=0, passthrough={"car": "Mazda"}),),
    )
    buffer = io.StringIO()
    status.to_csv(buffer, sep=";", decimal=",")
    assert buffer.getvalue().splitlines() == ["index;car;success;error_message;answer", "0;Mazda;True;;1,5"]
    status.to_parquet(tmp_path / "r.parquet", compression="gzip")
    assert pd.read_parquet(tmp_path / "r.parquet")["car"].tolist() == ["Mazda"]


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_output_to_stdout_refuses_parquet_json_and_a_bad_na(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHSCORE_CONFIG_DIR", str(tmp_path / "config"))
    results = ("batch", "results", "b1", "--service", "s", "--version", "v1", "--output", "-")
    code, _, stderr = cli(*results, "--output-format", "parquet")
    assert code == EXIT_USAGE
    assert "write Parquet to a file" in stderr
    code, _, stderr = cli(*results, "--json")
    assert code == EXIT_USAGE
    assert "both write to stdout" in stderr
    records = tmp_path / "records.csv"
    records.write_text("hp,wt\n1,2\n")
    code, _, stderr = cli("batch", "start", "s", "v1", "--input", str(records), "--na", "zero")
    assert code == EXIT_USAGE
    assert "--na must be error or null" in stderr


def test_the_fake_server_keeps_passthrough_and_runs_null_as_nan() -> None:
    from batchscore.testing import FakeServer

    fake = FakeServer()
    fake.add_service("svc", "v1", lambda x: -1.0 if math.isnan(x) else x * 2)
    records = [{"x": 1.0, "car": "Mazda"}, {"x": math.nan, "car": "Fiat"}]
    with fake.client() as client:
        batch = client.get_service("svc", "v1").batch(records, passthrough=["car"], na="null").start()
        batch.wait(progress=False)
        frame = client.get_service("svc", "v1").get_batch(str(batch.id)).to_frame()
    assert list(frame.columns) == ["x", "car", "success", "error_message", "answer"]
    assert frame["car"].tolist() == ["Mazda", "Fiat"]
    assert frame["answer"].tolist() == [2.0, -1.0]
