"""The request core: every request the SDK sends is a generated operation, described here and sent by a driver.

A multi-request flow (publish, wait, download, ...) is written once, in :mod:`batchscore._flows`, as a generator
that yields *instructions* — :class:`Call` (one generated ``api.*`` operation), :class:`Sleep` and
:class:`Download` — and receives their results. ``Client`` drives flows synchronously and ``AsyncClient``
asynchronously (as httpx drives one ``auth_flow`` both ways); the drivers only do I/O.

Answers are parsed by the generated models. When a reply does not parse as the contract says (an ML Server that
spells keys in another casing, sends ``null`` for a list, or an object for a one-item array), it is read once
more after :func:`normalize` (liberal in what we accept); errors map to the SDK's exception tree in
:func:`unwrap`, the one place a status becomes an exception.
"""

from __future__ import annotations

import functools
import json
import sys
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from batchscore._exceptions import APIResponseValidationError, status_error
from batchscore_client.models import Error
from batchscore_client.types import Response

# The last response the SDK's httpx client received in this thread or task (set by an event hook): the generated
# ``Response`` keeps no request, and an error must carry both.
_LAST_RESPONSE: ContextVar[httpx.Response | None] = ContextVar("batchscore_last_response", default=None)


def remember_response(response: httpx.Response) -> None:
    """Httpx response hook (sync clients): keep the response for :func:`unwrap`."""
    _LAST_RESPONSE.set(response)


async def aremember_response(response: httpx.Response) -> None:
    """Httpx response hook (async clients): keep the response for :func:`unwrap`."""
    _LAST_RESPONSE.set(response)


@dataclass(frozen=True)
class Call:
    """Send one generated operation: ``operation.sync_detailed(*args, client=..., **kwargs)`` or its async twin.

    The flow receives the parsed answer (the generated model, or None for an empty one), or with
    ``with_headers`` the pair ``(parsed, headers)`` (a poll reads ``Retry-After``).
    """

    operation: ModuleType
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    with_headers: bool = False

    @classmethod
    def of(cls, bound: partial[Any], *, with_headers: bool = False) -> Call:
        """The call ``bound`` describes: a ``functools.partial`` of a generated ``sync_detailed`` and its arguments.

        Written as a partial so that mypy checks the arguments against the generated signature: a parameter the
        contract renames or removes fails the type check (the driver adds ``client=``, and calls the module's
        ``asyncio_detailed`` twin in ``AsyncClient``).
        """
        return cls(sys.modules[bound.func.__module__], bound.args, dict(bound.keywords), with_headers)


@dataclass(frozen=True)
class Sleep:
    """Wait this many seconds (with the client's sleep, which tests replace)."""

    seconds: float


@dataclass(frozen=True)
class Download:
    """Stream one generated download operation's body into ``target`` (a temporary file, renamed when complete)."""

    operation: ModuleType
    args: tuple[Any, ...]
    target: Path


@dataclass(frozen=True)
class OpenStream:
    """Send a generated operation's request (from its ``_get_kwargs``) and keep its body open to read in chunks.

    The flow receives an opaque handle for :class:`ReadStream` and :class:`CloseStream`; an error status is
    raised (mapped) before any chunk. ``headers`` are added to the request (``Accept``).
    """

    operation: ModuleType
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    headers: dict[str, str]


@dataclass(frozen=True)
class ReadStream:
    """The next chunk of an open stream's body, as text (None at its end); a broken connection raises."""

    handle: Any


@dataclass(frozen=True)
class CloseStream:
    """Close an open stream (the driver also closes every stream a flow left open when it ends)."""

    handle: Any


@dataclass(frozen=True)
class Emit:
    """Hand items to the caller of an iterating driver (``Client._iterate``), which yields them one by one."""

    items: list[Any]


def forget_response() -> None:
    """Forget the last response before a new call, so a failure before any answer is never blamed on an old one."""
    _LAST_RESPONSE.set(None)


def request_of(operation: ModuleType, base_url: httpx.URL, *args: Any, **kwargs: Any) -> httpx.Request:
    """The request a generated operation would send, built from its ``_get_kwargs`` (for the token flow)."""
    parts = operation._get_kwargs(*args, **kwargs)
    return httpx.Request(
        str(parts["method"]).upper(),
        base_url.join(str(parts["url"]).lstrip("/")),
        params=parts.get("params"),
        headers=parts.get("headers"),
        json=parts.get("json"),
    )


def unwrap(response: Response[Any]) -> Any:
    """The parsed answer of a 2xx response; the mapped :class:`~batchscore.APIStatusError` otherwise.

    Raises:
        APIStatusError: The server answered with an error status.
        APIResponseValidationError: A 2xx answer that is not what the contract says.

    """
    raw = _LAST_RESPONSE.get()
    if int(response.status_code) >= 400:
        raise status_error(raw if raw is not None else _rebuilt(response))
    if isinstance(response.parsed, Error):
        raise APIResponseValidationError(f"a {int(response.status_code)} answer carried an error body", raw)
    return response.parsed


def reparse(operation: ModuleType, client: Any, error: Exception) -> Response[Any]:
    """Read the last answer again after :func:`normalize`, when the generated parser refused it.

    Raises:
        APIStatusError: The answer was an error status whose body did not match the contract's ``Error``.
        APIResponseValidationError: It does not parse even then.

    """
    raw = _LAST_RESPONSE.get()
    if raw is None:
        raise error
    if raw.status_code >= 400:
        raise status_error(raw) from None
    try:
        data = json.loads(raw.content)
    except ValueError:
        raise APIResponseValidationError(f"the answer is not JSON: {error}", raw) from None
    normalized = normalize(data)
    # ML Server answers a one-version GET with a one-item array; some versions sent the object alone.
    candidates = [normalized] if not isinstance(normalized, dict) else [normalized, [normalized]]
    for candidate in candidates:
        retry = httpx.Response(raw.status_code, headers=raw.headers, json=candidate, request=raw.request)
        try:
            built: Response[Any] = operation._build_response(client=client, response=retry)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        return built
    raise APIResponseValidationError(f"the answer does not match the contract: {error!r}", raw) from None


def _rebuilt(response: Response[Any]) -> httpx.Response:
    return httpx.Response(
        int(response.status_code),
        headers=dict(response.headers),
        content=response.content,
        request=httpx.Request("GET", "http://unknown.invalid/"),
    )


@functools.cache
def _contract_names() -> tuple[dict[str, str], frozenset[str]]:
    """The contract's property names by lower-cased name, and the names whose values are free-form user data."""
    text = resources.files("batchscore_client").joinpath("openapi.json").read_text(encoding="utf-8")
    schemas: dict[str, Any] = json.loads(text).get("components", {}).get("schemas", {})
    names: dict[str, set[str]] = {}
    opaque: set[str] = set()

    def visit(schema: Any) -> None:
        if isinstance(schema, list):
            for item in schema:
                visit(item)
        if not isinstance(schema, dict):
            return
        for name, prop in (schema.get("properties") or {}).items():
            names.setdefault(name.lower(), set()).add(name)
            target = schemas.get(str(prop.get("$ref", "")).rsplit("/", 1)[-1], prop) if isinstance(prop, dict) else {}
            if isinstance(target, dict) and "additionalProperties" in target and "properties" not in target:
                opaque.add(name)
        for value in schema.values():
            visit(value)

    visit(schemas)
    # Names that differ only in casing (batchExecutionId, BatchExecutionId) are matched exactly, never folded.
    unique = {lower: next(iter(spelled)) for lower, spelled in names.items() if len(spelled) == 1}
    return unique, frozenset(opaque)


def normalize(data: Any) -> Any:
    """An answer in the contract's spelling: keys re-cased to the contract's names, ``null`` members dropped.

    Free-form values (outputs, output files, inputs) are kept exactly as sent.
    """
    names, opaque = _contract_names()
    return _normalize(data, names, opaque)


def _normalize(data: Any, names: dict[str, str], opaque: frozenset[str]) -> Any:
    if isinstance(data, list):
        return [_normalize(item, names, opaque) for item in data]
    if not isinstance(data, dict):
        return data
    result: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            continue
        text = str(key)
        name = text if text in opaque else names.get(text.lower(), text)
        result[name] = value if name in opaque else _normalize(value, names, opaque)
    return result
