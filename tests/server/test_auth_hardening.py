"""Sessions end with a password change or a removal, a replayed rotated refresh token revokes its family, the
refresh-token table is pruned, a changed admin password is not silently ignored, and access logs hold no refresh
token."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from batchscore_server import _auth, _db
from batchscore_server._auth import Authenticator, Role, add_user
from batchscore_server._embedded import ADMIN_PASSWORD_ENV, ensure_admin
from batchscore_server._errors import ApiError
from batchscore_server._settings import Settings


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = _db.create_engine(tmp_path / "auth.db")
    add_user(engine, "alice", "pw", Role.CONTRIBUTOR)
    add_user(engine, "bob", "pw", Role.READER)
    return engine


def _auth_of(engine: sa.Engine, refresh_seconds: int = 86400, cache_seconds: float = 0) -> Authenticator:
    return Authenticator(engine, b"s" * 32, 3600, refresh_seconds, check_cache_seconds=cache_seconds)


def _login(auth: Authenticator, user: str = "alice") -> dict[str, str]:
    with auth._engine.begin() as conn:  # a login without argon2
        return auth._issue(conn, user)


def _refused(call: object, *args: object) -> ApiError:
    with pytest.raises(ApiError) as raised:
        call(*args)  # type: ignore[operator]
    assert raised.value.status == 401
    return raised.value


def _bearer(pair: dict[str, str]) -> str:
    return f"Bearer {pair['access_token']}"


@pytest.mark.parametrize("cache_seconds", [0, 60])
def test_a_password_reset_ends_the_users_sessions(engine: sa.Engine, cache_seconds: float) -> None:
    auth = _auth_of(engine, cache_seconds=cache_seconds)
    pair, renewable, other = _login(auth), _login(auth), _login(auth, "bob")
    assert auth.authenticate(_bearer(pair)).name == "alice"
    add_user(engine, "alice", "new-pw", Role.CONTRIBUTOR)  # `users add` on an existing user resets it
    _refused(auth.renew, renewable["refresh_token"])
    if cache_seconds == 0:  # with the cache: refused once the check is forgotten (see the e2e test)
        _refused(auth.authenticate, _bearer(pair))
    assert auth.authenticate(_bearer(other)).name == "bob", "another user's session goes on"
    fresh = _login(auth)
    assert _auth.set_password(engine, "alice", "newer-pw")
    _refused(auth.renew, fresh["refresh_token"])
    _refused(auth.revoke, fresh["refresh_token"])
    assert not _auth.set_password(engine, "nobody", "pw")
    assert _auth.password_matches(engine, "alice", "newer-pw") is True
    assert _auth.password_matches(engine, "alice", "new-pw") is False
    assert _auth.password_matches(engine, "nobody", "pw") is None


def test_a_removed_user_has_no_session_left(engine: sa.Engine) -> None:
    auth = _auth_of(engine)
    pair = _login(auth)
    assert _auth.remove_user(engine, "alice")
    _refused(auth.authenticate, _bearer(pair))
    _refused(auth.renew, pair["refresh_token"])
    _refused(auth.login, "alice", "pw")
    assert not _auth.remove_user(engine, "alice")


def test_a_login_whose_password_changed_meanwhile_is_refused(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = _auth_of(engine)
    hasher = _auth._HASHER

    class ChangingHasher:
        """Verifies, then has the password changed before the login goes on (as a concurrent `users passwd`)."""

        hash = hasher.hash

        def verify(self, stored: str, password: str) -> bool:
            checked = hasher.verify(stored, password)
            monkeypatch.setattr(_auth, "_HASHER", hasher)
            _auth.set_password(engine, "alice", "changed while argon2 ran")
            return checked

    monkeypatch.setattr(_auth, "_HASHER", ChangingHasher())
    _refused(auth.login, "alice", "pw")


@pytest.mark.parametrize("cache_seconds", [0, 60])
def test_replaying_a_rotated_refresh_token_revokes_its_family(engine: sa.Engine, cache_seconds: float) -> None:
    auth = _auth_of(engine, cache_seconds=cache_seconds)
    first = _login(auth)
    second = auth.renew(first["refresh_token"])
    third = auth.renew(second["refresh_token"])
    unrelated = _login(auth)
    assert auth.authenticate(_bearer(third)).name == "alice"
    error = _refused(auth.renew, first["refresh_token"])  # the replay
    assert error.field == "refreshToken"
    _refused(auth.renew, third["refresh_token"])
    _refused(auth.authenticate, _bearer(third))
    assert auth.authenticate(_bearer(unrelated)).name == "alice", "another login's family lives on"
    # A replay through the revoke operation revokes the family too.
    fourth = auth.renew(unrelated["refresh_token"])
    _refused(auth.revoke, unrelated["refresh_token"])
    _refused(auth.renew, fourth["refresh_token"])


def test_a_forged_token_with_a_real_id_revokes_nothing(engine: sa.Engine) -> None:
    auth = _auth_of(engine)
    first = _login(auth)
    second = auth.renew(first["refresh_token"])
    token_id = first["refresh_token"].partition(".")[0]
    _refused(auth.renew, f"{token_id}.not-the-secret-part")
    assert auth.renew(second["refresh_token"])["refresh_token"]


def _rows(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(_db.refresh_tokens)).scalar_one())


def test_the_refresh_token_table_is_pruned(engine: sa.Engine) -> None:
    auth = _auth_of(engine)
    expired = _auth_of(engine, refresh_seconds=-10)
    for _ in range(3):
        _login(expired)
    logged_out = _login(auth)
    auth.revoke(logged_out["refresh_token"])
    first = _login(auth)
    auth.renew(first["refresh_token"])  # a live family of two: the rotated row is kept to detect its replay
    assert _rows(engine) == 6
    _auth_of(engine)  # a start prunes
    assert _rows(engine) == 2
    _refused(auth.renew, first["refresh_token"])  # still recognised as a replay...
    assert _rows(engine) == 2
    _auth.prune_refresh_tokens(engine)  # ...which ended the family: nothing is left to keep
    assert _rows(engine) == 0


def test_a_login_prunes_now_and_then(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = _auth_of(engine)
    auth.revoke(_login(auth)["refresh_token"])
    monkeypatch.setattr(_auth, "PRUNE_SECONDS", 0.0)
    auth.login("alice", "pw")
    assert _rows(engine) == 1


def test_an_old_database_gains_the_family_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = _db.create_engine(path)
    add_user(engine, "alice", "pw", Role.CONTRIBUTOR)
    pair = _login(_auth_of(engine))
    with engine.begin() as conn:  # the schema before families and quotas
        conn.exec_driver_sql("DROP INDEX ix_refresh_tokens_family")
        conn.exec_driver_sql("ALTER TABLE refresh_tokens DROP COLUMN family")
        conn.exec_driver_sql("ALTER TABLE batches DROP COLUMN input_bytes")
    engine.dispose()
    upgraded = _db.create_engine(path)
    auth = _auth_of(upgraded)
    second = auth.renew(pair["refresh_token"])  # a token issued before the upgrade heads its own family
    _refused(auth.renew, pair["refresh_token"])
    _refused(auth.renew, second["refresh_token"])
    with upgraded.connect() as conn:
        assert "input_bytes" in {row[1] for row in conn.exec_driver_sql("PRAGMA table_info(batches)")}


def test_a_changed_admin_password_is_not_silently_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    ensure_admin(settings, "first")
    with caplog.at_level(logging.WARNING, logger="batchscore_server.embedded"):
        ensure_admin(settings, "first")
        assert not caplog.records
        ensure_admin(settings, "second")
    (record,) = caplog.records
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    assert ADMIN_PASSWORD_ENV in message
    assert "batchscore users passwd admin" in message


def test_refresh_tokens_are_redacted_from_access_log_records() -> None:
    # As uvicorn's h11 protocol logs a request.
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "DELETE", "/login/refreshToken?refreshToken=abc.SECRET&x=1", "1.1", 200),
        None,
    )
    assert _auth.RedactTokens().filter(record)
    message = record.getMessage()
    assert "SECRET" not in message
    assert "refreshToken=[redacted]&x=1" in message
