"""The per-service OpenAPI document, cut from the contract itself so it can never disagree with it.

It keeps the contract's ``/login*`` operations and every operation under ``/api/{name}/{version}``, with the name
and version written into the paths, the consume operation named by the service's operationId, and
``InputParameters``/``OutputParameters`` typed by the service's own definitions. Request bodies keep only their
JSON form: generators (openapi-python-client among them) emit broken code for alternative media types, and this
document exists to generate application clients (the NDJSON and CSV batch bodies stay in the main contract).
"""

from __future__ import annotations

import copy
from typing import Any

from batchscore_server._contract import contract as _contract
from batchscore_server._contract import with_server

_JSON_SCHEMA_OF_TYPE: dict[str, dict[str, Any]] = {
    "logical": {"type": "boolean"},
    "numeric": {"type": "number"},
    "integer": {"type": "integer"},
    "character": {"type": "string"},
    "vector": {"type": "array", "items": {}},
    "matrix": {"type": "array", "items": {"type": "array", "items": {}}},
    "data.frame": {"type": "object", "additionalProperties": {"type": "array", "items": {}}},
}
_SERVICE_PREFIX = "/api/{name}/{version}"
_PATH_PARAMETER_REFS = ("#/components/parameters/ServiceName", "#/components/parameters/ServiceVersion")
_JSON = "application/json"


def _typed_object(definitions: list[dict[str, str]], *, required: bool, description: str) -> dict[str, Any]:
    properties = {d["name"]: {**_JSON_SCHEMA_OF_TYPE[d["type"]], "description": d["type"]} for d in definitions}
    schema: dict[str, Any] = {"type": "object", "description": description, "properties": properties}
    if required and definitions:
        schema["required"] = [d["name"] for d in definitions]
    return schema


def _narrow_operation(operation: dict[str, Any]) -> None:
    body = operation.get("requestBody", {})
    if _JSON in body.get("content", {}):
        body["content"] = {_JSON: body["content"][_JSON]}
    for response in operation.get("responses", {}).values():
        for link in response.get("links", {}).values():
            for name in ("name", "version"):
                link.get("parameters", {}).pop(name, None)


def service_document(service: dict[str, Any], server_url: str) -> dict[str, Any]:
    """Build the OpenAPI 3.1 document of one service version; blocking (the contract is read on first use).

    Args:
        service: The contract's ``WebService`` object of the version.
        server_url: The server's URL as the caller reached it (the document's only server).

    Returns:
        The document: login, consume (named by the service's operationId), batch and files operations, with the
        service's inputs and outputs as schemas.

    """
    contract = copy.deepcopy(_contract())
    name, version = service["name"], service["version"]
    paths: dict[str, Any] = {}
    for path, item in contract["paths"].items():
        if path.startswith("/login"):
            paths[path] = item
        elif path.startswith(_SERVICE_PREFIX):
            item["parameters"] = [p for p in item.get("parameters", []) if p.get("$ref") not in _PATH_PARAMETER_REFS]
            if not item["parameters"]:
                del item["parameters"]
            paths[f"/api/{name}/{version}{path.removeprefix(_SERVICE_PREFIX)}"] = item
    for item in paths.values():
        for key, operation in item.items():
            if key != "parameters":
                _narrow_operation(operation)
    consume = paths[f"/api/{name}/{version}"]["post"]
    consume["operationId"] = service.get("operationId") or "consume"
    consume["description"] = f"Consume the {name} web service. {consume['description']}"
    schemas = contract["components"]["schemas"]
    schemas["InputParameters"] = _typed_object(
        service["inputParameterDefinitions"], required=True, description=f"The inputs of {name} {version}."
    )
    schemas["OutputParameters"] = _typed_object(
        service["outputParameterDefinitions"], required=False, description=f"The outputs of {name} {version}."
    )
    # Examples in the contract show the seed's inputs; another service's inputs would not match them.
    for item in paths.values():
        for key, operation in item.items():
            if key != "parameters" and "requestBody" in operation:
                for media in operation["requestBody"]["content"].values():
                    if "InputParameters" in str(media.get("schema")):
                        media.pop("example", None)
    contract["components"].pop("requestBodies", None)  # the publish body, which this document has no use for
    contract["info"] = {
        "title": name,
        "version": version,
        "description": service.get("description") or f"The {name} web service, version {version}.",
    }
    contract["tags"] = [t for t in contract["tags"] if t["name"] in ("Authentication", "Consume", "Batch")]
    contract["paths"] = paths
    return with_server(contract, server_url)
