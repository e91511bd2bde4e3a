"""Storage hardening: the data directory's lock, full disks, deletes, retries of changed services, result caps."""

from __future__ import annotations

import os
from pathlib import Path

from batchscore_server._datadir_lock import lock_data_dir
from tests.server.test_cli_start import run


def test_serve_on_a_locked_data_dir_exits_with_a_message_and_users_add_still_works(tmp_path: Path) -> None:
    lock = lock_data_dir(tmp_path)
    try:
        env = {"BATCHSCORE_ADMIN_PASSWORD": "pw-admin", "BATCHSCORE_USER_PASSWORD": "pw-bob"}
        refused = run("serve", "--data-dir", str(tmp_path), "--port", "0", "--workers", "1", env=env)
        assert refused.returncode == 2
        assert f"the data directory {tmp_path} is in use by the server with pid {os.getpid()}" in refused.stderr
        assert "Traceback" not in refused.stderr
        added = run("users", "add", "bob", "--data-dir", str(tmp_path), env=env)
        assert added.returncode == 0, added.stderr
    finally:
        lock.release()
