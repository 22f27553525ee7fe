"""NMS representations (objects, flags, subscriptions, event lists) as Common-JSON dicts, and
the ``nmsEventList`` encoder the subscription actors use. Numbers stay JSON numbers here, as
in the NMS spec's Appendix D."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from actors.subscription import SubscriptionInfo, SubscriptionView
from storage.nms import ItemState, Position
from storage.search import to_json

from . import dump_json
from .xml import build, to_xml_bytes

NMS_NS = "urn:oma:xml:rest:netapi:nms:1"


@lru_cache(maxsize=4096)
def _box_path(store: str, box: str) -> str:
    return f"{quote(store, safe='')}/{quote(box, safe='')}"


class Urls:
    """Every URL the store hands out, from the public base (known once the server is bound)."""

    def __init__(self, public_url: Callable[[], str]) -> None:
        self.public_url = public_url

    def box(self, store: str, box: str) -> str:
        return f"{self.public_url()}/nms/v1/{_box_path(store, box)}"

    def object(self, store: str, box: str, object_id: str) -> str:
        return f"{self.box(store, box)}/objects/{object_id}"

    def folder(self, store: str, box: str, folder_id: str | None) -> str:
        return "" if folder_id is None else f"{self.box(store, box)}/folders/{folder_id}"

    def subscription(self, store: str, box: str, subscription_id: str) -> str:
        return f"{self.box(store, box)}/subscriptions/{subscription_id}"


def event(urls: Urls, store: str, box: str, state: ItemState) -> dict[str, Any]:
    if state.kind == "reset":
        return {"resetBox": None}
    if state.kind == "object":
        url = urls.object(store, box, state.id)
        if state.deleted:
            return {"deletedObject": {"resourceURL": url, "lastModSeq": state.last_mod_seq}}
        return {"changedObject": {"parentFolder": urls.folder(store, box, state.parent_id),
                                  "flags": {"flag": list(state.flags)}, "resourceURL": url,
                                  "lastModSeq": state.last_mod_seq}}
    url = urls.folder(store, box, state.id)
    if state.deleted:
        return {"deletedFolder": {"resourceURL": url, "lastModSeq": state.last_mod_seq}}
    return {"changedFolder": {"parentFolder": urls.folder(store, box, state.parent_id),
                              "resourceURL": url, "name": state.name or "",
                              "lastModSeq": state.last_mod_seq}}


#: encoded ``nmsEvent`` arrays kept for the subscriptions that report the same change
EVENTS_CACHE = 64
#: encoded ``link`` members, by subscription id (a subscription's link never changes)
LINKS_CACHE = 100_000


class EventListEncoder:
    """``nmsEventList`` in the subscription's notificationFormat (JSON or XML).

    A change reaches every subscription of its box: in JSON its ``nmsEvent`` array is encoded
    once and shared, and only the subscription's own members (callbackData, index,
    restartToken, link) are written around it — the same text ``json.dumps`` would give."""

    def __init__(self, urls: Urls) -> None:
        self.urls = urls
        self._events: dict[tuple[str, str, tuple[ItemState, ...]], str] = {}
        self._links: dict[str, str] = {}

    def event_list(self, info: SubscriptionInfo, events: Sequence[ItemState] | None,
                   index: int, token: Position) -> str:
        if info.fmt != "xml":
            return self._json(info, tuple(events or ()), index, token)
        body: dict[str, Any] = {
            "nmsEvent": [event(self.urls, info.store, info.box, e) for e in events or ()]}
        if info.callback_data is not None:
            body["callbackData"] = info.callback_data
        body.update(index=index, restartToken=str(token), link=[{
            "rel": "NmsSubscription",
            "href": self.urls.subscription(info.store, info.box, info.id)}])
        element = build(f"{{{NMS_NS}}}nmsEventList", body, nsmap={"nms": NMS_NS})
        return to_xml_bytes(element).decode()

    def _json(self, info: SubscriptionInfo, events: tuple[ItemState, ...], index: int,
              token: Position) -> str:
        key = (info.store, info.box, events)
        encoded = self._events.get(key)
        if encoded is None:
            if len(self._events) >= EVENTS_CACHE:
                self._events.clear()
            encoded = self._events[key] = dump_json(
                [event(self.urls, info.store, info.box, e) for e in events])
        callback = "" if info.callback_data is None else (
            ',"callbackData":' + dump_json(info.callback_data))
        link = self._links.get(info.id)
        if link is None:
            if len(self._links) >= LINKS_CACHE:
                self._links.clear()
            link = self._links[info.id] = dump_json([{
                "rel": "NmsSubscription",
                "href": self.urls.subscription(info.store, info.box, info.id)}])
        return (f'{{"nmsEventList":{{"nmsEvent":{encoded}{callback},"index":{index},'
                f'"restartToken":"{token}","link":{link}}}}}')


def subscription_body(urls: Urls, view: SubscriptionView) -> dict[str, Any]:
    info = view.info
    callback: dict[str, Any] = {"notifyURL": info.notify_url}
    if info.callback_data is not None:
        callback["callbackData"] = info.callback_data
    if info.fmt == "xml":
        callback["notificationFormat"] = "XML"
    body: dict[str, Any] = {"callbackReference": callback, "duration": view.remaining}
    if info.filter is not None:
        body["filter"] = to_json(info.filter)
    if info.client_correlator is not None:
        body["clientCorrelator"] = info.client_correlator
    body.update(resourceURL=urls.subscription(info.store, info.box, info.id), index=view.index,
                restartToken=view.restart_token)
    return body
