"""A subscription whose notifyURL is down falls behind without holding up the writers, then
catches up by replay: nothing lost, index without gaps (virtual time)."""

from __future__ import annotations

import json

import trio
import trio.testing

import actors.subscription as subscription_module
from actors.subscription import RetryLater, SubscriptionActor, SubscriptionInfo
from actors.subscriptions import StartSubscription
from storage import Database, nms
from storage.nms import Position
from tests.inline_storage import InlineStorage
from tests.store_harness import apply_events, live_state, open_store_world


async def test_a_slow_subscriber_never_blocks_writers_and_loses_nothing(
        tmp_path, monkeypatch, autojump_clock):
    monkeypatch.setattr(SubscriptionActor, "mailbox_capacity", 2)
    monkeypatch.setattr(subscription_module, "DELIVERY_QUEUE", 2)
    database = Database(f"sqlite:///{tmp_path / 't.db'}")
    database.migrate()
    delivered: list[dict] = []
    down_until = trio.current_time() + 20

    async def notify(url: str, fmt: str, body: str) -> None:
        if trio.current_time() < down_until:
            raise RetryLater("503")
        delivered.append(json.loads(body))

    async with open_store_world(database, notify, storage_class=InlineStorage) as world:
        store, subscriptions = world.store, world.subscriptions
        box_pk = database.run(lambda s: nms.open_box(s, "s", "box").box.pk)
        info = SubscriptionInfo("sub", "s", "box", box_pk, "http://down", None, "json", 3600,
                                None)
        actor = await subscriptions.ref.ask(
            lambda r: StartSubscription(info, Position(1, 0), 1, None, r))
        t0 = trio.current_time()
        ids = []
        for n in range(40):
            def create(work: nms.BoxWork, n: int = n) -> str:
                folder = nms.folder_at(work, f"/f{n % 3}", create=True)
                return nms.create_object(work, folder, [], ["\\Seen"] if n % 2 else []).id
            ids.append(await store.write("s", "box", create))
        for object_id in ids[::4]:
            await store.write("s", "box", lambda w, i=object_id: nms.delete_object(w, i))
        assert trio.current_time() == t0  # forty writes, none waited for the subscriber
        assert actor.lagging
        await trio.sleep_until(down_until + 30)
        await trio.testing.wait_all_tasks_blocked()
        final = database.run(lambda s: nms.position(s, "s", "box"))
        assert actor.position == final
        assert not actor.lagging

    assert [d["index"] for d in delivered] == list(range(1, len(delivered) + 1))
    assert apply_events({}, delivered) == live_state(database)
    database.dispose()
