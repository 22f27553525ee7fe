"""The subscriptions actor: starts and stops ``subscription:<id>`` actors, restores them at
start-up, and fans the committed changes of a box out to that box's subscriptions.

Messages: BoxChanged, StartSubscription.
Overflow policy: BLOCK — a writer waits for room here. Changes go on to each subscription with
``tell_nowait``: a subscription whose mailbox is full is marked lagging and catches up by
replay, so one slow notifyURL never holds up the writers of other boxes (or its own).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import trio

from storage import Box
from storage import Subscription as SubscriptionRow
from storage.nms import Committed, Position
from storage.search import from_json

from .actor import ActorRef, ActorStopped, MailboxFull, Reply, UnexpectedMessage
from .parent import ParentActor
from .registry import Registry
from .storage import run_job
from .subscription import (
    Changes,
    Deliver,
    EventEncoder,
    SubscriptionActor,
    SubscriptionInfo,
)
from .supervisor import ChildSpec, Restart


@dataclass(frozen=True)
class BoxChanged:
    committed: Committed


@dataclass(frozen=True)
class StartSubscription:
    info: SubscriptionInfo
    start: Position
    next_index: int
    replay_from: Position | None
    reply: Reply[SubscriptionActor]


class Subscriptions(ParentActor):
    """Owner of the ``subscription:<id>`` actors."""

    kind = "subscriptions"
    mailbox_capacity = 1024

    def __init__(self, registry: Registry, storage: ActorRef, *, encoder: EventEncoder,
                 notify: Deliver, name: str = "subscriptions") -> None:
        super().__init__(name, registry)
        self.storage = storage
        self.encoder = encoder
        self.notify = notify
        self.by_box: dict[int, dict[str, SubscriptionActor]] = defaultdict(dict)
        self._restored = False

    def subscription(self, store: str, box: str, subscription_id: str) -> SubscriptionActor | None:
        actor = self.registry.lookup(f"subscription:{subscription_id}")
        if (isinstance(actor, SubscriptionActor) and not actor.ended
                and (actor.info.store, actor.info.box) == (store, box)):
            return actor
        return None

    def of_box(self, box_pk: int) -> list[SubscriptionActor]:
        return [a for a in self.by_box.get(box_pk, {}).values() if not a.ended]

    async def on_started(self) -> None:
        if self._restored:
            return
        now = datetime.now(UTC)
        rows = await run_job(self.storage, lambda s: list(s.execute(
            sa.select(SubscriptionRow, Box.store_name, Box.box_id)
            .join(Box, Box.pk == SubscriptionRow.box_pk)
            .where(SubscriptionRow.expires_at > now))))
        for row, store, box in rows:
            stored = row.filter or {}
            info = SubscriptionInfo(row.id, store, box, row.box_pk, row.notify_url,
                                    row.callback_data, row.notification_format, row.duration,
                                    row.client_correlator,
                                    filter=from_json(stored) if stored.get("criterion") else None,
                                    created_after=int(stored.get("createdAfter", 0)))
            # replay from what was delivered: changes made while the server was down follow
            saved = Position.parse(row.restart_token)
            actor = await self._start(info, saved, row.next_index, saved)
            expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(
                tzinfo=UTC)
            actor.expires_at = trio.current_time() + max(1.0, (expires - now).total_seconds())
        self._restored = True

    async def handle(self, message: object) -> None:
        match message:
            case BoxChanged(committed):
                for actor in self.of_box(committed.box_pk):
                    try:
                        actor.ref.tell_nowait(Changes(committed))
                    except MailboxFull:
                        actor.mark_lagging()  # it catches up by replay; writers never wait
                    except ActorStopped:
                        pass  # ended meanwhile
            case StartSubscription(info, start, next_index, replay_from, reply):
                try:
                    reply.send(await self._start(info, start, next_index, replay_from))
                except Exception as error:  # the caller's failure
                    reply.fail(error)
            case _:
                raise UnexpectedMessage(f"{self.name} got {message!r}")

    async def _start(self, info: SubscriptionInfo, start: Position, next_index: int,
                     replay_from: Position | None) -> SubscriptionActor:
        actor = SubscriptionActor(info, start=start, next_index=next_index,
                                  replay_from=replay_from, storage=self.storage,
                                  encoder=self.encoder, notify=self.notify,
                                  on_end=self._forget)
        self.by_box[info.box_pk][info.id] = actor
        await self.supervisor.start_child(ChildSpec(actor, Restart.TRANSIENT, grace=2.0))
        return actor

    def _forget(self, actor: SubscriptionActor) -> None:
        self.by_box.get(actor.info.box_pk, {}).pop(actor.info.id, None)

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "subscriptions": len(self.supervisor)}

