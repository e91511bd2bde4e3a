"""The SDK's side of issue 16's publish checks: the undefined-name warning and ExecutionResult's ServiceError."""

from __future__ import annotations

import math
import os
import warnings

import pytest

import batchscore
from batchscore._free_names import undefined_names, warn_undefined_names

THRESHOLD = 0.5


def _helper(x: float) -> float:
    return x * 2


def uses_a_helper_a_constant_and_a_module(hp: float, wt: float) -> float:
    import json  # imported inside: fine

    ratio = [v for v in (hp, wt) if v > THRESHOLD]
    return _helper(sum(ratio)) + math.pi + len(json.dumps(os.sep)) + cars_model.k  # type: ignore[name-defined]  # noqa: F821


def self_contained(hp: float, wt: float) -> float:
    import math

    def inner(v: float) -> float:
        return abs(v)

    return inner(hp) + math.sqrt(wt) + max(hp, wt)


def test_undefined_names_are_the_globals_it_reads_that_the_service_will_not_bind() -> None:
    names = undefined_names(uses_a_helper_a_constant_and_a_module, {"hp", "wt", "cars_model"})
    assert names == ["THRESHOLD", "_helper", "math", "os"]
    assert undefined_names(self_contained, set()) == []


def test_publishing_a_function_with_a_helper_left_behind_warns_naming_it() -> None:
    with pytest.warns(batchscore.UndefinedNameWarning) as caught:
        warn_undefined_names(uses_a_helper_a_constant_and_a_module, None, ["hp", "wt", "cars_model"])
    (warning,) = caught
    message = str(warning.message)
    assert "_helper (function)" in message
    assert "math (module)" in message
    assert "THRESHOLD (name)" in message
    assert "NameError" in message
    assert issubclass(batchscore.UndefinedNameWarning, UserWarning)


def test_names_from_init_text_models_and_self_contained_code_do_not_warn() -> None:
    init = "import math, os\nTHRESHOLD = 0.5\ndef _helper(x):\n    return x\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_undefined_names(uses_a_helper_a_constant_and_a_module, init, ["cars_model"])
        warn_undefined_names(self_contained, None, [])
        warn_undefined_names("answer = helper(hp)", None, [])  # source text is published as written


def test_output_of_a_failed_execution_raises_service_error_with_its_message() -> None:
    message = "Traceback (most recent call last):\n  ...\nModuleNotFoundError: No module named 'statsmodels'\n"
    result = batchscore.ExecutionResult(success=False, error_message=message)
    with pytest.raises(batchscore.ServiceError) as raised:
        result.output("answer")
    assert raised.value.error_message == message
    assert raised.value.result is result
    assert "No module named 'statsmodels'" in str(raised.value)
    assert "'answer'" in str(raised.value)
    assert isinstance(raised.value, batchscore.BatchscoreError)


def test_output_of_a_successful_execution_without_that_output_is_a_key_error_naming_the_outputs() -> None:
    result = batchscore.ExecutionResult(success=True, outputs={"answer": 1.0})
    assert result.output("answer") == 1.0
    with pytest.raises(KeyError, match=r"'answers'.*\['answer'\]"):
        result.output("answers")
