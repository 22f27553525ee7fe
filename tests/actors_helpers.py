"""A small test actor with a closed message set, used by the runtime tests."""

from __future__ import annotations

from dataclasses import dataclass

import trio

from actors import Actor, OverflowPolicy, Reply, UnexpectedMessage


@dataclass(frozen=True)
class Add:
    amount: int


@dataclass(frozen=True)
class Total:
    reply: Reply[int]


@dataclass(frozen=True)
class Crash:
    reason: str = "boom"


@dataclass(frozen=True)
class Explode:
    """A request whose handling crashes the actor."""

    reply: Reply[int]


@dataclass(frozen=True)
class Hang:
    """Handled by sleeping forever: the actor never replies and never drains."""

    reply: Reply[int] | None = None


@dataclass(frozen=True)
class Finish:
    """The actor ends its incarnation normally."""


class _Finished(Exception):
    pass


class Counter(Actor):
    """Sums ``Add`` messages. Its total is volatile: a new incarnation starts from zero."""

    kind = "counter"
    mailbox_capacity = 4

    def __init__(self, name: str, journal: list[tuple[str, str, float]] | None = None) -> None:
        super().__init__(name)
        self.total = 0
        self.journal = journal if journal is not None else []

    async def on_start(self) -> None:
        self.total = 0
        self.journal.append((self.name, "start", trio.current_time()))

    async def run(self, *, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await super().run(task_status=task_status)
        except _Finished:
            pass
        finally:
            self.journal.append((self.name, "end", trio.current_time()))

    async def handle(self, message: object) -> None:
        match message:
            case Add(amount):
                self.total += amount
            case Total(reply):
                reply.send(self.total)
            case Crash(reason):
                raise RuntimeError(reason)
            case Explode():
                raise RuntimeError("exploded")
            case Hang():
                await trio.sleep_forever()
            case Finish():
                raise _Finished
            case _:
                raise UnexpectedMessage(f"{self.name} got {message!r}")


class RefusingCounter(Counter):
    kind = "refusing-counter"
    overflow = OverflowPolicy.REFUSE


def starts(journal: list[tuple[str, str, float]], name: str) -> list[float]:
    return [t for n, event, t in journal if n == name and event == "start"]
