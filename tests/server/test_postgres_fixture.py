"""The throwaway PostgreSQL the scale-out tests run on (tests/_postgres.py) starts, serves and cleans up."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests._postgres import create_database, running_postgres, unavailable_reason

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))


def test_a_throwaway_postgres_serves_and_is_removed() -> None:
    with running_postgres() as postgres:
        url = create_database(postgres, "fixture_check")
        engine = sa.create_engine(url)
        try:
            with engine.begin() as connection:
                assert connection.execute(sa.text("SELECT current_database()")).scalar() == "fixture_check"
                connection.execute(sa.text("CREATE TABLE work (id int PRIMARY KEY, owner text)"))
                connection.execute(sa.text("INSERT INTO work SELECT g, NULL FROM generate_series(1, 4) g"))
        finally:
            engine.dispose()
        root = Path(postgres.socket_dir).parent
        assert root.is_dir()
    assert not root.exists()


def test_skip_locked_hands_each_row_to_one_claimer() -> None:
    """What batch leases rely on: two transactions claiming with FOR UPDATE SKIP LOCKED never get the same row."""
    with running_postgres() as postgres:
        engine = sa.create_engine(create_database(postgres, "skip_locked"))
        try:
            with engine.begin() as connection:
                connection.execute(sa.text("CREATE TABLE work (id int PRIMARY KEY)"))
                connection.execute(sa.text("INSERT INTO work SELECT g FROM generate_series(1, 4) g"))
            claims: dict[str, list[int]] = {}
            claim = sa.text("SELECT id FROM work ORDER BY id LIMIT 2 FOR UPDATE SKIP LOCKED")

            with engine.connect() as first:
                transaction = first.begin()
                claims["first"] = [row[0] for row in first.execute(claim)]
                with engine.connect() as second, second.begin():
                    claims["second"] = [row[0] for row in second.execute(claim)]
                transaction.commit()
        finally:
            engine.dispose()
    assert claims == {"first": [1, 2], "second": [3, 4]}
