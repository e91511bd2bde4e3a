"""Turning Python functions, types and models into an ML Server publish request."""

from __future__ import annotations

import inspect
import pickle
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from batchscore._models import Parameter
from batchscore_client.models import (
    ParameterDefinition,
    ParameterType,
    PublishWebServiceRequest,
    RuntimeType,
    ServiceDefinitionFields,
)
from batchscore_client.types import UNSET

# ML Server's mapping of Python types to its parameter types (azureml-model-management-sdk's encoding_type.py).
_TYPE_NAMES: dict[str, str] = {
    "bool": "logical",
    "int": "integer",
    "float": "numeric",
    "str": "character",
    "list": "vector",
    "tuple": "vector",
    "ndarray": "vector",
    "matrix": "matrix",
    "DataFrame": "data.frame",
}
ML_TYPES = frozenset(t.value for t in ParameterType)  # defined by the contract

TypeSpec = type | str
FUNCTION_RESULT = "_batchscore_result"


def parameter_type(spec: TypeSpec, name: str) -> str:
    """ML Server's type name for a Python type (``float`` -> ``numeric``) or an ML Server type name.

    Raises:
        ValueError: The type has no ML Server equivalent.

    """
    if isinstance(spec, str):
        if spec in ML_TYPES:
            return spec
        mapped = _TYPE_NAMES.get(spec)
    else:
        mapped = _TYPE_NAMES.get(getattr(spec, "__name__", ""))  # a union such as float | None has no name
    if mapped is None:
        raise ValueError(
            f"{name}: {spec!r} has no ML Server type; use float, int, bool, str, list, numpy.matrix, "
            f"pandas.DataFrame or one of {', '.join(sorted(ML_TYPES))}"
        )
    return mapped


def parameters(specs: Mapping[str, TypeSpec] | None) -> list[Parameter]:
    """Convert ``{"hp": float}`` to ``[Parameter("hp", "numeric")]``, keeping the order."""
    return [Parameter(name, parameter_type(spec, name)) for name, spec in (specs or {}).items()]


def function_code(
    function: Callable[..., Any], inputs: Sequence[Parameter], outputs: Sequence[Parameter], *, vectorized: bool = False
) -> str:
    """The function's source followed by a call line that binds the inputs and sets the outputs.

    One output gets the return value; several outputs are read from a returned mapping by name, or unpacked
    from a returned sequence in order. A ``vectorized`` function is called once per chunk with one
    ``pandas.DataFrame`` of the inputs (see :func:`vectorized_call`).

    Raises:
        ValueError: The function's source is not available (a lambda, a builtin, code typed in a REPL).

    """
    if function.__name__ == "<lambda>":
        raise ValueError("a lambda cannot be published: define the function with def")
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError) as error:
        raise ValueError(f"the source of {function.__name__} is not available: {error}") from None
    if vectorized:
        return f"{source}\n{vectorized_call(function.__name__, inputs, outputs)}"
    accepted = inspect.signature(function).parameters
    missing = [p.name for p in inputs if p.name not in accepted]
    if missing:
        raise ValueError(f"{function.__name__}() takes no parameter named {', '.join(missing)}")
    arguments = ", ".join(f"{p.name}={p.name}" for p in inputs)
    call = f"{function.__name__}({arguments})"
    if len(outputs) == 1:
        return f"{source}\n{outputs[0].name} = {call}\n"
    lines = [source, f"{FUNCTION_RESULT} = {call}"]
    if outputs:
        names = [p.name for p in outputs]
        lines.append(f"if isinstance({FUNCTION_RESULT}, dict):")
        lines.extend(f"    {name} = {FUNCTION_RESULT}[{name!r}]" for name in names)
        lines.append("else:")
        lines.append(f"    {', '.join(names)}, = {FUNCTION_RESULT}")
    return "\n".join(lines) + "\n"


def vectorized_call(function_name: str, inputs: Sequence[Parameter], outputs: Sequence[Parameter]) -> str:
    """The lines that call a vectorized function once on a chunk and set the outputs from what it returns.

    The function gets a ``pandas.DataFrame`` whose columns are the inputs (each bound to a Series by the server).
    A returned DataFrame gives the outputs by column name (one output and a one-column frame: that column); a
    Series or a sequence gives the single output. Several outputs need a DataFrame.
    """
    columns = ", ".join(f"{p.name!r}: {p.name}" for p in inputs)
    names = [p.name for p in outputs]
    result = FUNCTION_RESULT
    lines = [
        "import pandas as _batchscore_pandas",
        f"{result} = {function_name}(_batchscore_pandas.DataFrame({{{columns}}}))",
    ]
    if len(names) == 1:
        name = names[0]
        lines += [
            f"if isinstance({result}, _batchscore_pandas.DataFrame):",
            f"    {name} = {result}.iloc[:, 0] if {result}.columns.tolist() == [{result}.columns[0]] "
            f"and {name!r} not in {result}.columns else {result}[{name!r}]",
            "else:",
            f"    {name} = {result}",
        ]
    elif names:
        lines += [
            f"if not isinstance({result}, _batchscore_pandas.DataFrame):",
            f"    raise TypeError('{function_name}() must return a pandas DataFrame with the columns "
            f"{', '.join(names)}, got ' + type({result}).__name__)",
        ]
        lines += [f"{name} = {result}[{name!r}]" for name in names]
    return "\n".join(lines) + "\n"


def init_code(init: Callable[[], Any] | str | None) -> str:
    """Init code from source text, or from a function whose returned mapping becomes the service's globals."""
    if init is None or isinstance(init, str):
        return init or ""
    source = textwrap.dedent(inspect.getsource(init))
    return f"{source}\nglobals().update({init.__name__}() or {{}})\n"


def publish_request(
    code: str,
    *,
    init: str,
    inputs: Sequence[Parameter],
    outputs: Sequence[Parameter],
    artifacts: Sequence[str],
    description: str | None,
    alias: str | None,
    snapshot_id: str | None,
    consume_timeout: float | None = None,
    vectorized: bool = False,
    max_batch_rows: int | None = None,
) -> PublishWebServiceRequest:
    """The body of a publish request (the generated client's model)."""
    request = PublishWebServiceRequest(
        code=code,
        runtime_type=RuntimeType.PYTHON,
        input_parameter_definitions=definitions(inputs),
        output_parameter_definitions=definitions(outputs),
        output_file_names=list(artifacts),
    )
    if init:
        request.init_code = init
    if description:
        request.description = description
    if alias:
        request.operation_id = alias
    if snapshot_id:
        request.snapshot_id = snapshot_id
    if consume_timeout is not None:
        request.consume_timeout = consume_timeout
    if vectorized:
        request.vectorized = True
    if max_batch_rows is not None:
        request.max_batch_rows = max_batch_rows
    return request


def definitions(parameters: Sequence[Parameter]) -> list[ParameterDefinition]:
    """The contract's parameter definitions for ``parameters``."""
    return [ParameterDefinition(name=p.name, type_=ParameterType(p.type)) for p in parameters]


def publish_body(
    code: Callable[..., Any] | str,
    init: Callable[[], Any] | str | None,
    inputs: Mapping[str, TypeSpec] | None,
    outputs: Mapping[str, TypeSpec] | None,
    artifacts: Sequence[str] | None,
    description: str | None,
    alias: str | None,
    consume_timeout: float | None = None,
    vectorized: bool = False,
    max_batch_rows: int | None = None,
) -> PublishWebServiceRequest:
    """The publish request for a function (published with a call line) or source text."""
    input_parameters, output_parameters = parameters(inputs), parameters(outputs)
    if isinstance(code, str):
        source = code
    else:
        source = function_code(code, input_parameters, output_parameters, vectorized=vectorized)
    if alias is None and not isinstance(code, str):
        alias = code.__name__
    return publish_request(
        source,
        init=init_code(init),
        inputs=input_parameters,
        outputs=output_parameters,
        artifacts=artifacts or [],
        description=description,
        alias=alias,
        snapshot_id=None,
        consume_timeout=consume_timeout,
        vectorized=vectorized,
        max_batch_rows=max_batch_rows,
    )


def update_body(
    current: Any,
    code: Callable[..., Any] | str | None,
    init: Callable[[], Any] | str | None,
    inputs: Mapping[str, TypeSpec] | None,
    outputs: Mapping[str, TypeSpec] | None,
    artifacts: Sequence[str] | None,
    description: str | None,
    alias: str | None,
    consume_timeout: float | None = None,
    vectorized: bool | None = None,
    max_batch_rows: int | None = None,
) -> ServiceDefinitionFields:
    """The PATCH body: only what is given changes (new code keeps the current inputs and outputs unless given).

    Args:
        current: The version's ``ServiceInfo`` now.
        code: New code, or None.
        init: New init code, or None.
        inputs: New inputs, or None.
        outputs: New outputs, or None.
        artifacts: New artifact names, or None.
        description: New description, or None.
        alias: New consume method name, or None.
        consume_timeout: New consume timeout in seconds, or None.
        vectorized: Whether the code runs once per chunk of rows, or None (new function code is then
            generated for the current value).
        max_batch_rows: New most rows per call of a vectorized service, or None.

    """
    body = ServiceDefinitionFields()
    if code is not None:
        keep = bool(getattr(current, "vectorized", False)) if vectorized is None else vectorized
        published = publish_body(
            code,
            init,
            inputs or {p.name: p.type for p in current.inputs},
            outputs or {p.name: p.type for p in current.outputs},
            artifacts,
            description,
            alias,
            consume_timeout,
            keep,
            max_batch_rows,
        )
        body = ServiceDefinitionFields.from_dict(published.to_dict())
        if vectorized is not None:
            body.vectorized = vectorized
        if artifacts is None:
            body.output_file_names = UNSET
        return body
    if init is not None:
        body.init_code = init_code(init)
    if description is not None:
        body.description = description
    if alias is not None:
        body.operation_id = alias
    if consume_timeout is not None:
        body.consume_timeout = consume_timeout
    if vectorized is not None:
        body.vectorized = vectorized
    if max_batch_rows is not None:
        body.max_batch_rows = max_batch_rows
    if artifacts is not None:
        body.output_file_names = list(artifacts)
    if inputs:
        body.input_parameter_definitions = definitions(parameters(inputs))
    if outputs:
        body.output_parameter_definitions = definitions(parameters(outputs))
    return body


def serialize_model(value: Any, name: str) -> bytes:
    """Pickle a model object for the session workspace.

    Raises:
        ValueError: The object cannot be pickled.

    """
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as error:
        raise ValueError(f"model {name!r} cannot be pickled: {error}") from None
