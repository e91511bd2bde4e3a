"""One current server (issue 16): the environment and stored profiles, connection errors that name the URL, the
SDK's log records, and downloads written with the user's umask."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import batchscore
from batchscore import APIConnectionError, BatchscoreError, RetryPolicy
from batchscore._files import partial_file
from batchscore._profile import Profile, load_profile, save_profile, save_tokens, stored_tokens
from batchscore.cli import app
from batchscore.testing import FakeServer, FakeService

SECRET = "pa55-word-never-logged"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("BATCHSCORE_URL", "BATCHSCORE_USERNAME", "BATCHSCORE_PASSWORD", "BATCHSCORE_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BATCHSCORE_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


@pytest.fixture
def umask() -> Iterator[int]:
    old = os.umask(0o022)
    try:
        yield 0o022
    finally:
        os.umask(old)


def add(hp: float, wt: float) -> float:
    return hp + wt


def sent_to(fake: FakeServer) -> set[str]:
    return {f"{request.url.scheme}://{request.url.netloc.decode()}" for request in fake.requests}


# --- Client() without a URL ----------------------------------------------------------------------------------------


def test_nothing_configured_is_a_clear_error(config: Path) -> None:
    with pytest.raises(BatchscoreError) as raised:
        batchscore.Client()
    message = str(raised.value)
    assert "BATCHSCORE_URL" in message
    assert "batchscore login" in message
    with pytest.raises(BatchscoreError, match="no server configured"):
        batchscore.AsyncClient()


def test_the_environment_names_the_server_and_the_user(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHSCORE_URL", "http://env-server:12800/")
    monkeypatch.setenv("BATCHSCORE_USERNAME", "ann")
    monkeypatch.setenv("BATCHSCORE_PASSWORD", SECRET)
    fake = FakeServer({("svc", "v1"): add}, users={"ann": SECRET})
    with batchscore.Client(transport=fake) as client:
        assert client.get_service("svc", "v1").consume(1, 2).outputs == {"answer": 3}
    assert sent_to(fake) == {"http://env-server:12800"}
    monkeypatch.setenv("BATCHSCORE_PASSWORD", "wrong")
    with batchscore.Client(transport=fake) as client, pytest.raises(batchscore.AuthenticationError):
        client.list_services()


def test_the_stored_profile_and_its_token(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_profile(Profile("default", "http://home:1/", "ann"))
    save_profile(Profile("staging", "http://staging:2", "bob"))
    save_tokens("http://home:1", "home-token", None, "ann")
    fake = FakeServer()
    with batchscore.Client(transport=fake) as client:
        client.list_services()
    assert sent_to(fake) == {"http://home:1"}
    assert fake.requests[-1].headers["Authorization"] == "Bearer home-token"
    # BATCHSCORE_PROFILE picks another profile; BATCHSCORE_URL wins over any profile.
    monkeypatch.setenv("BATCHSCORE_PROFILE", "staging")
    assert load_profile() == Profile("staging", "http://staging:2", "bob")
    fake = FakeServer()
    with batchscore.Client(transport=fake) as client:
        client.list_services()
    assert sent_to(fake) == {"http://staging:2"}
    assert fake.requests[-1].headers.get("Authorization") != "Bearer home-token"  # nothing stored for that server
    monkeypatch.setenv("BATCHSCORE_URL", "http://env:3")
    fake = FakeServer()
    with batchscore.Client(transport=fake) as client:
        client.list_services()
    assert sent_to(fake) == {"http://env:3"}


def test_a_renewed_stored_token_is_written_back(config: Path) -> None:
    fake = FakeServer(users={"ann": SECRET})
    with batchscore.Client(fake.url, username="ann", password=SECRET, transport=fake) as first:
        first.login()
        save_tokens(fake.url, first.tokens.access_token, first.tokens.refresh_token, "ann")
        save_profile(Profile("default", fake.url, "ann"))
    fake.expire_tokens()
    with batchscore.Client(transport=fake) as client:
        client.list_services()  # a 401, then the stored refresh token renews the pair
        renewed = client.tokens
    assert renewed.access_token != first.tokens.access_token
    entry = stored_tokens(fake.url)
    assert entry is not None
    assert (entry["access_token"], entry["refresh_token"], entry["username"]) == (
        renewed.access_token,
        renewed.refresh_token,
        "ann",
    )


# --- the CLI -------------------------------------------------------------------------------------------------------


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def fake_cli(monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    """Every client the CLI makes talks to one FakeServer (user ann)."""
    fake = FakeServer({("svc", "v1"): add}, users={"ann": SECRET})
    monkeypatch.setattr(httpx, "HTTPTransport", lambda *args, **kwargs: fake)
    return fake


def test_login_stores_the_profile_and_later_commands_use_it(config: Path, fake_cli: FakeServer) -> None:
    code, stdout, stderr = invoke("login", "--url", "http://home:1/", "--username", "ann", "--password", SECRET)
    assert code == 0, stderr
    assert "profile default" in stdout
    assert json.loads((config / "profiles.json").read_text())["profiles"]["default"] == {
        "url": "http://home:1",
        "username": "ann",
    }
    code, stdout, stderr = invoke("services", "list", "--json")
    assert code == 0, stderr
    assert [each["name"] for each in json.loads(stdout)] == ["svc"]
    assert sent_to(fake_cli) == {"http://home:1"}
    # The SDK finds the same server and token.
    with batchscore.Client(transport=fake_cli) as client:
        assert [info.name for info in client.list_services()] == ["svc"]


def test_named_profiles(config: Path, fake_cli: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    assert invoke("login", "--url", "http://home:1", "--username", "ann", "--password", SECRET)[0] == 0
    code, _, stderr = invoke(
        "login", "--profile", "staging", "--url", "http://staging:2", "--username", "ann", "--password", SECRET
    )
    assert code == 0, stderr
    fake_cli.requests.clear()
    assert invoke("--profile", "staging", "services", "list")[0] == 0
    assert sent_to(fake_cli) == {"http://staging:2"}
    fake_cli.requests.clear()
    monkeypatch.setenv("BATCHSCORE_PROFILE", "staging")
    assert invoke("consume", "svc", "v1", "hp=1", "wt=2")[0] == 0
    assert sent_to(fake_cli) == {"http://staging:2"}
    fake_cli.requests.clear()
    monkeypatch.delenv("BATCHSCORE_PROFILE")
    assert invoke("services", "list")[0] == 0
    assert sent_to(fake_cli) == {"http://home:1"}
    # Logging in again to a profile needs neither its URL nor its user name.
    code, stdout, _ = invoke("login", "--profile", "staging", "--password", SECRET)
    assert code == 0
    assert "logged in to http://staging:2 as ann (profile staging)" in stdout


def test_an_unknown_profile_falls_back_to_the_default_url(config: Path) -> None:
    save_profile(Profile("default", "http://127.0.0.1:9", "ann"))
    code, _, stderr = invoke("--profile", "nowhere", "services", "list")
    assert code == 4
    assert "not logged in to http://127.0.0.1:12800" in stderr
    code, _, stderr = invoke("services", "list")
    assert "not logged in to http://127.0.0.1:9" in stderr


def test_login_without_a_user_name_is_a_usage_error(config: Path) -> None:
    code, _, stderr = invoke("login", "--password", "x")
    assert code == 2
    assert "--username" in stderr


def test_completion_is_offered() -> None:
    code, stdout, _ = invoke("--help")
    assert code == 0
    assert "--install-completion" in stdout
    assert "--show-completion" in stdout


# --- connection errors -------------------------------------------------------------------------------------------


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.mark.parametrize(
    ("url", "hint"), [("http://127.0.0.1:12800", True), ("http://localhost:9/ml", True), ("https://far:8443", False)]
)
def test_a_connection_error_names_the_url(url: str, hint: bool) -> None:
    client = batchscore.Client(url, token="t", retry=RetryPolicy(max_retries=0), transport=httpx.MockTransport(refuse))
    with client, pytest.raises(APIConnectionError) as raised:
        client.list_services()
    message = raised.value.message
    assert f"could not reach the server at {url.split('/ml')[0]}" in message
    assert ("batchscore serve" in message) is hint


def test_the_cli_names_the_url_it_could_not_reach(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httpx, "HTTPTransport", lambda *args, **kwargs: httpx.MockTransport(refuse))
    code, _, stderr = invoke("services", "list", "--url", "http://127.0.0.1:9", "--username", "a", "--password", "b")
    assert code == 5
    assert "could not reach the server at http://127.0.0.1:9" in stderr
    assert "batchscore serve" in stderr


# --- logging -------------------------------------------------------------------------------------------------------


def test_requests_and_retries_are_logged_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    answers = iter([503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/login"):
            return httpx.Response(200, json={"access_token": "tok-SECRET", "refresh_token": "ref-SECRET"})
        return httpx.Response(next(answers), json=[])

    client = batchscore.Client(
        "http://server:1",
        username="ann",
        password=SECRET,
        retry=RetryPolicy(initial_delay=0.0),
        transport=httpx.MockTransport(handler),
    )
    client._sleep = lambda seconds: None
    with caplog.at_level(logging.DEBUG, logger="batchscore"), client:
        client.list_services()
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "batchscore"]
    assert (records[0][0], records[0][1].split(" ->")[0]) == ("DEBUG", "POST /login")
    assert any(level == "DEBUG" and message.startswith("GET /services -> 503 in ") for level, message in records)
    assert any(level == "INFO" and "GET /services: status 503; retry 1 of 2" in message for level, message in records)
    assert any(level == "DEBUG" and message.startswith("GET /services -> 200 in ") for level, message in records)
    text = caplog.text
    for secret in (SECRET, "tok-SECRET", "ref-SECRET"):
        assert secret not in text


def test_giving_up_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    client = batchscore.Client(
        "http://server:1", token="t", retry=RetryPolicy(max_retries=1), transport=httpx.MockTransport(refuse)
    )
    client._sleep = lambda seconds: None
    with caplog.at_level(logging.INFO, logger="batchscore"), client, pytest.raises(APIConnectionError):
        client.list_services()
    levels = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "batchscore"]
    assert levels == [
        ("INFO", levels[0][1]),
        ("WARNING", "GET /services: ConnectError after 1 retries"),
    ]
    assert "retry 1 of 1" in levels[0][1]


# --- files written for the user ----------------------------------------------------------------------------------


def test_partial_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    descriptor, path = partial_file(tmp_path / "result.csv")
    os.close(descriptor)
    assert path.parent == tmp_path
    assert path.name.startswith(".result.csv.")
    assert path.name.endswith(".part")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    again, other = partial_file(tmp_path / "result.csv")
    os.close(again)
    assert other != path


def test_downloaded_artifacts_and_exports_follow_the_umask(tmp_path: Path, umask: int) -> None:
    def draw(hp: float, wt: float) -> float:
        Path("plot.png").write_bytes(b"png")
        return hp

    fake = FakeServer({("svc", "v1"): FakeService(draw, artifacts=["plot.png"])})
    with fake.client() as client:
        batch = client.get_service("svc", "v1").batch([{"hp": 1.0, "wt": 2.0}]).start()
        batch.wait()
        (tmp_path / "files").mkdir()
        [artifact] = batch.download(0, dest=tmp_path / "files")
        export = tmp_path / "results.ndjson"
        batch.export(export)
    for path in (artifact, export):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
