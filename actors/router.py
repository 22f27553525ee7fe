"""The router: finds the channel actor for a channelId or callbackId, starts and stops them."""

from __future__ import annotations

from .actor import UnexpectedMessage
from .parent import ParentActor
from .registry import Registry


class Router(ParentActor):
    """Routes HTTP requests to ``channel:<id>`` actors. Overflow policy: BLOCK."""

    kind = "router"
    mailbox_capacity = 1024

    def __init__(self, registry: Registry, *, name: str = "router") -> None:
        super().__init__(name, registry)

    async def handle(self, message: object) -> None:
        raise UnexpectedMessage(f"{self.name} got {message!r}")
