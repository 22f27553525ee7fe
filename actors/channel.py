"""``channel:<id>``: one Notification Channel's queue, lifetime and live delivery.

The queue holds notifications already encoded by the HTTP layer (encode once). At most one
batch of up to ``maxNotifications`` is in flight to a client at a time; it leaves the queue for
good only when the writer reports it written (``Sent``) or a long poll took it. A failed write,
a dropped connection, a takeover or a crash puts it back at the head of the queue, so delivery
is at least once and in arrival order.

Messages: Deliver, Attach, Detach, Sent, ClientConnCheck, ClientConnAck, Poll,
Describe, Refresh, Close, GoingAway.
Overflow policy: BLOCK for control messages. Notifications enter through :meth:`offer`, which
admits at most ``queue_limit`` notifications not yet delivered and refuses the rest at once
(:class:`~actors.actor.MailboxFull`, which the callback answers with 503).
Cancellation: the queue lives on this object and survives a restart of the run loop; a new
incarnation drops the old connection and long poll, and keeps every queued notification.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import trio

from storage import Channel

from .actor import (
    Actor,
    ActorError,
    ActorRef,
    ActorStopped,
    MailboxFull,
    Reply,
    UnexpectedMessage,
)
from .registry import Registry
from .storage import run_job

# -- close codes sent to a WebSocket client (4000-4999: private use, RFC 6455 §7.4.2) --------
CLOSE_DELETED = 4000
CLOSE_REPLACED = 4001
CLOSE_EXPIRED = 4002
CLOSE_UNANSWERED = 4003
CLOSE_SLOW = 4004
CLOSE_RESTARTED = 1011
CLOSE_GOING_AWAY = 1001


@dataclass(frozen=True)
class ChannelPolicy:
    """Server policy for channels (returned in responses, stated in the README)."""

    default_lifetime: int = 7200
    max_lifetime: int = 86400
    default_max_notifications: int = 10
    max_max_notifications: int = 100
    default_max_wait: int = 30
    max_max_wait: int = 120
    #: notifications accepted but not yet delivered, per channel; beyond it a callback gets 503
    queue_limit: int = 1000
    #: seconds between the server's connCheck messages on a WebSocket (answer due by the next)
    check_interval: int = 60


@dataclass(frozen=True)
class Notification:
    """One notification, encoded once: ``fmt`` is ``"json"`` or ``"xml"``."""

    fmt: str
    body: str


class Codec(Protocol):
    """Frames for clients; implemented in the HTTP layer (wire formats live there)."""

    def batch(self, items: Sequence[Notification]) -> str: ...

    def conn_check(self, fmt: str, interval: int, lifetime: int) -> str: ...

    def conn_ack(self, fmt: str, lifetime: int) -> str: ...


@dataclass(frozen=True)
class ChannelInfo:
    id: str
    user_id: str
    callback_id: str
    channel_type: str
    max_notifications: int
    lifetime: int
    max_wait_time: int | None = None
    client_correlator: str | None = None
    application_tag: str | None = None


@dataclass(frozen=True)
class ChannelView:
    info: ChannelInfo
    remaining: int


class ChannelGone(Exception):
    """The channel was deleted or has expired."""


class PollReplaced(Exception):
    """A newer long poll took over this one (SVC1012)."""


_session_ids = itertools.count(1)


@dataclass(eq=False, slots=True)
class Session:
    """One WebSocket connection as its channel sees it."""

    #: the connection writes a frame synchronously (see :meth:`ChannelActor._send_frame`):
    #: ``write_now(text, batch)`` is True when the frame is on the wire already, False when
    #: the rest waits for the connection's writer (which reports a batch with ``sent``); it
    #: raises ``trio.WouldBlock`` for a client too slow and ``trio.BrokenResourceError``.
    write_now: Callable[[str, bool], bool]
    fmt: str = "json"
    id: int = field(default_factory=lambda: next(_session_ids))
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    close_code: int | None = None
    close_reason: str = ""

    def close(self, code: int, reason: str) -> None:
        """Ask the connection to close with ``code`` (its tasks are cancelled)."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self.scope.cancel()


@dataclass(frozen=True)
class Deliver:
    notifications: tuple[Notification, ...]


@dataclass(frozen=True)
class Attach:
    session: Session
    reply: Reply[None]


@dataclass(frozen=True)
class Detach:
    session: Session


@dataclass(frozen=True)
class Sent:
    session: Session


@dataclass(frozen=True)
class ClientConnCheck:
    session: Session


@dataclass(frozen=True)
class ClientConnAck:
    session: Session


@dataclass(frozen=True)
class Poll:
    """A long poll; answered with ``(fmt, frame)`` or ``None`` when ``maxWaitTime`` passed."""

    reply: Reply[tuple[str, str] | None]


@dataclass(frozen=True)
class Describe:
    reply: Reply[ChannelView]


@dataclass(frozen=True)
class Refresh:
    lifetime: int
    reply: Reply[int]


@dataclass(frozen=True)
class Close:
    reply: Reply[None]


@dataclass(frozen=True)
class GoingAway:
    """The server is stopping: close the connection (1001), answer the long poll."""


class ChannelActor(Actor):
    kind = "channel"

    def __init__(self, info: ChannelInfo, *, policy: ChannelPolicy, codec: Codec,
                 storage: ActorRef, registry: Registry) -> None:
        self.mailbox_capacity = policy.queue_limit + 64  # type: ignore[misc]
        super().__init__(f"channel:{info.id}")
        self.info = info
        self.policy = policy
        self.codec = codec
        self.storage = storage
        self.registry = registry
        self.queue: deque[Notification] = deque()
        self.admitted = 0
        self.expires_at = trio.current_time() + info.lifetime
        self.session: Session | None = None
        self.in_flight: list[Notification] | None = None
        self.poll: Poll | None = None
        self.poll_deadline = math.inf
        self.next_check_at = math.inf
        self.check_pending = False
        self.gone = False

    # -- admission (called by the callback handler; synchronous, no await) ------------------
    def offer(self, notifications: Sequence[Notification]) -> None:
        """Accept ``notifications`` for delivery or raise MailboxFull / ActorStopped at once."""
        if self.gone:
            raise ActorStopped(self.name)
        if self.admitted + len(notifications) > self.policy.queue_limit:
            raise MailboxFull(f"{self.name}: {self.admitted} notifications waiting")
        if self.idle():  # the hot path: straight to the queue and on to the connection
            self.queue.extend(notifications)
            self.admitted += len(notifications)
            self._pump()
            return
        self.deliver_nowait(Deliver(tuple(notifications)))
        self.admitted += len(notifications)

    def sent(self, session: Session) -> None:
        """The connection's writer wrote the batch in flight (``Sent``, without a hop through
        the mailbox when the actor is idle): the next batch goes out at once."""
        if self.idle():
            self._sent(session)
            self._pump()
            return
        try:
            self.deliver_nowait(Sent(session))
        except ActorError:
            pass  # the batch is put back on Detach: delivered twice rather than lost

    def _sent(self, session: Session) -> None:
        if session is self.session and self.in_flight is not None:
            self.admitted -= len(self.in_flight)
            self.in_flight = None

    # -- life ------------------------------------------------------------------------------
    async def on_start(self) -> None:
        self.registry.register(f"callback:{self.info.callback_id}", self)
        if self.session is not None:  # a restart: the old connection cannot be trusted
            session = self._detach()
            session.close(CLOSE_RESTARTED, "channel restarted")
        if self.poll is not None:
            self.poll.reply.fail(PollReplaced())
            self.poll, self.poll_deadline = None, math.inf

    def next_deadline(self) -> float:
        return min(self.expires_at, self.poll_deadline, self.next_check_at)

    async def on_deadline(self) -> None:
        now = trio.current_time()
        if now >= self.expires_at:
            await self._end(CLOSE_EXPIRED, "channel lifetime expired")
            return
        if self.poll is not None and now >= self.poll_deadline:
            self.poll.reply.send(None)
            self.poll, self.poll_deadline = None, math.inf
        if self.session is not None and now >= self.next_check_at:
            if self.check_pending:
                self._detach().close(CLOSE_UNANSWERED, "connCheck not answered")
            else:
                self._send_control(self.session, self.codec.conn_check(
                    self.session.fmt, self.policy.check_interval, self.info.lifetime))
                self.check_pending = True
                self.next_check_at = now + self.policy.check_interval

    async def handle(self, message: object) -> None:
        if self.gone and not isinstance(message, (Sent, Detach, Deliver)):
            reply = getattr(message, "reply", None)
            if isinstance(reply, Reply):
                reply.fail(ChannelGone(self.info.id))
            return
        match message:
            case Deliver(notifications):
                self.queue.extend(notifications)
            case Attach(session, reply):
                if self.session is not None:
                    self._detach().close(CLOSE_REPLACED, "replaced by a newer connection")
                self.session = session
                self.check_pending = False
                self.next_check_at = trio.current_time() + self.policy.check_interval
                if not reply.send(None):  # the connection gave up waiting: nobody to write to
                    self._detach()
            case Detach(session):
                if session is self.session:
                    self._detach()
            case Sent(session):
                self._sent(session)
            case ClientConnCheck(session):
                self._reset_lifetime()
                self._send_control(session, self.codec.conn_ack(session.fmt, self.info.lifetime))
            case ClientConnAck(session):
                if session is self.session and self.check_pending:
                    self.check_pending = False
                    self._reset_lifetime()
            case Poll():
                self._reset_lifetime()
                if self.poll is not None:
                    self.poll.reply.fail(PollReplaced())
                self.poll = message
                wait = self.info.max_wait_time or 0
                self.poll_deadline = trio.current_time() + wait
            case Describe(reply):
                reply.send(ChannelView(self.info, self.remaining()))
            case Refresh(lifetime, reply):
                await self._refresh(lifetime)
                reply.send(self.remaining())
            case Close(reply):
                await self._end(CLOSE_DELETED, "channel deleted")
                reply.send(None)
            case GoingAway():
                if self.session is not None:
                    self._detach().close(CLOSE_GOING_AWAY, "server shutting down")
                if self.poll is not None:
                    self.poll.reply.send(None)
                    self.poll, self.poll_deadline = None, math.inf
                return  # nothing more goes out
            case _:
                raise UnexpectedMessage(f"{self.name} got {message!r}")
        self._pump()

    # -- delivery --------------------------------------------------------------------------
    def _pump(self) -> None:
        if self.gone or not self.queue:
            return
        if self.poll is not None:
            batch = self._take()
            if self.poll.reply.send((batch[0].fmt, self.codec.batch(batch))):
                self.admitted -= len(batch)
            else:
                self.queue.extendleft(reversed(batch))  # the poller left before the answer
            self.poll, self.poll_deadline = None, math.inf
        elif self.session is not None and self.in_flight is None:
            session = self.session
            while self.queue and self.in_flight is None and self.session is session:
                batch = self._take()
                self.in_flight = batch
                if self._send_frame(session, self.codec.batch(batch), batch=True):
                    self._sent(session)  # written straight to the socket: the next one

    def _take(self) -> list[Notification]:
        """Up to maxNotifications from the head, all of one format (a list has one format)."""
        fmt = self.queue[0].fmt
        batch: list[Notification] = []
        while self.queue and len(batch) < self.info.max_notifications and self.queue[0].fmt == fmt:
            batch.append(self.queue.popleft())
        return batch

    def _send_control(self, session: Session, text: str) -> None:
        self._send_frame(session, text, batch=False)

    def _send_frame(self, session: Session, text: str, *, batch: bool) -> bool:
        """Write a frame to the connection; True if it is on the wire already."""
        try:
            return session.write_now(text, batch)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            if session is self.session:
                self._detach()
            session.close(CLOSE_SLOW, "client too slow")
        return False

    def _detach(self) -> Session:
        """Forget the current connection; its batch in flight goes back to the head."""
        session = self.session
        assert session is not None
        if self.in_flight is not None:
            self.queue.extendleft(reversed(self.in_flight))
            self.in_flight = None
        self.session = None
        self.next_check_at = math.inf
        self.check_pending = False
        return session

    # -- lifetime --------------------------------------------------------------------------
    def remaining(self) -> int:
        return max(0, math.ceil(self.expires_at - trio.current_time()))

    def _reset_lifetime(self) -> None:
        self.expires_at = trio.current_time() + self.info.lifetime

    async def _refresh(self, lifetime: int) -> None:
        self.info = replace(self.info, lifetime=lifetime)
        self._reset_lifetime()
        expires = datetime.now(UTC) + timedelta(seconds=lifetime)
        channel_id = self.info.id

        def save(session: Any) -> None:
            row = session.get(Channel, channel_id)
            if row is not None:
                row.channel_lifetime, row.expires_at = lifetime, expires

        await run_job(self.storage, save)

    async def _end(self, code: int, reason: str) -> None:
        """Deleted or expired: close the connection, end the poll, forget the row, stop."""
        self.gone = True
        if self.session is not None:
            self._detach().close(code, reason)
        if self.poll is not None:
            self.poll.reply.fail(ChannelGone(self.info.id))
            self.poll, self.poll_deadline = None, math.inf
        self.expires_at = math.inf
        channel_id = self.info.id

        def delete(session: Any) -> None:
            row = session.get(Channel, channel_id)
            if row is not None:
                session.delete(row)

        try:
            await run_job(self.storage, delete)
        finally:
            self.registry.unregister(f"callback:{self.info.callback_id}", self)
            self.close_mailbox()

    def snapshot(self) -> dict[str, Any]:
        return {
            **super().snapshot(),
            "channelType": self.info.channel_type,
            "queued": len(self.queue),
            "inFlight": 0 if self.in_flight is None else len(self.in_flight),
            "connected": self.session is not None,
            "polling": self.poll is not None,
            "remainingLifetime": self.remaining(),
        }
