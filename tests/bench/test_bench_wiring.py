"""How the runner wires figures, without a server: the PostgreSQL variants, their selection and their skip."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from bench import report, runner
from bench._core import Figure, Size


def test_every_figure_runs_and_every_postgres_variant_is_in_the_run_order() -> None:
    # A figure missing from RUN_ORDER would be left out of every run without a word.
    assert sorted(runner.RUN_ORDER) == sorted(runner.FIGURES)
    variants = {figure_id for figure_id, module in runner.FIGURES.items() if hasattr(module, "versus_sqlite")}
    assert {"P1-pg", "P9-pg", "P2-pg", "P3-pg", "P7a-pg", "P7b-pg", "P8-pg"} <= {f"{base}-pg" for base in variants}
    for figure_id in ("P1-pg", "P9-pg", "P2-pg", "P3-pg", "P8-pg", "P7a-pg", "P7b-pg"):
        # After its SQLite figure: the ratios are to that one.
        assert runner.RUN_ORDER.index(figure_id) > runner.RUN_ORDER.index(figure_id.removesuffix("-pg"))


def test_selecting_a_postgres_figure_selects_its_sqlite_figure_too() -> None:
    assert runner.parse_args(["--only", "p9-PG"]).figures == ["P9", "P9-pg"]
    assert runner.parse_args(["--only", "P1,P1-pg,P5"]).figures == ["P5", "P1", "P1-pg"]
    with pytest.raises(SystemExit):
        runner.parse_args(["--only", "P4-pg"])


def test_without_postgresql_the_figure_is_skipped_saying_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runner, "postgres_unavailable", lambda: "no PostgreSQL server binaries (initdb, pg_ctl)")
    data: dict[str, Any] = {"server": {}}
    with runner._PostgresSide(argparse.Namespace(quick=True, profile=False), tmp_path, data) as postgres:
        figure = postgres.measure("P1-pg", runner.QUICK, sqlite=None)
    runner._print(figure)
    assert figure.skipped == "no PostgreSQL here: no PostgreSQL server binaries (initdb, pg_ctl)"
    assert figure.error is None
    assert figure.passed is None
    assert "P1-pg skipped: no PostgreSQL here: no PostgreSQL server binaries" in capsys.readouterr().out
    assert "postgresql" not in data["server"]  # nothing was started
    table = report.markdown(_data({"P1-pg": figure}))
    assert "| P1-pg | " in table
    assert "skipped: no PostgreSQL here" in table
    assert table.count("| skipped |") == 1


def test_postgres_figures_are_compared_with_sqlite() -> None:
    p1, p9 = runner.FIGURES["P1-pg"], runner.FIGURES["P9-pg"]
    versus = p1.versus_sqlite(
        _figure("P1-pg", seconds=2.0, rows_per_second=500.0), _figure("P1", seconds=1.0, rows_per_second=1000.0)
    )
    assert versus.ratios == {"vs SQLite": 0.5}
    assert versus.baseline["rows_per_second"] == 1000.0
    assert "500 rows/s, x0.50 of SQLite (1,000 rows/s)" in versus.line

    def polled(p50: float, p99: float, cpu: float) -> dict[str, Any]:
        return {
            "server": {
                "p50_ms": p50,
                "p99_ms": p99,
                "server_cpu_ms_per_answer": cpu,
                "errors": 0,
                "achieved_per_second": 100.0,
                "offered_per_second": 100.0,
            }
        }

    versus = p9.versus_sqlite(_figure("P9-pg", **polled(4.0, 30.0, 3.0)), _figure("P9", **polled(2.0, 10.0, 2.0)))
    assert versus.ratios == {"p50 vs SQLite": 2.0, "p99 vs SQLite": 3.0, "server CPU per answer vs SQLite": 1.5}
    assert {"p50_ms", "p99_ms"} <= versus.baseline.keys()  # shown by report.py as a latency baseline


def _figure(figure_id: str, **details: Any) -> Figure:
    return Figure(
        id=figure_id,
        title="t",
        value=1.0,
        unit="",
        summary="s",
        goal="g",
        details=details,
        size=Size(table="t", ran="r"),
    )


def _data(figures: dict[str, Figure]) -> dict[str, Any]:
    return {
        "date": "2026-12-06 00:00 UTC",
        "mode": "quick",
        "duration_seconds": 1.0,
        "load_average": {"before": [0.0, 0.0, 0.0], "after": [0.0, 0.0, 0.0]},
        "machine": {"cpu_count": 2, "cpu_model": "cpu", "memory_gb": 1.0, "platform": "p", "python": "3.11"},
        "figures": {figure_id: figure.to_json() for figure_id, figure in figures.items()},
    }


def test_the_fair_share_figure_is_the_ratio_of_the_medians_and_says_when_a_was_not_running() -> None:
    from bench import p10_fair_share
    from bench._core import FULL

    fair = p10_fair_share.figure([0.5, 0.4, 0.6], [1.0, 0.9, 3.0], FULL, a_done=1_000, a_state="inProgress")
    assert fair.value == 2.0  # medians 1.0 / 0.5
    assert fair.passed is True
    assert not any("no longer running" in note for note in fair.notes)
    ended = p10_fair_share.figure([0.5], [5.0], FULL, a_done=200_000, a_state="complete")
    assert ended.passed is False
    assert any("no longer running" in note for note in ended.notes)
