"""The actor: a bounded mailbox, a run loop, ``tell`` and ``ask``.

An :class:`Actor` object outlives its run loop. Its supervisor calls :meth:`Actor.run` once per
incarnation: when one crashes, the next one reads from the *same* mailbox, so references held by
other actors stay valid and messages already queued are not lost. Only the message being handled
when the crash happened is dropped (counted in ``failed``; an ``ask`` gets :class:`ActorCrashed`).

Graceful stop is closing the mailbox's send side: the run loop handles what is queued, then ends.
"""

from __future__ import annotations

import enum
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import trio

T = TypeVar("T")

#: The default time an ``ask`` waits for its answer; callers that know better pass their own.
DEFAULT_ASK_TIMEOUT = 5.0


class OverflowPolicy(enum.Enum):
    """What ``tell`` does when the mailbox is full."""

    #: The sender waits until there is room (backpressure).
    BLOCK = "block"
    #: ``tell`` raises :class:`MailboxFull` at once; the caller must handle it (e.g. answer 503).
    REFUSE = "refuse"


class ActorError(Exception):
    """Base of the runtime's own errors."""


class MailboxFull(ActorError):
    """The actor refuses the message: its mailbox is full (``REFUSE`` policy)."""


class ActorStopped(ActorError):
    """The actor no longer takes messages."""


class AskTimeout(ActorError):
    """No answer came within the ``ask`` timeout."""


class ActorCrashed(ActorError):
    """The actor crashed while handling the request."""


class UnexpectedMessage(ActorError):
    """A message outside the actor's declared set; raised by ``handle`` implementations."""


class ActorState(enum.Enum):
    """Where an actor is in its life, as shown by ``/stats``."""

    NEW = "new"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


def queued(channel: trio.MemorySendChannel[Any]) -> int:
    """Items waiting in a memory channel's buffer. Read from trio's own queue (a private
    attribute, read here only): ``statistics()`` builds an object, and the hot path asks this
    once per delivery."""
    return len(channel._state.data)


@dataclass(frozen=True, eq=False)
class Reply(Generic[T]):
    """The answer slot carried by a request message. Exactly one answer is kept."""

    _send: trio.MemorySendChannel[tuple[bool, Any]]

    def send(self, value: T) -> bool:
        """Answer the request with ``value``; ``False`` if the asker is no longer waiting."""
        return self._put(True, value)

    def fail(self, error: BaseException) -> bool:
        """Answer the request with an error, raised in the asker."""
        return self._put(False, error)

    def _put(self, ok: bool, value: Any) -> bool:
        try:
            self._send.send_nowait((ok, value))
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            return False  # already answered, or the asker gave up (timeout, cancelled)
        return True


@dataclass
class ActorStats:
    """Counters kept for every actor and shown by ``/stats``."""

    received: int = 0
    handled: int = 0
    failed: int = 0
    restarts: int = 0
    last_error: tuple[str, str] | None = None
    started_at: float | None = None


@dataclass
class ActorRef:
    """What other actors hold to talk to an actor: ``tell`` and ``ask``."""

    actor: Actor = field(repr=False)

    @property
    def name(self) -> str:
        return self.actor.name

    async def tell(self, message: object) -> None:
        """Send ``message``; with ``REFUSE`` raises :class:`MailboxFull` instead of waiting."""
        await self.actor.deliver(message)

    def tell_nowait(self, message: object) -> None:
        """Send ``message`` or raise :class:`MailboxFull` / :class:`ActorStopped` at once."""
        self.actor.deliver_nowait(message)

    async def ask(
        self,
        make: Callable[[Reply[Any]], object],
        timeout: float = DEFAULT_ASK_TIMEOUT,  # noqa: ASYNC109 - part of the request, as OTP's call
    ) -> Any:
        """Send ``make(reply)`` and wait for the answer.

        Raises:
            AskTimeout: no answer within ``timeout`` seconds (waiting for mailbox room included).
            ActorCrashed: the actor crashed while handling the request.
            Exception: whatever the actor answered with ``reply.fail``.
        """
        send, receive = trio.open_memory_channel[tuple[bool, Any]](1)
        with send, receive:
            with trio.move_on_after(timeout) as scope:
                await self.tell(make(Reply(send)))
                ok, value = await receive.receive()
            if scope.cancelled_caught:
                raise AskTimeout(f"{self.name} did not answer within {timeout} s")
        if not ok:
            raise value
        return value


class Actor:
    """Base class: subclasses set ``kind``, ``mailbox_capacity``, ``overflow`` and ``handle``.

    Subclasses may override :meth:`on_start` (called at the start of every incarnation, to
    (re)load state) and :meth:`children` (an async context manager that runs child supervisors
    beside the run loop).
    """

    kind: ClassVar[str] = "actor"
    mailbox_capacity: ClassVar[int] = 64
    overflow: ClassVar[OverflowPolicy] = OverflowPolicy.BLOCK

    def __init__(self, name: str) -> None:
        if self.mailbox_capacity <= 0 or math.isinf(self.mailbox_capacity):
            raise ValueError("a mailbox is bounded and holds at least one message")
        self.name = name
        self.state = ActorState.NEW
        self.stats = ActorStats()
        self._send, self._receive = trio.open_memory_channel[object](self.mailbox_capacity)
        self.ref = ActorRef(self)
        #: inside ``handle`` or ``on_deadline`` (which may be suspended at an ``await``)
        self.busy = False

    # -- mailbox ---------------------------------------------------------------------------
    async def deliver(self, message: object) -> None:
        if self.overflow is OverflowPolicy.REFUSE:
            self.deliver_nowait(message)
            return
        try:
            await self._send.send(message)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ActorStopped(f"{self.name} is stopped") from None

    def deliver_nowait(self, message: object) -> None:
        try:
            self._send.send_nowait(message)
        except trio.WouldBlock:
            raise MailboxFull(f"{self.name}: mailbox full ({self.mailbox_capacity})") from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ActorStopped(f"{self.name} is stopped") from None

    def close_mailbox(self) -> None:
        """Graceful stop: no new messages; the run loop ends once the queue is drained."""
        self._send.close()

    @property
    def mailbox_depth(self) -> int:
        return self._send.statistics().current_buffer_used

    def idle(self) -> bool:
        """Running, not inside a handler and nothing in the mailbox: a synchronous fast path
        may act on this actor's state now without overtaking a queued message (trio runs one
        task at a time, so nothing else runs until the caller's next ``await``)."""
        return self.state is ActorState.RUNNING and not self.busy and not queued(self._send)

    # -- life ------------------------------------------------------------------------------
    async def on_start(self) -> None:
        """(Re)load state at the start of an incarnation. Default: nothing."""

    @asynccontextmanager
    async def children(self) -> AsyncIterator[None]:
        """Run child supervisors beside the loop. Default: none."""
        yield

    async def on_started(self) -> None:
        """Called once :meth:`children` run, before the first message. Default: nothing."""

    async def handle(self, message: object) -> None:
        """Handle one message. Must end in ``raise UnexpectedMessage`` for unknown ones."""
        raise UnexpectedMessage(f"{self.name} got {message!r}")

    async def run(
        self, *, task_status: trio.TaskStatus[ActorRef] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """One incarnation: start, report the ref, handle messages until the mailbox closes."""
        await self.on_start()
        async with self.children():
            await self.on_started()
            self.state = ActorState.RUNNING
            self.busy = False
            self.stats.started_at = trio.current_time()
            task_status.started(self.ref)
            await self._loop()

    def next_deadline(self) -> float:
        """When :meth:`on_deadline` is due (``trio.current_time()`` scale). Default: never."""
        return math.inf

    async def on_deadline(self) -> None:
        """Called from the run loop once :meth:`next_deadline` has passed (timers)."""

    async def _loop(self) -> None:
        while True:
            with trio.move_on_at(self.next_deadline()) as timer:
                try:
                    message = await self._receive.receive()
                except trio.EndOfChannel:
                    return
            self.busy = True
            if timer.cancelled_caught:
                await self.on_deadline()
                self.busy = False
                continue
            self.stats.received += 1
            try:
                await self.handle(message)
            except Exception as error:
                self.stats.failed += 1
                reply = getattr(message, "reply", None)
                if isinstance(reply, Reply):
                    reply.fail(ActorCrashed(f"{self.name} crashed: {error!r}"))
                raise
            finally:
                self.busy = False
                # waiting for the next one keeps nothing of this message (an idle channel kept
                # its Attach, and with it the reply's memory channel: 1.5 KB per connection)
                del message
            self.stats.handled += 1

    # -- statistics ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """This actor's statistics and its children, as plain data."""
        started = self.stats.started_at
        error = self.stats.last_error
        return {
            "name": self.name,
            "kind": self.kind,
            "state": self.state.value,
            "mailbox": {"depth": self.mailbox_depth, "capacity": self.mailbox_capacity,
                        "overflow": self.overflow.value},
            "received": self.stats.received,
            "handled": self.stats.handled,
            "failed": self.stats.failed,
            "restarts": self.stats.restarts,
            "lastError": None if error is None else {"type": error[0], "message": error[1]},
            "uptime": 0.0 if started is None else round(trio.current_time() - started, 3),
            "children": self.child_snapshots(),
        }

    def child_snapshots(self) -> list[dict[str, Any]]:
        """Snapshots of the actors this one supervises. Default: none."""
        return []
