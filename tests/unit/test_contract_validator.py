"""ContractValidator and ValidatingTransport: wrong requests and wrong responses are caught, right ones pass."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

import batchscore
from batchscore.testing import ContractValidator, ContractViolation, ValidatingTransport

BASE = "http://batchscore.test"
BATCH = f"{BASE}/api/mtService/v1.0.0/batch/9c6be3d2"
SERVICE = {
    "name": "mtService",
    "version": "v1.0.0",
    "versionPublishedBy": "admin",
    "creationTime": "2026-11-25T20:15:00Z",
    "runtimeType": "Python",
    "code": "answer = hp",
    "operationId": "manualTransmission",
    "inputParameterDefinitions": [{"name": "hp", "type": "numeric"}],
    "outputParameterDefinitions": [{"name": "answer", "type": "numeric"}],
    "outputFileNames": [],
    "myPermissionOnService": "read/write",
}
STATUS = {
    "state": "complete",
    "completedItemCount": 1,
    "totalItemCount": 1,
    "failedItemCount": 0,
    "runningItemCount": 0,
    "canceledItemCount": 0,
    "batchExecutionResults": [
        {
            "index": 0,
            "itemState": "complete",
            "success": True,
            "errorMessage": "",
            "consoleOutput": "",
            "changedFiles": [],
            "outputParameters": {"answer": 1.0},
        }
    ],
    "cursor": "1",
    "hasMore": False,
}


@pytest.fixture(scope="module")
def validator() -> ContractValidator:
    return ContractValidator(base_path="/")


def violation(check: Callable[[], object]) -> ContractViolation:
    with pytest.raises(ContractViolation) as caught:
        check()
    return caught.value


def test_a_valid_request_names_its_operation(validator: ContractValidator) -> None:
    request = httpx.Request("GET", BATCH, params={"since": "0", "limit": 10})
    assert validator.check_request(request).operation_id == "GetBatchExecutionStatus"


def test_an_undeclared_query_parameter_is_a_violation(validator: ContractValidator) -> None:
    request = httpx.Request("GET", BATCH, params={"parallel_count": "3"})
    error = violation(lambda: validator.check_request(request))
    assert error.operation_id == "GetBatchExecutionStatus"
    assert "'parallel_count' is not declared" in str(error)


def test_a_query_value_against_its_schema(validator: ContractValidator) -> None:
    error = violation(lambda: validator.check_request(httpx.Request("GET", BATCH, params={"limit": "0"})))
    assert "limit" in error.problem
    error = violation(lambda: validator.check_request(httpx.Request("GET", BATCH, params={"since": "abc"})))
    assert "since" in error.problem


def test_an_unknown_path_or_method_is_a_violation(validator: ContractValidator) -> None:
    assert "no path" in str(violation(lambda: validator.check_request(httpx.Request("GET", f"{BASE}/nowhere"))))
    wrong_method = violation(lambda: validator.check_request(httpx.Request("PUT", f"{BASE}/services/a/b")))
    assert "only GET, POST, DELETE, PATCH" in str(wrong_method)


def test_a_wrong_body_type_is_a_violation(validator: ContractValidator) -> None:
    login = httpx.Request("POST", f"{BASE}/login", json={"username": 1, "password": "x"})
    error = violation(lambda: validator.check_request(login))
    assert error.operation_id == "login"
    assert "$.username" in error.problem
    unknown_media = httpx.Request("POST", f"{BASE}/login", content=b"x", headers={"Content-Type": "text/plain"})
    assert "Content-Type 'text/plain'" in str(violation(lambda: validator.check_request(unknown_media)))


def test_batch_bodies_in_every_media_type(validator: ContractValidator) -> None:
    url = f"{BASE}/api/mtService/v1.0.0/batch"
    ndjson = {"Content-Type": "application/x-ndjson"}
    assert validator.check_request(httpx.Request("POST", url, content=b'{"hp": 1}\n\n{"hp": 2}\n', headers=ndjson))
    csv_request = httpx.Request("POST", url, content=b"hp,wt\n1,2\n", headers={"Content-Type": "text/csv"})
    assert validator.check_request(csv_request).operation_id == "StartBatchExecution"
    bad_line = httpx.Request("POST", url, content=b'{"hp": 1}\n[1, 2]\n', headers=ndjson)
    assert "line 2" in violation(lambda: validator.check_request(bad_line)).problem
    empty_array = httpx.Request("POST", url, json=[])
    assert "request body" in violation(lambda: validator.check_request(empty_array)).problem
    long_key = httpx.Request("POST", url, json=[{"hp": 1}], headers={"Idempotency-Key": "k" * 256})
    assert "Idempotency-Key" in violation(lambda: validator.check_request(long_key)).problem


def test_responses_are_checked(validator: ContractValidator) -> None:
    request = httpx.Request("GET", BATCH)
    validator.check_response(request, httpx.Response(200, json=STATUS, headers={"Retry-After": "1"}))
    wrong_state = violation(
        lambda: validator.check_response(request, httpx.Response(200, json={**STATUS, "state": "done"}))
    )
    assert wrong_state.operation_id == "GetBatchExecutionStatus"
    assert "$.state" in wrong_state.problem
    undocumented = violation(lambda: validator.check_response(request, httpx.Response(409, json={"code": 409})))
    assert "status 409 is not documented" in str(undocumented)
    bad_hint = httpx.Response(200, json=STATUS, headers={"Retry-After": "-1"})
    assert "Retry-After" in violation(lambda: validator.check_response(request, bad_hint)).problem
    deleted = httpx.Request("DELETE", f"{BASE}/services/mtService/v1.0.0")
    assert "has no body" in violation(lambda: validator.check_response(deleted, httpx.Response(200, json={}))).problem


def test_extra_statuses_are_accepted_with_an_error_body() -> None:
    lenient = ContractValidator(extra_statuses={503})
    request = httpx.Request("GET", f"{BASE}/services")
    lenient.check_response(request, httpx.Response(503, json={"code": 503, "message": "restarting"}))
    assert "$" in violation(lambda: lenient.check_response(request, httpx.Response(503, json=[]))).problem


def handler(request: httpx.Request) -> httpx.Response:
    """A hand-written mock of a server, wrong only where the test asks it to be."""
    path = request.url.path
    if path == "/services/mtService/v1.0.0":
        return httpx.Response(200, json=[SERVICE])
    if path == "/api/mtService/v1.0.0/batch":
        assert request.headers["content-type"] == "application/x-ndjson"
        assert [json.loads(line) for line in request.read().splitlines()] == [{"hp": 1.0}, {"hp": 2.0}]
        body = {"batchExecutionId": "b1", "BatchExecutionId": "b1", "name": "mtService", "version": "v1.0.0"}
        return httpx.Response(202, json=body)
    if path == "/api/mtService/v1.0.0/batch/b1":
        return httpx.Response(200, json={**STATUS, "completedItemCount": "one"})  # a wrong type
    return httpx.Response(404, json={"code": 404, "message": "not found"})


def test_the_transport_checks_a_client_sync_and_async() -> None:
    transport = ValidatingTransport(httpx.MockTransport(handler))
    with batchscore.Client(BASE, token="t", transport=transport) as client:
        batch = client.get_service("mtService", "v1.0.0").batch([{"hp": 1.0}, {"hp": 2.0}]).start()
        assert batch.id == "b1"  # the streamed NDJSON body reached the handler whole
        error = violation(batch.results)
    assert error.operation_id == "GetBatchExecutionStatus"
    assert "completedItemCount" in error.problem

    async def run() -> None:
        async with batchscore.AsyncClient(BASE, token="t", transport=transport) as client:
            service = await client.get_service("mtService", "v1.0.0")
            with pytest.raises(ContractViolation):
                await service.get_batch("b1").results()

    asyncio.run(run())


def test_every_operation_is_found_by_its_own_path(validator: ContractValidator) -> None:
    for operation in validator.operations:
        url = BASE + operation.path.replace("{index}", "0").replace("{", "").replace("}", "")
        found, _ = validator.operation(operation.method, url)
        assert found.operation_id == operation.operation_id
    assert len(validator.operations) == 34


def test_the_transport_can_check_requests_only() -> None:
    """For answers that imitate another server on purpose (ML Server 9.2's), only the client's side is held."""
    old_server = {"state": "Complete", "completedItemCount": 1, "totalItemCount": 1, "batchExecutionResults": []}
    mock = httpx.MockTransport(lambda request: httpx.Response(200, json=old_server))
    with httpx.Client(transport=ValidatingTransport(mock)) as http, pytest.raises(ContractViolation, match="1 more"):
        http.get(BATCH)  # five missing counters, and the state's case
    requests_only = ValidatingTransport(mock, check_responses=False)
    with httpx.Client(transport=requests_only) as http:
        assert http.get(BATCH).json()["state"] == "Complete"
        with pytest.raises(ContractViolation, match="'bogus' is not declared"):
            http.get(BATCH, params={"bogus": "1"})


def test_a_base_path_is_stripped_by_whole_segments() -> None:
    prefixed = ContractValidator(base_path="/ml/")
    assert prefixed.operation("POST", f"{BASE}/ml/login")[0].operation_id == "login"
    assert "base path /ml" in str(violation(lambda: prefixed.operation("POST", f"{BASE}/mlx/login")))


def test_a_contract_given_as_a_document_and_its_required_response_header() -> None:
    document = {
        "openapi": "3.1.0",
        "paths": {
            "/things": {
                "get": {
                    "operationId": "listThings",
                    "responses": {
                        "200": {
                            "description": "The things.",
                            "headers": {"X-Total": {"required": True, "schema": {"type": "integer"}}},
                        }
                    },
                }
            }
        },
    }
    things = ContractValidator(document)
    request = httpx.Request("GET", f"{BASE}/things")
    things.check_response(request, httpx.Response(200, headers={"X-Total": "3"}))
    assert "lacks header X-Total" in str(violation(lambda: things.check_response(request, httpx.Response(200))))
    wrong = httpx.Response(200, headers={"X-Total": "many"})
    assert "X-Total = 'many'" in violation(lambda: things.check_response(request, wrong)).problem
