"""The subscriptions actor: starts and stops ``subscription:<id>`` actors and fans the changes
of a box out to them."""

from __future__ import annotations

from .actor import UnexpectedMessage
from .parent import ParentActor
from .registry import Registry


class Subscriptions(ParentActor):
    """Owner of the ``subscription:<id>`` actors. Overflow policy: BLOCK."""

    kind = "subscriptions"
    mailbox_capacity = 1024

    def __init__(self, registry: Registry, *, name: str = "subscriptions") -> None:
        super().__init__(name, registry)

    async def handle(self, message: object) -> None:
        raise UnexpectedMessage(f"{self.name} got {message!r}")
