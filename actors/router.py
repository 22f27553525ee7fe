"""The router: creates channels (row + actor), finds them, and restores them at start-up.

Messages: CreateChannel (answers ``(ChannelView, created)``).
Overflow policy: BLOCK — creation requests wait for room.
Lookups (``channel_for``, ``channel_by_callback``, ``channels_of``) are synchronous reads of the
registry, so the hot path (callback → channel) does not queue behind channel creation.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import trio

from storage import Channel

from .actor import ActorError, ActorRef, Reply, UnexpectedMessage
from .channel import ChannelActor, ChannelInfo, ChannelPolicy, ChannelView, Codec, GoingAway
from .parent import ParentActor
from .registry import Registry
from .storage import run_job
from .supervisor import ChildSpec, Restart


@dataclass(frozen=True)
class ChannelRequest:
    """A validated creation request (the HTTP layer has applied the policy)."""

    user_id: str
    channel_type: str
    max_notifications: int
    lifetime: int
    max_wait_time: int | None
    client_correlator: str | None
    application_tag: str | None


@dataclass(frozen=True)
class CreateChannel:
    request: ChannelRequest
    reply: Reply[tuple[ChannelView, bool]]


def _info(row: Channel, max_wait_time: int | None = None) -> ChannelInfo:
    return ChannelInfo(
        id=row.id, user_id=row.user_id, callback_id=row.callback_id,
        channel_type=row.channel_type, max_notifications=row.max_notifications,
        lifetime=row.channel_lifetime, max_wait_time=max_wait_time,
        client_correlator=row.client_correlator, application_tag=row.application_tag,
    )


class Router(ParentActor):
    """Owner of the ``channel:<id>`` actors."""

    kind = "router"
    mailbox_capacity = 1024

    def __init__(self, registry: Registry, storage: ActorRef, *, codec: Codec,
                 policy: ChannelPolicy | None = None, name: str = "router") -> None:
        super().__init__(name, registry)
        self.storage = storage
        self.codec = codec
        self.policy = policy or ChannelPolicy()
        self._restored = False

    # -- lookups ---------------------------------------------------------------------------
    def channel_for(self, user_id: str, channel_id: str) -> ChannelActor | None:
        """The live channel ``channel_id`` if it belongs to ``user_id``."""
        actor = self.registry.lookup(f"channel:{channel_id}")
        if isinstance(actor, ChannelActor) and not actor.gone and actor.info.user_id == user_id:
            return actor
        return None

    def channel_by_callback(self, callback_id: str) -> ChannelActor | None:
        actor = self.registry.lookup(f"callback:{callback_id}")
        return actor if isinstance(actor, ChannelActor) and not actor.gone else None

    def channels_of(self, user_id: str) -> list[ChannelView]:
        """The user's live channels, oldest first."""
        return [ChannelView(actor.info, actor.remaining()) for actor in self.supervisor.targets()
                if isinstance(actor, ChannelActor) and not actor.gone
                and actor.info.user_id == user_id]

    def going_away(self) -> None:
        """Tell every channel the server is stopping, so that its connection closes now rather
        than when the HTTP server's grace period runs out."""
        for actor in self.supervisor.targets():
            if isinstance(actor, ChannelActor):
                try:
                    actor.ref.tell_nowait(GoingAway())
                except ActorError:
                    pass  # full or stopped: the grace period still bounds the wait

    # -- life ------------------------------------------------------------------------------
    async def on_started(self) -> None:
        """Bring back the channels that outlived a previous process (first start only)."""
        if self._restored:
            return
        now = datetime.now(UTC)
        rows = await run_job(self.storage, lambda s: list(s.scalars(
            sa.select(Channel).where(Channel.expires_at > now).order_by(Channel.created_at))))
        for row in rows:
            wait = self.policy.default_max_wait if row.channel_type == "LongPolling" else None
            actor = await self._start_channel(_info(row, wait))
            remaining = (_aware(row.expires_at) - now).total_seconds()
            actor.expires_at = trio.current_time() + max(1.0, remaining)
        self._restored = True

    async def handle(self, message: object) -> None:
        match message:
            case CreateChannel(request, reply):
                try:
                    reply.send(await self._create(request))
                except Exception as error:  # the caller's failure, not the router's
                    reply.fail(error)
            case _:
                raise UnexpectedMessage(f"{self.name} got {message!r}")

    async def _create(self, request: ChannelRequest) -> tuple[ChannelView, bool]:
        if request.client_correlator is not None:
            existing = await run_job(self.storage, _find_correlated(request))
            if existing is not None:
                actor = self.channel_for(request.user_id, existing)
                if actor is not None:
                    return ChannelView(actor.info, actor.remaining()), False
                await run_job(self.storage, _delete_row(existing))  # its actor is gone
        now = datetime.now(UTC)
        row = Channel(
            id=secrets.token_hex(8), user_id=request.user_id,
            callback_id=secrets.token_urlsafe(24), channel_type=request.channel_type,
            client_correlator=request.client_correlator, application_tag=request.application_tag,
            max_notifications=request.max_notifications, channel_lifetime=request.lifetime,
            created_at=now, expires_at=now + timedelta(seconds=request.lifetime),
        )
        await run_job(self.storage, lambda s: s.add(row))
        actor = await self._start_channel(_info(row, request.max_wait_time))
        return ChannelView(actor.info, actor.remaining()), True

    async def _start_channel(self, info: ChannelInfo) -> ChannelActor:
        actor = ChannelActor(info, policy=self.policy, codec=self.codec, storage=self.storage,
                             registry=self.registry)
        await self.supervisor.start_child(ChildSpec(actor, Restart.TRANSIENT, grace=1.0))
        return actor

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "channels": len(self.supervisor)}


def _find_correlated(request: ChannelRequest) -> Callable[[Any], str | None]:
    def find(session: Any) -> str | None:
        found: str | None = session.scalar(sa.select(Channel.id).where(
            Channel.user_id == request.user_id,
            Channel.client_correlator == request.client_correlator))
        return found
    return find


def _delete_row(channel_id: str) -> Callable[[Any], None]:
    def delete(session: Any) -> None:
        session.execute(sa.delete(Channel).where(Channel.id == channel_id))
    return delete


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
