"""What every side of a comparison runs, in an importable module: pool and Dask workers import it by name.

``plus_one`` is P1's trivial function (the published service's code is the same one line); ``manual_transmission``
is the seed model's per-row predict, published with the SDK from this very source and run by the P2 pool with the
same model object (pickled once, loaded once per process by :func:`load_model`).
"""

from __future__ import annotations

import pickle
from typing import Any

TRIVIAL_CODE = "answer = x + 1"

cars_model: Any = None  # set in each pool process by load_model; a service gets it from its snapshot


def plus_one(record: dict[str, int]) -> dict[str, int]:
    """``answer = x + 1`` for one record, record in and outputs out, as the service does it."""
    return {"answer": record["x"] + 1}


def manual_transmission(hp: float, wt: float) -> float:
    """The seed's per-row predict: the probability that a car with this horsepower and weight is manual."""
    import pandas as pd

    # cars_model: this module's global in a pool process, the snapshot's object in a service.
    return float(cars_model.predict(pd.DataFrame({"hp": [hp], "wt": [wt]})).iloc[0])


def predict_frame(cars: "pd.DataFrame") -> "pd.Series":  # noqa: F821, UP037 - pandas is the service's
    """The seed's vectorized predict (P8): one probability per row of ``cars`` (columns hp and wt)."""
    return cars_model.predict(cars)


def predict_record(record: dict[str, float]) -> dict[str, float]:
    """:func:`manual_transmission` for one record (the P2 baseline's map function)."""
    return {"answer": manual_transmission(record["hp"], record["wt"])}


def load_model(payload: bytes) -> None:
    """Pool initializer: load the model once per process, as a service's worker loads its snapshot once."""
    global cars_model
    cars_model = pickle.loads(payload)
