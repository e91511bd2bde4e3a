"""The app builder's path ML Server documented: generate a client from one service's swagger.json and use it.

GET /api/{name}/{version}/swagger.json of a published service is fed to openapi-python-client, and the generated
package logs in, consumes the service with its typed inputs and runs a batch against a real server.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import pkgutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from batchscore_server import RunningServer
from tests.e2e.conftest import publish

SERVICE = "swaggerClientService"
VERSION = "v1"
OPERATION = "addWeight"
CODE = "answer = hp * 2 + wt"
PACKAGE = "swagger_client_service_client"
BATCH_TIMEOUT = 240


def expected_answer(hp: float, wt: float) -> float:
    return hp * 2 + wt


@pytest.fixture(scope="module")
def generated(api: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package generated from the service's own document, imported."""
    publish(api, SERVICE, CODE, operationId=OPERATION)
    response = api.get(f"/api/{SERVICE}/{VERSION}/swagger.json")
    assert response.status_code == 200, response.text
    directory = tmp_path_factory.mktemp("service-client")
    document = directory / "doc.json"
    document.write_text(json.dumps(response.json(), indent=2), encoding="utf-8")

    # The generator runs ruff as post-hooks; it is in the same bin directory as this interpreter.
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    completed = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            str(document),
            "--meta",
            "none",
            "--output-path",
            str(directory / PACKAGE),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    # Any warning means the generator skipped or guessed at part of the document.
    assert "Warning" not in completed.stdout + completed.stderr, completed.stdout + completed.stderr

    sys.path.insert(0, str(directory))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(directory))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def operation(package: ModuleType, name: str) -> Any:
    """The generated module of an operation, whichever tag's folder it is in."""
    api = importlib.import_module(f"{package.__name__}.api")
    for tag in pkgutil.iter_modules(api.__path__):
        if importlib.util.find_spec(f"{api.__name__}.{tag.name}.{name}") is not None:
            return importlib.import_module(f"{api.__name__}.{tag.name}.{name}")
    raise AssertionError(f"the generated client has no operation {name}")


@pytest.fixture(scope="module")
def authenticated(generated: ModuleType, server: RunningServer) -> Iterator[Any]:
    """Logged in through the generated package's own /login operation."""
    models = importlib.import_module(f"{generated.__name__}.models")
    with generated.Client(base_url=server.url, raise_on_unexpected_status=True) as anonymous:
        tokens = operation(generated, "login").sync(
            client=anonymous, body=models.LoginRequest(username="admin", password=server.admin_password)
        )
    assert isinstance(tokens, models.AccessTokenResponse), tokens
    assert tokens.access_token
    with generated.AuthenticatedClient(
        base_url=server.url, token=tokens.access_token, raise_on_unexpected_status=True, timeout=httpx.Timeout(120)
    ) as client:
        yield client


def test_the_package_has_the_service_operations(generated: ModuleType) -> None:
    for name in (
        "login",
        "add_weight",
        "start_batch_execution",
        "get_batch_executions",
        "get_batch_execution_status",
        "cancel_and_delete_batch_execution",
    ):
        assert callable(operation(generated, name).sync), name


def test_a_wrong_password_is_the_documented_401(generated: ModuleType, server: RunningServer) -> None:
    models = importlib.import_module(f"{generated.__name__}.models")
    with generated.Client(base_url=server.url, raise_on_unexpected_status=True) as anonymous:
        response = operation(generated, "login").sync_detailed(
            client=anonymous, body=models.LoginRequest(username="admin", password="not the password")
        )
    assert response.status_code == 401
    assert isinstance(response.parsed, models.Error)
    assert response.parsed.code == 401


def test_consume_with_typed_inputs(generated: ModuleType, authenticated: Any) -> None:
    models = importlib.import_module(f"{generated.__name__}.models")
    result = operation(generated, "add_weight").sync(
        client=authenticated, body=models.InputParameters(hp=110.0, wt=2.62)
    )
    assert isinstance(result, models.WebServiceResult), result
    assert result.success, result.error_message
    assert isinstance(result.output_parameters, models.OutputParameters)
    assert result.output_parameters.answer == pytest.approx(expected_answer(110.0, 2.62))


def test_batch(generated: ModuleType, authenticated: Any) -> None:
    models = importlib.import_module(f"{generated.__name__}.models")
    records = [(110.0, 2.62), (93.0, 2.32), (175.0, 3.44), (52.0, 1.615)]
    started = operation(generated, "start_batch_execution").sync(
        client=authenticated,
        body=[models.InputParameters(hp=hp, wt=wt) for hp, wt in records],
        parallel_count=2,
    )
    assert isinstance(started, models.StartBatchExecutionResponse), started
    execution_id = started.batchExecutionId
    listed = operation(generated, "get_batch_executions").sync(client=authenticated)
    assert isinstance(listed, list)
    assert execution_id in listed

    status = operation(generated, "get_batch_execution_status")
    deadline = time.monotonic() + BATCH_TIMEOUT
    result = status.sync(execution_id, client=authenticated)
    while not (isinstance(result, models.BatchWebServiceResult) and result.state == "complete"):
        assert isinstance(result, models.BatchWebServiceResult), result
        assert result.state not in ("failed", "canceled"), result
        assert time.monotonic() < deadline, f"batch {execution_id} not complete after {BATCH_TIMEOUT} s"
        time.sleep(0.2)
        result = status.sync(execution_id, client=authenticated)

    assert result.completed_item_count == result.total_item_count == len(records)
    assert [r.index for r in result.batch_execution_results] == list(range(len(records)))
    for row, (hp, wt) in zip(result.batch_execution_results, records, strict=True):
        assert isinstance(row, models.BatchExecutionResult)
        assert row.success, row.error_message
        assert row.output_parameters.answer == pytest.approx(expected_answer(hp, wt))

    deleted = operation(generated, "cancel_and_delete_batch_execution").sync(execution_id, client=authenticated)
    assert deleted == [execution_id]
    assert execution_id not in operation(generated, "get_batch_executions").sync(client=authenticated)
