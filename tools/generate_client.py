"""Generate ``generated/batchscore_client`` from the contract, or check that the committed copy is fresh.

Run it through nox (``nox -s generate``), which provides the pinned openapi-python-client and puts its ruff on
PATH for the post-hooks. ``--check`` regenerates into a temporary directory and exits 1 when the result differs
from what is committed, so the test command catches a contract change without a regeneration.

The generator reads a *view* of the contract, not the contract itself: where a request body offers several
media types (batch start takes JSON, NDJSON and CSV), the view keeps only ``application/json``.
openapi-python-client 0.29.1 turns several request media types into code that cannot run
(``isinstance(body, list[InputParameters])`` raises TypeError, and both binary forms share one branch), so the
low-level client speaks JSON there and the SDK streams NDJSON and CSV bodies itself.
"""

from __future__ import annotations

import argparse
import difflib
import filecmp
import json
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
JSON_MEDIA_TYPE = "application/json"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def generator_view(contract: dict[str, Any]) -> dict[str, Any]:
    """Return the contract with every multi-media-type request body narrowed to its JSON form."""
    bodies: list[dict[str, Any]] = list(contract.get("components", {}).get("requestBodies", {}).values())
    for path_item in contract.get("paths", {}).values():
        for method in HTTP_METHODS:
            body = path_item.get(method, {}).get("requestBody")
            if body is not None and "$ref" not in body:
                bodies.append(body)
    for body in bodies:
        content = body.get("content", {})
        if len(content) > 1 and JSON_MEDIA_TYPE in content:
            body["content"] = {JSON_MEDIA_TYPE: content[JSON_MEDIA_TYPE]}
    return contract


def generate(output: Path) -> None:
    """Generate the client package into ``output`` (which must not exist yet)."""
    contract = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="batchscore-gen-") as work:
        view = Path(work) / "batchscore.view.json"
        view.write_text(json.dumps(generator_view(contract), indent=1), encoding="utf-8")
        subprocess.run(
            [
                "openapi-python-client",
                "generate",
                "--path",
                str(view),
                "--config",
                str(CONFIG),
                "--meta",
                "none",
                "--output-path",
                str(output),
                "--fail-on-warning",
            ],
            check=True,
            cwd=work,
        )


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
