"""Subscription lifetime on virtual time: expiry and duration updates."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import trio
import trio.testing

from actors import ChildSpec, Registry, Supervisor
from actors.store import Store
from actors.subscription import DescribeSubscription, SubscriptionInfo, Update
from actors.subscriptions import StartSubscription, Subscriptions
from storage import Database, Subscription, nms
from storage.nms import Position
from tests.inline_storage import InlineStorage
from tests.test_replay_handover import RecordingEncoder


@pytest.fixture
async def world(tmp_path, autojump_clock):
    database = Database(f"sqlite:///{tmp_path / 't.db'}")
    database.migrate()
    delivered: list[str] = []

    async def notify(url: str, fmt: str, body: str) -> None:
        delivered.append(body)

    registry = Registry()
    storage = InlineStorage(database)
    subscriptions = Subscriptions(registry, storage.ref, encoder=RecordingEncoder(),
                                  notify=notify)
    root = Supervisor("root", [ChildSpec(storage), ChildSpec(subscriptions)])
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        yield database, subscriptions, Store(storage.ref, subscriptions.ref), delivered
        root.close_mailbox()
    database.dispose()


async def _subscribe(database, subscriptions, duration: int):
    def insert(session):
        work = nms.open_box(session, "s", "box")
        session.add(Subscription(id="sub", box_pk=work.box.pk, notify_url="http://c",
                                 callback_data=None, notification_format="json",
                                 duration=duration, expires_at=sa.func.now(), filter=None,
                                 client_correlator=None, next_index=1, restart_token="1-0"))
        return work.box.pk

    box_pk = database.run(insert)
    info = SubscriptionInfo("sub", "s", "box", box_pk, "http://c", None, "json", duration, None)
    return await subscriptions.ref.ask(
        lambda r: StartSubscription(info, Position(1, 0), 1, None, r))


def _rows(database) -> list[str]:
    return database.run(lambda s: list(s.scalars(sa.select(Subscription.id))))


async def _write(store) -> None:
    await store.write("s", "box", lambda w: nms.root_folder(w))
    await store.write("s", "box", lambda w: nms.folder_at(w, f"/{trio.current_time()}",
                                                           create=True))


async def test_an_expired_subscription_sends_nothing_more_and_is_gone(world, autojump_clock):
    database, subscriptions, store, delivered = world
    actor = await _subscribe(database, subscriptions, duration=60)
    t0 = trio.current_time()
    await _write(store)
    await trio.testing.wait_all_tasks_blocked()
    count = len(delivered)
    assert count >= 1
    await trio.sleep_until(t0 + 59)
    assert not actor.ended
    await trio.sleep_until(t0 + 60)
    await trio.testing.wait_all_tasks_blocked()
    assert actor.ended
    assert subscriptions.subscription("s", "box", "sub") is None
    assert _rows(database) == []
    await _write(store)
    await trio.testing.wait_all_tasks_blocked()
    assert len(delivered) == count


async def test_an_update_sets_a_new_duration(world, autojump_clock):
    database, subscriptions, store, delivered = world
    actor = await _subscribe(database, subscriptions, duration=60)
    t0 = trio.current_time()
    await trio.sleep(50)
    view = await actor.ref.ask(lambda r: Update(100, None, r))
    assert view.remaining == 100
    await trio.sleep_until(t0 + 149)
    assert (await actor.ref.ask(DescribeSubscription)).remaining == 1
    await trio.sleep_until(t0 + 150)
    await trio.testing.wait_all_tasks_blocked()
    assert actor.ended
