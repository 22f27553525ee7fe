"""Mailboxes, tell/ask and statistics of one actor, on virtual time."""

from __future__ import annotations

import gc
import weakref

import pytest
import trio
import trio.testing

from actors import (
    ActorCrashed,
    ActorStopped,
    AskTimeout,
    ChildSpec,
    MailboxFull,
    Supervisor,
    UnexpectedMessage,
)
from tests.actors_helpers import Add, Counter, Crash, Explode, Hang, RefusingCounter, Total


async def test_ask_returns_the_answer():
    counter = Counter("c")
    async with trio.open_nursery() as nursery:
        await nursery.start(counter.run)
        await counter.ref.tell(Add(2))
        await counter.ref.tell(Add(3))
        assert await counter.ref.ask(Total) == 5
        counter.close_mailbox()


async def test_an_idle_actor_keeps_nothing_of_the_last_message():
    """Thousands of idle channels each wait on their mailbox: the request they handled last
    (with its reply channel) is not kept alive by the wait."""
    counter = Counter("c")
    made: list[weakref.ref[Total]] = []

    def request(reply):
        message = Total(reply)
        made.append(weakref.ref(message))
        return message

    async with trio.open_nursery() as nursery:
        await nursery.start(counter.run)
        assert await counter.ref.ask(request) == 0
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        assert made[0]() is None
        counter.close_mailbox()


async def test_ask_times_out_at_exactly_its_timeout(autojump_clock):
    counter = Counter("c")
    async with trio.open_nursery() as nursery:
        await nursery.start(counter.run)
        t0 = trio.current_time()
        with pytest.raises(AskTimeout, match="c did not answer within 1.5 s"):
            await counter.ref.ask(Hang, timeout=1.5)
        assert trio.current_time() == t0 + 1.5
        nursery.cancel_scope.cancel()


async def test_ask_to_an_actor_that_crashes_fails_at_once(autojump_clock):
    counter = Counter("c")
    sup = Supervisor("root", [ChildSpec(counter)])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        t0 = trio.current_time()
        with pytest.raises(ActorCrashed, match="c crashed"):
            await counter.ref.ask(Explode, timeout=30)
        assert trio.current_time() == t0
        sup.close_mailbox()


async def test_full_mailbox_with_refuse_policy_raises_at_once(autojump_clock):
    counter = RefusingCounter("r")
    async with trio.open_nursery() as nursery:
        await nursery.start(counter.run)
        await counter.ref.tell(Hang())
        await trio.testing.wait_all_tasks_blocked()
        for n in range(counter.mailbox_capacity):
            await counter.ref.tell(Add(n))
        assert counter.mailbox_depth == counter.mailbox_capacity
        with pytest.raises(MailboxFull):
            await counter.ref.tell(Add(99))
        with pytest.raises(MailboxFull):
            counter.ref.tell_nowait(Add(99))
        assert counter.stats.received == 1
        nursery.cancel_scope.cancel()


async def test_full_mailbox_with_block_policy_makes_the_sender_wait(autojump_clock):
    counter = Counter("b")
    sent_at: list[float] = []

    async def sender() -> None:
        await counter.ref.tell(Add(1))
        sent_at.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        await nursery.start(counter.run)
        await counter.ref.tell(Hang())
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(counter.mailbox_capacity):
            await counter.ref.tell(Add(0))
        nursery.start_soon(sender)
        await trio.sleep(3)
        assert sent_at == []  # still waiting for room
        with pytest.raises(MailboxFull):
            counter.ref.tell_nowait(Add(1))
        nursery.cancel_scope.cancel()


async def test_tell_after_stop_raises_actor_stopped():
    counter = Counter("c")
    async with trio.open_nursery() as nursery:
        await nursery.start(counter.run)
        counter.close_mailbox()
    with pytest.raises(ActorStopped):
        await counter.ref.tell(Add(1))


async def test_unexpected_message_is_an_error_counted_in_stats(autojump_clock):
    counter = Counter("c")
    sup = Supervisor("root", [ChildSpec(counter)])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await counter.ref.tell("not a message")
        assert await counter.ref.ask(Total) == 0
        assert counter.stats.failed == 1
        assert counter.stats.last_error is not None
        assert counter.stats.last_error[0] == UnexpectedMessage.__name__
        sup.close_mailbox()


async def test_snapshot_reports_counts_depth_and_uptime(autojump_clock):
    counter = Counter("c")
    sup = Supervisor("root", [ChildSpec(counter)])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await counter.ref.tell(Add(1))
        await counter.ref.tell(Crash("bad input"))
        await counter.ref.ask(Total)
        await counter.ref.tell(Hang())
        await counter.ref.tell(Add(1))
        await trio.sleep(2)
        tree = sup.snapshot()
        (child,) = tree["children"]
        assert child["name"] == "c"
        assert child["kind"] == "counter"
        assert child["state"] == "running"
        assert child["restartPolicy"] == "permanent"
        assert child["mailbox"] == {"depth": 1, "capacity": 4, "overflow": "block"}
        assert (child["received"], child["handled"], child["failed"]) == (4, 2, 1)
        assert child["restarts"] == 1
        assert child["lastError"] == {"type": "RuntimeError", "message": "bad input"}
        assert child["uptime"] == 2.0
        assert tree["kind"] == "supervisor"
        assert tree["state"] == "running"
        nursery.cancel_scope.cancel()
