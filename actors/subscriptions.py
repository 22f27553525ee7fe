"""The subscriptions actor: starts and stops ``subscription:<id>`` actors, restores them at
start-up, and fans the committed changes of a box out to that box's subscriptions.

Messages: BoxChanged, StartSubscription.
Overflow policy: BLOCK — a writer waits for room here. Changes go on to each subscription with
``tell_nowait``: a subscription whose mailbox is full is marked lagging and catches up by
replay, so one slow notifyURL never holds up the writers of other boxes (or its own).

The hot path (DESIGN "actors decide, they do not sit between every byte"): an idle subscription
whose notifyURL is one of this server's callbackURLs takes a change synchronously
(:meth:`SubscriptionActor.offer_live`) — encoded and queued on its channel in this task, with no
wake-up of the subscription. Delivered positions are saved for all subscriptions together,
one transaction every ``SAVE_EVERY`` seconds, not one per subscription.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

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

log = logging.getLogger("tidings.subscriptions")

#: seconds between saves of the delivered positions (index and restartToken)
SAVE_EVERY = 1.0


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
        self.deliver_now = getattr(notify, "now", None)
        #: subscriptions whose delivered position moved since the last save
        self._unsaved: set[SubscriptionActor] = set()

    @asynccontextmanager
    async def children(self) -> AsyncIterator[None]:
        async with super().children(), trio.open_nursery() as nursery:
            nursery.start_soon(self._save_loop)
            yield
            nursery.cancel_scope.cancel()

    async def _save_loop(self) -> None:
        """After a crash or a restart a subscription replays from its saved position, so
        what was not delivered is never skipped; saving late only means reporting again."""
        while True:
            await trio.sleep(SAVE_EVERY)
            if self._unsaved:
                await self.save_positions()

    async def save_positions(self) -> None:
        actors = [a for a in self._unsaved if not a.ended]
        self._unsaved.clear()
        rows = [{"b_id": a.info.id, "b_duration": a.info.duration,
                 "b_index": a.delivered[0], "b_token": str(a.delivered[1])} for a in actors]
        if not rows:
            return
        table = cast(sa.Table, SubscriptionRow.__table__)
        update = sa.update(table).where(table.c.id == sa.bindparam("b_id")).values(
            duration=sa.bindparam("b_duration"), next_index=sa.bindparam("b_index"),
            restart_token=sa.bindparam("b_token"))
        try:  # one statement, many rows (a row deleted meanwhile is simply not there)
            await run_job(self.storage, lambda s: s.connection().execute(update, rows))
        except Exception:  # the database is away: try again next time, keep delivering
            log.exception("saving %d subscription positions failed", len(rows))
            self._unsaved.update(actors)

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
                        if actor.offer_live(committed):
                            continue
                    except Exception:  # a bug there is the subscription's: it meets it again
                        log.exception("%s: fast path failed", actor.name)
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
                                  on_end=self._forget, deliver_now=self.deliver_now,
                                  on_delivered=self._unsaved.add)
        self.by_box[info.box_pk][info.id] = actor
        await self.supervisor.start_child(ChildSpec(actor, Restart.TRANSIENT, grace=2.0))
        return actor

    def _forget(self, actor: SubscriptionActor) -> None:
        self.by_box.get(actor.info.box_pk, {}).pop(actor.info.id, None)

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "subscriptions": len(self.supervisor)}

