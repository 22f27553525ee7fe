"""The callbackURL's fast path: notifications POSTed to a channel, taken straight off the wire.

Every notification an enabler sends is one ``POST /notificationchannel/v1/callbacks/{id}``, the
hottest request of the server. :class:`api.server.GuardedTCPServer` hands a connection whose
request is such a POST here first: a plain HTTP/1.1 request (``Content-Length``, JSON or XML
body, no ``Expect``, no chunking) whose notifications the channel accepts is answered ``204``
here, without the ASGI app. Anything else — another route, an unknown callbackId, a bad body, a
full queue, an unusual request — goes on, unread, to hypercorn and the Quart view
(:func:`api.channels.callback`), which gives the one answer every error has; the connection
stays with hypercorn from then on. So both paths accept exactly the same requests, and all
errors come from one place.
"""

from __future__ import annotations

import re
import time
from email.utils import formatdate
from urllib.parse import unquote

import trio

from actors import ActorStopped, MailboxFull
from actors.router import Router

from .codecs.notifications import parse_notifications

PATH = re.compile(rb"^POST /notificationchannel/v1/callbacks/([^/?# ]+)[ ?]")
#: the largest body taken here (the app's MAX_CONTENT_LENGTH answers 413 for more)
BODY_LIMIT = 1024 * 1024
HEAD_LIMIT = 16384


def is_callback(head: bytes) -> bool:
    return PATH.match(head) is not None


class _Date:
    """The ``Date`` header, formatted once a second."""

    second = -1
    text = b""

    @classmethod
    def now(cls) -> bytes:
        second = int(time.time())
        if second != cls.second:
            cls.second, cls.text = second, formatdate(second, usegmt=True).encode()
        return cls.text


def _parse_head(head: bytes) -> tuple[str, str, int, bool] | None:
    """(callbackId, mimetype, Content-Length, close) of a plain request, else None."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] != "HTTP/1.1":
        return None
    match = PATH.match(head)
    if match is None:
        return None
    length: int | None = None
    mimetype, close = "", False
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            return None
        name, value = name.lower(), value.strip()
        if name == "content-length":
            if length is not None or not value.isdigit():
                return None
            length = int(value)
        elif name in ("transfer-encoding", "expect", "upgrade"):
            return None
        elif name == "content-type":
            mimetype = value.split(";", 1)[0].strip().lower()
        elif name == "connection":
            close = "close" in value.lower()
    if length is None or length > BODY_LIMIT:
        return None
    return unquote(match[1].decode("latin-1")), mimetype, length, close


def _accept(router: Router, callback_id: str, mimetype: str, body: bytes) -> bool:
    """Queue the notifications if all is well; False leaves the answer to the Quart view."""
    channel = router.channel_by_callback(callback_id)
    if channel is None:
        return False
    try:
        notifications = parse_notifications(mimetype, body)
    except ValueError:
        return False
    if notifications:
        try:
            channel.offer(notifications)
        except (MailboxFull, ActorStopped):
            return False
    return True


async def serve(router: Router, stream: trio.SocketStream, buffer: bytes,
                keep_alive: float) -> bytes | None:
    """Answer callback POSTs on this connection while they come and all is well. Returns the
    bytes hypercorn must take from here (the start of a request not taken here), or None when
    the connection is done."""
    while True:
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            if len(buffer) > HEAD_LIMIT:
                return buffer
            data = b""
            with trio.move_on_after(keep_alive):
                try:
                    data = await stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return None
            if not data:  # closed, or idle past the keep-alive timeout
                return None
            buffer += data
        head = _parse_head(buffer[:end])
        if head is None:
            return buffer
        callback_id, mimetype, length, close = head
        start = end + 4
        while len(buffer) < start + length:
            data = b""
            with trio.move_on_after(keep_alive):
                try:
                    data = await stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return None
            if not data:
                return None
            buffer += data
        if not _accept(router, callback_id, mimetype, buffer[start:start + length]):
            return buffer
        buffer = buffer[start + length:]
        answer = b"HTTP/1.1 204 No Content\r\ndate: " + _Date.now() + b"\r\nserver: tidings\r\n"
        try:
            await stream.send_all(answer + (b"connection: close\r\n\r\n" if close else b"\r\n"))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return None
        if close:
            return None
