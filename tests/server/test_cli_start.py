"""`batchscore serve` refuses a new data directory without an admin password; `users add` creates users."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from batchscore_server import _db

CLI = [sys.executable, "-c", "from batchscore.cli import main; main()"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BATCHSCORE_")}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env={**environment, **(env or {})}, timeout=120, check=False
    )


def test_serve_refuses_a_new_data_dir_without_admin_password(tmp_path: Path) -> None:
    result = run("serve", "--data-dir", str(tmp_path / "data"), "--port", "0")
    assert result.returncode == 2
    assert "BATCHSCORE_ADMIN_PASSWORD" in result.stderr


def test_users_add(tmp_path: Path) -> None:
    result = run(
        "users",
        "add",
        "alice",
        "--role",
        "contributor",
        "--data-dir",
        str(tmp_path),
        env={"BATCHSCORE_USER_PASSWORD": "pw-alice"},
    )
    assert result.returncode == 0, result.stderr
    engine = _db.create_engine(tmp_path / "batchscore.sqlite3")
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(_db.users.c.role).where(_db.users.c.name == "alice")).scalar_one() == "Contributor"
        )
    engine.dispose()
    bad = run(
        "users", "add", "bob", "--role", "King", "--data-dir", str(tmp_path), env={"BATCHSCORE_USER_PASSWORD": "x"}
    )
    assert bad.returncode == 2


def test_serve_names_a_database_it_cannot_open_without_its_password(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-socket-dir"
    url = f"postgresql://alice:s3cret@/batchscore?host={missing}"
    result = run("serve", "--data-dir", str(tmp_path / "data"), "--port", "0", env={"BATCHSCORE_DATABASE_URL": url})
    assert result.returncode == 2, result.stderr
    assert "cannot open the database postgresql://alice:***@/batchscore" in result.stderr
    assert "s3cret" not in result.stderr


def test_users_commands_take_the_database_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}"
    env = {"BATCHSCORE_USER_PASSWORD": "pw-bob", "BATCHSCORE_DATABASE_URL": url}
    assert run("users", "add", "bob", "--data-dir", str(tmp_path / "data"), env=env).returncode == 0
    engine = _db.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.select(_db.users.c.name)).scalars().all() == ["bob"]
    finally:
        engine.dispose()
    assert run("users", "remove", "bob", "--data-dir", str(tmp_path / "data"), env=env).returncode == 0
