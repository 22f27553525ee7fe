"""Assembles the actor tree and runs it: storage → router → subscriptions → http."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio
from hypercorn.config import Config

from actors import ActorRef, ChildSpec, Registry, Supervisor
from actors.channel import ChannelPolicy
from actors.router import Router
from actors.storage import StorageActor
from actors.store import Store
from actors.subscriptions import Subscriptions
from storage import DEFAULT_DATABASE_URL, Database

from .server import HttpServer

log = logging.getLogger("tidings")

#: Seconds each actor gets to finish by itself at shutdown before it is cancelled.
SHUTDOWN_GRACE = 5.0


@dataclass
class Settings:
    """Everything ``tidings serve`` can be told."""

    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = DEFAULT_DATABASE_URL
    #: base of every URL handed out; default: the address the server is bound to
    public_url: str | None = None
    channel_policy: ChannelPolicy = field(default_factory=ChannelPolicy)
    #: "all" (store and channels in one process), "store" or "channels"
    role: str = "all"


@dataclass
class Services:
    """What the HTTP layer talks to. Built once per server."""

    settings: Settings
    registry: Registry
    database: Database
    root: Supervisor
    storage: ActorRef
    router: Router
    subscriptions: Subscriptions
    store: Store
    bound_urls: list[str] = field(default_factory=list)

    @property
    def public_url(self) -> str:
        return self.base_url(self.settings, self.bound_urls)

    @staticmethod
    def base_url(settings: Settings, bound_urls: list[str]) -> str:
        if settings.public_url:
            return settings.public_url.rstrip("/")
        if bound_urls:
            return bound_urls[0]
        return f"http://{settings.host}:{settings.port}"


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None
    config.backlog = 1024  # bursts of (re)connecting clients wait in the kernel, not refused
    config.graceful_timeout = SHUTDOWN_GRACE
    return config


@asynccontextmanager
async def open_tidings(settings: Settings) -> AsyncIterator[Services]:
    """Run a whole server (actors and HTTP) for the body of the ``async with``.

    On exit every actor is stopped in reverse start order within its grace deadline.
    """
    from .app import create_app  # the app imports this module for Services
    from .codecs.nms import EventListEncoder, Urls
    from .codecs.notifications import NotificationCodec
    from .notify import NotifyUrlDelivery

    database = Database(settings.database_url)
    await trio.to_thread.run_sync(database.migrate)
    registry = Registry()
    storage = StorageActor(database)
    router = Router(registry, storage.ref, codec=NotificationCodec(),
                    policy=settings.channel_policy)
    bound: list[str] = []

    def public_url() -> str:
        return Services.base_url(settings, bound)

    delivery = NotifyUrlDelivery(router, public_url)
    subscriptions = Subscriptions(registry, storage.ref,
                                  encoder=EventListEncoder(Urls(public_url)), notify=delivery)
    root = Supervisor("root", registry=registry, intensity=3, period=30.0)
    services = Services(settings, registry, database, root, storage.ref, router, subscriptions,
                        store=Store(storage.ref, subscriptions.ref), bound_urls=bound)
    from .fast import FastPaths

    # the hot requests, straight on the socket
    intercept = FastPaths(router if settings.role in ("all", "channels") else None,
                          store=(services.store, Urls(public_url))
                          if settings.role in ("all", "store") else None,
                          keep_alive=hypercorn_config(settings).keep_alive_timeout)

    def stopping() -> None:
        router.going_away()  # WebSockets close with 1001, long polls are answered
        intercept.stopping()  # idle keep-alive connections close

    http = HttpServer(create_app(services), hypercorn_config(settings),
                      on_bound=services.bound_urls.extend, on_stopping=stopping,
                      intercept=intercept)
    for actor in (storage, router, subscriptions, http):
        root.add(ChildSpec(actor, grace=SHUTDOWN_GRACE))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(root.run)
            log.info("Tidings listening on %s (public URL %s)", services.bound_urls,
                     services.public_url)
            yield services
            root.close_mailbox()
    finally:
        await delivery.aclose()
        database.dispose()

