"""Replay and hand-over (§5.1.4.3–5.1.4.5), as a property: while writes keep committing, a
subscription replays from a random earlier restartToken; afterwards every change after the
token reached the client, ``index`` has no gaps, and applying the events with the lastModSeq
rule to what the client knew at the token reproduces the box exactly."""

from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actors.subscription as subscription_module
from actors.store import Store
from actors.subscription import SubscriptionInfo
from actors.subscriptions import StartSubscription
from storage import Database, Folder, StoredObject, nms
from tests.store_harness import apply_events, live_state, open_store_world

# an operation: ("create", folder), ("flag", n, flags), ("delete", n) — n picks a live object
OPS = st.lists(st.one_of(
    st.tuples(st.just("create"), st.sampled_from(["/a", "/a/b", "/c"])),
    st.tuples(st.just("flag"), st.integers(0, 50),
              st.sets(st.sampled_from(["\\Seen", "\\Flagged", "\\Answered"]))),
    st.tuples(st.just("delete"), st.integers(0, 50)),
), min_size=1, max_size=25)


async def apply_op(store: Store, op: tuple[Any, ...], live: list[str]) -> None:
    kind = op[0]
    if kind == "create":
        def create(work: nms.BoxWork) -> str:
            folder = nms.folder_at(work, op[1], create=True)
            attributes = [{"name": "From", "value": ["a"]}, {"name": "To", "value": ["b"]},
                          {"name": "TextContent", "value": ["hi"]}]
            return nms.create_object(work, folder, attributes, []).id
        live.append(await store.write("s", "box", create))
    elif live:
        target = live[op[1] % len(live)]
        if kind == "flag":
            await store.write("s", "box", lambda w: nms.set_flags(w, target, sorted(op[2])))
        else:
            await store.write("s", "box", lambda w: nms.delete_object(w, target))
            live.remove(target)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(before=OPS, during=OPS, token_at=st.integers(0, 25), page=st.integers(1, 4))
async def test_replay_then_live_loses_nothing_and_reproduces_the_box(
        tmp_path, monkeypatch, before, during, token_at, page):
    monkeypatch.setattr(subscription_module, "REPLAY_PAGE", page)
    monkeypatch.setattr(subscription_module, "REPLAY_READ", page * 2 + 1)  # pages split reads
    database = Database(f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}")
    database.migrate()
    delivered: list[dict[str, Any]] = []

    async def notify(url: str, fmt: str, body: str) -> None:
        delivered.append(json.loads(body))
        await trio.lowlevel.checkpoint()

    live: list[str] = []
    async with open_store_world(database, notify) as world:
        store, subscriptions = world.store, world.subscriptions
        tokens = [(database.run(lambda s: nms.position(s, "s", "box")), live_state(database))]
        for op in before:
            await apply_op(store, op, live)
            tokens.append((database.run(lambda s: nms.position(s, "s", "box")),
                           live_state(database)))
        token, known = tokens[min(token_at, len(tokens) - 1)]
        box_pk = database.run(lambda s: nms.open_box(s, "s", "box").box.pk)
        info = SubscriptionInfo("sub", "s", "box", box_pk, "http://client", None, "json", 3600,
                                None)
        here = tokens[-1][0]

        async def writes_during_replay() -> None:
            for op in during:
                await apply_op(store, op, live)

        async with trio.open_nursery() as writers:
            writers.start_soon(writes_during_replay)
            actor = await subscriptions.ref.ask(
                lambda r: StartSubscription(info, here, 1, token, r))
        final = database.run(lambda s: nms.position(s, "s", "box"))
        with trio.fail_after(30):
            while actor.position.seq < final.seq or actor.held is not None or actor.undelivered:
                await trio.testing.wait_all_tasks_blocked(cushion=0.001)
    database.dispose()

    # index: 1, 2, 3, ... with no gap and no repeat
    assert [d["index"] for d in delivered] == list(range(1, len(delivered) + 1))
    # every change after the token was delivered (at its last state at least)
    seen = {(e["id"], e["seq"]) for d in delivered for e in d["events"]}
    truth = live_state_with_tombstones(tmp_path, database.url)
    for item_id, seq in truth:
        if seq > token.seq:
            assert (item_id, seq) in seen
    # the lastModSeq rule turns what the client knew at the token into the box as it is
    database = Database(database.url)
    assert apply_events(known, delivered) == live_state(database)
    assert delivered == [] or delivered[-1]["token"] == str(final)
    database.dispose()


def live_state_with_tombstones(_tmp: Any, url: str) -> set[tuple[str, int]]:
    database = Database(url)
    try:
        return database.run(lambda s: {(o.id, o.last_mod_seq) for o in s.scalars(
            sa.select(StoredObject))} | {(f.id, f.last_mod_seq) for f in s.scalars(
            sa.select(Folder))})
    finally:
        database.dispose()
