"""Checking HTTP traffic against the contract: ``ContractValidator``, ``ContractViolation``, ``ValidatingTransport``.

The contract is the one shipped inside ``batchscore_client`` (``openapi.yaml``, a copy of
``openapi/batchscore.yaml``), so the checks follow the same document the generated client was built from.
Schemas are checked with ``jsonschema`` (Draft 2020-12, the dialect of OpenAPI 3.1), ``$ref``s resolved into the
contract through a ``referencing`` registry.
"""

from __future__ import annotations

import csv
import functools
import importlib
import io
import json
import os
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx

CONTRACT_URI = "urn:batchscore:contract"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_INSTALL_HINT = "pip install 'batchscore[testing]'"
# Media types whose bodies are bytes the contract says nothing about beyond their type: never parsed.
_BINARY_TYPES = frozenset({"application/octet-stream"})


def optional_module(name: str) -> Any:
    """Import one of the testing kit's optional dependencies, or say how to install it.

    Returned as ``Any``: the kit calls only a few well-known functions of ``jsonschema`` and ``yaml``.

    Raises:
        ImportError: The module is not installed; the message names the extra to install.

    """
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise ImportError(f"batchscore.testing needs {name}: {_INSTALL_HINT}") from error


class ContractViolation(AssertionError):
    """A request or response does not follow the contract.

    An ``AssertionError``, so pytest reports it as a failed test (not an error in the test's setup), and an SDK
    never mistakes it for a network problem to retry.

    Attributes:
        operation_id: The contract operation concerned (None when no operation matches the request).
        problem: What is wrong, without the operation's name.

    """

    def __init__(self, operation_id: str | None, problem: str) -> None:
        super().__init__(f"{operation_id or 'no operation'}: {problem}")
        self.operation_id = operation_id
        self.problem = problem


@dataclass(frozen=True)
class Operation:
    """One operation of the contract, with every ``$ref`` of its own objects followed.

    Attributes:
        operation_id: Its ``operationId``.
        method: The HTTP method, upper case.
        path: The path template, e.g. ``/api/{name}/{version}``.
        pointer: The JSON pointer of the operation object in the contract.
        parameters: ``(location, name)`` to ``(parameter object, pointer of its schema)``.
        request_body: The request body object (None when the operation takes none) and its pointer.
        responses: Status key (``"200"``, ``"4XX"``, ``"default"``) to ``(response object, its pointer)``.
        public: Whether the operation needs no bearer token (``security: []``).

    """

    operation_id: str
    method: str
    path: str
    pointer: str
    parameters: Mapping[tuple[str, str], tuple[Mapping[str, Any], str]]
    request_body: tuple[Mapping[str, Any], str] | None
    responses: Mapping[str, tuple[Mapping[str, Any], str]]
    public: bool = False
    _segments: tuple[str, ...] = field(repr=False, default=())

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """The path parameters when the URL's segments fit this operation's template, else None."""
        if len(segments) != len(self._segments):
            return None
        found: dict[str, str] = {}
        for template, actual in zip(self._segments, segments, strict=True):
            if template.startswith("{") and template.endswith("}"):
                if not actual:
                    return None
                found[template[1:-1]] = unquote(actual)
            elif template != actual:
                return None
        return found

    @property
    def literal_segments(self) -> int:
        """How many segments are fixed text: the more, the more specific the template."""
        return sum(1 for part in self._segments if not part.startswith("{"))


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def media_type(content_type: str | None) -> str:
    """``application/json`` from ``application/json; charset=utf-8`` (lower case; empty when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json(kind: str) -> bool:
    return kind == "application/json" or kind.endswith("+json")


class ContractValidator:
    """Checks requests and responses against the OpenAPI contract.

    Args:
        contract: The contract: a parsed document, a path to a YAML/JSON file, or None for the one shipped with
            ``batchscore_client``.
        base_path: The path the API is mounted under in the URLs checked (``/`` for ``http://host/``).
        extra_statuses: Statuses accepted for any operation although the contract does not document them
            (e.g. ``{503}`` for a test of the SDK's retries); their bodies must still be the ``Error`` schema.

    Example:
        >>> validator = ContractValidator()
        >>> validator.check_request(request, body)
        >>> validator.check_response(request, response)

    """

    def __init__(
        self,
        contract: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        *,
        base_path: str = "/",
        extra_statuses: Collection[int] = (),
    ) -> None:
        self.document: Mapping[str, Any] = self._load(contract)
        self.base_path = "/" + base_path.strip("/")
        self.extra_statuses = frozenset(extra_statuses)
        self.operations: list[Operation] = list(self._operations())
        # The most specific template wins: /api/{name}/{version}/batch before /api/{name}/{version}/{x}.
        self.operations.sort(key=lambda operation: -operation.literal_segments)
        self._validators: dict[str, Any] = {}

    @classmethod
    def shipped(cls) -> ContractValidator:
        """One shared validator for the shipped contract: parsed once, its compiled schemas reused by every user."""
        return _shipped_validator()

    @staticmethod
    def _load(contract: Mapping[str, Any] | str | os.PathLike[str] | None) -> Mapping[str, Any]:
        if isinstance(contract, Mapping):
            return contract
        if contract is None:
            text = resources.files("batchscore_client").joinpath("openapi.yaml").read_text(encoding="utf-8")
        else:
            text = Path(contract).read_text(encoding="utf-8")
        yaml = optional_module("yaml")
        # libyaml's loader when PyYAML has it: the pure-Python one takes most of a second for the contract.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        loaded: Mapping[str, Any] = yaml.load(text, Loader=loader)  # a safe loader: SafeLoader or CSafeLoader
        return loaded

    # -- reading the contract ------------------------------------------------------------------------------------

    def resolve(self, node: Any, pointer: str) -> tuple[Any, str]:
        """Follow local ``$ref``s from ``node`` (found at ``pointer``); return the target and its pointer."""
        seen = set()
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#"):
            pointer = node["$ref"][1:]
            if pointer in seen:
                raise ValueError(f"the contract's $ref {pointer} loops")
            seen.add(pointer)
            node = self.document
            for token in pointer.lstrip("/").split("/"):
                key = token.replace("~1", "/").replace("~0", "~")
                node = node[int(key)] if isinstance(node, list) else node[key]
        return node, pointer

    def _operations(self) -> Iterator[Operation]:
        for path, item in self.document.get("paths", {}).items():
            item_pointer = f"/paths/{_escape(path)}"
            shared = item.get("parameters", [])
            for method in _METHODS:
                if method not in item:
                    continue
                pointer = f"{item_pointer}/{method}"
                operation = item[method]
                parameters: dict[tuple[str, str], tuple[Mapping[str, Any], str]] = {}
                # Operation-level parameters override path-level ones with the same name and location.
                for source, base in ((shared, f"{item_pointer}/parameters"), (operation.get("parameters", []), None)):
                    for position, raw in enumerate(source):
                        where = f"{base or pointer + '/parameters'}/{position}"
                        parameter, resolved = self.resolve(raw, where)
                        parameters[(parameter["in"], parameter["name"])] = (parameter, f"{resolved}/schema")
                body = None
                if "requestBody" in operation:
                    body = self.resolve(operation["requestBody"], f"{pointer}/requestBody")
                responses = {
                    str(status): self.resolve(response, f"{pointer}/responses/{status}")
                    for status, response in operation.get("responses", {}).items()
                }
                yield Operation(
                    operation_id=operation.get("operationId", f"{method.upper()} {path}"),
                    method=method.upper(),
                    path=path,
                    pointer=pointer,
                    parameters=parameters,
                    request_body=body,
                    responses=responses,
                    public=operation.get("security", self.document.get("security")) == [],
                    _segments=tuple(path.strip("/").split("/")),
                )

    @cached_property
    def _registry(self) -> Any:
        referencing = optional_module("referencing")
        specifications = optional_module("referencing.jsonschema")
        resource = referencing.Resource.from_contents(
            dict(self.document), default_specification=specifications.DRAFT202012
        )
        return referencing.Registry().with_resource(CONTRACT_URI, resource)

    def schema_errors(self, instance: Any, schema_pointer: str) -> list[str]:
        """What is wrong with ``instance`` against the schema at ``schema_pointer`` (empty when it is valid)."""
        validator = self._validators.get(schema_pointer)
        if validator is None:
            jsonschema = optional_module("jsonschema")
            draft = jsonschema.Draft202012Validator
            schema = self._inlined({"$ref": f"#{schema_pointer}"}, ())
            validator = draft(schema, registry=self._registry, format_checker=draft.FORMAT_CHECKER)
            self._validators[schema_pointer] = validator
        errors = sorted(validator.iter_errors(instance), key=lambda error: list(error.absolute_path))
        shown = [f"{error.json_path}: {error.message}" for error in errors[:5]]
        return shown + ([f"and {len(errors) - 5} more"] if len(errors) > 5 else [])

    def _inlined(self, node: Any, stack: tuple[str, ...]) -> Any:
        """A schema with its local ``$ref``s replaced by their targets; a recursive one stays, made absolute.

        jsonschema resolving each ``$ref`` through the registry took most of the time of checking a batch status.
        """
        if isinstance(node, list):
            return [self._inlined(item, stack) for item in node]
        if not isinstance(node, Mapping):
            return node
        ref = node.get("$ref")
        if not (isinstance(ref, str) and ref.startswith("#")):
            return {key: self._inlined(value, stack) for key, value in node.items()}
        siblings = {key: self._inlined(value, stack) for key, value in node.items() if key != "$ref"}
        if ref[1:] in stack:
            return {**siblings, "$ref": CONTRACT_URI + ref}
        target, _ = self.resolve({"$ref": ref}, ref[1:])
        inlined = self._inlined(target, (*stack, ref[1:]))
        return {"allOf": [inlined], **siblings} if siblings else inlined

    def _schema_at(self, pointer: str) -> Mapping[str, Any]:
        node, _ = self.resolve({"$ref": "#" + pointer}, pointer)
        schema, _ = self.resolve(node, pointer)
        return schema if isinstance(schema, Mapping) else {}

    # -- finding the operation -----------------------------------------------------------------------------------

    def operation(self, method: str, url: httpx.URL | str) -> tuple[Operation, dict[str, str]]:
        """The operation a request is for, and its path parameters.

        Raises:
            ContractViolation: No operation of the contract has this method and path.

        """
        path = httpx.URL(url).raw_path.decode("ascii").split("?", 1)[0]
        if self.base_path != "/":
            if path != self.base_path and not path.startswith(self.base_path + "/"):
                raise ContractViolation(None, f"{method} {path} is not under the API's base path {self.base_path}")
            path = path[len(self.base_path) :]
        segments = path.strip("/").split("/")
        allowed = []
        for operation in self.operations:
            found = operation.match(segments)
            if found is None:
                continue
            if operation.method == method.upper():
                return operation, found
            allowed.append(operation.method)
        if allowed:
            raise ContractViolation(None, f"{method} {path}: the contract has only {', '.join(allowed)} on this path")
        raise ContractViolation(None, f"{method} {path}: no path of the contract matches")

    # -- requests ------------------------------------------------------------------------------------------------

    def check_request(self, request: httpx.Request, body: bytes | None = None) -> Operation:
        """Check a request: its operation, path and query parameters, declared headers and body.

        Args:
            request: The request.
            body: Its body; read from the request when None (the request must have been read).

        Returns:
            The operation the request is for.

        Raises:
            ContractViolation: Naming the operation and what is wrong.

        """
        operation, path_values = self.operation(request.method, request.url)
        for name, raw in path_values.items():
            self._check_parameter(operation, "path", name, raw)
        declared_query = {name for (where, name) in operation.parameters if where == "query"}
        query = request.url.params
        for name in query:
            if name not in declared_query:
                listed = ", ".join(sorted(declared_query)) or "none"
                raise ContractViolation(
                    operation.operation_id, f"query parameter {name!r} is not declared (declared: {listed})"
                )
            values = query.get_list(name)
            _, schema_pointer = operation.parameters[("query", name)]
            if self._schema_at(schema_pointer).get("type") == "array":
                # form style, exploded (the contract's only array style): one repeat per item
                self._check_array_parameter(operation, name, values)
                continue
            if len(values) > 1:
                raise ContractViolation(
                    operation.operation_id, f"query parameter {name!r} is given {len(values)} times"
                )
            self._check_parameter(operation, "query", name, values[0])
        for (where, name), (parameter, _) in operation.parameters.items():
            if where not in ("query", "header"):
                continue
            present = name in query if where == "query" else name in request.headers
            if parameter.get("required") and not present:
                raise ContractViolation(operation.operation_id, f"required {where} parameter {name!r} is missing")
            if where == "header" and present:
                self._check_parameter(operation, "header", name, request.headers[name])
        self._check_request_body(operation, request, request.content if body is None else body)
        return operation

    def _check_array_parameter(self, operation: Operation, name: str, raw: list[str]) -> None:
        _, schema_pointer = operation.parameters[("query", name)]
        items = self._schema_at(schema_pointer).get("items", {})
        value = [_coerce(items, item) for item in raw]
        errors = self.schema_errors(value, schema_pointer)
        if errors:
            raise ContractViolation(
                operation.operation_id, f"query parameter {name!r} = {raw!r} does not match its schema: {errors[0]}"
            )

    def _check_parameter(self, operation: Operation, where: str, name: str, raw: str) -> None:
        _, schema_pointer = operation.parameters[(where, name)]
        value = _coerce(self._schema_at(schema_pointer), raw)
        errors = self.schema_errors(value, schema_pointer)
        if errors:
            raise ContractViolation(
                operation.operation_id, f"{where} parameter {name!r} = {raw!r} does not match its schema: {errors[0]}"
            )

    def _check_request_body(self, operation: Operation, request: httpx.Request, body: bytes) -> None:
        if operation.request_body is None:
            if body:
                raise ContractViolation(operation.operation_id, f"the operation takes no body, got {len(body)} bytes")
            return
        declared, pointer = operation.request_body
        if not body:
            if declared.get("required"):
                raise ContractViolation(operation.operation_id, "the request body is required")
            return
        content = declared.get("content", {})
        kind = media_type(request.headers.get("content-type"))
        if kind not in content:
            raise ContractViolation(
                operation.operation_id,
                f"request Content-Type {kind or '(none)'!r} is not one of {', '.join(content)}",
            )
        schema_pointer = f"{pointer}/content/{_escape(kind)}/schema"
        if _is_json(kind):
            self._check_json(operation, "request body", body, schema_pointer)
        elif kind in ("application/x-ndjson", "text/csv"):
            self._check_records(operation, kind, body, pointer, content)

    def _check_records(
        self, operation: Operation, kind: str, body: bytes, pointer: str, content: Mapping[str, Any]
    ) -> None:
        """Each NDJSON line (or CSV header) of a batch body, against the item schema of the JSON media type."""
        # The JSON media type's array schema says what one record is; without one, a record is any JSON object.
        array = f"{pointer}/content/application~1json/schema"
        item_pointer = f"{array}/items" if "application/json" in content and "items" in self._schema_at(array) else ""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ContractViolation(operation.operation_id, f"the {kind} request body is not UTF-8") from None
        if kind == "text/csv":
            header = next(csv.reader(io.StringIO(text)), [])
            if not header or not all(cell.strip() for cell in header):
                raise ContractViolation(operation.operation_id, "the CSV request body has no header row of input names")
            return
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            raise ContractViolation(operation.operation_id, "the NDJSON request body has no records")
        for number, line in enumerate(lines):
            what = f"request body line {number + 1}"
            if item_pointer:
                self._check_json(operation, what, line.encode(), item_pointer)
            elif not line.lstrip().startswith("{"):
                raise ContractViolation(operation.operation_id, f"the {what} is not a JSON object")

    def _check_json(self, operation: Operation, what: str, body: bytes, schema_pointer: str) -> None:
        try:
            value = json.loads(body)
        except ValueError as error:
            raise ContractViolation(operation.operation_id, f"the {what} is not JSON: {error}") from None
        errors = self.schema_errors(value, schema_pointer)
        if errors:
            raise ContractViolation(
                operation.operation_id, f"the {what} does not match its schema: {'; '.join(errors)}"
            )

    # -- responses -----------------------------------------------------------------------------------------------

    def check_response(self, request: httpx.Request, response: httpx.Response, body: bytes | None = None) -> None:
        """Check a response to ``request``: a documented status, its declared headers and its body.

        Args:
            request: The request it answers.
            response: The response.
            body: Its body; read from the response when None (the response must have been read, except for a
                binary body, which is not looked at).

        Raises:
            ContractViolation: Naming the operation and what is wrong.

        """
        operation, _ = self.operation(request.method, request.url)
        status = response.status_code
        documented = self._response_for(operation, status)
        if documented is None:
            if status not in self.extra_statuses:
                listed = ", ".join(operation.responses)
                raise ContractViolation(
                    operation.operation_id, f"response status {status} is not documented (documented: {listed})"
                )
            documented = self.resolve({"$ref": "#/components/responses/BadRequest"}, "")
        declared, pointer = documented
        for name, header in declared.get("headers", {}).items():
            header_object, header_pointer = self.resolve(header, f"{pointer}/headers/{_escape(name)}")
            if name not in response.headers:
                if header_object.get("required"):
                    raise ContractViolation(operation.operation_id, f"response {status} lacks header {name}")
                continue
            if name.lower() != "content-type":  # OpenAPI ignores a Content-Type header definition
                raw = response.headers[name]
                value = _coerce(self._schema_at(f"{header_pointer}/schema"), raw)
                errors = self.schema_errors(value, f"{header_pointer}/schema")
                if errors:
                    raise ContractViolation(
                        operation.operation_id,
                        f"response header {name} = {raw!r} does not match its schema: {errors[0]}",
                    )
        content = declared.get("content")
        kind = media_type(response.headers.get("content-type"))
        if not content:
            data = response.content if body is None else body
            if data:
                raise ContractViolation(
                    operation.operation_id, f"a {status} response has no body in the contract, got {len(data)} bytes"
                )
            return
        if kind not in content:
            raise ContractViolation(
                operation.operation_id,
                f"response {status} Content-Type {kind or '(none)'!r} is not one of {', '.join(content)}",
            )
        if _is_json(kind):
            data = response.content if body is None else body
            schema_pointer = f"{pointer}/content/{_escape(kind)}/schema"
            self._check_json(operation, f"{status} response body", data, schema_pointer)

    @staticmethod
    def _response_for(operation: Operation, status: int) -> tuple[Mapping[str, Any], str] | None:
        for key in (str(status), f"{str(status)[0]}XX", "default"):
            if key in operation.responses:
                return operation.responses[key]
        return None


_INTEGER = re.compile(r"^-?[0-9]+$")


@functools.cache
def _shipped_validator() -> ContractValidator:
    return ContractValidator()


def _coerce(schema: Mapping[str, Any], raw: str) -> Any:
    """A parameter's text as the JSON value its schema types it as (left as text when it is not one)."""
    kind = schema.get("type")
    if kind == "integer" and _INTEGER.match(raw):
        return int(raw)
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            return raw
    if kind == "boolean" and raw in ("true", "false"):
        return raw == "true"
    return raw


def _request_body_sync(request: httpx.Request) -> bytes:
    # A re-iterable stream (the SDK's record stream, a ByteStream) is read without being replaced, so the inner
    # transport still sees the streamed body; a one-shot stream is read into the request.
    stream = request.stream
    if isinstance(stream, httpx.ByteStream) or getattr(stream, "replayable", False):
        assert isinstance(stream, httpx.SyncByteStream)
        return b"".join(stream)
    return request.read()


async def _request_body_async(request: httpx.Request) -> bytes:
    stream = request.stream
    if isinstance(stream, httpx.ByteStream) or getattr(stream, "replayable", False):
        assert isinstance(stream, httpx.AsyncByteStream)
        return b"".join([chunk async for chunk in stream])
    return await request.aread()


def _is_binary(response: httpx.Response) -> bool:
    return media_type(response.headers.get("content-type")) in _BINARY_TYPES


class ValidatingTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Wraps a transport (sync or async, e.g. ``httpx.MockTransport``) and checks every request and response.

    A request that breaks the contract raises :class:`ContractViolation` before the inner transport sees it; a
    response that does raises before the client does. Binary response bodies (downloads) are not read, so they
    still stream.

    Args:
        inner: The transport to send through.
        validator: The validator (the shared one for the shipped contract when None).
        check_responses: Check the inner transport's responses too; False checks only what the client sends
            (e.g. when the answers deliberately imitate another server, such as ML Server 9.2's).

    Example:
        >>> transport = ValidatingTransport(httpx.MockTransport(handler))
        >>> client = batchscore.Client("http://test", token="t", transport=transport)

    """

    def __init__(
        self,
        inner: httpx.BaseTransport | httpx.AsyncBaseTransport,
        validator: ContractValidator | None = None,
        *,
        check_responses: bool = True,
    ) -> None:
        self.inner = inner
        self.validator = validator or ContractValidator.shipped()
        self.check_responses = check_responses

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Check the request, send it through the inner transport, check the response."""
        if not isinstance(self.inner, httpx.BaseTransport):
            raise TypeError(f"{type(self.inner).__name__} is not a sync transport")
        self.validator.check_request(request, _request_body_sync(request))
        response = self.inner.handle_request(request)
        if self.check_responses:
            if not _is_binary(response):
                response.read()
            self.validator.check_response(request, response)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Check the request, send it through the inner transport, check the response."""
        if not isinstance(self.inner, httpx.AsyncBaseTransport):
            raise TypeError(f"{type(self.inner).__name__} is not an async transport")
        self.validator.check_request(request, await _request_body_async(request))
        response = await self.inner.handle_async_request(request)
        if self.check_responses:
            if not _is_binary(response):
                await response.aread()
            self.validator.check_response(request, response)
        return response

    def close(self) -> None:
        """Close the inner transport."""
        if isinstance(self.inner, httpx.BaseTransport):
            self.inner.close()

    async def aclose(self) -> None:
        """Close the inner transport."""
        if isinstance(self.inner, httpx.AsyncBaseTransport):
            await self.inner.aclose()
