"""The store's write path: each box's changes reach the subscriptions in sequence order, even
with concurrent writers on worker threads, and no state is kept per box once writes end."""

from __future__ import annotations

import gc

import sqlalchemy as sa
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
        assert len(store._boxes) == 0
    database.dispose()
    for box in ("box0", "box1", "box2"):
        seqs = [seq for name, seq in subscriptions.published if name == box]
        assert len(seqs) == 10
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == 10


async def test_a_failing_write_among_concurrent_ones_fails_alone(tmp_path):
    """Writers queued together share a transaction; one that fails is rolled back with it,
    then each runs alone: only the failing request fails, every other one is committed and
    published once, with its own sequence number."""
    database = Database(f"sqlite:///{tmp_path / 't.db'}")
    database.migrate()
    outcomes: dict[int, str] = {}

    def work(n: int):
        def run(w):
            if n == 5:
                raise nms.NotFound("no such object")
            return nms.folder_at(w, f"/f{n}", create=True).id
        return run

    async def write(store, n: int) -> None:
        try:
            outcomes[n] = await store.write("s", "box", work(n))
        except nms.NotFound:
            outcomes[n] = "failed"

    async with open_store_world(database, _ignore,
                                subscriptions_class=RecordingSubscriptions) as world:
        async with trio.open_nursery() as writers:
            for n in range(12):
                writers.start_soon(write, world.store, n)
        published = [seq for box, seq in world.subscriptions.published if box == "box"]
    database.dispose()
    assert outcomes[5] == "failed"
    assert all(isinstance(outcomes[n], str) and outcomes[n] != "failed"
               for n in range(12) if n != 5)
    assert len(published) == 11
    assert published == sorted(published)
    assert len(set(published)) == 11


async def test_writes_batched_together_see_each_others_folder_changes(tmp_path):
    """A folder found by path is remembered within a transaction; a rename in the same batch
    makes the next write to that path find (here: create) the folder that has that name."""
    database = Database(f"sqlite:///{tmp_path / 't.db'}")
    database.migrate()
    found: dict[str, str] = {}

    async def write(store, name: str, work) -> None:
        found[name] = await store.write("s", "box", work)

    def message_in(path: str):
        def create(w):
            attributes = [{"name": "TextContent", "value": ["hi"]}]
            return nms.object_path(w, nms.create_object(w, nms.folder_at(w, path, create=False),
                                                        attributes, []))
        return create

    def rename(w):
        return nms.rename_folder(w, nms.folder_at(w, "/x/y", create=False).id, "z").id

    async with open_store_world(database, _ignore) as world:
        async with trio.open_nursery() as writers:  # the first holds the box; the rest batch
            for name, work in [("first", lambda w: nms.folder_at(w, "/x", create=True).id),
                               ("y", lambda w: nms.folder_at(w, "/x/y", create=True).id),
                               ("in y", message_in("/x/y")),
                               ("renamed", rename),
                               ("in z", message_in("/x/z")),
                               ("y again", lambda w: nms.folder_at(w, "/x/y", create=True).id)]:
                writers.start_soon(write, world.store, name, work)
                await trio.testing.wait_all_tasks_blocked()  # queued in this order
    assert found["renamed"] == found["y"]
    assert found["in y"].startswith("/x/y/")
    assert found["in z"].startswith("/x/z/")  # the path remembered for y was forgotten
    assert found["y again"] != found["y"]
    names = database.run(lambda s: {f.id: f.name for f in s.scalars(sa.select(nms.Folder))})
    database.dispose()
    assert (names[found["y"]], names[found["y again"]]) == ("z", "y")
