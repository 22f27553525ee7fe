"""The message store's actors for tests: storage, subscriptions and the store's write path in
one supervised tree, plus a recording encoder and a client-side mirror of a box."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import trio

from actors import ChildSpec, Registry, Supervisor
from actors.storage import StorageActor
from actors.store import Store
from actors.subscription import SubscriptionInfo
from actors.subscriptions import Subscriptions
from storage import Database, Folder, StoredObject
from storage.nms import ItemState, Position


@dataclass
class StoreWorld:
    storage: StorageActor
    subscriptions: Subscriptions
    store: Store
    root: Supervisor


@asynccontextmanager
async def open_store_world(
    database: Database,
    notify: Callable[[str, str, str], Awaitable[None]],
    *,
    storage_class: type[StorageActor] = StorageActor,
    subscriptions_class: type[Subscriptions] = Subscriptions,
) -> AsyncIterator[StoreWorld]:
    """Storage and subscriptions under one root, delivering through ``notify``."""
    storage = storage_class(database)
    subscriptions = subscriptions_class(Registry(), storage.ref, encoder=RecordingEncoder(),
                                        notify=notify)
    root = Supervisor("root", [ChildSpec(storage), ChildSpec(subscriptions)])
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        yield StoreWorld(storage, subscriptions, Store(storage.ref, subscriptions.ref), root)
        root.close_mailbox()


class RecordingEncoder:
    """Event lists as plain JSON of the item states (the wire format is tested elsewhere)."""

    def event_list(self, info: SubscriptionInfo, events: Sequence[ItemState] | None,
                   index: int, token: Position) -> str:
        return json.dumps({"index": index, "token": str(token), "events": [
            {"kind": e.kind, "id": e.id, "seq": e.last_mod_seq, "deleted": e.deleted,
             "parent": e.parent_id, "flags": sorted(e.flags), "name": e.name}
            for e in events or ()]})


def live_state(database: Database) -> dict[str, tuple[Any, ...]]:
    """What a client mirrors: live objects and folders with the state a notification carries."""
    def read(session: Any) -> dict[str, tuple[Any, ...]]:
        state: dict[str, tuple[Any, ...]] = {}
        for obj in session.scalars(sa.select(StoredObject).where(StoredObject.deleted.is_(False))):
            state[obj.id] = ("object", obj.folder_id, tuple(sorted(obj.flags)), obj.last_mod_seq)
        for folder in session.scalars(sa.select(Folder).where(Folder.deleted.is_(False))):
            state[folder.id] = ("folder", folder.parent_id, folder.name, folder.last_mod_seq)
        return state
    return database.run(read)


def apply_events(known: dict[str, tuple[Any, ...]],
                 delivered: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """A client's mirror: what it knew, then each event whose lastModSeq is newer (§5.1.4.4)."""
    mirror = dict(known)
    versions = {k: v[-1] for k, v in known.items()}
    for d in delivered:
        for e in d["events"]:
            if e["seq"] <= versions.get(e["id"], 0):
                continue
            versions[e["id"]] = e["seq"]
            if e["deleted"]:
                mirror.pop(e["id"], None)
            elif e["kind"] == "object":
                mirror[e["id"]] = ("object", e["parent"], tuple(e["flags"]), e["seq"])
            else:
                mirror[e["id"]] = ("folder", e["parent"], e["name"], e["seq"])
    return mirror
