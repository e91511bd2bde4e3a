"""``batchscore publish FILE.py:FUNCTION``: publish a function from a file as a web service."""

from __future__ import annotations

import importlib.util
import pickle
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from batchscore.cli._common import (
    EXIT_USAGE,
    CliError,
    JsonOption,
    PasswordOption,
    UrlOption,
    UsernameOption,
    _connect,
    _emit_json,
    _failures,
    _stdout,
    parse_pairs,
)
from batchscore.cli.consume import consume


def load_function(target: str) -> Callable[..., Any]:
    """Import ``FILE.py:FUNCTION`` from its file and return the function.

    Raises:
        CliError: The target is malformed, the file cannot be imported, or it has no such function (exit code 2).

    """
    path_text, sep, name = target.rpartition(":")
    if not sep or not path_text or not name.isidentifier():
        raise CliError(EXIT_USAGE, f"give the function as FILE.py:FUNCTION, not {target!r}")
    path = Path(path_text)
    if not path.is_file():
        raise CliError(EXIT_USAGE, f"no such file: {path}")
    module_name = "_batchscore_publish_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise CliError(EXIT_USAGE, f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the user's module may raise anything while it loads
        sys.modules.pop(module_name, None)
        raise CliError(EXIT_USAGE, f"cannot import {path}: {type(error).__name__}: {error}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise CliError(EXIT_USAGE, f"{path} has no function {name!r}")
    return function  # type: ignore[no-any-return]


def _load_model(text: str) -> Any:
    path = Path(text)
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)  # the user's own model file, loaded as they asked
    except OSError as error:
        raise CliError(EXIT_USAGE, f"cannot read model file {path}: {error}") from None
    except Exception as error:  # unpickling runs arbitrary code and may raise anything
        raise CliError(EXIT_USAGE, f"cannot unpickle {path}: {type(error).__name__}: {error}") from None


# --- Commands: publish and consume -------------------------------------------------------------------------------


def publish(
    target: Annotated[
        str, typer.Argument(metavar="FILE.py:FUNCTION", help="The function to publish.", show_default=False)
    ],
    name: Annotated[str, typer.Option("--name", help="Service name.", show_default=False)],
    version: Annotated[
        str | None,
        typer.Option("--version", help="Version (default: the next v1, v2, ... after the service's highest)."),
    ] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input", help="An input as NAME=TYPE (numeric, integer, logical, character, ...).", show_default=False
        ),
    ] = None,
    outputs: Annotated[
        list[str] | None, typer.Option("--output", help="An output as NAME=TYPE.", show_default=False)
    ] = None,
    artifacts: Annotated[
        list[str] | None,
        typer.Option("--artifact", help="A file each execution writes that clients can fetch.", show_default=False),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model", help="NAME=FILE.pkl: a pickled object bound to NAME in the service.", show_default=False
        ),
    ] = None,
    description: Annotated[str | None, typer.Option("--description", help="What the service does.")] = None,
    alias: Annotated[
        str | None, typer.Option("--alias", help="The consume method's name (default: the function's name).")
    ] = None,
    consume_timeout: Annotated[
        float | None,
        typer.Option(
            "--consume-timeout",
            min=1,
            help="Seconds one request-response consume may run (default: the server's).",
            show_default=False,
        ),
    ] = None,
    test: Annotated[
        bool,
        typer.Option(
            "--test",
            help="After publishing, consume once with the KEY=VALUE inputs that follow the target and print the "
            "result, as `consume` does (exit code 1 when it fails).",
        ),
    ] = False,
    test_values: Annotated[
        list[str] | None,
        typer.Argument(metavar="[KEY=VALUE...]", help="The --test consume's inputs.", show_default=False),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Replace --version when it exists (running batches keep the code they started with).",
        ),
    ] = False,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Publish a function from a Python file as a web service.

    Only the function's own source is published: imports it needs go inside the function. Types are ML Server
    type names (numeric, integer, logical, character, vector, matrix, data.frame) or Python names (float, int,
    bool, str). Model files are unpickled locally, so load only files you trust.
    """
    with _failures(json_output):
        if test_values and not test:
            raise CliError(EXIT_USAGE, f"unexpected arguments {' '.join(test_values)} (inputs for --test?)")
        if replace and version is None:
            raise CliError(EXIT_USAGE, "--replace needs --version: the version to replace")
        input_types = parse_pairs(inputs or [], "--input")
        output_types = parse_pairs(outputs or [], "--output")
        function = load_function(target)
        loaded = {key: _load_model(path) for key, path in parse_pairs(models or [], "--model").items()}
    with _connect(url, username, password, json_output) as client:
        try:
            published = client.publish_service(
                name,
                function,
                version=version,
                models=loaded or None,
                inputs=input_types,
                outputs=output_types,
                artifacts=artifacts or None,
                description=description,
                alias=alias,
                consume_timeout=consume_timeout,
                replace=replace,
            )
        except ValueError as error:  # a type without an ML Server name, or no source for the function
            raise CliError(EXIT_USAGE, str(error)) from None
    if not test:
        if json_output:
            _emit_json(published.capabilities())
        else:
            _stdout.print(f"published {published.name} {published.version}")
        return
    if not json_output:
        _stdout.print(f"published {published.name} {published.version}")
    # The test is the `consume` command's, run on the version just published (its output, exit code and --json).
    consume(published.name, published.version, test_values, None, url, username, password, json_output)


def services_update(
    name: Annotated[str, typer.Argument(help="Service name.", show_default=False)],
    version: Annotated[str, typer.Argument(help="The version to change.", show_default=False)],
    target: Annotated[
        str | None,
        typer.Argument(metavar="[FILE.py:FUNCTION]", help="New code (default: keep the code).", show_default=False),
    ] = None,
    inputs: Annotated[
        list[str] | None, typer.Option("--input", help="A new input as NAME=TYPE.", show_default=False)
    ] = None,
    outputs: Annotated[
        list[str] | None, typer.Option("--output", help="A new output as NAME=TYPE.", show_default=False)
    ] = None,
    artifacts: Annotated[
        list[str] | None, typer.Option("--artifact", help="A new artifact file name.", show_default=False)
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option("--model", help="NAME=FILE.pkl: new objects (replace the service's).", show_default=False),
    ] = None,
    description: Annotated[str | None, typer.Option("--description", help="A new description.")] = None,
    alias: Annotated[str | None, typer.Option("--alias", help="A new consume method name.")] = None,
    consume_timeout: Annotated[
        float | None,
        typer.Option("--consume-timeout", min=1, help="New seconds one consume may run.", show_default=False),
    ] = None,
    url: UrlOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Change a published version in place; what is not given keeps its value.

    New code keeps the current inputs and outputs unless --input/--output are given. Batches already running keep
    the code they started with; new consumes and batches run the new one.
    """
    with _failures(json_output):
        input_types = parse_pairs(inputs or [], "--input")
        output_types = parse_pairs(outputs or [], "--output")
        function = None if target is None else load_function(target)
        loaded = {key: _load_model(path) for key, path in parse_pairs(models or [], "--model").items()}
    with _connect(url, username, password, json_output) as client:
        try:
            updated = client.update_service(
                name,
                version,
                code=function,
                models=loaded or None,
                inputs=input_types or None,
                outputs=output_types or None,
                artifacts=artifacts or None,
                description=description,
                alias=alias,
                consume_timeout=consume_timeout,
            )
        except ValueError as error:
            raise CliError(EXIT_USAGE, str(error)) from None
    if json_output:
        _emit_json(updated.capabilities())
    else:
        _stdout.print(f"updated {updated.name} {updated.version}")
