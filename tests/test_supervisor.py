"""Supervision on virtual time: restarts, backoff, intensity, restart policies, shutdown order."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors import (
    ActorState,
    ChildSpec,
    Registry,
    Restart,
    RestartIntensityExceeded,
    Supervisor,
)
from tests.actors_helpers import Add, Counter, Crash, Finish, Hang, Total, starts


async def test_crashed_child_restarts_after_backoff_and_siblings_keep_state(autojump_clock):
    journal: list = []
    a, b = Counter("a", journal), Counter("b", journal)
    sup = Supervisor("root", [ChildSpec(a), ChildSpec(b)])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        t0 = trio.current_time()
        await a.ref.tell(Add(5))
        await b.ref.tell(Add(7))
        await a.ref.tell(Crash())
        # queued while `a` is down: kept in its mailbox for the next incarnation
        await a.ref.tell(Add(2))
        await b.ref.tell(Add(1))
        assert await a.ref.ask(Total) == 2
        assert await b.ref.ask(Total) == 8
        assert starts(journal, "a") == [t0, t0 + 0.1]
        assert starts(journal, "b") == [t0]
        assert a.stats.restarts == 1
        assert b.stats.restarts == 0
        assert a.stats.last_error == ("RuntimeError", "boom")
        sup.close_mailbox()
    assert sup.state is ActorState.STOPPED


async def test_backoff_doubles_until_the_cap(autojump_clock):
    journal: list = []
    a = Counter("a", journal)
    sup = Supervisor("root", [ChildSpec(a)], intensity=10, period=100, backoff_max=0.5)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        t0 = trio.current_time()
        for _ in range(4):
            await a.ref.tell(Crash())
            await a.ref.ask(Total)  # returns once the next incarnation is up
        assert starts(journal, "a") == pytest.approx([t0, t0 + 0.1, t0 + 0.3, t0 + 0.7, t0 + 1.2])
        sup.close_mailbox()


async def test_restarts_outside_the_period_do_not_count(autojump_clock):
    a = Counter("a")
    sup = Supervisor("root", [ChildSpec(a)], intensity=2, period=5)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        for _ in range(6):  # 6 crashes, but never more than 2 within 5 s
            await a.ref.tell(Crash())
            await a.ref.ask(Total)
            await trio.sleep(3)
        assert a.stats.restarts == 6
        assert sup.state is ActorState.RUNNING
        sup.close_mailbox()


async def test_exceeding_intensity_escalates_to_the_parent(autojump_clock):
    a = Counter("a")
    sup = Supervisor("inner", [ChildSpec(a)], intensity=3, period=5)
    with pytest.RaisesGroup(RestartIntensityExceeded):
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            for _ in range(3):
                await a.ref.tell(Crash())
                await a.ref.ask(Total)
            await a.ref.tell(Crash())  # the fourth crash within 5 s
            await trio.sleep_forever()
    assert sup.state is ActorState.FAILED


async def test_parent_restarts_a_supervisor_that_gave_up(autojump_clock):
    journal: list = []
    a = Counter("a", journal)
    inner = Supervisor("inner", [ChildSpec(a)], intensity=1, period=5)
    outer = Supervisor("outer", [ChildSpec(inner)], intensity=3, period=5)
    async with trio.open_nursery() as nursery:
        await nursery.start(outer.run)
        t0 = trio.current_time()
        await a.ref.tell(Add(3))
        await a.ref.tell(Crash())
        await a.ref.ask(Total)  # restarted by inner after 0.1 s
        await a.ref.tell(Crash())  # second crash: inner gives up, outer restarts inner
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(1)
        assert inner.stats.restarts == 1
        assert inner.stats.last_error is not None
        assert inner.stats.last_error[0] == "RestartIntensityExceeded"
        assert starts(journal, "a") == pytest.approx([t0, t0 + 0.1, t0 + 0.2])
        assert await a.ref.ask(Total) == 0
        outer.close_mailbox()


async def test_temporary_child_is_never_restarted(autojump_clock):
    registry = Registry()
    journal: list = []
    temp = Counter("replay:1", journal)
    sup = Supervisor("root", registry=registry)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sup.start_child(ChildSpec(temp, Restart.TEMPORARY))
        assert registry.lookup("replay:1") is temp
        await temp.ref.tell(Crash())
        await trio.sleep(10)
        assert starts(journal, "replay:1") == [0.0]
        assert temp.state is ActorState.FAILED
        assert registry.lookup("replay:1") is None
        assert sup.child("replay:1") is None
        sup.close_mailbox()


async def test_transient_child_restarts_after_a_crash_but_not_after_a_normal_exit(autojump_clock):
    journal: list = []
    child = Counter("channel:1", journal)
    sup = Supervisor("root")
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sup.start_child(ChildSpec(child, Restart.TRANSIENT))
        await child.ref.tell(Crash())
        await child.ref.ask(Total)
        await child.ref.tell(Finish())
        await trio.sleep(10)
        assert len(starts(journal, "channel:1")) == 2
        assert child.state is ActorState.STOPPED
        assert sup.child("channel:1") is None
        sup.close_mailbox()


async def test_dynamic_supervisor_gives_up_on_one_child_only(autojump_clock):
    bad, good = Counter("channel:bad"), Counter("channel:good")
    sup = Supervisor("channels", intensity=2, period=5, escalate=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sup.start_child(ChildSpec(bad, Restart.TRANSIENT))
        await sup.start_child(ChildSpec(good, Restart.TRANSIENT))
        await good.ref.tell(Add(4))
        for _ in range(2):
            await bad.ref.tell(Crash())
            await bad.ref.ask(Total)
        await bad.ref.tell(Crash())
        await trio.sleep(1)
        assert bad.state is ActorState.FAILED
        assert sup.child("channel:bad") is None
        assert sup.state is ActorState.RUNNING
        assert await good.ref.ask(Total) == 4
        sup.close_mailbox()


async def test_shutdown_stops_children_in_reverse_order_within_the_deadline(autojump_clock):
    journal: list = []
    first, second = Counter("first", journal), Counter("second", journal)
    stuck = Counter("stuck", journal)
    sup = Supervisor(
        "root", [ChildSpec(first), ChildSpec(second), ChildSpec(stuck, grace=2.0)]
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await stuck.ref.tell(Hang())  # will not drain its mailbox: cancelled at the deadline
        await trio.testing.wait_all_tasks_blocked()
        t0 = trio.current_time()
        sup.close_mailbox()
    ends = [(name, t) for name, event, t in journal if event == "end"]
    assert ends == [("stuck", t0 + 2.0), ("second", t0 + 2.0), ("first", t0 + 2.0)]
    assert [c.state for c in (first, second, stuck)] == [ActorState.STOPPED] * 3
    assert sup.state is ActorState.STOPPED


async def test_stopping_one_child_leaves_the_others_running(autojump_clock):
    registry = Registry()
    a, b = Counter("channel:a"), Counter("channel:b")
    sup = Supervisor("channels", registry=registry)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sup.start_child(ChildSpec(a, Restart.TRANSIENT))
        await sup.start_child(ChildSpec(b, Restart.TRANSIENT))
        await a.ref.tell(Add(1))
        await sup.stop_child("channel:a")
        assert registry.names("channel:") == ["channel:b"]
        assert a.total == 1  # drained its mailbox before stopping
        assert await b.ref.ask(Total) == 0
        sup.close_mailbox()
