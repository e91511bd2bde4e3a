"""The ``batchscore`` command line against a real server, through real subprocesses (exit codes included)."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from batchscore_server import RunningServer

MAIN = "from batchscore.cli import main; main()"

SERVICES_PY = """
def add(hp, wt):
    return hp + wt


def draw(hp, wt):
    with open("row.txt", "w") as handle:
        handle.write(f"{hp} {wt}")
    return hp * wt


def flaky(hp, wt):
    if hp < 0:
        raise ValueError(f"negative horsepower {hp}")
    return hp + wt


def slow(hp, wt):
    import time

    time.sleep(0.3)
    return hp + wt
"""
NUMERIC = ["--input", "hp=numeric", "--input", "wt=numeric", "--output", "answer=numeric"]
ROWS = [(110.0, 2.62), (93.0, 2.32), (175.0, 3.44), (105.0, 3.46), (245.0, 3.57), (62.0, 3.19)]


def clean_env(config: Path, **extra: str) -> dict[str, str]:
    """The test process's environment without any BATCHSCORE_* variable, plus the config dir and ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BATCHSCORE_")}
    env["BATCHSCORE_CONFIG_DIR"] = str(config)
    env.update(extra)
    return env


def run(env: dict[str, str], *args: str, expect: int = 0, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", MAIN, *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == expect, (
        f"batchscore {' '.join(args)}: exit {done.returncode}, expected {expect}\n"
        f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )
    return done


def run_with_terminal_stderr(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (where the live progress bar goes); return exit code, stdout, stderr."""
    import pty

    controller, terminal = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-c", MAIN, *args], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal
    ) as process:
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO once the child has closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(controller)
        assert process.stdout is not None
        stdout = process.stdout.read().decode()
        code = process.wait(timeout=300)
    return code, stdout, b"".join(chunks).decode(errors="replace")


def run_json(env: dict[str, str], *args: str, expect: int = 0) -> Any:
    return json.loads(run(env, *args, "--json", expect=expect).stdout)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-config")


@pytest.fixture(scope="module")
def env(server: RunningServer, config: Path) -> dict[str, str]:
    """Logged in once (password on the command line); later commands find the server through BATCHSCORE_URL."""
    base = clean_env(config)
    run(base, "login", "--url", server.url, "--username", "admin", "--password", server.admin_password)
    return clean_env(config, BATCHSCORE_URL=server.url)


@pytest.fixture(scope="module")
def services_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-code") / "services.py"
    path.write_text(SERVICES_PY, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def published(env: dict[str, str], services_file: Path) -> None:
    run(env, "publish", f"{services_file}:add", "--name", "cliAdd", "--version", "v1", *NUMERIC)
    run(
        env,
        "publish",
        f"{services_file}:draw",
        "--name",
        "cliDraw",
        "--version",
        "v1",
        *NUMERIC,
        "--artifact",
        "row.txt",
    )
    run(env, "publish", f"{services_file}:flaky", "--name", "cliFlaky", "--version", "v1", *NUMERIC)
    run(env, "publish", f"{services_file}:slow", "--name", "cliSlow", "--version", "v1", *NUMERIC)


@pytest.fixture
def records_csv(tmp_path: Path) -> Path:
    path = tmp_path / "records.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["hp", "wt"])
        writer.writerows(ROWS)
    return path


def test_login_stores_the_tokens_in_a_private_file(server: RunningServer, env: dict[str, str], config: Path) -> None:
    credentials = config / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    stored = json.loads(credentials.read_text(encoding="utf-8"))
    assert set(stored) == {server.url}
    assert stored[server.url]["username"] == "admin"
    assert stored[server.url]["access_token"]
    assert stored[server.url]["refresh_token"]


def test_login_reads_the_password_from_the_environment(server: RunningServer, tmp_path: Path) -> None:
    env = clean_env(tmp_path, BATCHSCORE_URL=server.url, BATCHSCORE_PASSWORD=server.admin_password)
    answer = run_json(env, "login", "--username", "admin")
    assert answer["url"] == server.url
    assert stat.S_IMODE((tmp_path / "credentials.json").stat().st_mode) == 0o600
    run(clean_env(tmp_path, BATCHSCORE_URL=server.url), "services", "list")


def test_login_makes_the_server_current_for_the_cli_and_the_sdk(server: RunningServer, tmp_path: Path) -> None:
    # No BATCHSCORE_URL anywhere: every later command and batchscore.Client() find the server in the profile.
    env = clean_env(tmp_path)
    run(
        env,
        "login",
        "--profile",
        "here",
        "--url",
        server.url,
        "--username",
        "admin",
        "--password",
        server.admin_password,
    )
    assert json.loads((tmp_path / "profiles.json").read_text(encoding="utf-8"))["profiles"]["here"]["url"] == server.url
    run(env, "services", "list", expect=4)  # the default profile is not logged in
    run(env, "--profile", "here", "services", "list")
    sdk = "import batchscore\nwith batchscore.Client() as client:\n    print(len(client.list_services()) >= 0)"
    listed = subprocess.run(
        [sys.executable, "-c", sdk],
        env={**env, "BATCHSCORE_PROFILE": "here"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert (listed.returncode, listed.stdout.strip()) == (0, "True"), listed.stderr


def test_publish_list_get_consume_and_swagger(env: dict[str, str], published: None) -> None:
    listed = run_json(env, "services", "list", "cliAdd")
    assert [(s["name"], s["version"]) for s in listed] == [("cliAdd", "v1")]
    described = run_json(env, "services", "get", "cliAdd")
    assert described["inputs"] == {"hp": "numeric", "wt": "numeric"}
    assert described["outputs"] == {"answer": "numeric"}
    assert run_json(env, "services", "get", "cliDraw", "v1")["artifacts"] == ["row.txt"]

    consumed = run_json(env, "consume", "cliAdd", "v1", "hp=120", "wt=2.8")
    assert consumed["success"] is True
    assert consumed["outputs"] == {"answer": pytest.approx(122.8)}
    table = run(env, "consume", "cliAdd", "v1", "hp=120", "wt=2.8").stdout
    assert "answer" in table
    assert "122.8" in table

    swagger = json.loads(run(env, "services", "swagger", "cliAdd", "v1").stdout)
    assert any("cliAdd" in path for path in swagger["paths"])


def test_consume_writes_the_artifacts_and_a_failure_exits_1(
    env: dict[str, str], published: None, tmp_path: Path
) -> None:
    answer = run_json(env, "consume", "cliDraw", "v1", "hp=3", "wt=2", "--artifacts", str(tmp_path / "files"))
    assert answer["outputs"] == {"answer": 6}
    assert (tmp_path / "files" / "row.txt").read_text(encoding="utf-8") == "3.0 2.0"  # numeric inputs arrive as floats
    failed = run(env, "consume", "cliFlaky", "v1", "hp=-1", "wt=2", expect=1)
    assert "negative horsepower" in failed.stderr


def test_batch_with_artifacts_results_and_downloads(
    env: dict[str, str], config: Path, published: None, records_csv: Path, tmp_path: Path
) -> None:
    started = run_json(
        env,
        "batch",
        "start",
        "cliDraw",
        "v1",
        "--input",
        str(records_csv),
        "--parallel",
        "2",
        "--wait",
        "--output",
        str(tmp_path / "results.csv"),
        "--artifacts",
        str(tmp_path / "artifacts"),
    )
    assert started["state"] == "complete"
    assert started["total_item_count"] == len(ROWS)
    assert started["failed_item_count"] == 0
    execution_id = started["execution_id"]

    with (tmp_path / "results.csv").open(newline="", encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    assert [int(row["index"]) for row in written] == list(range(len(ROWS)))
    assert [float(row["hp"]) for row in written] == [hp for hp, _ in ROWS]  # the inputs sit beside the outputs
    assert [float(row["answer"]) for row in written] == pytest.approx([hp * wt for hp, wt in ROWS])
    for index, (hp, wt) in enumerate(ROWS):
        assert (tmp_path / "artifacts" / str(index) / "row.txt").read_text(encoding="utf-8") == f"{hp} {wt}"
    assert len(started["artifacts"]) == len(ROWS)

    # Only the id is needed from here on: the CLI's local index knows the service and version.
    status = run_json(env, "batch", "status", execution_id)
    assert status["state"] == "complete"
    assert status["completed_item_count"] == len(ROWS)
    # Without --url or BATCHSCORE_URL the index also knows which server the batch was started on.
    assert run_json(clean_env(config), "batch", "status", execution_id)["state"] == "complete"

    run(env, "batch", "results", execution_id, "--output", str(tmp_path / "r.parquet"))
    frame = pd.read_parquet(tmp_path / "r.parquet")
    assert frame["answer"].tolist() == pytest.approx([hp * wt for hp, wt in ROWS])
    assert frame["success"].all()

    results = run_json(env, "batch", "results", execution_id, "--service", "cliDraw", "--version", "v1")
    assert [r["index"] for r in results["results"]] == list(range(len(ROWS)))

    run(env, "batch", "download", execution_id, "--dest", str(tmp_path / "d"))
    for index, (hp, wt) in enumerate(ROWS):
        assert (tmp_path / "d" / str(index) / "row.txt").read_text(encoding="utf-8") == f"{hp} {wt}"
    one = run_json(env, "batch", "download", execution_id, "--index", "2", "--dest", str(tmp_path / "one"))
    assert one["files"] == [str(tmp_path / "one" / "row.txt")]
    assert (tmp_path / "one" / "row.txt").read_text(encoding="utf-8") == f"{ROWS[2][0]} {ROWS[2][1]}"

    # Without --json: the id on stdout, plain progress lines on stderr (no terminal), a readable summary.
    waited = run(env, "batch", "wait", execution_id)
    assert f"batch {execution_id[:8]}: complete, {len(ROWS)}/{len(ROWS)} done, 0 failed" in waited.stderr
    assert "complete" in waited.stdout
    if sys.platform != "win32":
        code, stdout, terminal = run_with_terminal_stderr(env, "batch", "wait", execution_id)
        assert code == 0, terminal
        assert f"{len(ROWS)}/{len(ROWS)}" in terminal
        assert "rows/s" in terminal
        assert "ETA" in terminal
        assert "━" in terminal  # the bar itself
        assert "complete" in stdout


def test_a_batch_with_a_failing_row_exits_1(env: dict[str, str], published: None, tmp_path: Path) -> None:
    records = tmp_path / "records.ndjson"
    records.write_text("".join(json.dumps({"hp": hp, "wt": 1.0}) + "\n" for hp in (1.0, -1.0, 2.0)))
    started = run(env, "batch", "start", "cliFlaky", "v1", "--input", str(records), "--wait", expect=1)
    execution_id = started.stdout.splitlines()[0].strip()
    assert "1 of 3 rows failed" in started.stderr

    results = run_json(env, "batch", "results", execution_id, expect=1)
    assert [r["success"] for r in results["results"]] == [True, False, True]
    assert "negative horsepower -1.0" in results["results"][1]["error_message"]
    assert run_json(env, "batch", "status", execution_id, expect=1)["failed_item_count"] == 1

    retried = run_json(env, "batch", "retry", execution_id, "--wait", expect=1)
    assert retried["state"] == "complete"
    assert retried["failed_item_count"] == 1


def test_cancel_then_wait_exits_3_and_delete_forgets_the_batch(
    env: dict[str, str], published: None, tmp_path: Path
) -> None:
    records = tmp_path / "records.csv"
    records.write_text("hp,wt\n" + "".join(f"{i},0.5\n" for i in range(30)), encoding="utf-8")
    started = run_json(env, "batch", "start", "cliSlow", "v1", "--input", str(records), "--parallel", "1")
    execution_id = started["execution_id"]
    assert started["record_count"] == 30

    canceled = run_json(env, "batch", "cancel", execution_id)
    assert canceled["state"] == "canceled"
    waited = run(env, "batch", "wait", execution_id, expect=3)
    assert "canceled" in waited.stderr
    assert len(waited.stderr.strip().splitlines()) >= 1
    assert run_json(env, "batch", "status", execution_id, expect=3)["state"] == "canceled"

    run(env, "batch", "delete", execution_id)
    assert "local batch index" in run(env, "batch", "status", execution_id, expect=2).stderr
    gone = run(env, "batch", "status", execution_id, "--service", "cliSlow", "--version", "v1", expect=5)
    assert gone.stderr.startswith("error: 404")


def test_authentication_failures_exit_4(server: RunningServer, tmp_path: Path) -> None:
    env = clean_env(tmp_path, BATCHSCORE_URL=server.url, BATCHSCORE_PASSWORD="not-the-password")
    refused = run(env, "login", "--username", "admin", expect=4)
    assert refused.stderr.startswith("error: 401")
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "credentials.json").exists()

    fresh = clean_env(tmp_path, BATCHSCORE_URL=server.url)
    assert "not logged in" in run(fresh, "services", "list", expect=4).stderr
    error = json.loads(run(fresh, "services", "list", "--json", expect=4).stderr)
    assert error["exit_code"] == 4
    # Credentials on the command line (or in the environment) need no stored login.
    run(fresh, "services", "list", "--username", "admin", "--password", server.admin_password)


def test_an_expired_access_token_is_renewed_with_the_refresh_token(
    server: RunningServer, env: dict[str, str], tmp_path: Path
) -> None:
    other = clean_env(tmp_path, BATCHSCORE_URL=server.url)
    run(other, "login", "--username", "admin", "--password", server.admin_password)
    credentials = tmp_path / "credentials.json"
    stored = json.loads(credentials.read_text(encoding="utf-8"))
    stored[server.url]["access_token"] = "no-longer-valid"
    credentials.write_text(json.dumps(stored), encoding="utf-8")
    run(other, "services", "list")
    renewed = json.loads(credentials.read_text(encoding="utf-8"))[server.url]
    assert renewed["access_token"] not in ("no-longer-valid", "")
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600


def test_usage_errors_exit_2(env: dict[str, str], published: None, records_csv: Path, tmp_path: Path) -> None:
    bad_pair = run(env, "consume", "cliAdd", "v1", "hp120", "wt=2.8", expect=2)
    assert "KEY=VALUE" in bad_pair.stderr
    wrong_type = run(env, "consume", "cliAdd", "v1", "hp=fast", "wt=2.8", expect=2)
    assert "(field: hp)" in wrong_type.stderr
    unknown = tmp_path / "records.xlsx"
    unknown.write_bytes(b"")
    assert (
        "unknown records file type"
        in run(env, "batch", "start", "cliAdd", "v1", "--input", str(unknown), expect=2).stderr
    )
    run(env, "batch", "start", "cliAdd", "v1", "--input", str(records_csv), "--wait", "--output", "r.json", expect=2)
    run(env, "batch", "start", "cliAdd", "v1", "--input", str(records_csv), "--output", "r.csv", expect=2)
    run(env, "publish", str(tmp_path / "missing.py") + ":add", "--name", "x", expect=2)
    run(env, "publish", "no-function-given.py", "--name", "x", expect=2)
    run(env, "batch", "status", expect=2)  # typer's own usage error


def test_version_and_help_are_unchanged(env: dict[str, str]) -> None:
    assert run(env, "--version").stdout.strip().startswith("batchscore ")
    assert "Exit codes" in run(env, "--help").stdout
    assert "--data-dir" in run(env, "serve", "--help").stdout
    assert "--role" in run(env, "users", "add", "--help").stdout


def test_publish_test_consumes_once_and_a_failure_exits_1(env: dict[str, str], services_file: Path) -> None:
    target = f"{services_file}:add"
    done = run(env, "publish", target, "--name", "cliTested", "--version", "v1", *NUMERIC, "--test", "hp=120", "wt=2.8")
    assert "published cliTested v1" in done.stdout
    assert "122.8" in done.stdout
    flaky = f"{services_file}:flaky"
    failed = run(
        env, "publish", flaky, "--name", "cliTested", "--version", "v2", *NUMERIC, "--test", "hp=-1", "wt=2", expect=1
    )
    assert "negative horsepower" in failed.stderr
    answer = json.loads(
        run(
            env,
            "publish",
            target,
            "--name",
            "cliTested",
            "--version",
            "v3",
            *NUMERIC,
            "--json",
            "--test",
            "hp=1",
            "wt=2",
        ).stdout
    )
    assert answer["outputs"] == {"answer": 3}
    run(env, "publish", target, "--name", "cliTested", "--version", "v4", *NUMERIC, "hp=1", expect=2)  # no --test
