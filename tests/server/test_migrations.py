"""Schema migrations (Alembic): a data dir of release 61b07b2 upgrades in place; fresh databases end at head.

The data dir is tests/data/datadir-61b07b2 (made by the release's own code: see its make.py). Every dialect's
migrated schema is compared with ``_db.metadata``: a change to the tables without a revision fails here.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from batchscore_server import _auth, _db
from batchscore_server._settings import Settings
from batchscore_server._store import Store
from tests._postgres import Postgres, create_database, running_postgres, unavailable_reason

RELEASE_DATABASE = Path(__file__).resolve().parents[1] / "data" / "datadir-61b07b2" / "batchscore.sqlite3"
HEAD = ScriptDirectory.from_config(_db.alembic_config()).get_current_head()
NO_POSTGRES = unavailable_reason()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    if NO_POSTGRES is not None:
        pytest.skip(NO_POSTGRES)
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database of each dialect."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    server: Postgres = request.getfixturevalue("postgres")
    return create_database(server, f"fresh_{request.node.name.partition('[')[0][-40:]}")


def _release_copy(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "batchscore.sqlite3"
    path.parent.mkdir()
    shutil.copyfile(RELEASE_DATABASE, path)
    return path


def _contents(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of a SQLite file, in a fixed order."""
    with sqlite3.connect(path) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        found = {table: sorted(conn.execute(f'SELECT * FROM "{table}"'), key=repr) for table in tables}
    conn.close()
    return found


def _old_columns(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        columns = [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]
    conn.close()
    return columns


def _schema(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        found = conn.execute("SELECT name, sql FROM sqlite_master WHERE name != 'alembic_version' ORDER BY name")
        schema = [(name, sql) for name, sql in found if sql is not None]
    conn.close()
    return schema


def _revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _differences(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), _db.metadata))


def test_a_data_dir_of_release_61b07b2_is_upgraded_in_place(tmp_path: Path) -> None:
    path = _release_copy(tmp_path)
    before = _contents(path)
    engine = _db.create_engine(path)
    try:
        assert _revision(engine) == HEAD
        assert _differences(engine) == []
        # Every old row is there, every old column unchanged.
        for table, rows in before.items():
            columns = ", ".join(f'"{column}"' for column in _old_columns(RELEASE_DATABASE, table))
            with engine.connect() as conn:
                now = sorted(conn.exec_driver_sql(f'SELECT {columns} FROM "{table}"').all(), key=repr)
            assert [tuple(row) for row in now] == rows, table
        # ...and readable through the store and the authenticator.
        store = Store(Settings(data_dir=path.parent), engine)
        (service,) = store.services()
        assert (service["name"], service["version"], service["definition"]["code"]) == ("echo", "1.0", "answer = x * 2")
        done = store.poll_page("done", "echo", "1.0", None, None, None)
        assert done is not None
        assert done.batch["state"] == "complete"
        # Rows that ran under the old release count one attempt.
        assert [(index, state, attempt) for index, state, _, attempt in done.rows] == [
            (0, "complete", 1),
            (1, "complete", 1),
            (2, "failed", 1),
        ]
        assert json.loads(done.rows[1][2])["outputParameters"] == {"answer": 2}
        unfinished = store.poll_page("open", "echo", "1.0", None, 0, None)
        assert unfinished is not None
        assert (unfinished.batch["state"], unfinished.batch["complete_count"]) == ("inProgress", 1)
        assert [row[0] for row in unfinished.rows] == [0]
        assert _auth.password_matches(engine, "alice", "alice-password")
        # The new columns, with their defaults.
        with engine.connect() as conn:
            leases = conn.execute(
                sa.select(_db.batches.c.lease_owner, _db.batches.c.lease_expires, _db.batches.c.stop_requested)
            ).all()
            assert [tuple(lease) for lease in leases] == [(None, None, None)] * 2
            rows = _db.batch_rows.c
            attempts = conn.execute(sa.select(rows.attempt).order_by(rows.batch_id, rows.idx)).scalars().all()
            assert sorted(attempts) == [0, 0, 1, 1, 1, 1]  # the pending rows never ran; the others ran once
            assert conn.execute(sa.select(sa.func.count()).select_from(_db.server_keys)).scalar_one() == 0
            (family,) = conn.execute(sa.select(_db.refresh_tokens.c.family)).scalars().all()
            assert family is not None
    finally:
        engine.dispose()
    upgraded = _contents(path), _schema(path)
    _db.create_engine(path).dispose()  # a second start changes nothing
    assert (_contents(path), _schema(path)) == upgraded


def test_the_baseline_is_the_schema_release_61b07b2_made(tmp_path: Path) -> None:
    path = tmp_path / "baseline.sqlite3"
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            command.upgrade(_db.alembic_config(conn), _db.BASELINE_REVISION)
    finally:
        engine.dispose()
    assert _schema(path) == _schema(RELEASE_DATABASE)


def test_a_fresh_database_is_created_at_head_as_the_metadata_says(fresh_url: str) -> None:
    engine = _db.create_engine(fresh_url)
    try:
        assert _revision(engine) == HEAD
        assert _differences(engine) == []
        with engine.begin() as conn:  # the JSON columns take and give back documents on every dialect
            conn.execute(sa.insert(_db.services).values(
                name="s", version="1", owner="o", created=0.0, seq=1, revision=1, definition={"é": [1, None]},
            ))  # fmt: skip
            assert conn.execute(sa.select(_db.services.c.definition)).scalar_one() == {"é": [1, None]}
        # Every revision goes down and up again.
        with engine.begin() as conn:
            conn.execute(sa.delete(_db.services))
            command.downgrade(_db.alembic_config(conn), "base")
        with engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
        _db.migrate(engine)
        assert _revision(engine) == HEAD
        assert _differences(engine) == []
    finally:
        engine.dispose()


def test_replicas_starting_together_migrate_once(postgres: Postgres, caplog: pytest.LogCaptureFixture) -> None:
    url = create_database(postgres, "together")
    start = threading.Barrier(2)
    outcomes: list[BaseException | sa.Engine] = []

    def replica() -> None:
        start.wait()
        try:
            outcomes.append(_db.create_engine(url))
        except BaseException as error:
            outcomes.append(error)

    with caplog.at_level(logging.INFO, logger="alembic"):
        threads = [threading.Thread(target=replica) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    engines = [outcome for outcome in outcomes if isinstance(outcome, sa.Engine)]
    try:
        assert len(engines) == 2, outcomes
        assert _revision(engines[0]) == HEAD
    finally:
        for engine in engines:
            engine.dispose()
    baselines = [record for record in caplog.records if "-> 0001" in record.getMessage()]
    assert len(baselines) == 1


def test_postgres_urls_use_psycopg_3(postgres: Postgres) -> None:
    url = create_database(postgres, "plain_url")
    for scheme in ("postgresql://", "postgres://"):
        engine = _db.create_engine(url.replace("postgresql+psycopg://", scheme))
        try:
            assert engine.dialect.driver == "psycopg"
            assert _revision(engine) == HEAD
        finally:
            engine.dispose()


def test_a_database_of_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite3"
    _db.create_engine(path).dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    conn.close()
    with pytest.raises(_db.SchemaError, match=rf"revision 0099\b.*newest is {HEAD}"):
        _db.create_engine(path)


def test_tables_without_a_revision_on_postgres_are_refused(postgres: Postgres) -> None:
    url = create_database(postgres, "unversioned")
    engine = sa.create_engine(url)
    try:
        _db.metadata.create_all(engine)
    finally:
        engine.dispose()
    with pytest.raises(_db.SchemaError, match="no alembic_version"):
        _db.create_engine(url)


def test_a_failed_upgrade_leaves_the_sqlite_file_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _release_copy(tmp_path)
    before = _contents(path), _schema(path)

    def broken(conn: sa.Connection) -> None:  # after the baseline revision's DDL, before the legacy upgrade
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(_db, "_upgrade", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _db.create_engine(path)
    assert (_contents(path), _schema(path)) == before  # no alembic_version, nothing half-done
    monkeypatch.undo()
    _db.create_engine(path).dispose()
    assert "server_keys" in dict(_schema(path))


def test_the_completion_sequence_index_holds_finished_rows_only(fresh_url: str) -> None:
    # Revision 0005: pending rows stay out of ix_batch_rows_seq (a 1M-row start writes one b-tree less a row),
    # and the polls' "seq > ?" still finds it.
    engine = _db.create_engine(fresh_url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                sql = conn.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE name = 'ix_batch_rows_seq'"
                ).scalar_one()
                plan = conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN SELECT seq FROM batch_rows WHERE batch_id = 'b' AND seq > 0 ORDER BY seq"
                ).all()
                assert "ix_batch_rows_seq" in str(plan)
            else:
                sql = conn.exec_driver_sql(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_batch_rows_seq'"
                ).scalar_one()
        assert "seq IS NOT NULL" in sql.replace("(", "").replace(")", "")
    finally:
        engine.dispose()
