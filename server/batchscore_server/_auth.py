"""Users, passwords (argon2), access tokens (JWT HS256) and rotating refresh tokens.

An access token names the refresh token it was issued with (``rt``); a refresh or a revoke of that refresh token
therefore also invalidates the access token - ML Server's "each refresh invalidates the previous pair". A password
change and a user's removal revoke all of the user's refresh tokens, and so all of its sessions.

Refresh tokens rotate in families (OAuth 2.0 Security BCP, section 4.14.2): every token renewed from one login
belongs to that login's family, and presenting a token that was already rotated (a replay: it was stolen, or the
client lost the answer) revokes the whole family. Rows are pruned once no token of their family is live.

Checked access tokens are remembered for ``TOKEN_CHECK_CACHE_SECONDS`` (see :class:`Authenticator`): every poll
is token-checked, and two database reads per request were a third of a busy server's CPU under 400 polls/s.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from batchscore_server import _db
from batchscore_server._errors import ApiError

_HASHER = PasswordHasher()
# Verifying against this keeps a login for an unknown user as slow as one with a wrong password.
_DUMMY_HASH = _HASHER.hash("batchscore-no-such-user")
_ALGORITHM = "HS256"
# How long a token check is trusted without the database. A refresh or revoke through this server takes effect at
# once (see Authenticator); only a change made by another process (e.g. `batchscore users add` changing a role in the
# same data directory) waits up to this long. The SDK polls once a second, so 5 s spares most of its checks.
# A password change or a removal through `batchscore users` (another process) ends the user's sessions within this
# window too: the server cannot hear of it sooner.
TOKEN_CHECK_CACHE_SECONDS = 5.0
# How often a login deletes the refresh-token rows no family needs any more (a start does too).
PRUNE_SECONDS = 600.0
_CACHE_MAX_TOKENS = 10_000  # beyond this many live tokens the cache is emptied rather than grown
# Built once: constructing a statement cost more than running it (the compiled form is cached by SQLAlchemy).
_REFRESH_REVOKED = sa.select(_db.refresh_tokens.c.revoked).where(_db.refresh_tokens.c.token_id == sa.bindparam("rt"))
_USER_ROLE = sa.select(_db.users.c.role).where(_db.users.c.name == sa.bindparam("sub"))


class Role(StrEnum):
    """ML Server's roles."""

    OWNER = "Owner"
    CONTRIBUTOR = "Contributor"
    READER = "Reader"


_SECRET_KEY = "jwt-secret"


@dataclass(frozen=True)
class User:
    """The authenticated caller."""

    name: str
    role: Role

    @property
    def is_owner(self) -> bool:
        """Owners may do everything."""
        return self.role is Role.OWNER


def load_or_create_secret(engine: sa.Engine, data_dir: Path) -> bytes:
    """The JWT signing secret, kept in the database so every replica on it signs and checks with the same one.

    Generated once; a data directory of an earlier release had it in the file ``jwt-secret`` (mode 0600), which is
    taken over so the tokens it signed stay valid. Blocking.
    """
    path = data_dir / "jwt-secret"
    keys = _db.server_keys.c
    with engine.begin() as conn:
        stored = conn.execute(sa.select(keys.value).where(keys.name == _SECRET_KEY)).scalar_one_or_none()
    if stored is not None:
        return bytes(stored)
    secret = path.read_bytes() if path.exists() else secrets.token_bytes(32)
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(_db.server_keys).values(name=_SECRET_KEY, value=secret))
    except sa.exc.IntegrityError:  # another replica starting at the same moment stored its own first: use that
        with engine.begin() as conn:
            return bytes(conn.execute(sa.select(keys.value).where(keys.name == _SECRET_KEY)).scalar_one())
    return secret


def add_user(engine: sa.Engine, name: str, password: str, role: Role) -> None:
    """Create a user, or reset the password and role of an existing one (a reset ends its sessions).

    Args:
        engine: The database.
        name: User name.
        password: Plain password (only its argon2 hash is stored).
        role: The user's role.

    """
    row = {"password_hash": _HASHER.hash(password), "role": role.value}
    with engine.begin() as conn:
        updated = conn.execute(sa.update(_db.users).where(_db.users.c.name == name).values(**row)).rowcount
        if updated:
            _revoke_user_tokens(conn, name)
        else:
            conn.execute(sa.insert(_db.users).values(name=name, created=time.time(), **row))


def set_password(engine: sa.Engine, name: str, password: str) -> bool:
    """Change a user's password and end its sessions: every refresh token, and so every access token, is revoked.

    A server running on the same database refuses them within ``TOKEN_CHECK_CACHE_SECONDS``.

    Returns:
        False when there is no such user (nothing changed).

    """
    password_hash = _HASHER.hash(password)
    with engine.begin() as conn:
        changed = sa.update(_db.users).where(_db.users.c.name == name).values(password_hash=password_hash)
        if not conn.execute(changed).rowcount:
            return False
        _revoke_user_tokens(conn, name)
    return True


def remove_user(engine: sa.Engine, name: str) -> bool:
    """Delete a user and its refresh tokens (its sessions end as with :func:`set_password`).

    What it owns stays: its services, batches and snapshots keep its name as owner; Owners can still see and
    delete them, and a user added again under the same name owns them again.

    Returns:
        False when there is no such user.

    """
    with engine.begin() as conn:
        if not conn.execute(sa.delete(_db.users).where(_db.users.c.name == name)).rowcount:
            return False
        conn.execute(sa.delete(_db.refresh_tokens).where(_db.refresh_tokens.c.user_name == name))
    return True


def password_matches(engine: sa.Engine, name: str, password: str) -> bool | None:
    """Whether ``password`` is the user's password; None when there is no such user. Blocking (argon2)."""
    with engine.connect() as conn:
        stored = conn.execute(sa.select(_db.users.c.password_hash).where(_db.users.c.name == name)).scalar()
    if stored is None:
        return None
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _revoke_user_tokens(conn: sa.Connection, name: str) -> None:
    tokens = _db.refresh_tokens.c
    conn.execute(sa.update(_db.refresh_tokens).where(tokens.user_name == name).values(revoked=True))


def prune_refresh_tokens(engine: sa.Engine, now: float | None = None) -> int:
    """Delete the refresh-token rows of families with no live token left; returns how many.

    A rotated token's row is kept while its family lives: a replay of it must still be recognised as one.
    """
    tokens = _db.refresh_tokens.c
    live = sa.select(tokens.family).where(tokens.revoked.is_(False), tokens.expires_at >= (now or time.time()))
    with engine.begin() as conn:
        return int(conn.execute(sa.delete(_db.refresh_tokens).where(tokens.family.not_in(live))).rowcount)


def has_users(engine: sa.Engine) -> bool:
    """Whether any user exists (a new data directory has none)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(_db.users)).scalar_one() > 0


def _refresh_invalid() -> ApiError:
    return ApiError(401, "the refresh token is invalid, expired or revoked", "refreshToken")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class _Checked:
    """An access token that passed every check, trusted until ``until`` (epoch seconds)."""

    user: User
    refresh_id: str
    until: float


class Authenticator:
    """Issues, checks, rotates and revokes tokens.

    A token that passed :meth:`authenticate` is trusted again without the database for ``check_cache_seconds``
    (never past its ``exp``). Revocation stays immediate for everything done through this object: :meth:`renew`
    and :meth:`revoke` record the refresh token as revoked in memory, and a remembered check that names it is
    refused. Only changes from another process wait out the cache (``TOKEN_CHECK_CACHE_SECONDS``).

    Args:
        engine: The database.
        secret: The JWT signing secret.
        access_seconds: Access token life.
        refresh_seconds: Refresh token life.
        check_cache_seconds: How long a passed token check is trusted (0: check the database every time).

    """

    def __init__(
        self,
        engine: sa.Engine,
        secret: bytes,
        access_seconds: int,
        refresh_seconds: int,
        check_cache_seconds: float = TOKEN_CHECK_CACHE_SECONDS,
    ) -> None:
        self._engine = engine
        self._secret = secret
        self._access_seconds = access_seconds
        self._refresh_seconds = refresh_seconds
        self._cache_seconds = check_cache_seconds
        self._checked: dict[str, _Checked] = {}
        # Refresh token ids revoked by this process -> when. A check that read the database just before a revoke
        # committed may still be stored after it; this set refuses it. Kept one cache period, then pruned.
        self._revoked: dict[str, float] = {}
        self._lock = threading.Lock()
        prune_refresh_tokens(engine)
        self._pruned = time.monotonic()

    def login(self, username: str, password: str) -> dict[str, Any]:
        """Check a password and issue a token pair.

        Raises:
            ApiError: 401 when the user name or password is wrong.

        """
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_db.users).where(_db.users.c.name == username)).mappings().first()
        try:
            _HASHER.verify(row["password_hash"] if row else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            row = None
        if row is None:
            raise ApiError(401, "invalid user name or password", "password")
        self._prune_now_and_then()
        with self._engine.begin() as conn:
            # The password may have changed (or the user gone) while argon2 ran: no session on an old password.
            current = conn.execute(sa.select(_db.users.c.password_hash).where(_db.users.c.name == username)).scalar()
            if current != row["password_hash"]:
                raise ApiError(401, "invalid user name or password", "password")
            return self._issue(conn, username)

    def _prune_now_and_then(self) -> None:
        now = time.monotonic()
        if now - self._pruned >= PRUNE_SECONDS:
            self._pruned = now
            prune_refresh_tokens(self._engine)

    def renew(self, refresh_token: str) -> dict[str, Any]:
        """Rotate a token pair: the old refresh token (and its access tokens) stop working.

        Raises:
            ApiError: 401 when the refresh token is unknown, expired or revoked.

        """
        with self._engine.begin() as conn:
            row = self._live_refresh_row(conn, refresh_token)
            if row is not None:
                conn.execute(
                    sa.update(_db.refresh_tokens)
                    .where(_db.refresh_tokens.c.token_id == row["token_id"])
                    .values(revoked=True)
                )
                pair = self._issue(conn, row["user_name"], row["family"] or row["token_id"])
        if row is None:
            raise self._replayed(refresh_token)
        self._forget(row["token_id"])
        return pair

    def revoke(self, refresh_token: str) -> None:
        """Revoke a refresh token and the access tokens issued with it.

        Raises:
            ApiError: 401 when the refresh token is unknown, expired or already revoked.

        """
        with self._engine.begin() as conn:
            row = self._live_refresh_row(conn, refresh_token)
            if row is not None:
                conn.execute(
                    sa.update(_db.refresh_tokens)
                    .where(_db.refresh_tokens.c.token_id == row["token_id"])
                    .values(revoked=True)
                )
        if row is None:
            raise self._replayed(refresh_token)
        self._forget(row["token_id"])

    def _replayed(self, refresh_token: str) -> ApiError:
        """Revoke the family of a refresh token presented after it was revoked (a replay); the 401 to raise."""
        tokens = _db.refresh_tokens.c
        with self._engine.begin() as conn:
            family = conn.execute(
                sa.select(sa.func.coalesce(tokens.family, tokens.token_id)).where(
                    tokens.token_id == refresh_token.partition(".")[0]
                )
            ).scalar()
            if family is None:  # pruned meanwhile, and its family with it: nothing is left to revoke
                return _refresh_invalid()
            live = list(
                conn.execute(
                    sa.select(tokens.token_id).where(tokens.family == family, tokens.revoked.is_(False))
                ).scalars()
            )
            conn.execute(sa.update(_db.refresh_tokens).where(tokens.family == family).values(revoked=True))
        for token_id in live:
            self._forget(token_id)
        return _refresh_invalid()

    def _forget(self, refresh_id: str) -> None:
        """Refuse, from now on, every remembered check of an access token issued with this refresh token."""
        now = time.time()
        with self._lock:
            # A check stored before a revoke expires within one cache period of it: older ids need no keeping.
            horizon = now - self._cache_seconds
            self._revoked = {key: at for key, at in self._revoked.items() if at > horizon}
            self._revoked[refresh_id] = now

    def remembered(self, authorization: str | None) -> User | None:
        """The user of a ``Bearer`` header whose token passed :meth:`authenticate` lately; None otherwise.

        Never blocks (no database, no signature check): an ``async`` handler can call it on the event loop and
        fall back to :meth:`authenticate` in a thread when it returns None.
        """
        if not authorization or self._cache_seconds <= 0:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self._remembered(token.strip(), time.time())

    def _remembered(self, token: str, now: float) -> User | None:
        checked = self._checked.get(token)
        if checked is None or checked.until <= now or checked.refresh_id in self._revoked:
            return None
        return checked.user

    def _remember(self, token: str, checked: _Checked, now: float) -> None:
        with self._lock:
            if len(self._checked) >= _CACHE_MAX_TOKENS:
                self._checked = {key: value for key, value in self._checked.items() if value.until > now}
                if len(self._checked) >= _CACHE_MAX_TOKENS:
                    self._checked = {}
            self._checked[token] = checked

    def authenticate(self, authorization: str | None) -> User:
        """The user an ``Authorization: Bearer`` header names.

        Raises:
            ApiError: 401 when the header is missing, the token expired, was tampered with or was revoked, or the
                user no longer exists.

        """
        if not authorization:
            raise ApiError(
                401,
                "an access token is required (Authorization: Bearer <token>)",
                "Authorization",
                {"WWW-Authenticate": "Bearer"},
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise self._invalid("the Authorization header must be 'Bearer <access_token>'")
        token = token.strip()
        # The clock is read before the database: a check stored after a concurrent revoke then expires no later
        # than one cache period after that revoke (and _revoked refuses it meanwhile).
        now = time.time()
        if self._cache_seconds > 0 and (remembered := self._remembered(token, now)) is not None:
            return remembered
        try:
            claims = jwt.decode(token, self._secret, algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError:
            raise self._invalid("the access token has expired") from None
        except jwt.PyJWTError:
            raise self._invalid("the access token is invalid") from None
        with self._engine.connect() as conn:
            refresh = conn.execute(_REFRESH_REVOKED, {"rt": claims.get("rt")}).first()
            user = conn.execute(_USER_ROLE, {"sub": claims["sub"]}).first()
        if refresh is None or refresh.revoked or claims.get("rt") in self._revoked:
            raise self._invalid("the access token was revoked")
        if user is None:
            raise self._invalid("the token's user no longer exists")
        checked = User(name=claims["sub"], role=Role(user.role))
        if self._cache_seconds > 0:
            until = min(now + self._cache_seconds, float(claims["exp"]))
            self._remember(token, _Checked(checked, str(claims.get("rt")), until), now)
        return checked

    @staticmethod
    def _invalid(message: str) -> ApiError:
        return ApiError(401, message, "Authorization", {"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def _live_refresh_row(self, conn: sa.Connection, refresh_token: str) -> Any:
        """The row of a live refresh token; None for a genuine token that was revoked (a replay).

        Raises:
            ApiError: 401 when the token is unknown, does not match, or expired.

        """
        token_id, _, _ = refresh_token.partition(".")
        row = (
            conn.execute(sa.select(_db.refresh_tokens).where(_db.refresh_tokens.c.token_id == token_id))
            .mappings()
            .first()
        )
        if row is None or not secrets.compare_digest(row["token_hash"], _token_hash(refresh_token)):
            raise _refresh_invalid()
        if row["revoked"]:
            return None
        if row["expires_at"] < time.time():
            raise _refresh_invalid()
        return row

    def _issue(self, conn: sa.Connection, username: str, family: str | None = None) -> dict[str, Any]:
        """A new token pair; its refresh token joins ``family`` (None: a login, which starts one)."""
        now = int(time.time())
        token_id = secrets.token_hex(8)
        refresh_token = f"{token_id}.{secrets.token_urlsafe(32)}"
        conn.execute(
            sa.insert(_db.refresh_tokens).values(
                token_id=token_id,
                token_hash=_token_hash(refresh_token),
                user_name=username,
                expires_at=now + self._refresh_seconds,
                revoked=False,
                family=family or token_id,
            )
        )
        expires = now + self._access_seconds
        claims = {"sub": username, "iat": now, "exp": expires, "rt": token_id, "jti": secrets.token_hex(8)}
        return {
            "token_type": "Bearer",
            "access_token": jwt.encode(claims, self._secret, algorithm=_ALGORITHM),
            "expires_in": self._access_seconds,
            "expires_on": str(expires),
            "refresh_token": refresh_token,
        }


# The revoke operation takes its refresh token in the query string (the contract's, as ML Server's), which access
# logs print whole: a log reader could then renew the session.
_TOKEN_IN_QUERY = re.compile(r"(?i)(refresh_?token=)[^&\s\"]*")
ACCESS_LOGGER = "uvicorn.access"


class RedactTokens(logging.Filter):
    """Replaces the value of a ``refreshToken`` query parameter in log records with ``[redacted]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; it is always logged."""
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = _redact(record.msg)
        return True


def _redact(text: str) -> str:
    return _TOKEN_IN_QUERY.sub(r"\1[redacted]", text)


def redact_access_log() -> None:
    """Install :class:`RedactTokens` on uvicorn's access logger (once; after uvicorn configured its logging)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(existing, RedactTokens) for existing in logger.filters):
        logger.addFilter(RedactTokens())
