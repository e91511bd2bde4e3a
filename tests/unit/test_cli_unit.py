"""The CLI's pure parts and the commands that fail before any request (no server needed)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from batchscore import (
    AuthenticationError,
    BatchCanceledError,
    BatchFailedError,
    BatchState,
    BatchStatus,
    InvalidRecordError,
    NotFoundError,
    WaitTimeoutError,
)
from batchscore.cli import app
from batchscore.cli._common import (
    EXIT_API,
    EXIT_AUTH,
    EXIT_BATCH_STOPPED,
    EXIT_OK,
    EXIT_ROWS_FAILED,
    EXIT_USAGE,
    CliError,
    config_dir,
    exit_code_for,
    normalize_url,
    parse_pairs,
    parse_value,
    status_exit_code,
    write_private_json,
)
from batchscore.cli.publish import load_function


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("BATCHSCORE_URL", "BATCHSCORE_USERNAME", "BATCHSCORE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BATCHSCORE_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def status(state: BatchState, failed: int = 0) -> BatchStatus:
    return BatchStatus("b1", state, completed_item_count=3, total_item_count=3, failed_item_count=failed)


def response(code: int) -> httpx.Response:
    return httpx.Response(code, request=httpx.Request("GET", "http://batchscore.test/services"))


@pytest.mark.parametrize(
    ("text", "value"),
    [("120", 120), ("2.8", 2.8), ("x", "x"), ("true", True), ('"120"', "120"), ("[1, 2]", [1, 2]), ("", "")],
)
def test_values_are_json_when_they_parse(text: str, value: object) -> None:
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


def test_pairs() -> None:
    assert parse_pairs(["hp=120", "wt=2.8", "name=a=b"], "an input", parse_value) == {
        "hp": 120,
        "wt": 2.8,
        "name": "a=b",
    }
    for bad in (["hp120"], ["=1"], ["hp=1", "hp=2"]):
        with pytest.raises(CliError) as raised:
            parse_pairs(bad, "an input")
        assert raised.value.code == EXIT_USAGE


def test_private_json_is_0600_even_over_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "credentials.json"
    path.parent.mkdir()
    path.write_text("{}", encoding="utf-8")
    path.chmod(0o644)
    write_private_json(path, {"http://x": {"access_token": "t"}})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text(encoding="utf-8")) == {"http://x": {"access_token": "t"}}
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]  # no temporary file left behind


def test_the_config_dir_follows_the_environment(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert config_dir() == config
    monkeypatch.delenv("BATCHSCORE_CONFIG_DIR")
    assert config_dir().name.lower() == "batchscore"
    assert normalize_url(" http://host:1/ ") == "http://host:1"


def test_status_exit_codes() -> None:
    assert status_exit_code(status(BatchState.COMPLETE)) == EXIT_OK
    assert status_exit_code(status(BatchState.IN_PROGRESS, failed=1)) == EXIT_OK
    assert status_exit_code(status(BatchState.COMPLETE, failed=1)) == EXIT_ROWS_FAILED
    assert status_exit_code(status(BatchState.FAILED)) == EXIT_BATCH_STOPPED
    assert status_exit_code(status(BatchState.CANCELED)) == EXIT_BATCH_STOPPED


def test_error_exit_codes() -> None:
    assert exit_code_for(AuthenticationError("401", response(401), None)) == EXIT_AUTH
    assert exit_code_for(NotFoundError("404", response(404), {"field": "name"})) == EXIT_API
    assert exit_code_for(BatchCanceledError("canceled", status(BatchState.CANCELED))) == EXIT_BATCH_STOPPED
    assert exit_code_for(BatchFailedError("failed", status(BatchState.FAILED))) == EXIT_BATCH_STOPPED
    assert exit_code_for(WaitTimeoutError("late", status(BatchState.IN_PROGRESS))) == EXIT_API
    assert exit_code_for(InvalidRecordError("bad", 1, "hp")) == EXIT_USAGE
    assert exit_code_for(CliError(EXIT_AUTH, "no login")) == EXIT_AUTH


def test_load_function(tmp_path: Path) -> None:
    code = tmp_path / "my-service.py"
    code.write_text("def add(hp, wt):\n    return hp + wt\n", encoding="utf-8")
    assert load_function(f"{code}:add")(1, 2) == 3
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n", encoding="utf-8")
    for target in (f"{code}:missing", f"{code}", f"{tmp_path / 'nope.py'}:add", f"{broken}:add", f"{code}:1x"):
        with pytest.raises(CliError) as raised:
            load_function(target)
        assert raised.value.code == EXIT_USAGE, target


def test_without_a_login_commands_exit_4_on_one_line(config: Path) -> None:
    code, stdout, stderr = invoke("services", "list", "--url", "http://127.0.0.1:9")
    assert code == EXIT_AUTH
    assert stdout == ""
    assert stderr.count("\n") == 1
    assert stderr.startswith("error: not logged in to http://127.0.0.1:9")
    code, stdout, stderr = invoke("batch", "results", "b1", "--service", "s", "--version", "v1", "--json")
    assert code == EXIT_AUTH
    assert json.loads(stderr)["exit_code"] == EXIT_AUTH


def test_usage_errors_exit_2_before_any_request(config: Path, tmp_path: Path) -> None:
    assert invoke("consume", "svc", "v1", "hp120")[0] == EXIT_USAGE
    assert invoke("publish", "nofile.py:add", "--name", "x")[0] == EXIT_USAGE
    code, _, stderr = invoke("batch", "status", "unknown-id")
    assert code == EXIT_USAGE
    assert "--service" in stderr
    records = tmp_path / "records.xlsx"
    records.write_bytes(b"")
    code, _, stderr = invoke("batch", "start", "svc", "v1", "--input", str(records))
    assert code == EXIT_USAGE
    assert "unknown records file type '.xlsx'" in stderr
    assert invoke("batch", "start", "svc", "v1", "--input", str(records), "--parallel", "0")[0] == EXIT_USAGE
    assert invoke("batch", "results", "b1", "--service", "s", "--version", "v1", "--output", "r.xlsx")[0] == 2


def test_a_corrupt_credentials_file_is_a_usage_error(config: Path) -> None:
    config.mkdir()
    (config / "credentials.json").write_text("{not json", encoding="utf-8")
    code, _, stderr = invoke("services", "list")
    assert code == EXIT_USAGE
    assert "credentials.json is not valid JSON" in stderr


def test_logout_forgets_the_stored_tokens(config: Path) -> None:
    write_private_json(config / "credentials.json", {"http://a:1": {"access_token": "t"}, "http://b:2": {}})
    assert invoke("logout", "--url", "http://a:1/")[0] == EXIT_OK
    assert set(json.loads((config / "credentials.json").read_text(encoding="utf-8"))) == {"http://b:2"}
    assert "no stored login" in invoke("logout", "--url", "http://a:1")[1]


def test_help_documents_the_exit_codes_and_every_command() -> None:
    code, stdout, _ = invoke("--help")
    assert code == 0
    for line in ("0    done", "3    the batch failed or was canceled", "5    any other API or connection error"):
        assert line in stdout
    groups = {
        "services": ["list", "get", "delete", "swagger"],
        "batch": ["start", "status", "wait", "cancel", "retry", "delete", "results", "download", "list"],
    }
    for command in ("login", "logout", "publish", "consume", "serve"):
        assert command in stdout
        assert invoke(command, "--help")[0] == 0
    for group, commands in groups.items():
        for command in commands:
            code, stdout, _ = invoke(group, command, "--help")
            assert code == 0, (group, command)
            assert "--json" in stdout


def test_version_is_unchanged() -> None:
    code, stdout, _ = invoke("--version")
    assert code == 0
    assert stdout.startswith("batchscore ")
