"""Notifications in (callback bodies) and frames out (notificationList, connCheck, connAck).

A notification is encoded once, when it arrives; a frame is the encoded notifications joined
inside one ``notificationList`` envelope, in the notifications' own format (the format the
enabler used, i.e. what the client asked its subscription for).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from actors.channel import Notification

from ..negotiation import JSON, XML, decode_json, format_of
from . import dump_json
from .xml import XmlError, element_bytes, local_name, parse_element

NC_NS = "urn:oma:xml:rest:netapi:notificationchannel:1"
_XML_LIST_OPEN = f'<?xml version="1.0" encoding="UTF-8"?><nc:notificationList xmlns:nc="{NC_NS}">'
_XML_LIST_CLOSE = "</nc:notificationList>"
_XML_EMPTY_LIST = f'<?xml version="1.0" encoding="UTF-8"?><nc:notificationList xmlns:nc="{NC_NS}"/>'


class NotificationError(ValueError):
    """A callback body that holds no usable notification."""


def notifications_from_json(value: Any) -> list[Notification]:
    """Each root of a JSON body (or each item of its ``notificationList``), encoded once."""
    if not isinstance(value, dict) or not value:
        raise NotificationError("a notification is a JSON object with one root member")
    if set(value) == {"notificationList"}:
        return _json_list_items(value["notificationList"])
    return [Notification("json", dump_json({root: body})) for root, body in value.items()]


def _json_list_items(items: Any) -> list[Notification]:
    if items is None:
        return []
    if isinstance(items, dict):  # one member per notification type; a list repeats it
        return [Notification("json", dump_json({root: one}))
                for root, body in items.items()
                for one in (body if isinstance(body, list) else [body])]
    if isinstance(items, list) and all(isinstance(i, dict) and i for i in items):
        return [n for item in items for n in notifications_from_json(item)]
    raise NotificationError("notificationList holds objects, one root member each")


def notifications_from_xml(data: bytes) -> list[Notification]:
    root = parse_element(data)
    if local_name(root.tag) == "notificationList":
        children = [c for c in root if isinstance(c.tag, str)]
        return [Notification("xml", element_bytes(c).decode()) for c in children]
    return [Notification("xml", element_bytes(root).decode())]


def parse_notifications(mimetype: str, data: bytes) -> list[Notification]:
    """The notifications of a callback body. Raises UnsupportedFormat for a Content-Type
    that is neither JSON nor XML, ValueError (XmlError, NotificationError) for a bad body."""
    fmt = format_of(mimetype)
    if fmt == JSON:
        try:
            value = decode_json(data)
        except ValueError as error:
            raise NotificationError(str(error)) from None
        return notifications_from_json(value)
    if fmt == XML:
        return notifications_from_xml(data)
    raise UnsupportedFormat(mimetype)


class UnsupportedFormat(ValueError):
    """A callback body that is neither JSON nor XML."""


class NotificationCodec:
    """The frames a channel sends (see ``actors.channel.Codec``)."""

    def batch(self, items: Sequence[Notification]) -> str:
        if items and items[0].fmt == "xml":
            return _XML_LIST_OPEN + "".join(n.body for n in items) + _XML_LIST_CLOSE
        if len(items) == 1:  # Appendix D.12: one notification is the list's single member
            return '{"notificationList":' + items[0].body + "}"
        return '{"notificationList":[' + ",".join(n.body for n in items) + "]}"

    def empty(self, fmt: str) -> str:
        if fmt == "xml":
            return _XML_EMPTY_LIST
        return '{"notificationList":null}'

    def conn_check(self, fmt: str, interval: int, lifetime: int) -> str:
        return self._control(fmt, "connCheck",
                             {"checkInterval": str(interval), "newChannelLifetime": str(lifetime)})

    def conn_ack(self, fmt: str, lifetime: int) -> str:
        return self._control(fmt, "connAck", {"channelLifetime": str(lifetime)})

    @staticmethod
    def _control(fmt: str, root: str, fields: dict[str, str]) -> str:
        if fmt == "xml":
            inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
            return (f'<?xml version="1.0" encoding="UTF-8"?>'
                    f'<nc:{root} xmlns:nc="{NC_NS}">{inner}</nc:{root}>')
        return dump_json({root: fields})


def client_message(text: str | bytes) -> tuple[str, str]:
    """``(root, fmt)`` of a message a WebSocket client sent (``connCheck``, ``connAck``)."""
    data = text.encode() if isinstance(text, str) else text
    if data.lstrip()[:1] == b"<":
        try:
            return local_name(parse_element(data).tag), "xml"
        except XmlError:
            return "", "xml"
    try:
        value = json.loads(data)
    except ValueError:
        return "", "json"
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value)), "json"
    return "", "json"
