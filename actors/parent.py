"""An actor that owns a dynamic supervisor of its children (the router, the subscriptions)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from .actor import Actor
from .registry import Registry
from .supervisor import Supervisor


class ParentActor(Actor):
    """An actor whose children run under ``self.supervisor``, beside its run loop.

    The supervisor gives up on one child that crashes too often without touching the others
    (``escalate=False``): one bad channel must not take its thousands of siblings down.
    """

    def __init__(self, name: str, registry: Registry, *, intensity: int = 3,
                 period: float = 10.0) -> None:
        super().__init__(name)
        self.registry = registry
        self.supervisor = Supervisor(f"{name}-supervisor", intensity=intensity, period=period,
                                     escalate=False, registry=registry)

    @asynccontextmanager
    async def children(self) -> AsyncIterator[None]:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.supervisor.run)
            yield
            self.supervisor.close_mailbox()

    def child_snapshots(self) -> list[dict[str, Any]]:
        return self.supervisor.child_snapshots()
