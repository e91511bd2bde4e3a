"""The one execution function: namespaces, console capture, files, failures and batches of rows."""

from __future__ import annotations

import base64
import builtins
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchscore_server._execution import ServiceSpec, clear_cache, execute, run_rows
from batchscore_server._types import decode_inputs

CAR_INPUTS = (("hp", "numeric"), ("wt", "numeric"))


def make_spec(code: str, **fields: Any) -> ServiceSpec:
    values: dict[str, Any] = {
        "key": "svc-1",
        "code": code,
        "init_code": "",
        "inputs": CAR_INPUTS,
        "outputs": (("answer", "numeric"),),
        "output_file_names": (),
        "snapshot_dir": None,
    }
    values.update(fields)
    return ServiceSpec(**values)


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    # Every test reuses the key "svc-1"; a namespace cached by one test must not serve another.
    clear_cache()
    yield
    clear_cache()


def test_spec_is_picklable() -> None:
    spec = make_spec("answer = hp")
    assert pickle.loads(pickle.dumps(spec)) == spec


@pytest.mark.parametrize("name", ["/etc/passwd", "../out.png", "a/../../b", ""])
def test_spec_refuses_output_file_names_outside_the_working_directory(name: str) -> None:
    with pytest.raises(ValueError, match="relative path"):
        make_spec("answer = 1", output_file_names=(name,))


def test_spec_refuses_unknown_types() -> None:
    with pytest.raises(ValueError, match="unknown type"):
        make_spec("answer = 1", outputs=(("answer", "double"),))


def test_success_binds_inputs_and_captures_the_console(tmp_path: Path) -> None:
    code = "import sys\nprint('hello')\nprint('warn', file=sys.stderr)\nanswer = hp * 2 + wt"
    inputs = decode_inputs(CAR_INPUTS, {"hp": 100, "wt": 2.5}, "body")
    result = execute(make_spec(code), inputs, tmp_path / "work")
    assert result == {
        "success": True,
        "errorMessage": "",
        "consoleOutput": "hello\nwarn\n",
        "outputParameters": {"answer": 202.5},
        "changedFiles": [],
        "outputFiles": {},
    }
    assert not (tmp_path / "work").exists()


def test_code_runs_in_the_working_directory_and_the_cwd_is_restored(tmp_path: Path) -> None:
    before = os.getcwd()
    code = "import os\nanswer = 1\nprint(os.getcwd())"
    result = execute(make_spec(code), {"hp": 1.0, "wt": 1.0}, tmp_path / "work")
    assert result["consoleOutput"].strip() == str(tmp_path / "work")
    assert os.getcwd() == before


def test_refuses_a_working_directory_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        execute(make_spec("answer = 1"), {"hp": 1.0, "wt": 1.0}, tmp_path / "work")
    assert (tmp_path / "work" / "keep.txt").read_text() == "mine"


def test_changed_files_lists_created_files_recursively(tmp_path: Path) -> None:
    code = (
        "import os, pathlib\n"
        "os.makedirs('out/deep')\n"
        "pathlib.Path('b.txt').write_text('b')\n"
        "pathlib.Path('out/deep/a.csv').write_text('a')\n"
        "os.makedirs('empty')\n"
        "answer = 1"
    )
    result = execute(make_spec(code), {"hp": 1.0, "wt": 1.0}, tmp_path / "work")
    assert result["changedFiles"] == ["b.txt", "out/deep/a.csv"]


def test_declared_files_are_returned_base64_in_consume_mode(tmp_path: Path) -> None:
    code = (
        "import pathlib\n"
        "pathlib.Path('plot.png').write_bytes(b'\\x89PNG')\n"
        "pathlib.Path('other.txt').write_text('x')\n"
        "answer = 1"
    )
    spec = make_spec(code, output_file_names=("plot.png", "report.txt"))
    result = execute(spec, {"hp": 1.0, "wt": 1.0}, tmp_path / "work")
    assert result["success"] is True
    assert result["outputFiles"] == {"plot.png": base64.b64encode(b"\x89PNG").decode("ascii"), "report.txt": None}
    assert result["changedFiles"] == ["other.txt", "plot.png"]
    assert "storedFiles" not in result


def test_declared_files_are_moved_to_the_artifact_dir_in_batch_mode(tmp_path: Path) -> None:
    code = "import os, pathlib\nos.makedirs('out')\npathlib.Path('out/plot.png').write_bytes(b'PNG')\nanswer = 1"
    spec = make_spec(code, output_file_names=("out/plot.png", "report.txt"))
    artifacts = tmp_path / "artifacts" / "3"
    result = execute(spec, {"hp": 1.0, "wt": 1.0}, tmp_path / "work", artifacts)
    assert result["storedFiles"] == ["out/plot.png"]
    assert "outputFiles" not in result
    assert result["changedFiles"] == ["out/plot.png"]
    assert (artifacts / "out" / "plot.png").read_bytes() == b"PNG"
    assert not (tmp_path / "work").exists()


def test_no_artifact_dir_is_created_when_no_declared_file_was_produced(tmp_path: Path) -> None:
    spec = make_spec("answer = 1", output_file_names=("report.txt",))
    result = execute(spec, {"hp": 1.0, "wt": 1.0}, tmp_path / "work", tmp_path / "artifacts" / "0")
    assert result["storedFiles"] == []
    assert not (tmp_path / "artifacts").exists()


def test_user_exception_fails_with_the_traceback_and_keeps_the_console(tmp_path: Path) -> None:
    code = "print('before')\ndef divide(a):\n    return a / 0\nanswer = divide(hp)"
    result = execute(make_spec(code), {"hp": 1.0, "wt": 1.0}, tmp_path / "work")
    assert result["success"] is False
    assert result["consoleOutput"] == "before\n"
    assert result["outputParameters"] == {}
    message = result["errorMessage"]
    assert message.startswith("Traceback (most recent call last):")
    assert 'File "<code>", line 4, in <module>' in message
    assert "answer = divide(hp)" in message
    assert 'File "<code>", line 3, in divide' in message
    assert "return a / 0" in message
    assert message.rstrip().endswith("ZeroDivisionError: float division by zero")
    # Only the service's frames: none of the server's own.
    assert "_execution.py" not in message
    assert not (tmp_path / "work").exists()


def test_syntax_error_is_reported_with_its_line(tmp_path: Path) -> None:
    result = execute(make_spec("answer = 1\nanswer = (\n"), {"hp": 1.0, "wt": 1.0}, tmp_path / "work")
    assert result["success"] is False
    assert 'File "<code>", line 2' in result["errorMessage"]
    assert "SyntaxError" in result["errorMessage"]


def test_sys_exit_fails_the_row_instead_of_the_worker(tmp_path: Path) -> None:
    result = execute(make_spec("import sys\nsys.exit(3)"), {"hp": 1.0, "wt": 1.0}, tmp_path / "work")
    assert result["success"] is False
    assert "SystemExit: 3" in result["errorMessage"]


def test_a_failed_row_still_reports_its_files(tmp_path: Path) -> None:
    code = "import pathlib\npathlib.Path('log.txt').write_text('x')\nraise RuntimeError('boom')"
    spec = make_spec(code, output_file_names=("log.txt",))
    result = execute(spec, {"hp": 1.0, "wt": 1.0}, tmp_path / "work")
    assert result["success"] is False
    assert result["changedFiles"] == ["log.txt"]
    assert result["outputFiles"] == {"log.txt": base64.b64encode(b"x").decode("ascii")}


def test_missing_output_fails(tmp_path: Path) -> None:
    result = execute(make_spec("result = hp"), {"hp": 1.0, "wt": 1.0}, tmp_path / "work")
    assert result["success"] is False
    assert result["errorMessage"] == "output 'answer' was not set by the code"
    assert result["outputParameters"] == {}


def test_output_of_the_wrong_type_fails_naming_it(tmp_path: Path) -> None:
    result = execute(make_spec("answer = 'high'"), {"hp": 1.0, "wt": 1.0}, tmp_path / "work")
    assert result["success"] is False
    assert result["errorMessage"].startswith("outputParameters.answer: expected a number")


def test_outputs_are_encoded_by_type(tmp_path: Path) -> None:
    code = (
        "import numpy as np, pandas as pd\n"
        "answer = np.float64('nan')\n"
        "frame = pd.DataFrame({'a': [1.0, np.nan]})\n"
        "grid = np.eye(2, dtype=int)"
    )
    spec = make_spec(code, outputs=(("answer", "numeric"), ("frame", "data.frame"), ("grid", "matrix")))
    result = execute(spec, {"hp": 1.0, "wt": 1.0}, tmp_path / "work")
    assert result["outputParameters"] == {"answer": None, "frame": {"a": [1.0, None]}, "grid": [[1, 0], [0, 1]]}


def test_init_code_runs_once_per_process(tmp_path: Path) -> None:
    init_code = (
        "import builtins\n"
        "builtins._bs_init_count = getattr(builtins, '_bs_init_count', 0) + 1\n"
        "print('init ran')\n"
        "offset = 1000"
    )
    spec = make_spec("answer = hp + offset", init_code=init_code)
    try:
        first = execute(spec, {"hp": 1.0, "wt": 1.0}, tmp_path / "one")
        second = execute(spec, {"hp": 2.0, "wt": 1.0}, tmp_path / "two")
        assert getattr(builtins, "_bs_init_count") == 1  # noqa: B009 - set by the service's initCode
    finally:
        if hasattr(builtins, "_bs_init_count"):
            delattr(builtins, "_bs_init_count")
    assert first["outputParameters"] == {"answer": 1001.0}
    assert second["outputParameters"] == {"answer": 1002.0}
    # What initCode prints belongs to the record it ran for.
    assert first["consoleOutput"] == "init ran\n"
    assert second["consoleOutput"] == ""


def test_init_code_files_do_not_count_as_a_rows_changes(tmp_path: Path) -> None:
    spec = make_spec("answer = 1", init_code="import pathlib\npathlib.Path('cache.bin').write_text('x')")
    result = execute(spec, {"hp": 1.0, "wt": 1.0}, tmp_path / "work")
    assert result["success"] is True
    assert result["changedFiles"] == []
    assert list(tmp_path.iterdir()) == []


def test_init_failure_is_reported_and_not_cached(tmp_path: Path) -> None:
    init_code = "print('loading')\nraise RuntimeError('model missing')"
    spec = make_spec("answer = 1", init_code=init_code, output_file_names=("a.txt",))
    for attempt in ("one", "two"):
        result = execute(spec, {"hp": 1.0, "wt": 1.0}, tmp_path / attempt)
        assert result["success"] is False
        assert result["initFailed"] is True
        assert result["errorMessage"].startswith("initCode failed:\nTraceback")
        assert 'File "<initCode>", line 2' in result["errorMessage"]
        assert "RuntimeError: model missing" in result["errorMessage"]
        # Printed again on the second attempt: initCode was not cached after failing.
        assert result["consoleOutput"] == "loading\n"
        assert result["outputFiles"] == {"a.txt": None}
        assert result["changedFiles"] == []


def test_snapshot_objects_are_bound_by_name(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    (snapshot / "coefficients").write_bytes(pickle.dumps({"hp": 0.5, "wt": 10.0}))
    (snapshot / "intercept").write_bytes(pickle.dumps(3.0))
    code = "answer = intercept + coefficients['hp'] * hp + coefficients['wt'] * wt"
    spec = make_spec(code, snapshot_dir=str(snapshot), init_code="intercept += 1")
    result = execute(spec, {"hp": 100.0, "wt": 2.0}, tmp_path / "work")
    assert result["outputParameters"] == {"answer": 4.0 + 50.0 + 20.0}


def test_an_unloadable_snapshot_object_fails_init(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    (snapshot / "model").write_bytes(b"not a pickle")
    result = execute(make_spec("answer = 1", snapshot_dir=str(snapshot)), {"hp": 1.0, "wt": 1.0}, tmp_path / "work")
    assert result["success"] is False
    assert result["initFailed"] is True
    assert result["errorMessage"].startswith("snapshot object 'model' could not be loaded:")


def test_rows_do_not_see_each_others_variables(tmp_path: Path) -> None:
    code = "leaked = globals().get('seen', 'none')\nseen = hp\nanswer = hp\nprint(leaked)"
    rows = [(0, {"hp": 1.0, "wt": 1.0}), (1, {"hp": 2.0, "wt": 1.0})]
    outcome = run_rows(make_spec(code), rows, str(tmp_path / "scratch"), str(tmp_path / "artifacts"))
    assert [outcome["rows"][i]["consoleOutput"] for i in (0, 1)] == ["none\n", "none\n"]


def test_run_rows_runs_every_row_and_stores_artifacts_per_index(tmp_path: Path) -> None:
    code = "import pathlib\npathlib.Path('out.txt').write_text(str(hp))\nanswer = hp"
    spec = make_spec(code, output_file_names=("out.txt",))
    rows = [(4, {"hp": 1.0, "wt": 1.0}), (7, {"hp": 2.0, "wt": 1.0})]
    outcome = run_rows(spec, rows, str(tmp_path / "scratch"), str(tmp_path / "artifacts"))
    assert outcome["stopped"] is False
    assert sorted(outcome["rows"]) == [4, 7]
    assert outcome["rows"][7]["outputParameters"] == {"answer": 2.0}
    assert outcome["rows"][7]["storedFiles"] == ["out.txt"]
    assert (tmp_path / "artifacts" / "4" / "out.txt").read_text() == "1.0"
    assert (tmp_path / "artifacts" / "7" / "out.txt").read_text() == "2.0"
    assert list((tmp_path / "scratch").iterdir()) == []


def test_run_rows_stops_when_asked(tmp_path: Path) -> None:
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 2

    rows = [(i, {"hp": float(i), "wt": 1.0}) for i in range(5)]
    outcome = run_rows(make_spec("answer = hp"), rows, str(tmp_path / "s"), str(tmp_path / "a"), should_stop)
    assert outcome["stopped"] is True
    assert sorted(outcome["rows"]) == [0, 1]
    assert len(asked) == 3


def test_run_rows_keeps_going_after_a_failed_row(tmp_path: Path) -> None:
    rows = [(0, {"hp": 0.0, "wt": 1.0}), (1, {"hp": 2.0, "wt": 1.0})]
    outcome = run_rows(make_spec("answer = 1 / hp"), rows, str(tmp_path / "s"), str(tmp_path / "a"))
    assert outcome["rows"][0]["success"] is False
    assert outcome["rows"][1]["outputParameters"] == {"answer": 0.5}


def test_run_rows_starts_every_row_in_an_empty_directory_even_after_leftovers(tmp_path: Path) -> None:
    # Row 1 leaves a file, row 2 an empty folder, row 3 a declared file (moved out); each next row must still
    # see nothing, and nothing may be left in the scratch root at the end.
    code = (
        "import os, pathlib\n"
        "seen = sorted(os.listdir('.'))\n"
        "if hp == 1: pathlib.Path('left.txt').write_text('x')\n"
        "if hp == 2: os.mkdir('empty-folder')\n"
        "if hp == 3: pathlib.Path('out.txt').write_text('y')\n"
        "answer = len(seen)"
    )
    spec = make_spec(code, output_file_names=("out.txt",))
    rows = [(i, {"hp": float(i), "wt": 1.0}) for i in range(6)]
    outcome = run_rows(spec, rows, str(tmp_path / "scratch"), str(tmp_path / "artifacts"))
    assert [outcome["rows"][i]["outputParameters"]["answer"] for i in range(6)] == [0] * 6
    assert outcome["rows"][1]["changedFiles"] == ["left.txt"]
    assert outcome["rows"][3]["storedFiles"] == ["out.txt"]
    assert list((tmp_path / "scratch").iterdir()) == []


def test_run_rows_reuses_the_working_directory_while_rows_leave_it_empty(tmp_path: Path) -> None:
    code = "import os\nanswer = os.getcwd()"
    spec = make_spec(code, outputs=(("answer", "character"),))
    rows = [(i, {"hp": float(i), "wt": 1.0}) for i in range(3)]
    outcome = run_rows(spec, rows, str(tmp_path / "scratch"), str(tmp_path / "artifacts"))
    assert len({outcome["rows"][i]["outputParameters"]["answer"] for i in range(3)}) == 1


def test_a_row_that_removes_its_own_working_directory_does_not_break_the_next(tmp_path: Path) -> None:
    code = "import os, shutil\nif hp == 1: shutil.rmtree(os.getcwd())\nanswer = len(os.listdir('.'))"
    rows = [(i, {"hp": float(i), "wt": 1.0}) for i in range(3)]
    outcome = run_rows(make_spec(code), rows, str(tmp_path / "scratch"), str(tmp_path / "artifacts"))
    assert [outcome["rows"][i]["success"] for i in range(3)] == [True, True, True]
    assert outcome["rows"][2]["outputParameters"] == {"answer": 0}
