"""``batchscore login`` and ``logout``: store and forget a server's tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from batchscore import (
    Client,
    _profile,
)
from batchscore.cli._common import (
    CREDENTIALS_FILE,
    DEFAULT_URL,
    EXIT_USAGE,
    CliError,
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
    current_profile,
    normalize_url,
    selected_profile,
)

# --- Commands: login ---------------------------------------------------------------------------------------------


ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="The profile to store the server in (default: the root's --profile, BATCHSCORE_PROFILE or `default`).",
        show_default=False,
    ),
]


def login(
    username: Annotated[
        str | None,
        typer.Option(
            "--username",
            envvar="BATCHSCORE_USERNAME",
            help="User name (default: the profile's).",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
    password: PasswordOption = None,
    profile: ProfileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Log in, store the tokens for the URL and make the URL the profile's server, for later commands.

    Later commands without --url (and batchscore.Client() without a URL) use the profile's server: `default`,
    or the one --profile / BATCHSCORE_PROFILE names. Without --url or --username, login uses the profile's. The
    password comes from --password, BATCHSCORE_PASSWORD, a prompt, or the first line of stdin. profiles.json and
    credentials.json (mode 0600) are in $BATCHSCORE_CONFIG_DIR (default: the user's batchscore config directory).
    """
    with _failures(json_output):
        stored = current_profile(profile)
        base = normalize_url(url or (stored.url if stored else None) or DEFAULT_URL)
        user = username or (stored.username if stored else None)
        if not user:
            raise CliError(EXIT_USAGE, "no user name: pass --username (or set BATCHSCORE_USERNAME)")
        secret = password or _read_password(user)
        with Client(base, username=user, password=secret) as client:
            client.login()
            _save_tokens(base, client, user)
        name = _profile.profile_name(profile or selected_profile())
        try:
            saved = _profile.save_profile(_profile.Profile(name, base, user))
        except OSError as error:
            raise CliError(EXIT_USAGE, f"cannot write the profile {name!r}: {error}") from None
    if json_output:
        _emit_json(
            {
                "url": base,
                "username": user,
                "profile": name,
                "profiles": str(saved),
                "credentials": str(config_dir() / CREDENTIALS_FILE),
            }
        )
    else:
        _stdout.print(f"logged in to {base} as {user} (profile {name})")


def logout(url: UrlOption = None, profile: ProfileOption = None, json_output: JsonOption = False) -> None:
    """Forget the tokens stored for the URL (default: the profile's); the profile itself stays."""
    with _failures(json_output):
        stored = current_profile(profile)
        base = normalize_url(url or (stored.url if stored else None) or DEFAULT_URL)
        credentials = _read_state(CREDENTIALS_FILE)
        removed = credentials.pop(base, None) is not None
        if removed:
            _write_state(CREDENTIALS_FILE, credentials)
    if json_output:
        _emit_json({"url": base, "removed": removed})
    else:
        _stdout.print(f"logged out of {base}" if removed else f"no stored login for {base}")
