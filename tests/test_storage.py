"""Storage: migrations, transactions and the storage actor, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import trio
import trio.testing
from sqlalchemy.exc import IntegrityError

from actors import ActorState, ChildSpec, Supervisor
from actors.storage import StorageActor, run_job
from storage import Channel, Database


def _channel(
    channel_id: str, user: str = "tel:+19585550100", correlator: str | None = None
) -> Channel:
    now = datetime.now(UTC)
    return Channel(
        id=channel_id, user_id=user, callback_id=f"cb-{channel_id}", channel_type="WebSockets",
        client_correlator=correlator, application_tag=None, max_notifications=10,
        channel_lifetime=7200, created_at=now, expires_at=now + timedelta(hours=2),
    )


def _count(session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(Channel))


def test_migrations_reach_head_and_running_them_again_changes_nothing(database: Database):
    assert database.revision() == "0002"
    database.run(lambda s: s.add(_channel("c1")))
    database.migrate()
    assert database.revision() == "0002"
    assert database.run(_count) == 1


def test_a_failing_job_rolls_back_everything_it_did(database: Database):
    database.run(lambda s: s.add(_channel("c1", correlator="abc")))

    def two_inserts_one_conflicting(session) -> None:
        session.add(_channel("c2"))
        session.flush()
        session.add(_channel("c3", correlator="abc"))  # same user + correlator as c1
        session.flush()

    with pytest.raises(IntegrityError):
        database.run(two_inserts_one_conflicting)
    assert database.run(lambda s: sorted(s.scalars(sa.select(Channel.id)))) == ["c1"]


def test_default_sqlite_file_is_in_the_working_directory_with_wal(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = Database()
    db.migrate()
    assert (tmp_path / "tidings.db").exists()
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()


async def test_storage_actor_answers_with_the_result_or_the_error(database: Database):
    storage = StorageActor(database)
    sup = Supervisor("root", [ChildSpec(storage)])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await run_job(storage.ref, lambda s: s.add(_channel("c1", correlator="x")))
        assert await run_job(storage.ref, _count) == 1
        with pytest.raises(IntegrityError):
            await run_job(storage.ref, lambda s: s.add(_channel("c2", correlator="x")))
        assert await run_job(storage.ref, _count) == 1
        # a failed job is the caller's error, not a crash of the storage actor
        assert storage.state is ActorState.RUNNING
        assert storage.stats.restarts == 0
        sup.close_mailbox()


async def test_storage_actor_runs_at_most_its_concurrency_in_threads(database: Database):
    storage = StorageActor(database, concurrency=2)
    release = trio.Event()
    started_send, started_receive = trio.open_memory_channel[None](10)

    def slow_job(session) -> int:
        trio.from_thread.run(started_send.send, None)
        trio.from_thread.run(release.wait)
        return _count(session)

    results: list[int] = []

    async def one() -> None:
        results.append(await run_job(storage.ref, slow_job))

    async with trio.open_nursery() as nursery:
        await nursery.start(storage.run)
        async with trio.open_nursery() as callers:
            for _ in range(5):
                callers.start_soon(one)
            for _ in range(2):
                await started_receive.receive()
            await trio.testing.wait_all_tasks_blocked()
            # two in threads, one taken by the loop waiting for a slot, two still queued
            assert storage.snapshot()["jobsRunning"] == 2
            assert storage.mailbox_depth == 2
            release.set()
        assert results == [0] * 5
        storage.close_mailbox()
