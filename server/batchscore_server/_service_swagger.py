"""The per-service OpenAPI 3 document: one service version's consume and batch operations, typed by its inputs."""

from __future__ import annotations

from typing import Any

_JSON_SCHEMA_OF_TYPE: dict[str, dict[str, Any]] = {
    "logical": {"type": "boolean"},
    "numeric": {"type": "number"},
    "integer": {"type": "integer"},
    "character": {"type": "string"},
    "vector": {"type": "array", "items": {}},
    "matrix": {"type": "array", "items": {"type": "array", "items": {}}},
    "data.frame": {"type": "object", "additionalProperties": {"type": "array", "items": {}}},
}


def _object(definitions: list[dict[str, str]], *, required: bool) -> dict[str, Any]:
    properties = {d["name"]: {**_JSON_SCHEMA_OF_TYPE[d["type"]], "description": d["type"]} for d in definitions}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required and definitions:
        schema["required"] = [d["name"] for d in definitions]
    return schema


def service_document(service: dict[str, Any]) -> dict[str, Any]:
    """Build the OpenAPI 3.1 document of one service version.

    Args:
        service: The contract's ``WebService`` object of the version.

    Returns:
        An OpenAPI document with the consume operation (named by the service's operationId) and the batch
        operations, whose schemas carry the service's own inputs and outputs.

    """
    name, version = service["name"], service["version"]
    base = f"/api/{name}/{version}"
    error = {"$ref": "#/components/schemas/Error"}
    json_error = {"description": "Error.", "content": {"application/json": {"schema": error}}}
    path_id = {"name": "executionId", "in": "path", "required": True, "schema": {"type": "string"}}
    result_ref = {"$ref": "#/components/schemas/WebServiceResult"}
    return {
        "openapi": "3.1.0",
        "info": {"title": name, "version": version, "description": service.get("description", "")},
        "security": [{"bearerAuth": []}],
        "paths": {
            "/login": {
                "post": {
                    "operationId": "login",
                    "security": [],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["username", "password"],
                                    "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Tokens.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["access_token"],
                                        "properties": {
                                            "access_token": {"type": "string"},
                                            "refresh_token": {"type": "string"},
                                            "token_type": {"type": "string"},
                                        },
                                    }
                                }
                            },
                        },
                        "401": json_error,
                    },
                }
            },
            base: {
                "post": {
                    "operationId": service.get("operationId") or "consume",
                    "description": f"Consume the {name} web service.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InputParameters"}}},
                    },
                    "responses": {
                        "200": {"description": "OK", "content": {"application/json": {"schema": result_ref}}},
                        "400": json_error,
                        "401": json_error,
                    },
                }
            },
            f"{base}/batch": {
                "post": {
                    "operationId": "StartBatchExecution",
                    "parameters": [
                        {"name": "parallelCount", "in": "query", "schema": {"type": "integer", "minimum": 1}}
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"type": "array", "items": {"$ref": "#/components/schemas/InputParameters"}}
                            }
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "Accepted",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["batchExecutionId"],
                                        "properties": {"batchExecutionId": {"type": "string"}},
                                    }
                                }
                            },
                        },
                        "400": json_error,
                        "401": json_error,
                    },
                },
                "get": {
                    "operationId": "GetBatchExecutions",
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"application/json": {"schema": {"type": "array", "items": {"type": "string"}}}},
                        },
                        "401": json_error,
                    },
                },
            },
            f"{base}/batch/{{executionId}}": {
                "get": {
                    "operationId": "GetBatchExecutionStatus",
                    "parameters": [
                        path_id,
                        {"name": "showPartialResults", "in": "query", "schema": {"type": "boolean"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/BatchWebServiceResult"}}
                            },
                        },
                        "404": json_error,
                    },
                },
                "delete": {
                    "operationId": "CancelAndDeleteBatchExecution",
                    "parameters": [path_id],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"application/json": {"schema": {"type": "array", "items": {"type": "string"}}}},
                        },
                        "404": json_error,
                    },
                },
            },
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "InputParameters": _object(service["inputParameterDefinitions"], required=True),
                "OutputParameters": _object(service["outputParameterDefinitions"], required=False),
                "WebServiceResult": {
                    "type": "object",
                    "required": ["success"],
                    "properties": {
                        "success": {"type": "boolean"},
                        "errorMessage": {"type": "string"},
                        "consoleOutput": {"type": "string"},
                        "changedFiles": {"type": "array", "items": {"type": "string"}},
                        "outputParameters": {"$ref": "#/components/schemas/OutputParameters"},
                        "index": {"type": "integer"},
                    },
                },
                "BatchWebServiceResult": {
                    "type": "object",
                    "required": ["state", "completedItemCount", "totalItemCount"],
                    "properties": {
                        "state": {"type": "string"},
                        "completedItemCount": {"type": "integer"},
                        "totalItemCount": {"type": "integer"},
                        "batchExecutionResults": {"type": "array", "items": result_ref},
                    },
                },
                "Error": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "integer"},
                        "message": {"type": "string"},
                        "field": {"type": "string"},
                    },
                },
            },
        },
    }
