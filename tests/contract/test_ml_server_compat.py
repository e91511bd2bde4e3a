"""Wire compatibility with ML Server 9.3, checked against its real Swagger files (tests/data/ml-server/).

Every ML Server operation batchscore implements keeps its path, method, operationId, parameter names and success
status; every field of ML Server's payload schemas is still there with a compatible type; ML Server's batch
states are all still states.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests._contract import contract, operations, resolve

DATA = Path(__file__).resolve().parent.parent / "data" / "ml-server"
PER_SERVICE_PREFIX = "/api/mtService1540132934/v1.0.0"
SWAGGER_TYPES_TO_JSON_SCHEMA = {"string": "string", "integer": "integer", "boolean": "boolean", "array": "array"}

# ML Server operations that batchscore implements (ML Server has more: session code execution, realtime services,
# service pools, compute-node configuration, which are out of scope).
IMPLEMENTED_CORE = {
    ("post", "/login"),
    ("post", "/login/refreshToken"),
    ("delete", "/login/refreshToken"),
    ("get", "/services"),
    ("get", "/services/{name}"),
    ("post", "/services/{name}"),
    ("get", "/services/{name}/{version}"),
    ("post", "/services/{name}/{version}"),
    ("patch", "/services/{name}/{version}"),
    ("delete", "/services/{name}/{version}"),
    ("post", "/sessions"),
    ("delete", "/sessions/{id}"),
    ("get", "/sessions/{id}/workspace"),
    ("post", "/sessions/{id}/workspace/{objectName}"),
    ("post", "/sessions/{id}/snapshot"),
    ("get", "/snapshots"),
    ("delete", "/snapshots/{id}"),
    ("get", "/api/{name}/{version}/swagger.json"),
    ("get", "/status"),
}

# Same-named schemas: ML Server schema -> ours.
SCHEMA_PAIRS = [
    ("core", "LoginRequest", "LoginRequest"),
    ("core", "RenewTokenRequest", "RenewTokenRequest"),
    ("core", "AccessTokenResponse", "AccessTokenResponse"),
    ("core", "ParameterDefinition", "ParameterDefinition"),
    ("core", "PublishWebServiceRequest", "PublishWebServiceRequest"),
    ("core", "WebService", "WebService"),
    ("core", "CreateSessionRequest", "CreateSessionRequest"),
    ("core", "CreateSessionResponse", "CreateSessionResponse"),
    ("core", "CreateSnapshotRequest", "CreateSnapshotRequest"),
    ("core", "CreateSnapshotResponse", "CreateSnapshotResponse"),
    ("core", "Snapshot", "Snapshot"),
    ("core", "StatusResponse", "StatusResponse"),
    ("service", "WebServiceResult", "WebServiceResult"),
    ("service", "StartBatchExecutionResponse", "StartBatchExecutionResponse"),
    ("service", "BatchWebServiceResult", "BatchWebServiceResult"),
]


@cache
def ml_server(kind: str) -> dict[str, Any]:
    name = "mlserver-core-9.3.0.json" if kind == "core" else "per-service-example-9.3.json"
    loaded: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return loaded


def ml_operations() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, item in ml_server("core")["paths"].items():
        for method, op in item.items():
            if (method, path) in IMPLEMENTED_CORE:
                found.append((method, path, op))
    for path, item in ml_server("service")["paths"].items():
        if path.startswith(PER_SERVICE_PREFIX):
            ours = "/api/{name}/{version}" + path.removeprefix(PER_SERVICE_PREFIX)
            for method, op in item.items():
                found.append((method, ours, op))
    return found


def ours(method: str, path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    for our_method, our_path, op, path_parameters in operations():
        if (our_method, our_path) == (method, path):
            return op, [resolve(p) for p in [*path_parameters, *op.get("parameters", [])]]
    raise AssertionError(f"{method.upper()} {path} is missing from the contract")


def test_every_implemented_core_operation_is_checked() -> None:
    checked = {(m, p) for m, p, _ in ml_operations()}
    assert checked >= IMPLEMENTED_CORE
    assert len(checked) == len(IMPLEMENTED_CORE) + 7  # consume + the six batch operations


@pytest.mark.parametrize(("method", "path", "ml_op"), ml_operations(), ids=lambda v: v if isinstance(v, str) else "")
def test_ml_server_operation_is_kept(method: str, path: str, ml_op: dict[str, Any]) -> None:
    op, parameters = ours(method, path)
    if path != "/api/{name}/{version}":  # the consume operationId is each service's alias in ML Server
        assert op["operationId"] == ml_op["operationId"]
    our_names = {(p["in"], p["name"]) for p in parameters}
    for ml_parameter in ml_op.get("parameters", []):
        if ml_parameter["in"] in ("path", "query", "header"):
            assert (ml_parameter["in"], ml_parameter["name"]) in our_names, ml_parameter["name"]
            if ml_parameter.get("required"):
                ours_required = next(p for p in parameters if p["name"] == ml_parameter["name"]).get("required")
                assert ours_required, f"{ml_parameter['name']} must stay required"
        else:
            assert "requestBody" in op, f"ML Server sends a body to {method.upper()} {path}"
    ml_success = {s for s in ml_op["responses"] if s.startswith("2")}
    our_success = {s for s in op["responses"] if s.startswith("2")}
    assert ml_success == our_success


def _json_types(schema: dict[str, Any]) -> set[str]:
    schema = resolve(schema)
    if "allOf" in schema:
        return set.union(*(_json_types(part) for part in schema["allOf"]))
    if "anyOf" in schema:
        return set.union(*(_json_types(part) for part in schema["anyOf"]))
    kind = schema.get("type", "object")
    return set(kind) if isinstance(kind, list) else {kind}


def _properties(schema: dict[str, Any]) -> dict[str, Any]:
    schema = resolve(schema)
    merged = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        merged.update(_properties(part))
    return merged


@pytest.mark.parametrize(("kind", "ml_name", "our_name"), SCHEMA_PAIRS)
def test_ml_server_fields_are_kept(kind: str, ml_name: str, our_name: str) -> None:
    ml_properties = ml_server(kind)["definitions"][ml_name]["properties"]
    our_properties = _properties(contract()["components"]["schemas"][our_name])
    for field, ml_schema in ml_properties.items():
        assert field in our_properties, f"{our_name}.{field} is missing"
        ml_type = SWAGGER_TYPES_TO_JSON_SCHEMA.get(ml_schema.get("type", "object"), "object")
        assert ml_type in _json_types(our_properties[field]), f"{our_name}.{field} changed type"
        if "enum" in ml_schema and ml_name != "WebService":  # WebService.runtimeType also lists Realtime: kept
            assert set(ml_schema["enum"]) <= set(resolve(our_properties[field]).get("enum", ml_schema["enum"]))


def test_ml_server_batch_states_are_all_states() -> None:
    ml_states = ml_server("service")["definitions"]["BatchWebServiceResult"]["properties"]["state"]["enum"]
    assert set(ml_states) <= set(contract()["components"]["schemas"]["BatchState"]["enum"])


def test_old_client_spellings_are_documented() -> None:
    start = contract()["components"]["schemas"]["StartBatchExecutionResponse"]
    assert {"batchExecutionId", "BatchExecutionId"} <= set(start["required"])
    _, parameters = ours("get", "/api/{name}/{version}/batch/{executionId}")
    names = {p["name"] for p in parameters}
    assert {"showPartialResults", "showPartialResult"} <= names
