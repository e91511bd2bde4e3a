"""Generate ``generated/batchscore_client`` from the contract, or check that the committed copy is fresh.

Run it through nox (``nox -s generate``), which provides the pinned openapi-python-client and its ruff for the
post-hooks. The generator runs as ``sys.executable -m openapi_python_client`` with this interpreter's scripts
folder first on PATH, so any interpreter that has it installed works, activated or not. The contract itself is
copied into the package as ``batchscore_client/openapi.yaml`` (and as JSON, ``openapi.json``; read with
``importlib.resources``), so every install carries the contract its client was generated from. ``--check``
regenerates into a temporary directory and exits 1 when the result differs from what is committed, so the test
command catches a contract change without a regeneration.

The generator reads a *view* of the contract, not the contract itself. Every difference is made here, in
:func:`generator_view`, and nowhere else:

- **Lenient replies.** A response property marked ``x-batchscore-extension: true`` (a batchscore addition that ML
  Server never sent) or ``x-batchscore-compat: true`` (an ML Server field that some of its versions omit or spell
  otherwise, such as ``BatchExecutionId``) is not ``required`` in the view. The generated ``from_dict`` then reads
  an ML Server 9.2/9.3 reply without ``KeyError``, while the contract itself, and schemathesis with it, still hold
  the batchscore server to every field.
- **One media type per request body.** Where a request body offers several media types (batch start takes JSON,
  NDJSON and CSV), the view keeps only the streamed NDJSON form, typed as a binary ``File`` (see
  ``content_type_overrides`` in ``generator-config.yaml``): openapi-python-client 0.29.1 turns several request
  media types into code that cannot run (``isinstance(body, list[InputParameters])`` raises TypeError, and both
  binary forms share one branch). The generated ``start_batch_execution`` then sends a replayable byte stream
  with the NDJSON content type, so the SDK never builds that request itself.

Two templates are overridden (in ``openapi/templates``, passed as ``--custom-template-path``). The generator calls
its template API unstable, so each override is a copy of 0.29.1's template with the smallest change:

- ``str_enum.py.jinja``: string enums get a ``_missing_`` that matches values case-insensitively (ML Server 9.2 sent
  ``Complete``) and keeps an unknown value as a pseudo-member named ``UNKNOWN`` rather than failing the reply; the
  copy plus the method.
- ``endpoint_module.py.jinja``: a binary (``File``) request body is labelled with its own ``File.mime_type`` when
  set, falling back to the declared media type. Only the ``Content-Type`` lines of ``content`` bodies differ. The
  view above keeps one media type for batch start, but the contract also declares ``text/csv`` for it: the SDK
  passes ``File(payload=..., mime_type="text/csv")`` for a CSV body, so the generated function sends both.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "openapi" / "batchscore.yaml"
CONFIG = ROOT / "openapi" / "generator-config.yaml"
PACKAGE = "batchscore_client"
TARGET = ROOT / "generated" / PACKAGE
TEMPLATES = ROOT / "openapi" / "templates"
JSON_MEDIA_TYPE = "application/json"
STREAMED_MEDIA_TYPE = "application/x-ndjson"
OPTIONAL_FOR_CLIENTS = ("x-batchscore-extension", "x-batchscore-compat")
SHIPPED_CONTRACT = "openapi.yaml"
SHIPPED_CONTRACT_JSON = "openapi.json"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _relax(schema: Any) -> None:
    """Drop properties marked as optional for clients from ``required``, in ``schema`` and every schema inside it."""
    if isinstance(schema, list):
        for item in schema:
            _relax(item)
        return
    if not isinstance(schema, dict):
        return
    properties = schema.get("properties")
    if isinstance(properties, dict) and isinstance(schema.get("required"), list):
        marked = {
            name
            for name, prop in properties.items()
            if isinstance(prop, dict) and any(prop.get(key) for key in OPTIONAL_FOR_CLIENTS)
        }
        schema["required"] = [name for name in schema["required"] if name not in marked]
        if not schema["required"]:
            del schema["required"]
    for value in schema.values():
        _relax(value)


def generator_view(contract: dict[str, Any]) -> dict[str, Any]:
    """Return the contract as the generator should see it (see the module docstring for every difference)."""
    _relax(contract.get("components", {}).get("schemas", {}))
    bodies: list[dict[str, Any]] = list(contract.get("components", {}).get("requestBodies", {}).values())
    for path_item in contract.get("paths", {}).values():
        for method in HTTP_METHODS:
            body = path_item.get(method, {}).get("requestBody")
            if body is not None and "$ref" not in body:
                bodies.append(body)
    for body in bodies:
        content = body.get("content", {})
        if len(content) > 1 and STREAMED_MEDIA_TYPE in content:
            body["content"] = {STREAMED_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}
    return contract


def generate(output: Path) -> None:
    """Generate the client package into ``output`` (which must not exist yet)."""
    contract = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="batchscore-gen-") as work:
        view = Path(work) / "batchscore.view.json"
        view.write_text(json.dumps(generator_view(copy.deepcopy(contract)), indent=1), encoding="utf-8")
        # As a module of the running interpreter: the script's name is only on PATH inside an activated venv.
        subprocess.run(
            [
                sys.executable,
                "-m",
                "openapi_python_client",
                "generate",
                "--path",
                str(view),
                "--config",
                str(CONFIG),
                "--meta",
                "none",
                "--output-path",
                str(output),
                "--custom-template-path",
                str(TEMPLATES),
                "--fail-on-warning",
            ],
            check=True,
            cwd=work,
            # The post-hooks call ruff by name: find the one installed beside this interpreter first.
            env={**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])},
        )
    # The contract travels with the generated client as package data, so an installed wheel has it too: the
    # server serves it at /swagger.json and batchscore.testing validates requests against it.
    shutil.copyfile(CONTRACT, output / SHIPPED_CONTRACT)
    # The same as JSON, for readers without a YAML parser: the SDK reads the contract's field names from it.
    (output / SHIPPED_CONTRACT_JSON).write_text(json.dumps(contract, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def differences(expected: Path, actual: Path) -> list[str]:
    """List human-readable differences between two generated trees (empty when identical)."""
    found: list[str] = []
    expected_files = {p.relative_to(expected) for p in expected.rglob("*") if p.is_file()}
    actual_files = {p.relative_to(actual) for p in actual.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    for missing in sorted(expected_files - actual_files):
        found.append(f"missing from generated/: {missing}")
    for extra in sorted(actual_files - expected_files):
        found.append(f"not produced by the generator: {extra}")
    for common in sorted(expected_files & actual_files):
        if not filecmp.cmp(expected / common, actual / common, shallow=False):
            diff = difflib.unified_diff(
                (actual / common).read_text(encoding="utf-8").splitlines(),
                (expected / common).read_text(encoding="utf-8").splitlines(),
                f"committed/{common}",
                f"regenerated/{common}",
                lineterm="",
                n=1,
            )
            found.append("\n".join(list(diff)[:40]))
    return found


def main() -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when generated/ is not what the contract gives")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batchscore-client-") as scratch:
        fresh = Path(scratch) / PACKAGE
        generate(fresh)
        if args.check:
            found = differences(fresh, TARGET)
            if found:
                print("generated/ is stale; run `nox -s generate` and commit the result:", file=sys.stderr)
                print("\n".join(found), file=sys.stderr)
                return 1
            print("generated/ matches the contract")
            return 0
        shutil.rmtree(TARGET, ignore_errors=True)
        shutil.copytree(fresh, TARGET)
        print(f"generated {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
