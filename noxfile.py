"""Development sessions for batchscore.

`nox -s tests` is the README's test command and what CI runs: it installs everything the project needs from
its own files (pyproject.toml, mock/package-lock.json), then checks the generated client is fresh, lints,
type-checks and runs the whole pytest suite.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests"]

ROOT = Path(__file__).resolve().parent
CONTRACT = "openapi/batchscore.yaml"
SPECTRAL_RULESET = "openapi/.spectral.yaml"
MOCK_DIR = ROOT / "mock"
NODE_BIN = MOCK_DIR / "node_modules" / ".bin"
PYPROJECT = nox.project.load_toml("pyproject.toml")
TEST_TIERS = (
    ("tests/unit", "tests/contract", "tests/server"),
    ("tests/e2e",),
    ("tests/conformance",),
    ("tests/load", "tests/bench"),
)
# A representative subset of the end-to-end tier again, its servers on a throwaway PostgreSQL (tests/_postgres.py;
# skipped, saying why, where no PostgreSQL binaries exist). tests/e2e/test_scale_out.py and the PostgreSQL cases
# of test_restart.py run in the end-to-end tier itself.
POSTGRES_TIER = (
    "tests/e2e/test_batch_control.py",
    "tests/e2e/test_sdk_workflow.py",
    "tests/e2e/test_seed_workflow.py",
    "tests/e2e/test_faults.py",
    "tests/e2e/test_auth.py",
    "tests/e2e/test_roles.py",
    "tests/e2e/test_authz_matrix.py",
)


def _groups(*names: str) -> list[str]:
    return list(nox.project.dependency_groups(PYPROJECT, *names))


def _install_node_tools(session: nox.Session) -> None:
    """Install Prism and Spectral from mock/package-lock.json (once; again when the lock file changes)."""
    if shutil.which("npm") is None:
        session.error("npm was not found: install Node.js >= 20.17 (see README.md)")
    lock = MOCK_DIR / "package-lock.json"
    stamp = MOCK_DIR / "node_modules" / ".batchscore-lock"
    wanted = lock.read_text(encoding="utf-8")
    if stamp.exists() and stamp.read_text(encoding="utf-8") == wanted and (NODE_BIN / "prism").exists():
        return
    # SCARF_ANALYTICS: a dependency's postinstall would otherwise try to phone home from an offline machine.
    session.run(
        "npm",
        "ci",
        "--prefix",
        str(MOCK_DIR),
        "--no-audit",
        "--no-fund",
        external=True,
        env={"SCARF_ANALYTICS": "false"},
    )
    stamp.write_text(wanted, encoding="utf-8")


def _lint_contract(session: nox.Session) -> None:
    session.run("openapi-spec-validator", CONTRACT)
    session.run(
        str(NODE_BIN / "spectral"),
        "lint",
        "--fail-severity=hint",
        "--ruleset",
        SPECTRAL_RULESET,
        CONTRACT,
        external=True,
    )


def _lint_python(session: nox.Session) -> None:
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


def _typecheck(session: nox.Session) -> None:
    session.run("mypy")


CHROMIUM = Path("/usr/bin/chromium")


def _install_chromium(session: nox.Session) -> None:
    """Install Debian's chromium for the dashboard's browser tests, where it is missing and apt-get may run.

    The tests never download a browser (Playwright drives this one); the tests session makes a missing one a
    failure (BATCHSCORE_REQUIRE_BROWSER), so a machine where it cannot be installed is told so here first.
    """
    if CHROMIUM.exists():
        return
    if shutil.which("apt-get") is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        session.warn(f"{CHROMIUM} is missing and cannot be installed here (needs apt-get as root): install chromium")
        return
    session.run("apt-get", "update", external=True)
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "install", "-y", "--no-install-recommends", "chromium", external=True, env=env)


@nox.session
def generate(session: nox.Session) -> None:
    """Regenerate generated/batchscore_client from the contract (deterministic; commit the result)."""
    session.install(*_groups("generate"))
    session.run("python", "tools/generate_client.py")


@nox.session
def lint(session: nox.Session) -> None:
    """Lint the contract (openapi-spec-validator, Spectral) and the Python code (ruff)."""
    _install_node_tools(session)
    session.install(*_groups("lint", "test"))
    _lint_contract(session)
    _lint_python(session)


@nox.session
def typecheck(session: nox.Session) -> None:
    """Strict mypy on sdk/ and server/."""
    session.install("-e", ".[server,pandas,testing]", *_groups("lint"))
    _typecheck(session)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite: generated-client freshness, lints, strict types, then every pytest tier."""
    _install_node_tools(session)
    session.install("-e", ".[server,pandas,testing]", *_groups("test", "lint", "generate", "bench"))
    session.run("python", "tools/generate_client.py", "--check")
    _lint_contract(session)
    _lint_python(session)
    _typecheck(session)
    _install_chromium(session)
    # The dashboard's browser tests fail, never skip, without chromium here.
    env = {"BATCHSCORE_NODE_BIN": str(NODE_BIN), "BATCHSCORE_REQUIRE_BROWSER": "1"}
    if session.posargs:
        session.run("pytest", *session.posargs, env=env)
        return
    # One pytest process per tier: the end-to-end, conformance and load tiers run servers, Dask clusters and
    # thousands of asyncio tasks; in a process of their own, nothing they leave behind can slow or break another
    # tier's tests.
    for tier in TEST_TIERS:
        session.run("pytest", *tier, env=env)
    session.run("pytest", *POSTGRES_TIER, env={**env, "BATCHSCORE_TEST_DATABASE": "postgresql"})


def _prism_mock_args(posargs: list[str]) -> list[str]:
    """Prism's options from the session's arguments: a bare port first (the old `-- PORT` form), then any flags."""
    args = list(posargs)
    if args and args[0].isdigit():
        args[:1] = ["--port", args[0]]
    # 127.0.0.1 and 4010 are Prism's defaults today; spelled out so a Prism upgrade cannot expose the mock.
    given = {arg.split("=", 1)[0] for arg in args}
    if not given & {"-p", "--port"}:
        args += ["--port", "4010"]
    if not given & {"-h", "--host"}:
        args += ["--host", "127.0.0.1"]
    return args


@nox.session
def contract(session: nox.Session) -> None:
    """The fast loop when changing the API: generated-client freshness, then the contract and SDK unit tiers.

    No lint or type-check prelude (the drift test inside type-checks a renamed copy itself); pytest arguments go
    after ``--``.
    """
    _install_node_tools(session)
    session.install("-e", ".[server,pandas]", *_groups("test", "lint", "generate"))
    session.run("python", "tools/generate_client.py", "--check")
    session.run("pytest", "tests/unit", "tests/contract", *session.posargs, env={"BATCHSCORE_NODE_BIN": str(NODE_BIN)})


@nox.session
def mock(session: nox.Session) -> None:
    """Serve the contract with Prism on 127.0.0.1:4010 until interrupted (-- PORT, or Prism flags: -- -d -p 4011)."""
    _install_node_tools(session)
    session.run(str(NODE_BIN / "prism"), "mock", CONTRACT, *_prism_mock_args(session.posargs), external=True)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: the seed's mtcars example end to end against a throwaway embedded server."""
    session.install("-e", ".[server,pandas]", *_groups("demo"))
    session.run("python", "examples/demo.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against baselines measured in the same run, into bench/results/ (-- --quick, --only P1,P5)."""
    session.install("-e", ".[server,pandas]", *_groups("bench"))
    session.run("python", "-m", "bench", *session.posargs)


if os.environ.get("CI"):
    # CI starts from a fresh clone: never reuse a virtualenv a previous run may have left behind.
    nox.options.reuse_venv = "no"
