"""The database's schema migrations (Alembic), shipped inside the package and run by ``_db.migrate``.

No ``alembic.ini``: ``_db.alembic_config`` builds the configuration with ``script_location`` set to this directory
and hands ``env.py`` the connection to migrate. Every change to the tables of ``_db`` needs a revision here:
``tests/server/test_migrations.py`` compares a migrated database with ``_db.metadata`` on SQLite and PostgreSQL.
To start one from the differences, on a database at head (a ``str`` URL or a ``Path``)::

    from alembic import command
    from batchscore_server import _db

    engine = _db.create_engine(target)
    with engine.begin() as conn:
        command.revision(_db.alembic_config(conn), "what it changes", autogenerate=True, rev_id="0003")

then write the file out by hand where autogenerate cannot (SQLite's limits on ALTER TABLE), name it
``versions/v0003_<what>.py``, and never edit a released revision: the tables it makes are a fixed point in time.
"""
