"""``batchscore login`` and ``logout``: store and forget a server's tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from batchscore import (
    Client,
)
from batchscore.cli._common import (
    CREDENTIALS_FILE,
    DEFAULT_URL,
    JsonOption,
    PasswordOption,
    UrlOption,
    _emit_json,
    _failures,
    _read_password,
    _read_state,
    _save_tokens,
    _stdout,
    _write_state,
    config_dir,
    normalize_url,
)

# --- Commands: login ---------------------------------------------------------------------------------------------


def login(
    username: Annotated[
        str, typer.Option("--username", envvar="BATCHSCORE_USERNAME", help="User name.", show_default=False)
    ],
    url: UrlOption = None,
    password: PasswordOption = None,
    json_output: JsonOption = False,
) -> None:
    """Log in and store the tokens for the URL, for later commands (credentials.json in the config directory).

    The password comes from --password, BATCHSCORE_PASSWORD, a prompt, or the first line of stdin. The file is
    created with mode 0600 in $BATCHSCORE_CONFIG_DIR (default: the user's batchscore config directory).
    """
    base = normalize_url(url or DEFAULT_URL)
    with _failures(json_output):
        secret = password or _read_password(username)
        with Client(base, username=username, password=secret) as client:
            client.login()
            _save_tokens(base, client, username)
    if json_output:
        _emit_json({"url": base, "username": username, "credentials": str(config_dir() / CREDENTIALS_FILE)})
    else:
        _stdout.print(f"logged in to {base} as {username}")


def logout(url: UrlOption = None, json_output: JsonOption = False) -> None:
    """Forget the tokens stored for the URL."""
    base = normalize_url(url or DEFAULT_URL)
    with _failures(json_output):
        credentials = _read_state(CREDENTIALS_FILE)
        removed = credentials.pop(base, None) is not None
        if removed:
            _write_state(CREDENTIALS_FILE, credentials)
    if json_output:
        _emit_json({"url": base, "removed": removed})
    else:
        _stdout.print(f"logged out of {base}" if removed else f"no stored login for {base}")
