"""``subscription:<id>``: turns the committed changes of one box into ``nmsEventList``s and
delivers them to the notifyURL, in order, each with the next ``index`` and a restartToken.

Messages: Changes, ReplayBatch, ReplayDone, Update, DescribeSubscription, Cancel, TargetIsGone.
Overflow policy: BLOCK — the box's writers wait rather than a change being dropped.
Replay (§5.1.4.3): an update or creation with a restartToken starts ``replay:<id>``, a
temporary child that streams the box's state after that point, in sequence order and in pages,
up to a snapshot position. Live changes arriving meanwhile are held; at hand-over those the
replay already covered (``lastModSeq`` ≤ snapshot) are dropped and the rest follow, so nothing is
lost or reordered (an item may be reported twice, which §5.1.4.4 allows).
Delivery runs in a child task, one event list at a time, retried with backoff; a target that
is gone ends the subscription.

Lagging (as Centrifuge recovers a slow client from history): the subscriptions actor hands
changes over with ``tell_nowait`` and never waits for a slow subscription. When its mailbox is
full it marks it ``lagging``; a lagging subscription ignores live changes (its position stays
before all of them) and, once its delivery queue has room again, replays from its position.
Nothing is lost, because a replay reports the current state of everything after a position.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

import trio

from storage import Subscription as SubscriptionRow
from storage.nms import RESET, Committed, ItemState, Position, changes_between, position
from storage.search import Criteria, matches

from .actor import Actor, ActorRef, ActorState, Reply, UnexpectedMessage, queued
from .storage import run_job
from .supervisor import ChildSpec, Restart, Supervisor

log = logging.getLogger("tidings.subscription")

#: events per nmsEventList during a replay (one write per page, not one per change)
REPLAY_PAGE = 100
#: changes read from the database at a time during a replay (split into pages)
REPLAY_READ = 2000
#: event lists waiting for delivery before the subscription stops taking changes
DELIVERY_QUEUE = 256
#: retry delays for a notifyURL that fails (5xx, refused connection, full channel), capped
RETRY_FIRST, RETRY_MAX = 0.5, 30.0
#: while lagging, how often to look whether the delivery queue has room for a catch-up replay
CATCH_UP_EVERY = 0.5
#: live changes held during a replay before the subscription counts as lagging again
HELD_LIMIT = 1024


class TargetGone(Exception):
    """The notifyURL answered that it no longer exists (404): the subscription ends."""


class RetryLater(Exception):
    """The notifyURL could not take the notification now."""


Deliver = Callable[[str, str, str], Awaitable[None]]
#: ``deliver_now(url, fmt, body)``: hand the notification over at once, without waiting, if the
#: target is in this process and can take it now (``True``); ``False`` means "use ``Deliver``"
DeliverNow = Callable[[str, str, str], bool]


class EventEncoder(Protocol):
    def event_list(self, info: SubscriptionInfo, events: Sequence[ItemState] | None,
                   index: int, token: Position) -> str: ...


@dataclass(frozen=True)
class SubscriptionInfo:
    id: str
    store: str
    box: str
    box_pk: int
    notify_url: str
    callback_data: str | None
    fmt: str
    duration: int
    client_correlator: str | None
    #: the subscription's filter, and the box sequence when it was made (for CreatedObjects)
    filter: Criteria | None = None
    created_after: int = 0


@dataclass(frozen=True)
class SubscriptionView:
    info: SubscriptionInfo
    index: int
    restart_token: str
    remaining: int


@dataclass(frozen=True)
class Changes:
    committed: Committed


@dataclass(frozen=True)
class ReplayBatch:
    events: tuple[ItemState, ...]
    upto: Position
    generation: int


@dataclass(frozen=True)
class ReplayDone:
    snapshot: Position
    generation: int


@dataclass(frozen=True)
class Update:
    duration: int | None
    restart: Position | None
    reply: Reply[SubscriptionView]


@dataclass(frozen=True)
class DescribeSubscription:
    reply: Reply[SubscriptionView]


@dataclass(frozen=True)
class Cancel:
    reply: Reply[None]


@dataclass(frozen=True)
class TargetIsGone:
    """The delivery task found the notifyURL gone."""


@dataclass(frozen=True)
class _Outgoing:
    text: str
    index: int
    token: Position


class SubscriptionActor(Actor):
    kind = "subscription"
    mailbox_capacity = 1024

    def __init__(self, info: SubscriptionInfo, *, start: Position, next_index: int,
                 replay_from: Position | None, storage: ActorRef, encoder: EventEncoder,
                 notify: Deliver, on_end: Callable[[SubscriptionActor], None],
                 deliver_now: DeliverNow | None = None,
                 on_delivered: Callable[[SubscriptionActor], None] | None = None) -> None:
        super().__init__(f"subscription:{info.id}")
        self.info = info
        self.position = start
        self.next_index = next_index
        self.storage = storage
        self.encoder = encoder
        self.notify = notify
        self.deliver_now = deliver_now
        self.on_end = on_end
        #: told when the delivered position moved (the subscriptions actor saves it, batched)
        self.on_delivered = on_delivered or (lambda _: None)
        self.expires_at = trio.current_time() + info.duration
        self.replay_from = replay_from
        self.held: list[Committed] | None = None
        self.replays = Supervisor(f"replays:{info.id}", intensity=1, period=1.0, escalate=False)
        self._out_send, self._out_receive = trio.open_memory_channel[_Outgoing](DELIVERY_QUEUE)
        self.ended = False
        #: what the notifyURL has accepted: the next index and the restartToken after it
        self.delivered = (next_index, start)
        #: the delivery task holds an event list it has not handed over yet
        self._in_hand = False
        self.lagging = False
        self._held_overflow = False
        #: which replay is current: messages from a replaced one are ignored
        self.replay_generation = 0

    @asynccontextmanager
    async def children(self) -> AsyncIterator[None]:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.replays.run)
            nursery.start_soon(self._deliver_loop)
            yield
            if not self.ended:
                await self._save()
            self.replays.close_mailbox()
            nursery.cancel_scope.cancel()

    async def on_start(self) -> None:
        if self.held is not None:
            # a new incarnation after a crash during a replay: that replay is gone, so catch
            # up by a new one from the position (nothing after it was reported)
            self.held = None
            self.lagging = True

    async def on_started(self) -> None:
        if self.replay_from is not None:
            start, self.replay_from = self.replay_from, None
            await self._start_replay(start)

    def next_deadline(self) -> float:
        if self.lagging:
            return min(self.expires_at, trio.current_time() + CATCH_UP_EVERY)
        return self.expires_at

    async def on_deadline(self) -> None:
        if trio.current_time() >= self.expires_at:
            await self._end("expired")
        elif self.lagging and self.held is None and self.undelivered < DELIVERY_QUEUE // 2:
            log.info("%s caught up with its queue; replaying from %s", self.name, self.position)
            self.lagging = False
            await self._start_replay(self.position)

    def offer_live(self, committed: Committed) -> bool:
        """The fan-out's fast path: handle a live change now, in the caller's task, when
        nothing is queued before it (idle, not replaying or lagging, no delivery pending) and
        the notifyURL is in this process and takes it at once. ``False``: send ``Changes``."""
        if (self.deliver_now is None or self.lagging or self.held is not None or self.ended
                or self._in_hand or self.undelivered or not self.idle()):
            return False
        events = self._filter(committed.changes)
        position_ = self._advanced(committed.position)
        if events:
            index = self.next_index
            text = self.encoder.event_list(self.info, events, index, position_)
            if not self.deliver_now(self.info.notify_url, self.info.fmt, text):
                return False
            self.next_index = index + 1
            self.delivered = (index + 1, position_)
            self.on_delivered(self)
        self.position = position_
        return True

    def mark_lagging(self) -> None:
        """Called by the subscriptions actor when this mailbox is full: a change was not
        handed over, so live changes are ignored until a replay covers them."""
        self.lagging = True

    async def handle(self, message: object) -> None:
        match message:
            case Changes(committed):
                if self.lagging:
                    pass  # a later change was dropped: the catch-up replay covers this one
                elif self.held is not None:
                    if len(self.held) < HELD_LIMIT:
                        self.held.append(committed)
                    else:
                        self._held_overflow = True
                else:
                    await self._emit(self._filter(committed.changes), committed.position)
            case ReplayBatch(_, _, generation) | ReplayDone(_, generation) if (
                    generation != self.replay_generation):
                pass  # from a replay that a newer one replaced
            case ReplayBatch(events, upto, _):
                await self._emit(self._filter(events, replay=True), upto)
            case ReplayDone(snapshot, _):
                held, self.held = self.held or [], None
                if self._held_overflow or self.lagging:
                    # some live changes were not kept: replay again from the snapshot later
                    self._held_overflow, self.lagging, held = False, True, []
                for committed in held:
                    if committed.position.validity != snapshot.validity:
                        await self._emit(self._filter(committed.changes), committed.position)
                        continue
                    fresh = [e for e in committed.changes if e.last_mod_seq > snapshot.seq]
                    await self._emit(self._filter(fresh), committed.position)
                if self.position.seq < snapshot.seq:
                    self.position = snapshot
            case Update(duration, restart, reply):
                if duration is not None:
                    self.info = replace(self.info, duration=duration)
                    self.expires_at = trio.current_time() + duration
                if restart is not None:
                    await self._start_replay(restart)
                await self._save()
                reply.send(self.view())
            case DescribeSubscription(reply):
                reply.send(self.view())
            case Cancel(reply):
                await self._end("cancelled")
                reply.send(None)
            case TargetIsGone():
                await self._end(f"ended: {self.info.notify_url} is gone")
            case _:
                raise UnexpectedMessage(f"{self.name} got {message!r}")

    @property
    def undelivered(self) -> int:
        """Event lists queued for the notifyURL and not yet accepted by it."""
        return queued(self._out_send)

    def view(self) -> SubscriptionView:
        remaining = max(0, math.ceil(self.expires_at - trio.current_time()))
        return SubscriptionView(self.info, self.next_index, str(self.position), remaining)

    def _filter(self, events: Sequence[ItemState], *, replay: bool = False) -> list[ItemState]:
        """Events whose item matches the filter; resetBox always passes. CreatedObjects only
        matches objects created after the subscription, and never in a replay."""
        criteria = self.info.filter
        if criteria is None:
            return list(events)
        after = math.inf if replay else self.info.created_after
        return [e for e in events
                if e.kind == "reset" or matches(e, criteria, created_after=after)]

    def _advanced(self, upto: Position) -> Position:
        """The position after a change that ends at ``upto``: later, or a new validity (a box
        reset: its stream starts again)."""
        if upto.validity != self.position.validity or upto.seq > self.position.seq:
            return upto
        return self.position

    async def _emit(self, events: Sequence[ItemState], upto: Position) -> None:
        """Queue one nmsEventList for ``events`` (nothing if empty) and move the position."""
        self.position = self._advanced(upto)
        if not events:
            return
        index = self.next_index
        self.next_index += 1
        text = self.encoder.event_list(self.info, events, index, self.position)
        await self._out_send.send(_Outgoing(text, index, self.position))

    async def _start_replay(self, start: Position) -> None:
        # everything after ``start`` is reported again: until the replay passes them, the
        # subscription's own restartToken is ``start`` (so a crash mid-replay skips nothing)
        self.position = start
        if self.held is None:
            self.held = []
        self.replay_generation += 1
        worker = ReplayWorker(self.info, start, self.storage, self.ref, self.replay_generation)
        name = worker.name
        if self.replays.child(name) is not None:
            await self.replays.stop_child(name)
        await self.replays.start_child(ChildSpec(worker, Restart.TEMPORARY, grace=1.0))

    async def _deliver_loop(self) -> None:
        async for outgoing in self._out_receive:
            self._in_hand = True
            delay = RETRY_FIRST
            while True:
                try:
                    await self.notify(self.info.notify_url, self.info.fmt, outgoing.text)
                    self.delivered = (outgoing.index + 1, outgoing.token)
                    self.on_delivered(self)
                    break
                except TargetGone:
                    await self.ref.tell(TargetIsGone())
                    return
                except RetryLater as error:
                    log.warning("%s: delivery failed (%s); retrying in %.1f s", self.name,
                                error, delay)
                except Exception:
                    # never lose the list in hand: an unexpected failure is retried too
                    log.exception("%s: delivery failed; retrying in %.1f s", self.name, delay)
                await trio.sleep(delay)
                delay = min(RETRY_MAX, delay * 2)
            self._in_hand = False

    async def _save(self) -> None:
        info, (index, position_) = self.info, self.delivered
        token = str(position_)

        def save(session: Any) -> None:
            row = session.get(SubscriptionRow, info.id)
            if row is not None:
                row.duration, row.next_index, row.restart_token = info.duration, index, token

        await run_job(self.storage, save)

    async def _end(self, why: str) -> None:
        if self.ended:
            return
        self.ended = True
        self.expires_at = math.inf
        subscription_id = self.info.id

        def delete(session: Any) -> None:
            row = session.get(SubscriptionRow, subscription_id)
            if row is not None:
                session.delete(row)

        log.info("%s %s", self.name, why)
        try:
            await run_job(self.storage, delete)
        finally:
            self.on_end(self)
            self.close_mailbox()

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "index": self.next_index,
                "restartToken": str(self.position), "replaying": self.held is not None,
                "children": self.replays.child_snapshots()}


class ReplayWorker(Actor):
    """``replay:<id>``: pages through the box after ``start`` up to a snapshot, then reports."""

    kind = "replay"
    mailbox_capacity = 1

    def __init__(self, info: SubscriptionInfo, start: Position, storage: ActorRef,
                 subscriber: ActorRef, generation: int) -> None:
        super().__init__(f"replay:{info.id}")
        self.generation = generation
        self.info = info
        self.start = start
        self.storage = storage
        self.subscriber = subscriber
        self.sent = 0

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        self.state = ActorState.RUNNING
        self.stats.started_at = trio.current_time()
        task_status.started(self.ref)
        info = self.info
        snapshot = await run_job(self.storage, lambda s: position(s, info.store, info.box))
        after = self.start.seq
        if self.start.validity != snapshot.validity:  # the box was reset since the token
            after = 0
            await self.subscriber.tell(ReplayBatch((RESET,), Position(snapshot.validity, 0),
                                                   self.generation))
        with_attributes = info.filter is not None  # only a filter looks at them
        while after < snapshot.seq:
            read = await run_job(self.storage, _read(info.box_pk, after, snapshot.seq,
                                                     with_attributes))
            if not read:
                break
            for start in range(0, len(read), REPLAY_PAGE):
                page = read[start:start + REPLAY_PAGE]
                after = page[-1].last_mod_seq
                self.sent += len(page)
                await self.subscriber.tell(ReplayBatch(
                    tuple(page), Position(snapshot.validity, after), self.generation))
        await self.subscriber.tell(ReplayDone(snapshot, self.generation))

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "from": str(self.start), "sent": self.sent}


def _read(box_pk: int, after: int, upto: int,
          attributes: bool) -> Callable[[Any], list[ItemState]]:
    def read(session: Any) -> list[ItemState]:
        return changes_between(session, box_pk, after, upto, REPLAY_READ,
                               attributes=attributes)
    return read
