"""The contract (``openapi/batchscore.yaml``) as the server serves it, read from the installed package.

``tools/generate_client.py`` copies the contract into the generated client as package data, so a wheel install
has it too (a path into the source tree exists only in a checkout). ``/swagger.json`` and every per-service
document name the server by the URL the caller reached it at, not by the contract's example server.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import Any

import yaml
from starlette.requests import HTTPConnection

CONTRACT_RESOURCE = files("batchscore_client").joinpath("openapi.yaml")

# What a forwarded header may hold to be used: a proxy's values, not arbitrary text pasted into a URL.
_SCHEMES = {"http", "https"}
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")
_PREFIX = re.compile(r"^(/[A-Za-z0-9._~\-]+)*/?$")


@cache
def contract() -> dict[str, Any]:
    """The contract, parsed once; blocking (file and YAML: call it in a thread). Callers must not change it."""
    loaded: dict[str, Any] = yaml.safe_load(CONTRACT_RESOURCE.read_text(encoding="utf-8"))
    return loaded


def _forwarded(request: HTTPConnection, name: str) -> str | None:
    # A proxy chain appends its values ("https, http"): the first is what the client used.
    value = request.headers.get(name)
    return value.split(",")[0].strip() if value else None


def public_prefix(request: HTTPConnection) -> str:
    """The path the server is mounted under for the caller, without a trailing slash ("" at the root).

    ``X-Forwarded-Prefix`` (a proxy that strips a prefix) when it is a plain path, else the ASGI ``root_path``
    (``uvicorn --root-path``).
    """
    prefix = _forwarded(request, "x-forwarded-prefix")
    if prefix is None or not _PREFIX.match(prefix):
        prefix = str(request.scope.get("root_path", ""))
    return prefix.rstrip("/")


def base_url(request: HTTPConnection) -> str:
    """The URL the caller reached the server at, for a document's ``servers``.

    Scheme and host come from ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` when they are set and well-formed
    (the proxy's view), else from the request (which uvicorn's ``--proxy-headers`` may already have corrected).
    The headers are taken from any client: the URL only goes back to the client that sent them, in a document
    that is the same for everyone apart from it.
    """
    scheme = _forwarded(request, "x-forwarded-proto")
    if scheme is None or scheme.lower() not in _SCHEMES:
        scheme = request.url.scheme
    host = _forwarded(request, "x-forwarded-host")
    if host is None or not _HOST.match(host):
        host = request.url.netloc
    return f"{scheme.lower()}://{host}{public_prefix(request)}"


def with_server(document: dict[str, Any], url: str) -> dict[str, Any]:
    """A shallow copy of an OpenAPI document whose only server is ``url``."""
    return {**document, "servers": [{"url": url}]}
