"""Subscription lifetime on virtual time: expiry and duration updates."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
import trio
import trio.testing

from actors.subscription import DescribeSubscription, SubscriptionInfo, Update
from actors.subscriptions import StartSubscription
from storage import Database, Subscription, nms
from storage.nms import Position
from tests.inline_storage import InlineStorage
from tests.store_harness import open_store_world


@pytest.fixture
async def world(tmp_path, autojump_clock):
    database = Database(f"sqlite:///{tmp_path / 't.db'}")
    database.migrate()
    delivered: list[str] = []

    async def notify(url: str, fmt: str, body: str) -> None:
        delivered.append(body)

    async with open_store_world(database, notify, storage_class=InlineStorage) as world:
        yield database, world.subscriptions, world.store, delivered
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


async def test_a_crash_during_a_replay_catches_up_with_a_new_one(world, autojump_clock,
                                                                 monkeypatch):
    import actors.subscription as subscription_module

    database, subscriptions, store, delivered = world
    for n in range(3):
        await store.write("s", "box", lambda w, n=n: nms.folder_at(w, f"/f{n}", create=True))
    real_run = subscription_module.ReplayWorker.run
    calls = []

    async def first_one_hangs(self, *, task_status=trio.TASK_STATUS_IGNORED):
        calls.append(trio.current_time())
        if len(calls) == 1:
            task_status.started(self.ref)
            await trio.sleep_forever()
        await real_run(self, task_status=task_status)

    monkeypatch.setattr(subscription_module.ReplayWorker, "run", first_one_hangs)
    box_pk = database.run(lambda s: nms.open_box(s, "s", "box").box.pk)
    info = SubscriptionInfo("sub2", "s", "box", box_pk, "http://c", None, "json", 3600, None)
    actor = await subscriptions.ref.ask(
        lambda r: StartSubscription(info, Position(1, 3), 1, Position(1, 0), r))
    await trio.sleep(5)
    assert delivered == []
    assert actor.held is not None  # the first replay never ends
    await actor.ref.tell("not a subscription message")  # this incarnation crashes
    await trio.sleep(5)
    assert actor.stats.restarts == 1
    assert len(calls) == 2
    events = [e for body in delivered for e in json.loads(body)["events"]]
    assert sorted(e["name"] for e in events) == ["", "f0", "f1", "f2"]
    assert [json.loads(b)["index"] for b in delivered] == list(range(1, len(delivered) + 1))


async def test_an_unexpected_delivery_error_is_retried_not_dropped(world, autojump_clock):
    database, subscriptions, store, delivered = world
    failures = [ValueError("a bug in the transport")]
    actor = await _subscribe(database, subscriptions, duration=3600)
    real_notify = actor.notify

    async def flaky(url, fmt, body):
        if failures:
            raise failures.pop()
        await real_notify(url, fmt, body)

    actor.notify = flaky
    await _write(store)
    await trio.sleep(5)
    assert [json.loads(b)["index"] for b in delivered] == [1, 2]


async def test_messages_from_a_replaced_replay_are_ignored(world, autojump_clock):
    from actors.subscription import ReplayBatch, ReplayDone
    from storage.nms import ItemState

    database, subscriptions, store, delivered = world
    actor = await _subscribe(database, subscriptions, duration=3600)
    stale = ItemState("folder", "fold", 7, parent_id=None, name="stale")
    await actor.ref.tell(ReplayBatch((stale,), Position(1, 7), generation=99))
    await actor.ref.tell(ReplayDone(Position(1, 7), generation=99))
    await trio.testing.wait_all_tasks_blocked()
    assert delivered == []
    assert actor.position == Position(1, 0)
