"""Microsoft's own Python client, azureml-model-management-sdk 1.0.1b6, against a real server.

It logs in, gets the seed service, consumes it and runs a batch of all mtcars rows, reading results and artifacts the
way ML Server 9.2+ users' code does. Nothing that shapes a request or reads a reply is patched: the only stand-in is
the SDK's consume-method builder (see :func:`function_beget`), which cannot run on Python >= 3.8.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from batchscore_server import RunningServer
from tests.e2e.conftest import SEED_CODE, SEED_INIT, mtcars_records, publish
from tests.e2e.test_seed_workflow import PNG_MAGIC, local_predictions

SERVICE = "mtSdkService"
VERSION = "v1"
OPERATION = "manualTransmission"
POLL_SECONDS = 0.5
BATCH_TIMEOUT = 240

pytestmark = [
    # azureml/deploy/deploy_client.py:22 does `import imp` (deprecated since 3.4, removed in 3.12); importing the SDK
    # emits this once. Nothing else is ignored.
    pytest.mark.filterwarnings("ignore:the imp module is deprecated:DeprecationWarning"),
]


def function_beget(fn: Callable[..., Any], fn_name: str, fn_args: list[str], doc: str = "") -> Callable[..., Any]:
    """Stand-in for ``azureml.common.utils.function_beget`` that runs on Python >= 3.8.

    The original (azureml/common/utils.py:29, called at azureml/deploy/server/service.py:112) relabels the code
    object of ``Service.__new__``'s local ``fn`` through ``types.CodeType(argcount, kwonlyargcount, nlocals, ...)``,
    the pre-3.8 signature (3.8 added posonlyargcount), so it raises TypeError while ``get_service`` builds the class,
    before any request. The method it returns is named ``fn_name``, takes ``fn_args`` (``self`` then the service's
    inputs in ``inputParameterDefinitions`` order) and runs ``fn``'s body: collect each declared input by name into
    ``props`` and return ``self._consume(props)``. This does exactly that with a closure; ``fn`` itself (which reads
    its arguments through ``locals()``) cannot be reused.
    """
    signature = inspect.Signature(
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in fn_args]
    )

    def method(*args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(*args, **kwargs).arguments
        self = arguments["self"]
        props = {}
        for key in self._service.get("inputParameterDefinitions", {}):
            props[key.get("name")] = arguments[key.get("name")]
        return self._consume(props)

    method.__name__ = method.__qualname__ = fn_name
    method.__doc__ = doc
    method.__signature__ = signature  # type: ignore[attr-defined]
    return method


@pytest.fixture(scope="module")
def sdk_service(api: httpx.Client) -> str:
    # Published through our own HTTP API; the SDK only reads and consumes it.
    publish(api, SERVICE, SEED_CODE, SEED_INIT, outputFileNames=["Histogram.png"], operationId=OPERATION)
    return SERVICE


@pytest.fixture
def deploy_client(server: RunningServer) -> Iterator[Any]:
    from azureml.deploy import DeployClient
    from azureml.deploy.server import MLServer

    client = DeployClient(server.url, use=MLServer, auth=("admin", server.admin_password))
    http_client = client._http_client
    yield client
    http_client.close()


@pytest.fixture
def service(deploy_client: Any, sdk_service: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    import azureml.deploy.server.service

    monkeypatch.setattr(azureml.deploy.server.service, "function_beget", function_beget)
    return deploy_client.get_service(sdk_service, version=VERSION)


def test_the_unpatched_sdk_cannot_build_its_consume_method(deploy_client: Any, sdk_service: str) -> None:
    # Why the stand-in exists: if this ever passes unpatched, drop function_beget above.
    with pytest.raises(TypeError, match=r"code expected at least \d+ arguments, got 13"):
        deploy_client.get_service(sdk_service, version=VERSION)


def test_login_and_get_service(deploy_client: Any, service: Any, server: RunningServer) -> None:
    assert deploy_client._http_client.authorization.startswith("Bearer ")
    capabilities = service.capabilities()
    assert capabilities["api"] == f"/api/{SERVICE}/{VERSION}"
    assert capabilities["name"] == SERVICE
    assert capabilities["version"] == VERSION
    assert capabilities["operation_id"] == OPERATION
    assert capabilities["artifacts"] == ["Histogram.png"]
    assert [i["name"] for i in capabilities["inputs"]] == ["hp", "wt"]
    assert capabilities["swagger"] == f"{server.url}/api/{SERVICE}/{VERSION}/swagger.json"
    assert list(inspect.signature(getattr(service, OPERATION)).parameters) == ["hp", "wt"]


def test_consume(service: Any) -> None:
    response = getattr(service, OPERATION)(120, 2.8)
    assert not response.error
    assert response.output("answer") == pytest.approx(0.6418125, abs=1e-6)
    assert response.artifact("Histogram.png").startswith(PNG_MAGIC)


def test_batch_of_all_mtcars_rows(service: Any, tmp_path: Path) -> None:
    records = mtcars_records()
    batch = service.batch(records, parallel_count=5).start()
    assert batch.execution_id
    assert batch.execution_id in service.list_batch_executions()

    deadline = time.monotonic() + BATCH_TIMEOUT
    results = batch.results()
    while results.state.lower() != "complete":
        assert results.state.lower() not in ("failed", "canceled"), str(results)
        assert time.monotonic() < deadline, f"batch {batch.execution_id} not complete after {BATCH_TIMEOUT} s"
        time.sleep(POLL_SECONDS)
        results = batch.results()

    assert results.execution_id == batch.execution_id
    assert results.completed_item_count == results.total_item_count == len(records)
    expected = local_predictions()
    for index, prediction in enumerate(expected):
        execution = results.execution(index)
        assert not execution.error, execution.error
        assert execution.outputs == {"answer": pytest.approx(prediction, abs=1e-9)}
        assert execution.output("answer") == pytest.approx(prediction, abs=1e-9)

    assert batch.list_artifacts(0) == ["Histogram.png"]
    assert batch.artifact(0, "Histogram.png").startswith(PNG_MAGIC)
    # Positional: the SDK's @execution guard (service.py:495-500) drops keyword arguments, so destination= is lost.
    paths = batch.download(0, "Histogram.png", str(tmp_path))
    assert paths == [str(tmp_path / "Histogram.png")]
    assert (tmp_path / "Histogram.png").read_bytes().startswith(PNG_MAGIC)

    # The same execution found again by id, as a later session would.
    again = service.get_batch(batch.execution_id).results()
    assert again.state.lower() == "complete"
    assert again.execution(len(records) - 1).output("answer") == pytest.approx(expected[-1], abs=1e-9)
