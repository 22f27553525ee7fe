"""The database handle: engine from a URL, migrations at start-up, one transaction per job.

Everything here is synchronous and runs in worker threads (SQLAlchemy's async engine and
psycopg's async mode are asyncio-only, and this server runs on trio).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

#: An SQLite file in the working directory: a new user runs the server with no other service.
DEFAULT_DATABASE_URL = "sqlite:///tidings.db"

_MIGRATIONS = Path(__file__).parent / "migrations"


def redact_url(url: str) -> str:
    """The URL with any password hidden, for logs and ``/stats``."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # writers from several threads wait for the lock instead of failing at once
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Database:
    """An engine plus the unit of work: ``run(job)`` calls ``job(session)`` in a transaction."""

    def __init__(self, url: str = DEFAULT_DATABASE_URL, *, pool_size: int = 5) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.engine: Engine = create_engine(url)
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(url, pool_size=pool_size, pool_pre_ping=True)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest revision. Running it again changes nothing."""
        config = AlembicConfig()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def revision(self) -> str | None:
        """The schema revision in the database (``None`` before the first migration)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def run(self, job: Callable[[Session], T]) -> T:
        """Run ``job`` in one transaction: committed if it returns, rolled back if it raises."""
        with self._sessions() as session, session.begin():
            return job(session)

    def dispose(self) -> None:
        self.engine.dispose()
