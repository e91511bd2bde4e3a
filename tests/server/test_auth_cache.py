"""The token-check cache: checks are remembered briefly, and a refresh or revoke still refuses at once."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from batchscore_server import _db
from batchscore_server._auth import Authenticator, Role, add_user
from batchscore_server._errors import ApiError


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = _db.create_engine(tmp_path / "auth.db")
    add_user(engine, "alice", "pw", Role.CONTRIBUTOR)
    return engine


class CountingEngine:
    """Counts the connections the authenticator opens (each check without the cache opens one)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.connects = 0

    def connect(self) -> sa.Connection:
        self.connects += 1
        return self.engine.connect()

    def begin(self) -> object:
        return self.engine.begin()


def _auth(engine: sa.Engine, cache_seconds: float) -> tuple[Authenticator, CountingEngine]:
    counting = CountingEngine(engine)
    auth = Authenticator(counting, b"s" * 32, 3600, 86400, check_cache_seconds=cache_seconds)  # type: ignore[arg-type]
    return auth, counting


def _login(auth: Authenticator) -> dict[str, str]:
    with auth._engine.begin() as conn:  # a login without argon2: the cache is what is tested
        return auth._issue(conn, "alice")  # type: ignore[arg-type]


def test_a_passed_check_is_remembered(engine: sa.Engine) -> None:
    auth, counting = _auth(engine, 60)
    header = f"Bearer {_login(auth)['access_token']}"
    assert auth.authenticate(header).role is Role.CONTRIBUTOR
    first = counting.connects
    for _ in range(5):
        assert auth.authenticate(header).name == "alice"
    assert counting.connects == first
    remembered = auth.remembered(header)
    assert remembered is not None
    assert remembered.name == "alice"
    assert auth.remembered(header[:-2] + "xx") is None
    assert auth.remembered(None) is None


def test_no_cache_checks_the_database_every_time(engine: sa.Engine) -> None:
    auth, counting = _auth(engine, 0)
    header = f"Bearer {_login(auth)['access_token']}"
    auth.authenticate(header)
    auth.authenticate(header)
    assert counting.connects == 2


@pytest.mark.parametrize("how", ["revoke", "renew"])
def test_a_revoked_or_rotated_pair_is_refused_at_once_despite_the_cache(engine: sa.Engine, how: str) -> None:
    auth, _ = _auth(engine, 60)
    pair = _login(auth)
    header = f"Bearer {pair['access_token']}"
    auth.authenticate(header)  # remembered
    getattr(auth, how)(pair["refresh_token"])
    with pytest.raises(ApiError) as refused:
        auth.authenticate(header)
    assert refused.value.status == 401


def test_a_check_is_not_trusted_past_the_cache_period(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    import batchscore_server._auth as auth_module

    auth, counting = _auth(engine, 5)
    header = f"Bearer {_login(auth)['access_token']}"
    now = auth_module.time.time()
    auth.authenticate(header)
    monkeypatch.setattr(auth_module.time, "time", lambda: now + 6)
    auth.authenticate(header)
    assert counting.connects == 2
