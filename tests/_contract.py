"""The contract, loaded once for tests: its operations and helpers to walk it."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONTRACT_PATH = ROOT / "openapi" / "batchscore.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@cache
def contract() -> dict[str, Any]:
    """The parsed contract (do not mutate)."""
    loaded: dict[str, Any] = yaml.safe_load(CONTRACT_PATH.read_text(encoding="utf-8"))
    return loaded


def operations() -> Iterator[tuple[str, str, dict[str, Any], list[dict[str, Any]]]]:
    """Yield (method, path, operation, path-level parameters) for every operation in the contract."""
    for path, item in contract()["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield method, path, item[method], item.get("parameters", [])


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (repeatedly) to the object it names."""
    while "$ref" in node:
        target: Any = contract()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node
