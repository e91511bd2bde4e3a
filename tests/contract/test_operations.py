"""The contract's operation list is pinned, and the generated client has a module for every operation."""

from __future__ import annotations

import importlib
import re

import pytest

from tests._contract import operations

# Adding an operation means adding it here; removing one must be a deliberate, visible change.
EXPECTED_OPERATIONS = {
    ("post", "/login"): "login",
    ("post", "/login/refreshToken"): "renewToken",
    ("delete", "/login/refreshToken"): "revokeRefreshToken",
    ("get", "/services"): "getAllWebServices",
    ("get", "/services/{name}"): "getAllWebServiceVersionsByName",
    ("post", "/services/{name}"): "publishWebService",
    ("get", "/services/{name}/{version}"): "getWebServiceVersion",
    ("post", "/services/{name}/{version}"): "publishWebServiceVersion",
    ("patch", "/services/{name}/{version}"): "patchWebServiceVersion",
    ("delete", "/services/{name}/{version}"): "deleteWebServiceVersion",
    ("post", "/sessions"): "createSession",
    ("delete", "/sessions/{id}"): "closeSession",
    ("get", "/sessions/{id}/workspace"): "listWorkspaceObjects",
    ("post", "/sessions/{id}/workspace/{objectName}"): "setWorkspaceObject",
    ("post", "/sessions/{id}/snapshot"): "CreateSnapshot",
    ("get", "/snapshots"): "ListSnapshots",
    ("delete", "/snapshots/{id}"): "DeleteSnapshot",
    ("post", "/api/{name}/{version}"): "ConsumeWebService",
    ("get", "/api/{name}/{version}/swagger.json"): "GetWebServiceSwagger",
    ("post", "/api/{name}/{version}/batch"): "StartBatchExecution",
    ("get", "/api/{name}/{version}/batch"): "GetBatchExecutions",
    ("get", "/api/{name}/{version}/batch/{executionId}"): "GetBatchExecutionStatus",
    ("delete", "/api/{name}/{version}/batch/{executionId}"): "CancelAndDeleteBatchExecution",
    ("post", "/api/{name}/{version}/batch/{executionId}/cancel"): "CancelBatchExecution",
    ("post", "/api/{name}/{version}/batch/{executionId}/retry"): "RetryBatchExecution",
    ("get", "/api/{name}/{version}/batch/{executionId}/{index}/files"): "GetBatchExecutionFiles",
    ("get", "/api/{name}/{version}/batch/{executionId}/{index}/files/{fileName}"): "GetBatchExecutionFile",
    ("get", "/status"): "status",
    # Issue 15: the batch list, the streamed export, webhooks.
    ("get", "/batches"): "ListBatchExecutions",
    ("get", "/api/{name}/{version}/batch/{executionId}/results"): "ExportBatchExecutionResults",
    ("get", "/api/{name}/{version}/batch/{executionId}/webhooks"): "ListBatchWebhookDeliveries",
    ("post", "/api/{name}/{version}/batch/{executionId}/webhooks/{deliveryId}/redeliver"): "RedeliverBatchWebhook",
    ("get", "/webhooks/secret"): "GetWebhookSecret",
    ("post", "/webhooks/secret"): "RotateWebhookSecret",
}


def snake_case(operation_id: str) -> str:
    """The module name openapi-python-client gives an operationId."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", operation_id).lower()


def test_the_operation_list_is_pinned() -> None:
    found = {(method, path): op["operationId"] for method, path, op, _ in operations()}
    assert found == EXPECTED_OPERATIONS


@pytest.mark.parametrize(("method", "path", "operation"), [(m, p, o) for m, p, o, _ in operations()])
def test_every_operation_has_a_generated_module(method: str, path: str, operation: dict[str, object]) -> None:
    tag = str(operation["tags"][0]).lower()  # type: ignore[index]
    module = importlib.import_module(f"batchscore_client.api.{tag}.{snake_case(str(operation['operationId']))}")
    for function in ("sync", "sync_detailed", "asyncio", "asyncio_detailed"):
        assert callable(getattr(module, function)), f"{method.upper()} {path}: no {function}()"
