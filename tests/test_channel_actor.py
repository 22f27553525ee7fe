"""The channel actor on virtual time: lifetime, maxWaitTime, connCheck, takeover, requeue."""

from __future__ import annotations

import json
import math

import pytest
import sqlalchemy as sa
import trio
import trio.testing

from actors import ActorStopped, ChildSpec, Registry, Reply, Supervisor
from actors.channel import (
    CLOSE_EXPIRED,
    CLOSE_REPLACED,
    CLOSE_SLOW,
    CLOSE_UNANSWERED,
    Attach,
    ChannelActor,
    ChannelGone,
    ChannelPolicy,
    ClientConnAck,
    ClientConnCheck,
    Describe,
    Detach,
    Notification,
    Poll,
    Refresh,
    Sent,
    Session,
)
from actors.router import ChannelRequest, CreateChannel, Router
from api.codecs.notifications import NotificationCodec
from storage import Channel, Database
from tests.inline_storage import InlineStorage


class Harness:
    def __init__(self, database: Database, policy: ChannelPolicy) -> None:
        self.registry = Registry()
        self.storage = InlineStorage(database)
        self.router = Router(self.registry, self.storage.ref, codec=NotificationCodec(),
                             policy=policy)
        self.root = Supervisor("root", [ChildSpec(self.storage), ChildSpec(self.router)])
        self.database = database

    async def channel(self, kind: str = "WebSockets", *, lifetime: int = 7200,
                      max_notifications: int = 10, max_wait: int | None = None) -> ChannelActor:
        request = ChannelRequest(user_id="tel:+19585550100", channel_type=kind,
                                 max_notifications=max_notifications, lifetime=lifetime,
                                 max_wait_time=max_wait, client_correlator=None,
                                 application_tag=None)
        view, _ = await self.router.ref.ask(lambda r: CreateChannel(request, r))
        actor = self.router.channel_for("tel:+19585550100", view.info.id)
        assert actor is not None
        return actor

    def rows(self) -> list[str]:
        return self.database.run(lambda s: list(s.scalars(sa.select(Channel.id))))


@pytest.fixture
async def harness(tmp_path, autojump_clock):
    database = Database(f"sqlite:///{tmp_path / 't.db'}")
    database.migrate()
    h = Harness(database, ChannelPolicy(check_interval=60, default_max_wait=30))
    async with trio.open_nursery() as nursery:
        await nursery.start(h.root.run)
        yield h
        h.root.close_mailbox()
    database.dispose()


def note(n: int) -> Notification:
    return Notification("json", json.dumps({"chat": {"n": n}}))


def numbers(frame: str) -> list[int]:
    items = json.loads(frame)["notificationList"]
    return [i["chat"]["n"] for i in (items if isinstance(items, list) else [items])]


class Connection:
    """A WebSocket as the channel sees one (api.channel_socket): it takes each frame and
    confirms a batch only when the test says so (``Sent``); ``slow`` makes it refuse."""

    def __init__(self) -> None:
        self.send, self.frames = trio.open_memory_channel[str](math.inf)
        self.slow = False

    def write_now(self, text: str, batch: bool) -> bool:
        if self.slow:
            raise trio.WouldBlock
        self.send.send_nowait(text)
        return False  # written by the connection's writer later


_connections: dict[int, Connection] = {}


def session_of(connection: Connection) -> Session:
    session = Session(write_now=connection.write_now)
    _connections[session.id] = connection
    return session


async def next_frame(session: Session) -> str:
    """The next frame the channel wrote to this session's connection."""
    return await _connections[session.id].frames.receive()


async def attach(actor: ChannelActor, connection: Connection | None = None) -> Session:
    session = session_of(connection or Connection())
    await actor.ref.ask(lambda r: Attach(session, r))
    return session


async def test_a_channel_is_gone_when_its_lifetime_runs_out(harness, autojump_clock):
    actor = await harness.channel(lifetime=60)
    session = await attach(actor)
    t0 = trio.current_time()
    await trio.sleep(59.5)
    assert harness.router.channel_for("tel:+19585550100", actor.info.id) is actor
    await trio.sleep(0.5)
    await trio.testing.wait_all_tasks_blocked()
    assert trio.current_time() == t0 + 60
    assert session.close_code == CLOSE_EXPIRED
    assert harness.router.channel_for("tel:+19585550100", actor.info.id) is None
    assert harness.router.channel_by_callback(actor.info.callback_id) is None
    assert harness.router.channels_of("tel:+19585550100") == []
    assert harness.rows() == []
    with pytest.raises(ActorStopped):
        actor.offer([note(1)])


async def test_refresh_sets_a_new_lifetime(harness, autojump_clock):
    actor = await harness.channel(lifetime=60)
    await trio.sleep(50)
    assert await actor.ref.ask(lambda r: Refresh(100, r)) == 100
    await trio.sleep(99)
    assert not actor.gone
    await trio.sleep(1)
    await trio.testing.wait_all_tasks_blocked()
    assert actor.gone
    assert harness.rows() == []


async def test_a_long_poll_waits_max_wait_time_then_answers_empty(harness, autojump_clock):
    actor = await harness.channel("LongPolling", max_wait=30)
    t0 = trio.current_time()
    assert await actor.ref.ask(Poll, timeout=100) is None
    assert trio.current_time() == t0 + 30


async def test_a_long_poll_resets_the_lifetime(harness, autojump_clock):
    actor = await harness.channel("LongPolling", lifetime=60, max_wait=30)
    t0 = trio.current_time()
    await trio.sleep(50)
    assert await actor.ref.ask(Poll, timeout=100) is None  # t0+50 → t0+80
    view = await actor.ref.ask(Describe)
    assert view.remaining == 30  # lifetime restarted at t0+50
    await trio.sleep_until(t0 + 109)
    assert not actor.gone
    await trio.sleep_until(t0 + 110)
    await trio.testing.wait_all_tasks_blocked()
    assert actor.gone


async def test_a_poll_answered_at_once_when_something_is_pending(harness, autojump_clock):
    actor = await harness.channel("LongPolling", max_notifications=2, max_wait=30)
    actor.offer([note(1), note(2), note(3)])
    t0 = trio.current_time()
    fmt, frame = await actor.ref.ask(Poll)
    assert (fmt, numbers(frame), trio.current_time()) == ("json", [1, 2], t0)
    _, frame = await actor.ref.ask(Poll)
    assert numbers(frame) == [3]


async def test_a_poll_whose_client_left_gives_its_batch_back(harness, autojump_clock):
    actor = await harness.channel("LongPolling", max_wait=30)
    with pytest.raises(Exception, match="did not answer"):
        await actor.ref.ask(Poll, timeout=5)  # the client gives up after 5 s
    actor.offer([note(1)])
    await trio.testing.wait_all_tasks_blocked()
    _, frame = await actor.ref.ask(Poll)
    assert numbers(frame) == [1]


async def test_an_unanswered_server_conn_check_closes_the_connection(harness, autojump_clock):
    actor = await harness.channel(lifetime=7200)
    t0 = trio.current_time()
    session = await attach(actor)
    check = await next_frame(session)
    assert trio.current_time() == t0 + 60
    assert json.loads(check) == {"connCheck": {"checkInterval": "60",
                                                    "newChannelLifetime": "7200"}}
    await trio.sleep_until(t0 + 120)
    await trio.testing.wait_all_tasks_blocked()
    assert session.close_code == CLOSE_UNANSWERED
    assert actor.session is None


async def test_a_conn_ack_keeps_the_connection_and_resets_the_lifetime(harness, autojump_clock):
    actor = await harness.channel(lifetime=100)
    t0 = trio.current_time()
    session = await attach(actor)
    await next_frame(session)  # connCheck at t0+60
    await actor.ref.tell(ClientConnAck(session))
    assert (await actor.ref.ask(Describe)).remaining == 100
    second = await next_frame(session)
    assert trio.current_time() == t0 + 120
    assert json.loads(second)["connCheck"]["checkInterval"] == "60"
    assert session.close_code is None


async def test_a_client_conn_check_is_acked_with_the_lifetime_reset(harness, autojump_clock):
    actor = await harness.channel(lifetime=300)
    session = await attach(actor)
    await trio.sleep(40)
    await actor.ref.tell(ClientConnCheck(session))
    ack = await next_frame(session)
    assert json.loads(ack) == {"connAck": {"channelLifetime": "300"}}
    assert (await actor.ref.ask(Describe)).remaining == 300


async def test_takeover_closes_the_old_one_and_resends_its_unsent_batch(harness, autojump_clock):
    actor = await harness.channel()
    first = await attach(actor)
    actor.offer([note(1), note(2)])
    in_flight = await next_frame(first)
    assert numbers(in_flight) == [1, 2]
    second = await attach(actor)  # the first never confirmed its write
    assert first.close_code == CLOSE_REPLACED
    assert numbers(await next_frame(second)) == [1, 2]
    await actor.ref.tell(Sent(first))  # a late confirmation from the old one changes nothing
    await actor.ref.tell(Sent(second))
    actor.offer([note(3)])
    assert numbers(await next_frame(second)) == [3]


async def test_a_failed_write_goes_back_to_the_head_of_the_queue(harness, autojump_clock):
    actor = await harness.channel(max_notifications=2)
    session = await attach(actor)
    actor.offer([note(1), note(2), note(3)])
    assert numbers(await next_frame(session)) == [1, 2]
    await actor.ref.tell(Detach(session))  # the connection broke mid-write
    actor.offer([note(4)])
    again = await attach(actor)
    got = []
    for _ in range(2):
        frame = await next_frame(again)
        got += numbers(frame)
        await actor.ref.tell(Sent(again))
    assert got == [1, 2, 3, 4]
    await trio.testing.wait_all_tasks_blocked()
    assert actor.admitted == 0


async def test_a_crashed_channel_restarts_with_its_queue(harness, autojump_clock):
    actor = await harness.channel()
    session = await attach(actor)
    actor.offer([note(1)])
    await next_frame(session)  # in flight, not confirmed
    actor.offer([note(2)])
    await actor.ref.tell("not a channel message")  # crashes this incarnation
    await trio.sleep(1)
    assert actor.stats.restarts == 1
    assert session.close_code == 1011
    again = await attach(actor)
    frame = await next_frame(again)
    assert numbers(frame) == [1, 2]


async def test_a_deleted_channel_answers_nothing_more(harness, autojump_clock):
    actor = await harness.channel("LongPolling", max_wait=30)

    async def poll() -> None:
        with pytest.raises(ChannelGone):
            await actor.ref.ask(Poll, timeout=60)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(poll)
        await trio.testing.wait_all_tasks_blocked()
        from actors.channel import Close

        await actor.ref.ask(Close)
    assert harness.rows() == []


async def test_the_queue_limit_refuses_more_than_it_can_hold(harness, autojump_clock):
    from actors import MailboxFull

    actor = await harness.channel("LongPolling", max_wait=30, max_notifications=100)
    actor.offer([note(n) for n in range(1000)])
    with pytest.raises(MailboxFull):
        actor.offer([note(1000)])
    _, frame = await actor.ref.ask(Poll)
    assert len(numbers(frame)) == 100
    actor.offer([note(1000)])  # room again


async def test_an_attach_whose_connection_gave_up_is_not_kept(harness, autojump_clock):
    actor = await harness.channel()
    actor.offer([note(1)])
    send, receive = trio.open_memory_channel(1)
    receive.close()  # the connection stopped waiting for its answer
    await actor.ref.tell(Attach(session_of(Connection()), Reply(send)))
    await trio.testing.wait_all_tasks_blocked()
    assert actor.session is None
    assert actor.in_flight is None
    again = await attach(actor)
    assert numbers(await next_frame(again)) == [1]


async def test_a_client_too_slow_is_closed_with_4004_and_loses_nothing(harness, autojump_clock):
    actor = await harness.channel()
    connection = Connection()
    session = await attach(actor, connection)
    connection.slow = True  # more than the backlog limit unread
    actor.offer([note(1)])
    await trio.testing.wait_all_tasks_blocked()
    assert session.close_code == CLOSE_SLOW
    assert actor.session is None
    again = await attach(actor)
    assert numbers(await next_frame(again)) == [1]
