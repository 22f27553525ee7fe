"""Shared fixtures: a database per test on SQLite, and on PostgreSQL when configured."""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from storage import Database

POSTGRES_URL = os.environ.get("TIDINGS_TEST_DATABASE_URL")
NO_POSTGRES = "TIDINGS_TEST_DATABASE_URL is not set: no PostgreSQL server to test against"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A fresh, empty database URL: an SQLite file, or a new schema-isolated PG database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tidings.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    name = f"tidings_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Unclosed sockets and files are reported by the test that leaked them, not a later one."""
    yield
    gc.collect()


@pytest.fixture
async def client(database_url: str):
    """An HTTP client on a whole server (hypercorn on 127.0.0.1:0), on SQLite and, when
    configured, on PostgreSQL; ``client.services`` is the server's Services."""
    from api.runtime import Settings, open_tidings
    from tests.servers import http_client

    settings = Settings(port=0, database_url=database_url)
    async with open_tidings(settings) as services, http_client(services) as http:
        http.services = services  # type: ignore[attr-defined]
        yield http
