"""The generated client, sync and async, calls every operation against the Prism mock of the contract.

Each response must have the documented status, parse into the documented model, and validate against the
contract's own response schema; malformed requests must be refused by the mock's validation.
"""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from batchscore_client import AuthenticatedClient, Client
from batchscore_client.api.authentication import login, renew_token, revoke_refresh_token
from batchscore_client.api.batch import (
    cancel_and_delete_batch_execution,
    cancel_batch_execution,
    export_batch_execution_results,
    get_batch_execution_file,
    get_batch_execution_files,
    get_batch_execution_status,
    get_batch_executions,
    list_batch_executions,
    retry_batch_execution,
    start_batch_execution,
)
from batchscore_client.api.consume import consume_web_service, get_web_service_swagger
from batchscore_client.api.services import (
    delete_web_service_version,
    get_all_web_service_versions_by_name,
    get_all_web_services,
    get_web_service_version,
    patch_web_service_version,
    publish_web_service,
    publish_web_service_version,
)
from batchscore_client.api.sessions import close_session, create_session, list_workspace_objects, set_workspace_object
from batchscore_client.api.snapshots import create_snapshot, delete_snapshot, list_snapshots
from batchscore_client.api.status import status
from batchscore_client.api.webhooks import (
    get_webhook_secret,
    list_batch_webhook_deliveries,
    redeliver_batch_webhook,
    rotate_webhook_secret,
)
from batchscore_client.models import (
    AccessTokenResponse,
    BatchExecutionList,
    BatchExecutionSummary,
    BatchState,
    BatchWebServiceResult,
    CreateSessionRequest,
    CreateSessionResponse,
    CreateSnapshotRequest,
    CreateSnapshotResponse,
    Error,
    GetWebServiceSwaggerResponse200,
    InputParameters,
    LoginRequest,
    ParameterDefinition,
    ParameterType,
    PublishWebServiceRequest,
    RenewTokenRequest,
    RuntimeType,
    ServiceDefinitionFields,
    StartBatchExecutionResponse,
    StatusResponse,
    WebhookDelivery,
    WebhookSecret,
    WebService,
    WebServiceResult,
)
from batchscore_client.types import File, Response
from tests._contract import contract, operations, resolve
from tests.contract.test_operations import EXPECTED_OPERATIONS

pytestmark = pytest.mark.contract

NAME, VERSION, EXECUTION = "mtService", "v1.0.0", "9c6be3d2-1f5e-4a8b-9a0e-3f2d1c0b9a87"
SESSION, SNAPSHOT = "85b1ecd8-f5a5-42ce-87f3-5b7be97665ae", "8fac71e8-92a9-4959-a679-4376e5aab20d"
SEED_PUBLISH = PublishWebServiceRequest(
    code="answer = manual_transmission(hp, wt)",
    runtime_type=RuntimeType.PYTHON,
    snapshot_id=SNAPSHOT,
    operation_id="manualTransmission",
    input_parameter_definitions=[
        ParameterDefinition(name="hp", type_=ParameterType.NUMERIC),
        ParameterDefinition(name="wt", type_=ParameterType.NUMERIC),
    ],
    output_parameter_definitions=[ParameterDefinition(name="answer", type_=ParameterType.NUMERIC)],
    output_file_names=["Histogram.png"],
)


def record(**values: Any) -> InputParameters:
    return InputParameters.from_dict(values)


@dataclass(frozen=True)
class Call:
    """One operation called through the generated client, and what the mock must answer."""

    operation_id: str
    module: ModuleType
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    parsed: type | tuple[type, ...] | None = None
    authenticated: bool = True


PICKLED_ONE = b"\x80\x05K\x01."


def body_file(content: bytes = PICKLED_ONE, *, for_async: bool, mime_type: str = "application/octet-stream") -> File:
    # The generated code hands File.payload to httpx as `content`. httpx.AsyncClient refuses a sync file object
    # ("Attempted to send an sync request"), so an async upload through the generated client needs bytes (or an
    # async iterable, which is what the SDK passes).
    payload: Any = content if for_async else io.BytesIO(content)
    return File(payload=payload, file_name="cars_model", mime_type=mime_type)


RECORDS_NDJSON = b'{"hp":110,"wt":2.62}\n{"hp":93,"wt":2.32}\n'


CALLS = [
    Call(
        "login",
        login,
        kwargs={"body": LoginRequest(username="admin", password="pw")},
        parsed=AccessTokenResponse,
        authenticated=False,
    ),
    Call(
        "renewToken",
        renew_token,
        kwargs={"body": RenewTokenRequest(refresh_token="rt_1")},
        parsed=AccessTokenResponse,
        authenticated=False,
    ),
    Call("revokeRefreshToken", revoke_refresh_token, kwargs={"refresh_token": "rt_1"}, authenticated=False),
    Call("getAllWebServices", get_all_web_services, parsed=list),
    Call("getAllWebServiceVersionsByName", get_all_web_service_versions_by_name, (NAME,), parsed=list),
    Call("publishWebService", publish_web_service, (NAME,), {"body": SEED_PUBLISH}, status=201, parsed=str),
    Call("getWebServiceVersion", get_web_service_version, (NAME, VERSION), parsed=list),
    Call(
        "publishWebServiceVersion",
        publish_web_service_version,
        (NAME, VERSION),
        {"body": SEED_PUBLISH},
        status=201,
        parsed=str,
    ),
    Call(
        "patchWebServiceVersion",
        patch_web_service_version,
        (NAME, VERSION),
        {"body": ServiceDefinitionFields(description="refit")},
        parsed=str,
    ),
    Call("deleteWebServiceVersion", delete_web_service_version, (NAME, VERSION)),
    Call(
        "createSession",
        create_session,
        kwargs={"body": CreateSessionRequest(runtime_type=RuntimeType.PYTHON)},
        status=201,
        parsed=CreateSessionResponse,
    ),
    Call("closeSession", close_session, (SESSION,)),
    Call("listWorkspaceObjects", list_workspace_objects, (SESSION,), parsed=list),
    Call("setWorkspaceObject", set_workspace_object, (SESSION, "cars_model")),  # body: see _kwargs
    Call(
        "CreateSnapshot",
        create_snapshot,
        (SESSION,),
        {"body": CreateSnapshotRequest(name="m")},
        status=201,
        parsed=CreateSnapshotResponse,
    ),
    Call("ListSnapshots", list_snapshots, parsed=list),
    Call("DeleteSnapshot", delete_snapshot, (SNAPSHOT,)),
    Call(
        "ConsumeWebService",
        consume_web_service,
        (NAME, VERSION),
        {"body": record(hp=120, wt=2.8)},
        parsed=WebServiceResult,
    ),
    Call("GetWebServiceSwagger", get_web_service_swagger, (NAME, VERSION), parsed=GetWebServiceSwaggerResponse200),
    Call(
        "StartBatchExecution",
        start_batch_execution,
        (NAME, VERSION),
        {
            # The generated start sends NDJSON bytes (see tools/generate_client.py); _kwargs gives each call a body.
            "parallel_count": 5,
            "item_timeout": 30.0,
            "idempotency_key": "contract-test",
        },
        status=202,
        parsed=StartBatchExecutionResponse,
    ),
    Call("GetBatchExecutions", get_batch_executions, (NAME, VERSION), parsed=list),
    Call(
        "GetBatchExecutionStatus",
        get_batch_execution_status,
        (NAME, VERSION, EXECUTION),
        {"show_partial_results": True, "since": "0", "limit": 100},
        parsed=BatchWebServiceResult,
    ),
    Call("CancelAndDeleteBatchExecution", cancel_and_delete_batch_execution, (NAME, VERSION, EXECUTION), parsed=list),
    Call("CancelBatchExecution", cancel_batch_execution, (NAME, VERSION, EXECUTION), parsed=BatchExecutionSummary),
    Call(
        "RetryBatchExecution",
        retry_batch_execution,
        (NAME, VERSION, EXECUTION),
        status=202,
        parsed=BatchExecutionSummary,
    ),
    Call("GetBatchExecutionFiles", get_batch_execution_files, (NAME, VERSION, EXECUTION, 0), parsed=list),
    Call(
        "GetBatchExecutionFile", get_batch_execution_file, (NAME, VERSION, EXECUTION, 0, "Histogram.png"), parsed=File
    ),
    Call("status", status, parsed=StatusResponse, authenticated=False),
    # Issue 15.
    Call(
        "ListBatchExecutions",
        list_batch_executions,
        kwargs={"state": BatchState.INPROGRESS, "service": NAME, "label": ["team=risk"], "limit": 10},
        parsed=BatchExecutionList,
    ),
    Call("ExportBatchExecutionResults", export_batch_execution_results, (NAME, VERSION, EXECUTION), parsed=bytes),
    Call("ListBatchWebhookDeliveries", list_batch_webhook_deliveries, (NAME, VERSION, EXECUTION), parsed=list),
    Call(
        "RedeliverBatchWebhook",
        redeliver_batch_webhook,
        (NAME, VERSION, EXECUTION, "msg_2b7kQw1mX9"),
        status=202,
        parsed=WebhookDelivery,
    ),
    Call("GetWebhookSecret", get_webhook_secret, parsed=WebhookSecret),
    Call("RotateWebhookSecret", rotate_webhook_secret, parsed=WebhookSecret),
]


def _kwargs(call: Call, *, for_async: bool = False) -> dict[str, Any]:
    # A File wraps a stream that one request consumes, so every request gets a fresh one.
    if call.operation_id == "setWorkspaceObject":
        return {"body": body_file(for_async=for_async)}
    if call.operation_id == "StartBatchExecution":
        # The generated start labels the body with File.mime_type (the SDK's own: NDJSON or CSV).
        body = body_file(RECORDS_NDJSON, for_async=for_async, mime_type="application/x-ndjson")
        return {**call.kwargs, "body": body}
    return call.kwargs


def _client(base_url: str, authenticated: bool) -> Client | AuthenticatedClient:
    if authenticated:
        return AuthenticatedClient(base_url=base_url, token="contract-test", raise_on_unexpected_status=True)
    return Client(base_url=base_url, raise_on_unexpected_status=True)


def _response_schema(operation_id: str, status_code: int) -> dict[str, Any] | None:
    for _, _, operation, _ in operations():
        if operation["operationId"] == operation_id:
            response = resolve(operation["responses"][str(status_code)])
            content = response.get("content", {})
            return content["application/json"]["schema"] if "application/json" in content else None
    raise AssertionError(operation_id)


def _check(call: Call, response: Response[Any]) -> None:
    assert response.status_code == call.status, response.content[:500]
    if call.parsed is None:
        assert response.parsed is None
    else:
        assert isinstance(response.parsed, call.parsed), type(response.parsed)
    schema = _response_schema(call.operation_id, call.status)
    if schema is not None:
        validator = Draft202012Validator({**schema, "components": contract()["components"]})
        errors = [error.message for error in validator.iter_errors(json.loads(response.content))]
        assert not errors, errors


def test_every_operation_is_called() -> None:
    assert sorted(call.operation_id for call in CALLS) == sorted(EXPECTED_OPERATIONS.values())


@pytest.mark.parametrize("call", CALLS, ids=lambda call: call.operation_id)
def test_sync_round_trip(prism_url: str, call: Call) -> None:
    with _client(prism_url, call.authenticated) as client:
        response = call.module.sync_detailed(*call.args, client=client, **_kwargs(call))
    _check(call, response)


@pytest.mark.parametrize("call", CALLS, ids=lambda call: call.operation_id)
def test_async_round_trip(prism_url: str, call: Call) -> None:
    async def run() -> Response[Any]:
        async with _client(prism_url, call.authenticated) as client:
            result: Response[Any] = await call.module.asyncio_detailed(
                *call.args, client=client, **_kwargs(call, for_async=True)
            )
            return result

    _check(call, asyncio.run(run()))


def test_models_carry_the_example_values(prism_url: str) -> None:
    with _client(prism_url, True) as client:
        services = get_all_web_services.sync(client=client)
        batch = get_batch_execution_status.sync(NAME, VERSION, EXECUTION, client=client)
    assert isinstance(services, list)
    assert isinstance(services[0], WebService)
    assert [p.name for p in services[0].input_parameter_definitions] == ["hp", "wt"]
    assert isinstance(batch, BatchWebServiceResult)
    assert batch.state is BatchState.INPROGRESS
    assert batch.batch_execution_results[0].index == 0
    assert batch.batch_execution_results[0].output_parameters["answer"] == pytest.approx(0.6418125)


# -- the mock validates requests: malformed ones never get a 2xx -------------------------------------------------


def test_missing_token_is_401(prism_url: str) -> None:
    with Client(base_url=prism_url) as client:
        response = get_all_web_services.sync_detailed(client=client)
    assert response.status_code == 401
    assert isinstance(response.parsed, Error)


@pytest.mark.parametrize(
    ("label", "request_kwargs"),
    [
        ("parallelCount 0", {"params": {"parallelCount": 0}, "json": [{"hp": 1}]}),
        ("empty batch", {"json": []}),
        ("batch body is not an array", {"json": {"hp": 1}}),
        ("itemTimeout negative", {"params": {"itemTimeout": -1}, "json": [{"hp": 1}]}),
    ],
)
def test_malformed_batch_start_is_refused(prism_url: str, label: str, request_kwargs: dict[str, Any]) -> None:
    with httpx.Client(base_url=prism_url, headers={"Authorization": "Bearer contract-test"}) as http:
        response = http.post(f"/api/{NAME}/{VERSION}/batch", **request_kwargs)
    assert response.status_code == 422, label
    assert Error.from_dict(response.json()).code == 422


def test_malformed_login_is_refused(prism_url: str) -> None:
    with Client(base_url=prism_url) as client:
        response = login.sync_detailed(client=client, body=LoginRequest(username="admin", password=""))
    assert response.status_code == 422
    assert isinstance(response.parsed, Error)


def test_path_traversal_in_a_file_name_is_refused(prism_url: str) -> None:
    with httpx.Client(base_url=prism_url, headers={"Authorization": "Bearer contract-test"}) as http:
        response = http.get(f"/api/{NAME}/{VERSION}/batch/{EXECUTION}/0/files/..%2F..%2Fetc%2Fpasswd")
    assert response.status_code == 422


def test_the_schema_check_catches_a_wrong_answer() -> None:
    # Guards the checker itself: ML Server 9.2's "Complete" and a missing counter must not pass as valid.
    schema = _response_schema("GetBatchExecutionStatus", 200)
    assert schema is not None
    validator = Draft202012Validator({**schema, "components": contract()["components"]})
    wrong = {"state": "Complete", "completedItemCount": 1, "totalItemCount": 1, "batchExecutionResults": []}
    messages = [error.message for error in validator.iter_errors(wrong)]
    assert any("'Complete' is not one of" in message for message in messages)
    assert any("'failedItemCount' is a required property" in message for message in messages)
