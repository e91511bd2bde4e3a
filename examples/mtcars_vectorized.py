"""The seed's example as a vectorized service: one ``model.predict`` per chunk of rows instead of one per row.

It fits the same ``am ~ hp + wt`` binomial GLM on mtcars as ``mtcars_batch.py``, publishes it as ``mtVectorized``
v1.0.0 with ``vectorized=True`` (the function gets a DataFrame of a chunk of rows and returns one probability per
row), consumes it once (0.6418125 for hp=120, wt=2.8), then scores the 32 cars as one batch. It exits with 1 when
any server answer differs from the local prediction. A vectorized service writes no artifacts, so there is no
Histogram.png here.

Usage:
    BATCHSCORE_PASSWORD=... python examples/mtcars_vectorized.py --url http://127.0.0.1:12800 [--username admin]
"""

from __future__ import annotations

import argparse
import os
import sys

import pandas as pd
from mtcars_batch import MTCARS, SEED_ANSWER, TOLERANCE, fit_model

import batchscore


def manual_transmission(cars: pd.DataFrame) -> pd.Series:
    """Probability of a manual gearbox for each car (row) of ``cars``, which has the columns hp and wt."""
    return cars_model.predict(cars)  # type: ignore[name-defined,no-any-return]  # noqa: F821 - uploaded model


def publish(client: batchscore.Client, model: object) -> batchscore.Service:
    """Publish mtVectorized v1.0.0 as a vectorized service (replacing an earlier run's version)."""
    return client.publish_service(
        "mtVectorized",
        manual_transmission,
        version="v1.0.0",
        models={"cars_model": model},
        inputs={"hp": float, "wt": float},
        outputs={"answer": float},
        init="import pandas as pd",  # the function's annotations name pd
        description="The seed's model, vectorized: one predict per chunk of rows.",
        vectorized=True,
        replace=True,
    )


def run(url: str, username: str, password: str) -> int:
    """Run the example; return the process exit code (0 when every number matches)."""
    cars = pd.read_csv(MTCARS).rename(columns={"Unnamed: 0": "car"})
    model = fit_model(cars)
    local = [float(p) for p in model.predict(cars[["hp", "wt"]])]  # type: ignore[attr-defined]

    with batchscore.Client(url, username=username, password=password) as client:
        api = publish(client, model)
        print(f"published {api.name} {api.version} (vectorized) at {url}")
        answer = api.consume(hp=120.0, wt=2.8).output("answer")
        print(f"consume: manualTransmission(hp=120, wt=2.8) = {answer:.7f}")
        mismatches = int(abs(answer - SEED_ANSWER) > TOLERANCE)

        batch = api.batch(cars[["hp", "wt"]].astype(float)).start()
        res = batch.wait()
        print(f"batch state: {res.state.value}, {res.completed_item_count}/{res.total_item_count} complete")
        table = res.to_frame()
        table.insert(0, "car", cars["car"])
        table["local"] = local
        table["match"] = (table["answer"] - table["local"]).abs() < TOLERANCE
        with pd.option_context("display.max_rows", 100, "display.width", 120):
            print(table[["car", "hp", "wt", "answer", "local", "match"]].to_string(float_format=lambda v: f"{v:.7f}"))
        mismatches += int((~table["match"]).sum()) + (res.completed_item_count != len(cars))

    if mismatches:
        print(f"FAILED: {mismatches} answer(s) differ from the local predictions", file=sys.stderr)
        return 1
    print("OK: every answer matches the local statsmodels prediction")
    return 0


def main() -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("BATCHSCORE_URL", "http://127.0.0.1:12800"))
    parser.add_argument("--username", default=os.environ.get("BATCHSCORE_USERNAME", "admin"))
    args = parser.parse_args()
    password = os.environ.get("BATCHSCORE_PASSWORD")
    if not password:
        parser.error("set BATCHSCORE_PASSWORD to the user's password")
    return run(args.url, args.username, password)


if __name__ == "__main__":
    sys.exit(main())
