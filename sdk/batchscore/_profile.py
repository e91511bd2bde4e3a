r"""The current server: named profiles (URL and user name) and stored tokens in the user's config directory.

``batchscore login`` writes both files; the CLI's commands and ``batchscore.Client()`` without a URL read them.

* ``profiles.json``: ``{"profiles": {name: {"url": ..., "username": ...}}}``. The profile used is the one named
  by ``--profile`` (CLI), else ``$BATCHSCORE_PROFILE``, else ``default``.
* ``credentials.json``: ``{url: {"access_token", "refresh_token", "username"}}`` (mode 0600), keyed by URL so
  that profiles on one server share a login.

Both live in ``$BATCHSCORE_CONFIG_DIR``, else the platform's per-user config directory (``typer.get_app_dir``:
``~/.config/batchscore`` on Linux, ``~/Library/Application Support/batchscore`` on macOS, ``%APPDATA%\batchscore``
on Windows), where the CLI has always kept its credentials.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchscore._exceptions import BatchscoreError

CONFIG_DIR_ENV = "BATCHSCORE_CONFIG_DIR"
PROFILE_ENV = "BATCHSCORE_PROFILE"
URL_ENV = "BATCHSCORE_URL"
USERNAME_ENV = "BATCHSCORE_USERNAME"
PASSWORD_ENV = "BATCHSCORE_PASSWORD"
CREDENTIALS_FILE = "credentials.json"
PROFILES_FILE = "profiles.json"
DEFAULT_PROFILE = "default"


def config_dir() -> Path:
    """Where profiles, credentials and the CLI's batch index live (``$BATCHSCORE_CONFIG_DIR`` or the app dir)."""
    configured = os.environ.get(CONFIG_DIR_ENV)
    if configured:
        return Path(configured)
    import typer  # only here: the SDK's other paths never need the CLI's library (a dependency all the same)

    return Path(typer.get_app_dir("batchscore"))


def normalize_url(url: str) -> str:
    """The key a server's credentials are stored under: the URL without a trailing slash."""
    return url.strip().rstrip("/")


def read_state(name: str) -> dict[str, Any]:
    """A JSON object from the config directory ({} when the file does not exist).

    Raises:
        BatchscoreError: The file cannot be read or is not valid JSON.

    """
    path = config_dir() / name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise BatchscoreError(f"cannot read {path}: {error}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise BatchscoreError(f"{path} is not valid JSON: fix or delete it") from None
    return data if isinstance(data, dict) else {}


def write_private_json(path: Path, data: object) -> None:
    """Write JSON atomically to a file readable by its owner only (mode 0600, directory 0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@dataclass(frozen=True)
class Profile:
    """A named server: its URL and the user name last logged in with."""

    name: str
    url: str
    username: str | None = None


def profile_name(explicit: str | None = None) -> str:
    """The profile in use: ``explicit`` (``--profile``), else ``$BATCHSCORE_PROFILE``, else ``default``."""
    return explicit or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE


def load_profile(name: str | None = None) -> Profile | None:
    """The stored profile (see :func:`profile_name`), or None when it has not been stored."""
    chosen = profile_name(name)
    entry = read_state(PROFILES_FILE).get("profiles", {}).get(chosen)
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str) or not entry["url"]:
        return None
    username = entry.get("username")
    return Profile(chosen, entry["url"], username if isinstance(username, str) and username else None)


def save_profile(profile: Profile) -> Path:
    """Store (or replace) a profile; returns the file it is in."""
    state = read_state(PROFILES_FILE)
    profiles = state.get("profiles")
    if not isinstance(profiles, dict):
        profiles = state["profiles"] = {}
    profiles[profile.name] = {"url": normalize_url(profile.url), "username": profile.username}
    path = config_dir() / PROFILES_FILE
    write_private_json(path, state)
    return path


def stored_tokens(url: str) -> dict[str, Any] | None:
    """What ``batchscore login`` stored for the URL (``access_token``, ``refresh_token``, ``username``), if any."""
    entry = read_state(CREDENTIALS_FILE).get(normalize_url(url))
    if not isinstance(entry, dict) or not isinstance(entry.get("access_token"), str):
        return None
    return entry


def save_tokens(url: str, access_token: str | None, refresh_token: str | None, username: str) -> None:
    """Store a server's tokens in ``credentials.json`` (mode 0600), replacing what was there for the URL."""
    credentials = read_state(CREDENTIALS_FILE)
    credentials[normalize_url(url)] = {
        "access_token": access_token,
        "refresh_token": refresh_token,
        "username": username,
    }
    write_private_json(config_dir() / CREDENTIALS_FILE, credentials)


@dataclass(frozen=True)
class Connection:
    """Where ``Client()`` without a URL connects, and how it authenticates.

    Attributes:
        url: The server.
        username: User name to log in with (with ``password``).
        password: Its password.
        token: A stored access token.
        refresh_token: The stored refresh token.
        stored_as: The user name the tokens were stored for, when they came from ``credentials.json`` (a renewed
            pair is written back there, so the CLI does not present a refresh token the server already rotated).

    """

    url: str
    username: str | None = None
    password: str | None = None
    token: str | None = None
    refresh_token: str | None = None
    stored_as: str | None = None


def resolve_connection(
    username: str | None, password: str | None, token: str | None, refresh_token: str | None
) -> Connection:
    """The server and credentials of a client made without a URL.

    The URL is ``$BATCHSCORE_URL``, else the current profile's (:func:`load_profile`). Credentials passed in win;
    else ``$BATCHSCORE_USERNAME`` and ``$BATCHSCORE_PASSWORD``; else the tokens ``batchscore login`` stored for
    the URL; else none (a server that needs them answers 401).

    Raises:
        BatchscoreError: No URL anywhere (nothing is configured), or a config file that is not valid JSON.

    """
    url = os.environ.get(URL_ENV) or None
    if url is None:
        profile = load_profile()
        if profile is None:
            raise BatchscoreError(
                "no server configured: pass a URL (batchscore.Client('http://host:12800')), set BATCHSCORE_URL, "
                f"or run `batchscore login --url URL --username NAME` (profile {profile_name()!r} "
                f"in {config_dir() / PROFILES_FILE} has no URL)"
            )
        url = profile.url
    if username is not None or token is not None:
        return Connection(url, username, password, token, refresh_token)
    env_user = os.environ.get(USERNAME_ENV) or None
    if env_user is not None:
        return Connection(url, env_user, password or os.environ.get(PASSWORD_ENV))
    entry = stored_tokens(url)
    if entry is None:
        return Connection(url)
    refresh = entry.get("refresh_token")
    return Connection(
        url,
        token=entry["access_token"],
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        stored_as=str(entry.get("username") or ""),
    )
