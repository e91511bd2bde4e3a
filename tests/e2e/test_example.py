"""The main job's example runs green against a real server, and fails loudly when a number is off."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from batchscore_server import RunningServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

import mtcars_batch


def test_the_example_checks_its_numbers(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mtcars_batch.run(server.url, "admin", server.admin_password, tmp_path / "out") == 0
    printed = capsys.readouterr().out
    assert "manualTransmission(hp=120, wt=2.8) = 0.6418125" in printed
    assert "Maserati Bora" in printed
    assert len(list((tmp_path / "out").glob("*/Histogram.png"))) == 32


def test_a_wrong_number_fails_the_example(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mtcars_batch, "SEED_ANSWER", 0.5)
    assert mtcars_batch.run(server.url, "admin", server.admin_password, tmp_path / "out") == 1
