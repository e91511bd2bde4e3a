"""Results written as CSV cannot smuggle a formula into a spreadsheet (OWASP's CSV injection).

A result is whatever the service's code returned: a text cell ``=HYPERLINK(...)`` ran as a formula when the CSV was
opened. Text cells starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return get a leading single quote,
by default, in ``BatchStatus.to_csv`` and the CLI's ``--output x.csv``; numbers stay numbers.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from batchscore import BatchState, BatchStatus, ExecutionResult
from batchscore.cli import app
from batchscore.cli import batch as cli_batch

HOSTILE = ["=1+2", "+1", "-2+3", "@SUM(A1)", "\tx", '=HYPERLINK("http://x")']
PLAIN = ["plain", "a=b", " =x", ""]
# pandas writes a carriage return unquoted (a CSV reader then splits the row there), so it is the last cell and
# is checked in the file's bytes.
CARRIAGE_RETURN = "\rx"


def status() -> BatchStatus:
    texts = [*HOSTILE, *PLAIN, CARRIAGE_RETURN]
    results = tuple(
        ExecutionResult(
            success=position > 0,
            error_message="-failed" if position == 0 else "",
            outputs={"text": text, "number": -1.5 * position, "count": -position},
            index=position,
        )
        for position, text in enumerate(texts)
    )
    return BatchStatus("b1", BatchState.complete, len(texts), len(texts), results=results)


def read(path: Path) -> list[dict[str, str]]:
    """The rows before the carriage return's."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))[: len(HOSTILE) + len(PLAIN)]


def test_text_cells_that_a_spreadsheet_would_run_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    status().to_csv(path)
    rows = read(path)
    assert [row["text"] for row in rows] == ["'" + text for text in HOSTILE] + PLAIN
    assert rows[0]["error_message"] == "'-failed"
    # Numbers are not text: a negative number is written as the number it is.
    assert [row["number"] for row in rows][:3] == ["-0.0", "-1.5", "-3.0"]
    assert [row["count"] for row in rows][:3] == ["0", "-1", "-2"]


def test_escaping_can_be_turned_off(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    status().to_csv(path, escape_formulas=False)
    assert [row["text"] for row in read(path)] == HOSTILE + PLAIN


@pytest.mark.parametrize(("escape", "written"), [(True, ",'\rx,"), (False, ",\rx,")])
def test_a_leading_carriage_return_is_escaped_too(tmp_path: Path, escape: bool, written: str) -> None:
    path = tmp_path / "results.csv"
    status().to_csv(path, escape_formulas=escape)
    assert written.encode() in path.read_bytes()


@pytest.mark.parametrize(("flags", "escaped"), [((), True), (("--no-escape-formulas",), False)])
def test_the_cli_escapes_its_csv_output_unless_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: tuple[str, ...], escaped: bool
) -> None:
    class FinishedBatch:
        def exported_results(self) -> BatchStatus:  # what `batch results` reads (the streamed export)
            return status()

    @contextlib.contextmanager
    def open_batch(*_args: Any) -> Iterator[FinishedBatch]:
        yield FinishedBatch()

    monkeypatch.setattr(cli_batch, "_open_batch", open_batch)
    path = tmp_path / "results.csv"
    arguments = ["batch", "results", "b1", "--service", "s", "--version", "v1", "--output", str(path), *flags]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    expected = ["'" + text for text in HOSTILE] if escaped else HOSTILE
    assert [row["text"] for row in read(path)] == expected + PLAIN
