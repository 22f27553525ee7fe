"""The store's write path: each box's changes reach the subscriptions in sequence order, even
with concurrent writers on worker threads, and no state is kept per box once writes end."""

from __future__ import annotations

import gc

import trio
import trio.testing

from actors.subscriptions import BoxChanged, Subscriptions
from storage import Database, nms
from tests.store_harness import open_store_world


class RecordingSubscriptions(Subscriptions):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.published: list[tuple[str, int]] = []

    async def handle(self, message: object) -> None:
        if isinstance(message, BoxChanged):
            self.published.append((message.committed.box, message.committed.position.seq))
        await super().handle(message)


async def _ignore(url: str, fmt: str, body: str) -> None:
    raise AssertionError("no subscription here")  # pragma: no cover


async def test_concurrent_writes_publish_in_sequence_order_per_box(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 't.db'}")
    database.migrate()
    async with open_store_world(database, _ignore,
                                subscriptions_class=RecordingSubscriptions) as world:
        store = world.store
        subscriptions = world.subscriptions
        assert isinstance(subscriptions, RecordingSubscriptions)
        async with trio.open_nursery() as writers:
            for n in range(30):
                writers.start_soon(store.write, "s", f"box{n % 3}",
                                   lambda w, n=n: nms.folder_at(w, f"/f{n}", create=True))
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        assert len(store._locks) == 0
    database.dispose()
    for box in ("box0", "box1", "box2"):
        seqs = [seq for name, seq in subscriptions.published if name == box]
        assert len(seqs) == 10
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == 10
