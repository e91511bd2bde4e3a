"""Every contract operation, and the public SDK method that reaches it (or why none does).

Each case runs the SDK method, sync and async, against a transport that answers every request with the contract's
own example for the operation it matched (by method and path template), and checks the operation was reached.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._contract import contract, operations, resolve
from tests.unit._harness import Harness

NAME, VERSION = "mtService", "v1.0.0"
EXECUTION = "ea4d9a3a-8c99-43c8-a416-d1c5dff3c70e"
RECORDS = [{"hp": 110.0, "wt": 2.62}, {"hp": 93.0, "wt": 2.32}]


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")


ROUTES = [(method.upper(), _pattern(path), op) for method, path, op, _ in operations()]


def _example(response: dict[str, Any]) -> tuple[str | None, Any]:
    for media_type, content in resolve(response).get("content", {}).items():
        if "example" in content:
            return media_type, content["example"]
        for example in content.get("examples", {}).values():
            return media_type, resolve(example)["value"]
        return media_type, None
    return None, None


@dataclass
class ExampleServer:
    """Answers each request with the contract's first 2xx example of the operation it matches."""

    reached: list[str] = field(default_factory=list)
    expired_once: bool = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        operation = next(
            (op for method, pattern, op in ROUTES if request.method == method and pattern.match(request.url.path)),
            None,
        )
        if operation is None:
            raise AssertionError(f"{request.method} {request.url.path} is no operation of the contract")
        self.reached.append(operation["operationId"])
        if self.expired_once and request.headers.get("Authorization") == "Bearer expired":
            self.expired_once = False
            return httpx.Response(401, json={"code": 401, "message": "expired", "field": "Authorization"})
        status, response = next((s, r) for s, r in operation["responses"].items() if s.startswith("2"))
        media_type, example = _example(response)
        if media_type is None:
            return httpx.Response(int(status))
        if media_type == "application/json":
            return httpx.Response(int(status), json=example)
        return httpx.Response(int(status), content=str(example).encode(), headers={"Content-Type": media_type})


def _service(h: Harness, server: ExampleServer, **options: Any) -> Any:
    return h.run(h.client(server, **options).get_service(NAME, VERSION))


def _batch(h: Harness, server: ExampleServer) -> Any:
    return _service(h, server).get_batch(EXECUTION)


# operationId -> what reaches it, as (SDK call, expected). None: why no public SDK method reaches the operation.
def _cases(tmp_path: Path) -> dict[str, Callable[[Harness, ExampleServer], Any] | str]:
    def cars_model() -> dict[str, int]:
        return {"coefficient": 1}

    return {
        "login": lambda h, s: h.run(h.client(s, token=None, username="admin", password="pw").login()),
        "renewToken": lambda h, s: h.run(h.client(s, token="expired", refresh_token="r1").list_services()),
        "revokeRefreshToken": "tokens end with their lifetime; the CLI's logout forgets them locally",
        "getAllWebServices": lambda h, s: h.run(h.client(s).list_services()),
        "getAllWebServiceVersionsByName": lambda h, s: h.run(h.client(s).get_service(NAME)),
        "publishWebService": "without a version the SDK names the next one itself (v1, v2, ...): it publishes with "
        "publishWebServiceVersion, never under the server's random version",
        "getWebServiceVersion": lambda h, s: _service(h, s),
        "publishWebServiceVersion": lambda h, s: h.run(
            h.client(s).publish_service(NAME, "answer = 1", version=VERSION, outputs={"answer": float})
        ),
        "patchWebServiceVersion": lambda h, s: h.run(h.client(s).update_service(NAME, VERSION, description="new")),
        "deleteWebServiceVersion": lambda h, s: h.run(h.client(s).delete_service(NAME, VERSION)),
        "createSession": lambda h, s: _publish_with_models(h, s, cars_model()),
        "closeSession": lambda h, s: _publish_with_models(h, s, cars_model()),
        "listWorkspaceObjects": "publishing uploads objects and snapshots them; it never lists a workspace",
        "setWorkspaceObject": lambda h, s: _publish_with_models(h, s, cars_model()),
        "CreateSnapshot": lambda h, s: _publish_with_models(h, s, cars_model()),
        "ListSnapshots": "snapshots are temporary: publishing deletes its own once the service is published",
        "DeleteSnapshot": lambda h, s: _publish_with_models(h, s, cars_model()),
        "ConsumeWebService": lambda h, s: h.run(_service(h, s).consume(120.0, 2.8)),
        "GetWebServiceSwagger": lambda h, s: h.run(_service(h, s).swagger()),
        "StartBatchExecution": lambda h, s: h.run(_service(h, s).batch(RECORDS).start()),
        "GetBatchExecutions": lambda h, s: h.run(_service(h, s).get_batch_executions()),
        "GetBatchExecutionStatus": lambda h, s: h.run(_batch(h, s).results()),
        "CancelAndDeleteBatchExecution": lambda h, s: h.run(_batch(h, s).delete()),
        "CancelBatchExecution": lambda h, s: h.run(_batch(h, s).cancel()),
        "RetryBatchExecution": lambda h, s: h.run(_batch(h, s).retry_failed()),
        "GetBatchExecutionFiles": lambda h, s: h.run(_batch(h, s).list_artifacts(0)),
        "GetBatchExecutionFile": lambda h, s: h.run(_batch(h, s).download(0, "Histogram.png", dest=tmp_path)),
        "ExportBatchExecutionResults": lambda h, s: h.run(_batch(h, s).export(tmp_path / "results.ndjson")),
        "ListBatchExecutions": lambda h, s: h.collect(h.client(s).list_batches(state="inProgress", labels={"a": "b"})),
        "status": "server health is for operators and load balancers (GET /status), not for applications; Batch.start "
        "reads its maxBodyBytes for a body over 1 MiB (tests/unit/test_upload_body.py)",
        "GetWebhookSecret": lambda h, s: h.run(h.client(s).webhook_secret()),
        "RotateWebhookSecret": lambda h, s: h.run(h.client(s).rotate_webhook_secret()),
        "ListBatchWebhookDeliveries": lambda h, s: h.run(_batch(h, s).webhook_deliveries()),
        "RedeliverBatchWebhook": lambda h, s: h.run(_batch(h, s).redeliver_webhook("msg_2b7kQw1mX9")),
    }


def _publish_with_models(h: Harness, server: ExampleServer, model: object) -> Any:
    client = h.client(server)
    return h.run(client.publish_service(NAME, "answer = 1", models={"cars_model": model}, outputs={"answer": float}))


@pytest.fixture(params=["sync", "async"])
def h(request: pytest.FixtureRequest) -> Iterator[Harness]:
    harness = Harness(request.param)
    yield harness
    harness.close()


def test_every_operation_is_listed(tmp_path: Path) -> None:
    listed = set(_cases(tmp_path))
    in_contract = {op["operationId"] for _, _, op, _ in operations()}
    assert listed == in_contract


@pytest.mark.parametrize("operation_id", sorted(op["operationId"] for _, _, op, _ in operations()))
def test_the_sdk_reaches_the_operation(h: Harness, tmp_path: Path, operation_id: str) -> None:
    case = _cases(tmp_path)[operation_id]
    if isinstance(case, str):
        pytest.skip(f"no SDK method: {case}")
    server = ExampleServer(expired_once=operation_id == "renewToken")

    case(h, server)

    assert operation_id in server.reached


def test_examples_are_json_where_the_sdk_parses_them() -> None:
    # The cases above rely on the contract's examples; a contract without them would make the test vacuous.
    status_op = next(op for _, _, op, _ in operations() if op["operationId"] == "GetBatchExecutionStatus")
    media_type, example = _example(status_op["responses"]["200"])
    assert media_type == "application/json"
    assert json.loads(json.dumps(example))["batchExecutionResults"]
    assert contract()["openapi"].startswith("3.1")
