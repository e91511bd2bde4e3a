"""House rules every operation of the contract follows (documentation, errors, auth, examples, links)."""

from __future__ import annotations

from typing import Any

import pytest

from tests._contract import contract, operations, resolve

OPEN_OPERATIONS = {"login", "renewToken", "revokeRefreshToken", "status"}
ERROR_REF = "#/components/schemas/Error"
BODY_LIMITED = {
    "publishWebService",
    "publishWebServiceVersion",
    "patchWebServiceVersion",
    "setWorkspaceObject",
    "ConsumeWebService",
    "StartBatchExecution",
}

# These name a resource in the path without needing it to exist: publishing creates it, and the version list of
# an unknown name is empty (ML Server's behaviour).
CREATES_OR_LISTS_BY_NAME = {"publishWebService", "publishWebServiceVersion", "getAllWebServiceVersionsByName"}

# The example names every 2xx answer with a body has: one `Prefer: example=<scenario>` header drives the Prism mock
# through a whole batch workflow (the first, `inProgress`, is also what Prism answers without the header).
MOCK_SCENARIOS = ("inProgress", "complete", "failed", "canceled", "hasMore")

ALL = [pytest.param(op, params, id=op["operationId"]) for _, _, op, params in operations()]


def all_parameters(operation: dict[str, Any], path_parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [resolve(p) for p in [*path_parameters, *operation.get("parameters", [])]]


@pytest.mark.parametrize(("operation", "path_parameters"), ALL)
def test_operation_is_documented(operation: dict[str, Any], path_parameters: list[dict[str, Any]]) -> None:
    for key in ("operationId", "summary", "description", "tags"):
        assert operation.get(key), f"missing {key}"
    for parameter in all_parameters(operation, path_parameters):
        assert parameter.get("description"), f"parameter {parameter['name']} has no description"
        assert "example" in parameter or "examples" in parameter, f"parameter {parameter['name']} has no example"


@pytest.mark.parametrize(("operation", "path_parameters"), ALL)
def test_every_response_has_an_example(operation: dict[str, Any], path_parameters: list[dict[str, Any]]) -> None:
    for status, response in operation["responses"].items():
        for media_type, media in resolve(response).get("content", {}).items():
            assert "example" in media or "examples" in media, f"{status} {media_type} has no example"
    body = resolve(operation.get("requestBody", {}))
    for media_type, media in body.get("content", {}).items():
        assert "example" in media or "examples" in media, f"request {media_type} has no example"


@pytest.mark.parametrize(("operation", "path_parameters"), ALL)
def test_every_answer_plays_every_mock_scenario(
    operation: dict[str, Any], path_parameters: list[dict[str, Any]]
) -> None:
    # Prism answers `Prefer: example=<key>` with its own 404 when the operation has no example of that name (no
    # fallback to the first one), and a client sends one Prefer header on every request: one missing key breaks
    # the whole scenario for an integrator.
    for status, response in operation["responses"].items():
        if not status.startswith("2"):
            continue
        for media_type, media in resolve(response).get("content", {}).items():
            missing = [key for key in MOCK_SCENARIOS if key not in media.get("examples", {})]
            assert not missing, f"{status} {media_type} has no example named {missing}"


def test_batch_status_scenarios_end_as_named() -> None:
    operation = next(op for _, _, op, _ in operations() if op["operationId"] == "GetBatchExecutionStatus")
    examples = operation["responses"]["200"]["content"]["application/json"]["examples"]
    values = {key: resolve(example)["value"] for key, example in examples.items()}
    assert next(iter(values)) == "inProgress", "the first example is Prism's default: a batch still running"
    for key in ("inProgress", "complete", "failed", "canceled"):
        assert values[key]["state"] == key
        assert values[key]["hasMore"] is False, key
    assert values["hasMore"]["hasMore"] is True
    for key in ("complete", "failed", "canceled"):
        value = values[key]
        assert value["runningItemCount"] == 0, key
        # wait() returns every row of a finished batch: the results must cover the batch.
        indexes = [result["index"] for result in value["batchExecutionResults"]]
        assert indexes == list(range(value["totalItemCount"])), key
    assert values["failed"]["errorMessage"]


@pytest.mark.parametrize(
    ("operation_id", "status"),
    [
        ("GetBatchExecutionStatus", "200"),  # a poll of a running batch: when to poll again
        ("StartBatchExecution", "409"),  # the same Idempotency-Key is still being received: when to send again
    ],
)
def test_the_servers_retry_after_answers_are_documented(operation_id: str, status: str) -> None:
    # Where server/batchscore_server sends Retry-After today; it sends no 429 and no 503 at all.
    operation = next(op for _, _, op, _ in operations() if op["operationId"] == operation_id)
    assert "Retry-After" in resolve(operation["responses"][status]).get("headers", {})


@pytest.mark.parametrize(("operation", "path_parameters"), ALL)
def test_retry_later_answers_say_when(operation: dict[str, Any], path_parameters: list[dict[str, Any]]) -> None:
    # The SDK retries 429 and 503 after the server's Retry-After: a documented one must say it is sent.
    for status in ("429", "503"):
        if status in operation["responses"]:
            assert "Retry-After" in resolve(operation["responses"][status]).get("headers", {}), status


@pytest.mark.parametrize(("operation", "path_parameters"), ALL)
def test_errors_use_the_error_schema(operation: dict[str, Any], path_parameters: list[dict[str, Any]]) -> None:
    for status, response in operation["responses"].items():
        if int(status) >= 400:
            content = resolve(response)["content"]
            assert list(content) == ["application/json"], status
            assert content["application/json"]["schema"] == {"$ref": ERROR_REF}, status


@pytest.mark.parametrize(("operation", "path_parameters"), ALL)
def test_auth_is_required_except_on_login_and_status(
    operation: dict[str, Any], path_parameters: list[dict[str, Any]]
) -> None:
    if operation["operationId"] in OPEN_OPERATIONS:
        assert operation.get("security") == []
    else:
        assert "security" not in operation, "secured operations inherit the global bearerAuth requirement"
        assert "401" in operation["responses"]
    assert contract()["security"] == [{"bearerAuth": []}]


@pytest.mark.parametrize(("operation", "path_parameters"), ALL)
def test_bad_input_statuses_are_documented(operation: dict[str, Any], path_parameters: list[dict[str, Any]]) -> None:
    takes_input = bool(all_parameters(operation, path_parameters) or operation.get("requestBody"))
    if takes_input:
        assert {"400", "422"} <= set(operation["responses"]), "an operation with input documents 400 and 422"
    names_a_resource = any(p["in"] == "path" for p in all_parameters(operation, path_parameters))
    if names_a_resource and operation["operationId"] not in CREATES_OR_LISTS_BY_NAME:
        assert "404" in operation["responses"], "an operation on a named resource documents 404"
    if operation["operationId"] in BODY_LIMITED:
        assert "413" in operation["responses"], "an operation with a large body documents 413"


def test_links_point_at_real_operations_and_parameters() -> None:
    by_id = {op["operationId"]: (op, params) for _, _, op, params in operations()}
    seen = 0
    for _, _, operation, _ in operations():
        for response in operation["responses"].values():
            for name, link in resolve(response).get("links", {}).items():
                seen += 1
                assert link["operationId"] in by_id, name
                target, target_path_parameters = by_id[link["operationId"]]
                names = {p["name"] for p in all_parameters(target, target_path_parameters)}
                assert set(link.get("parameters", {})) <= names, name
                required_path = {p["name"] for p in all_parameters(target, target_path_parameters) if p["in"] == "path"}
                assert required_path <= set(link.get("parameters", {})), f"{name} leaves a path parameter unset"
    assert seen >= 20


@pytest.mark.parametrize(
    ("operation_id", "targets"),
    [
        (
            "StartBatchExecution",
            {
                "GetBatchExecutionStatus",
                "CancelBatchExecution",
                "RetryBatchExecution",
                "GetBatchExecutionFiles",
                "CancelAndDeleteBatchExecution",
            },
        ),
        ("publishWebService", {"getWebServiceVersion", "ConsumeWebService", "deleteWebServiceVersion"}),
        ("publishWebServiceVersion", {"getWebServiceVersion", "ConsumeWebService", "deleteWebServiceVersion"}),
    ],
)
def test_stateful_links_exist(operation_id: str, targets: set[str]) -> None:
    operation = next(op for _, _, op, _ in operations() if op["operationId"] == operation_id)
    linked = {
        link["operationId"]
        for response in operation["responses"].values()
        for link in resolve(response).get("links", {}).values()
    }
    assert targets <= linked


def test_extensions_are_marked() -> None:
    schemas = contract()["components"]["schemas"]
    summary = schemas["BatchExecutionSummary"]["properties"]
    for field in ("failedItemCount", "runningItemCount", "canceledItemCount"):
        assert "**Extension.**" in summary[field]["description"], field
    for status in ("failed", "canceled"):
        assert status in schemas["BatchState"]["enum"]
    assert "**Extensions:**" in schemas["BatchState"]["description"]
