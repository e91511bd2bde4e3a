"""The seed's end-to-end example in Python: publish a model as a service, consume it, score mtcars as a batch.

R Server 9.1's asynchronous batch page fits ``am ~ hp + wt`` (a binomial GLM) on mtcars, publishes
``manualTransmission(hp, wt)`` as ``mtService`` v1.0.0, consumes it once (0.6418125 for hp=120, wt=2.8), then
scores every car as one batch with five rows in parallel and downloads each row's Histogram.png. This script
does the same against any batchscore (or ML Server 9.x) endpoint and checks its own numbers: it exits with 1
when a server answer differs from the local prediction.

Usage:
    BATCHSCORE_PASSWORD=... python examples/mtcars_batch.py --url http://127.0.0.1:12800 [--username admin]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf

import batchscore

HERE = Path(__file__).resolve().parent
MTCARS = HERE / "data" / "mtcars.csv"
SEED_ANSWER = 0.6418125
TOLERANCE = 1e-6


def manual_transmission(hp: float, wt: float) -> float:
    """Probability that a car with this horsepower and weight has a manual gearbox; draws Histogram.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    plt.figure()
    plt.hist(cars_model.model.exog[:, 1], bins=10)  # type: ignore[name-defined]  # noqa: F821 - uploaded model
    plt.axvline(hp, color="red")
    plt.title(f"horsepower of the mtcars cars; red: hp={hp}")
    plt.savefig("Histogram.png")
    plt.close()
    newdata = pd.DataFrame({"hp": [hp], "wt": [wt]})
    return float(cars_model.predict(newdata).iloc[0])  # type: ignore[name-defined]  # noqa: F821


def fit_model(cars: pd.DataFrame) -> object:
    """The seed's model: logistic regression of the gearbox on horsepower and weight."""
    return smf.glm("am ~ hp + wt", data=cars, family=sm.families.Binomial()).fit()


def publish(client: batchscore.Client, model: object) -> batchscore.Service:
    """Publish mtService v1.0.0 (replacing an earlier run's version)."""
    options = {
        "code": manual_transmission,
        "models": {"cars_model": model},
        "inputs": {"hp": float, "wt": float},
        "outputs": {"answer": float},
        "artifacts": ["Histogram.png"],
        "description": "Probability of a manual transmission from horsepower and weight (the seed's example).",
    }
    try:
        return client.publish_service("mtService", version="v1.0.0", **options)  # type: ignore[arg-type]
    except batchscore.ConflictError:
        return client.update_service("mtService", "v1.0.0", **options)  # type: ignore[arg-type]


def run(url: str, username: str, password: str, output_dir: Path) -> int:
    """Run the example; return the process exit code (0 when every number matches)."""
    cars = pd.read_csv(MTCARS).rename(columns={"Unnamed: 0": "car"})
    model = fit_model(cars)
    local = [float(p) for p in model.predict(cars[["hp", "wt"]])]  # type: ignore[attr-defined]

    with batchscore.Client(url, username=username, password=password) as client:
        api = publish(client, model)
        print(f"published {api.name} {api.version} at {url}")

        answer = api.manual_transmission(120, 2.8).output("answer")
        print(f"consume: manualTransmission(hp=120, wt=2.8) = {answer:.7f}")
        mismatches = int(abs(answer - SEED_ANSWER) > TOLERANCE)

        svc = client.get_service("mtService", "v1.0.0")
        batch = svc.batch(cars[["hp", "wt"]].astype(float), parallel_count=5).start()
        print(f"batch {batch.id}: {batch.record_count} records, parallel_count=5")
        res = batch.wait(progress=True, on_progress=None if sys.stderr.isatty() else _print_progress)
        print(
            f"batch state: {res.state.value}, {res.completed_item_count}/{res.total_item_count} complete, "
            f"{res.failed_item_count} failed"
        )

        table = res.to_frame()
        table.insert(0, "car", cars["car"])
        table["local"] = local
        table["match"] = (table["answer"] - table["local"]).abs() < TOLERANCE
        with pd.option_context("display.max_rows", 100, "display.width", 120):
            print(
                table[["car", "hp", "wt", "answer", "local", "match"]].to_string(
                    formatters={"hp": "{:.0f}".format, "wt": "{:.3f}".format},
                    float_format=lambda v: f"{v:.7f}",
                )
            )
        mismatches += int((~table["match"]).sum())

        output_dir.mkdir(parents=True, exist_ok=True)
        files = []
        for index in range(res.total_item_count):
            row_dir = output_dir / f"{index:02d}"
            row_dir.mkdir(exist_ok=True)
            files.extend(batch.download(index, dest=row_dir))
        print(f"downloaded {len(files)} artifacts into {output_dir}/ (one folder per row, e.g. {files[0]})")

    if mismatches:
        print(f"FAILED: {mismatches} answer(s) differ from the local predictions", file=sys.stderr)
        return 1
    print("OK: every answer matches the local statsmodels prediction")
    return 0


def _print_progress(status: batchscore.BatchStatus) -> None:
    print(
        f"  {status.state.value}: {status.completed_item_count}/{status.total_item_count} done, "
        f"{status.failed_item_count} failed, {status.running_item_count} running"
    )


def main() -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("BATCHSCORE_URL", "http://127.0.0.1:12800"))
    parser.add_argument("--username", default=os.environ.get("BATCHSCORE_USERNAME", "admin"))
    parser.add_argument("--output-dir", type=Path, default=Path("batch-output"))
    args = parser.parse_args()
    password = os.environ.get("BATCHSCORE_PASSWORD")
    if not password:
        parser.error("set BATCHSCORE_PASSWORD to the user's password")
    return run(args.url, args.username, password, args.output_dir)


if __name__ == "__main__":
    sys.exit(main())
