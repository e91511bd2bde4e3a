"""The batchscore_fake fixture, its entry point, and the README's "Testing your app without a server" tour."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import batchscore.testing
from batchscore.testing.plugin import batchscore_fake  # noqa: F401  # the fixture, whether or not the entry point is installed

ROOT = Path(__file__).resolve().parents[2]
pytest_plugins = ["pytester"]
# The plugin module by name, with the entry point's copy blocked: the same run works before and after an install.
PLUGIN_ARGS = ("-p", "no:batchscore", "-p", "batchscore.testing.plugin", "-p", "no:cacheprovider", "-p", "no:asyncio")


def readme_block(marker: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(rf"<!-- {marker} -->\n```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1, marker
    return str(blocks[0])


def test_the_fixture_is_a_fresh_fake(batchscore_fake: batchscore.testing.FakeServer) -> None:  # noqa: F811
    batchscore_fake.add_service("double", "v1", lambda x: x * 2)
    assert batchscore_fake.client().get_service("double", "v1").consume(21).output("answer") == 42


def test_the_readme_testing_tour_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_app=readme_block("testing-tour"))
    result = pytester.runpytest_inprocess(*PLUGIN_ARGS, "-W", "error")
    result.assert_outcomes(passed=2)


def test_a_wrong_request_fails_the_app_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_wrong="""
        import httpx

        def test_wrong_wire(batchscore_fake):
            with httpx.Client(base_url=batchscore_fake.url, transport=batchscore_fake) as http:
                http.get("/services", params={"page": 2})
        """
    )
    result = pytester.runpytest_inprocess(*PLUGIN_ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ContractViolation: getAllWebServices: query parameter 'page' is not declared*"])


def test_the_entry_point_names_the_plugin() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["entry-points"]["pytest11"] == {"batchscore": "batchscore.testing.plugin"}
    assert project["optional-dependencies"]["testing"] == ["jsonschema>=4.18", "pyyaml>=6.0"]


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, batchscore.testing.plugin; "
        "print(sorted(m for m in ('jsonschema', 'yaml', 'pandas', 'referencing') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    assert result.stderr == ""
