"""The message store's write path: one transaction per request, then the committed changes go
to the subscriptions actor.

Writes to one box are serialised by a per-box lock held across the transaction and the
hand-off, so the subscriptions see a box's changes in sequence order.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import trio
from sqlalchemy.orm import Session

from storage.nms import BoxWork, open_box

from .actor import ActorRef
from .storage import run_job
from .subscriptions import BoxChanged

T = TypeVar("T")


class Store:
    """Runs units of work on boxes and publishes what they changed."""

    def __init__(self, storage: ActorRef, subscriptions: ActorRef) -> None:
        self.storage = storage
        self.subscriptions = subscriptions
        # a box's lock lives while a write holds it: no entry per box ever written
        self._locks: weakref.WeakValueDictionary[tuple[str, str], trio.Lock] = (
            weakref.WeakValueDictionary())

    async def write(self, store: str, box: str, work: Callable[[BoxWork], T]) -> T:
        """Run ``work`` on the box in one transaction; publish its changes after the commit."""
        lock = self._locks.get((store, box))
        if lock is None:
            lock = self._locks[(store, box)] = trio.Lock()
        async with lock:
            def job(session: Session) -> tuple[T, Any]:
                unit = open_box(session, store, box)
                assert unit is not None
                result = work(unit)
                session.flush()
                return result, unit.committed()

            result, committed = await run_job(self.storage, job)
            if committed.changes:
                await self.subscriptions.tell(BoxChanged(committed))
            return result

    async def read(self, store: str, box: str, work: Callable[[BoxWork | None], T]) -> T:
        """Run ``work`` on the box (``None`` if it was never used) without changing it."""
        return await run_job(self.storage, lambda s: work(open_box(s, store, box, create=False)))
