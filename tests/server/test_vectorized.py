"""Vectorized services: code run once per chunk of rows, results split back to rows, bad rows failing alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchscore_server._execution import ServiceSpec, check_service, clear_cache, execute, run_rows
from batchscore_server._vectorized import DEFAULT_MAX_BATCH_ROWS, batch_rows, task_rows


def make_spec(code: str, **fields: Any) -> ServiceSpec:
    values: dict[str, Any] = {
        "key": "vec-1",
        "code": code,
        "init_code": "calls = []",
        "inputs": (("hp", "numeric"), ("wt", "numeric")),
        "outputs": (("answer", "numeric"),),
        "output_file_names": (),
        "snapshot_dir": None,
        "vectorized": True,
    }
    values.update(fields)
    return ServiceSpec(**values)


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


def rows_of(count: int) -> list[tuple[int, dict[str, Any]]]:
    return [(index, {"hp": float(100 + index), "wt": float(index)}) for index in range(count)]


def run(spec: ServiceSpec, rows: list[tuple[int, dict[str, Any]]], tmp_path: Path, **hooks: Any) -> dict[int, Any]:
    outcome = run_rows(spec, rows, str(tmp_path / "scratch"), str(tmp_path / "artifacts"), **hooks)
    assert outcome["stopped"] is False
    return outcome["rows"]


def test_chunks_split_into_rows_with_one_call_per_chunk(tmp_path: Path) -> None:
    # calls is the initCode's list: the code runs once per chunk of max_batch_rows, not once per row.
    code = "calls.append(len(hp))\nanswer = hp * 2 + wt\nseen = [list(calls)] * len(hp)"
    spec = make_spec(code, max_batch_rows=4, outputs=(("answer", "numeric"), ("seen", "vector")))
    results = run(spec, rows_of(10), tmp_path)
    assert sorted(results) == list(range(10))
    for index, result in results.items():
        assert result["success"], result
        assert result["outputParameters"]["answer"] == (100 + index) * 2 + index
    # The namespace is shared per process, so the last row sees every call: 4 + 4 + 2 rows, three calls.
    assert results[9]["outputParameters"]["seen"] == [4, 4, 2]


def test_numpy_list_and_frame_outputs(tmp_path: Path) -> None:
    code = (
        "import numpy as np, pandas as pd\n"
        "answer = np.asarray(hp) + 1\n"
        "count = [np.int64(i) for i in range(len(hp))]\n"
        "flag = pd.DataFrame({'f': wt > 1})\n"
    )
    spec = make_spec(code, outputs=(("answer", "numeric"), ("count", "integer"), ("flag", "logical")))
    results = run(spec, rows_of(3), tmp_path)
    assert [results[i]["outputParameters"] for i in range(3)] == [
        {"answer": 101.0, "count": 0, "flag": False},
        {"answer": 102.0, "count": 1, "flag": False},
        {"answer": 103.0, "count": 2, "flag": True},
    ]


def test_wrong_length_fails_the_chunk_and_its_rows_alone(tmp_path: Path) -> None:
    # Always one value too many: the chunk fails, then every row alone fails with its own length message.
    results = run(make_spec("answer = list(hp) + [0.0]"), rows_of(3), tmp_path)
    for result in results.values():
        assert not result["success"]
        assert "output 'answer' has 2 values for a chunk of 1 rows" in result["errorMessage"]


def test_one_bad_row_among_five_fails_alone_with_its_own_message(tmp_path: Path) -> None:
    code = (
        "if (wt == 3).any():\n"
        "    raise ValueError(f'bad weight in a chunk of {len(wt)}')\n"
        "answer = hp / 10\n"
        "print('chunk of', len(hp))\n"
    )
    starts: list[int] = []
    results = run(make_spec(code), rows_of(5), tmp_path, on_start=starts.append)
    assert [results[i]["success"] for i in range(5)] == [True, True, True, False, True]
    assert "ValueError: bad weight in a chunk of 1" in results[3]["errorMessage"]
    assert results[0]["outputParameters"] == {"answer": 10.0}
    # The failed chunk's rows started with it, then each again alone.
    assert starts == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    assert results[0]["consoleOutput"] == "chunk of 1\n"


def test_console_goes_to_the_chunks_first_row(tmp_path: Path) -> None:
    spec = make_spec("print('rows', len(hp))\nanswer = hp", max_batch_rows=3)
    results = run(spec, rows_of(5), tmp_path)
    assert [results[i]["consoleOutput"] for i in range(5)] == ["rows 3\n", "", "", "rows 2\n", ""]
    assert all(result["storedFiles"] == [] for result in results.values())


def test_console_is_bounded_per_chunk(tmp_path: Path) -> None:
    spec = make_spec("print('x' * 1000)\nanswer = hp", max_console_bytes=10)
    results = run(spec, rows_of(4), tmp_path)
    assert results[0]["consoleOutput"].startswith("x" * 10 + "\n[console output truncated")
    assert results[1]["consoleOutput"] == ""


def test_wrong_type_fails_only_that_row(tmp_path: Path) -> None:
    code = "answer = pd.Series(['text' if w == 2 else h for h, w in zip(hp, wt)])"
    spec = make_spec(code, init_code="import pandas as pd")
    results = run(spec, rows_of(4), tmp_path)
    assert [results[i]["success"] for i in range(4)] == [True, True, False, True]
    assert "expected a number" in results[2]["errorMessage"]


def test_cancel_is_checked_between_chunks(tmp_path: Path) -> None:
    calls = iter([False, True])
    outcome = run_rows(
        make_spec("answer = hp", max_batch_rows=2),
        rows_of(6),
        str(tmp_path / "s"),
        str(tmp_path / "a"),
        should_stop=lambda: next(calls),
    )
    assert outcome["stopped"] is True
    assert sorted(outcome["rows"]) == [0, 1]


def test_consume_runs_one_row(tmp_path: Path) -> None:
    result = execute(make_spec("answer = hp + wt * len(hp)"), {"hp": 120.0, "wt": 2.8}, tmp_path / "w")
    assert result["success"], result
    assert result["outputParameters"] == {"answer": pytest.approx(122.8)}
    assert result["outputFiles"] == {}
    assert not (tmp_path / "w").exists()


def test_init_failure_reaches_every_row(tmp_path: Path) -> None:
    results = run(make_spec("answer = hp", init_code="raise RuntimeError('no model')"), rows_of(3), tmp_path)
    assert all(result.get("initFailed") and "no model" in result["errorMessage"] for result in results.values())


def test_publish_check_needs_pandas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_service(make_spec("answer = hp"), tmp_path) is None
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)  # import pandas now raises ImportError
    failure = check_service(make_spec("answer = hp"), tmp_path)
    assert failure is not None
    assert failure[0] == "vectorized"
    assert "needs pandas" in failure[1]


def test_chunk_sizes() -> None:
    assert batch_rows({"vectorized": False, "maxBatchRows": 5}) is None
    assert batch_rows({"vectorized": True}) == DEFAULT_MAX_BATCH_ROWS
    assert batch_rows({"vectorized": True, "maxBatchRows": 7}) == 7
    assert task_rows(100, timed=True) == 100
    assert task_rows(100, timed=False) > 100


def test_max_batch_rows_takes_a_whole_number_written_as_a_float() -> None:
    # JSON Schema's integer: 3385.0 is one (schemathesis sent it and got a 400 before).
    from batchscore_server._errors import ApiError
    from batchscore_server._validation import service_definition

    fields = service_definition({"code": "answer = 1", "vectorized": True, "maxBatchRows": 3385.0}, partial=False)
    assert fields["maxBatchRows"] == 3385
    assert type(fields["maxBatchRows"]) is int
    for bad in (3385.5, 0, 100_001, True, "10"):
        with pytest.raises(ApiError) as refused:
            service_definition({"code": "answer = 1", "maxBatchRows": bad}, partial=False)
        assert refused.value.field == "maxBatchRows"
