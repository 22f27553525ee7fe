"""The message store's write path: the requests' units of work, committed, then the committed
changes go to the subscriptions actor.

Writes to one box are serialised by a per-box lock held across the transaction and the
hand-off, so the subscriptions see a box's changes in sequence order.

Group commit: the writers that queue for a box while a transaction runs are committed together
in the next one (each unit of work still gets its own changes, sequence numbers and
``BoxChanged``, in arrival order), so a busy box costs one commit per batch, not per request.
If any unit in a batch fails, the batch is rolled back and each unit runs alone, so one bad
request never fails the others.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import trio
from sqlalchemy.orm import Session

from storage.nms import BoxWork, Committed, open_box

from .actor import ActorRef
from .storage import run_job
from .subscriptions import BoxChanged

T = TypeVar("T")


@dataclass(eq=False)
class _Write(Generic[T]):
    work: Callable[[BoxWork], T]
    done: bool = False
    result: Any = None
    error: BaseException | None = None


@dataclass(eq=False)
class _Box:
    """A box being written: its lock and the writers waiting for the next transaction."""

    lock: trio.Lock = field(default_factory=trio.Lock)
    waiting: list[_Write[Any]] = field(default_factory=list)


class Store:
    """Runs units of work on boxes and publishes what they changed."""

    def __init__(self, storage: ActorRef, subscriptions: ActorRef) -> None:
        self.storage = storage
        self.subscriptions = subscriptions
        # a box's entry lives while a write holds it: no entry per box ever written
        self._boxes: weakref.WeakValueDictionary[tuple[str, str], _Box] = (
            weakref.WeakValueDictionary())

    async def write(self, store: str, box: str, work: Callable[[BoxWork], T]) -> T:
        """Run ``work`` on the box in a transaction; publish its changes after the commit."""
        entry = self._boxes.get((store, box))
        if entry is None:
            entry = self._boxes[(store, box)] = _Box()
        write = _Write(work)
        entry.waiting.append(write)
        try:
            async with entry.lock:
                if not write.done:  # nobody took it along: take everyone waiting
                    batch, entry.waiting = entry.waiting, []
                    await self._commit(store, box, batch)
        except BaseException:
            if write in entry.waiting:  # cancelled before anyone took it: it never runs
                entry.waiting.remove(write)
            raise
        if write.error is not None:
            raise write.error
        return cast(T, write.result)

    async def _commit(self, store: str, box: str, batch: list[_Write[Any]]) -> None:
        def job(session: Session) -> list[tuple[Any, Committed]]:
            unit = open_box(session, store, box)
            assert unit is not None
            out = []
            for write in batch:
                result = write.work(unit)
                out.append((result, unit.committed()))
                unit.changes = []
            return out  # one flush for the batch at the commit (inserts go out together)

        try:
            outcomes = await run_job(self.storage, job)
        except Exception as error:
            if len(batch) > 1:  # rolled back: each alone, so only the failing one fails
                for write in batch:
                    await self._commit(store, box, [write])
                return
            batch[0].error, batch[0].done = error, True
            return
        for write, (result, committed) in zip(batch, outcomes, strict=True):
            if committed.changes:
                await self.subscriptions.tell(BoxChanged(committed))
            write.result, write.done = result, True

    async def read(self, store: str, box: str, work: Callable[[BoxWork | None], T]) -> T:
        """Run ``work`` on the box (``None`` if it was never used) without changing it."""
        return await run_job(self.storage, lambda s: work(open_box(s, store, box, create=False)))
