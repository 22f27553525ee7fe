"""The hot HTTP requests, taken straight off the wire: callback POSTs and long polls.

Every notification an enabler sends is one ``POST /notificationchannel/v1/callbacks/{id}``, and
every long-polling client sends ``POST .../channels/{id}/notifications`` again as soon as the
last one returned: the two requests a busy server answers most. :class:`api.server.
GuardedTCPServer` hands a connection whose next request is one of these here (the first request,
or the next one on a keep-alive connection while hypercorn is between requests).

Only plain requests are taken: HTTP/1.1, ``Content-Length``, no ``Expect``, no chunking; a
callback whose JSON or XML notifications the channel accepts (answered ``204``); a long poll on
an existing long-polling channel with an empty body (or ``{"longPollingRequestParameters":
null}``) from a client that accepts JSON. Anything else — another route, an unknown id, a bad
body, a full queue, an ``Accept`` that asks for XML — goes on, unread, to hypercorn and the
Quart views (:mod:`api.channels`), which give the one answer every error has; the connection
stays with hypercorn from then on. A long poll's answer, errors included, comes from
:func:`api.channels.poll_answer`, the code the Quart view uses.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from urllib.parse import unquote

import trio

from actors import ActorStopped, MailboxFull
from actors.router import Router

from .codecs.notifications import parse_notifications
from .server import HEAD_LIMIT

CALLBACK = re.compile(rb"^POST /notificationchannel/v1/callbacks/([^/?# ]+)[ ?]")
POLL = re.compile(rb"^POST /notificationchannel/v1/([^/?# ]+)/channels/([^/?# ]+)/notifications"
                  rb"[ ?]")
#: the largest body taken here (the app's MAX_CONTENT_LENGTH answers 413 for more)
BODY_LIMIT = 1024 * 1024
#: Accept values for which the answer is JSON (choose_format would pick JSON)
JSON_ACCEPTS = {"", "*/*", "application/json", "application/*"}
EMPTY_POLL_BODIES = {b"", b'{"longPollingRequestParameters":null}',
                     b'{"longPollingRequestParameters": null}',
                     b'{"longPollingRequestParameters":{}}',
                     b'{"longPollingRequestParameters": {}}'}


#: an answer now, or a wait for one (status 0: the client left)
Answer = tuple[int, str, bytes] | Callable[[], Awaitable[tuple[int, str, bytes]]]


def claims(head: bytes) -> bool:
    return CALLBACK.match(head) is not None or POLL.match(head) is not None


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


class Request:
    __slots__ = ("match", "mimetype", "accept", "length", "close", "body")

    def __init__(self, match: re.Match[bytes], mimetype: str, accept: str, length: int,
                 close: bool) -> None:
        self.match, self.mimetype, self.accept = match, mimetype, accept
        self.length, self.close, self.body = length, close, b""


def _parse_head(head: bytes) -> Request | None:
    """A plain HTTP/1.1 request for this module, else None."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] != "HTTP/1.1":
        return None
    match = CALLBACK.match(head) or POLL.match(head)
    if match is None:
        return None
    length: int | None = None
    mimetype, accept, close = "", "", False
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
        elif name == "accept":
            accept = value.lower()
        elif name == "connection":
            close = "close" in value.lower()
    if length is None or length > BODY_LIMIT:
        return None
    return Request(match, mimetype, accept, length, close)


def _response(status: int, content_type: str, body: bytes, close: bool) -> bytes:
    reason = {200: b"OK", 204: b"No Content"}.get(status, b"")
    head = b"HTTP/1.1 %d %s\r\ndate: %s\r\nserver: tidings\r\n" % (status, reason, _Date.now())
    if status != 204:
        head += b"content-type: %s\r\ncontent-length: %d\r\n" % (content_type.encode(),
                                                                  len(body))
    return head + (b"connection: close\r\n\r\n" if close else b"\r\n") + body


class Idle:
    """The connections waiting here for their client's next request: when the server stops,
    they are closed at once (as hypercorn closes its idle keep-alive connections)."""

    def __init__(self) -> None:
        self.scopes: set[trio.CancelScope] = set()
        self.closing = False

    def close_all(self) -> None:
        self.closing = True
        for scope in self.scopes:
            scope.cancel()


class Connection:
    """One keep-alive connection while its requests are taken here."""

    def __init__(self, router: Router, stream: trio.SocketStream, buffer: bytes,
                 keep_alive: float, idle: Idle) -> None:
        self.router, self.stream, self.buffer = router, stream, buffer
        self.keep_alive, self.idle = keep_alive, idle

    async def _more(self) -> bool:
        """Read more into the buffer; False if the client left or stayed idle too long, or
        the server is stopping."""
        if self.idle.closing:
            return False
        data = b""
        with trio.move_on_after(self.keep_alive) as scope:
            self.idle.scopes.add(scope)
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return False
            finally:
                self.idle.scopes.discard(scope)
        self.buffer += data
        return bool(data)

    async def serve(self) -> bytes | None:
        """Answer requests while they are for this module. Returns the bytes hypercorn must
        take from here (the start of a request not taken), or None when the connection is
        done."""
        while True:
            while (end := self.buffer.find(b"\r\n\r\n")) < 0:
                if len(self.buffer) > HEAD_LIMIT:
                    return self.buffer
                if not await self._more():
                    return None
            request = _parse_head(self.buffer[:end])
            if request is None:
                return self.buffer
            start = end + 4
            while len(self.buffer) < start + request.length:
                if not await self._more():
                    return None
            request.body = self.buffer[start:start + request.length]
            handler = self._callback if request.match.re is CALLBACK else self._poll
            answer = handler(request)
            if answer is None:
                return self.buffer  # for the Quart view, unread
            self.buffer = self.buffer[start + request.length:]
            status, content_type, body = await answer() if callable(answer) else answer
            if status == 0:  # the client left during a long poll
                return None
            try:
                await self.stream.send_all(_response(status, content_type, body,
                                                     request.close))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return None
            if request.close:
                return None

    # -- the requests ------------------------------------------------------------------------
    def _callback(self, request: Request) -> Answer | None:
        channel = self.router.channel_by_callback(unquote(request.match[1].decode("latin-1")))
        if channel is None:
            return None
        try:
            notifications = parse_notifications(request.mimetype, request.body)
        except ValueError:
            return None
        if notifications:
            try:
                channel.offer(notifications)
            except (MailboxFull, ActorStopped):
                return None
        return 204, "", b""

    def _poll(self, request: Request) -> Answer | None:
        user_id, channel_id = (unquote(m.decode("latin-1")) for m in request.match.groups())
        channel = self.router.channel_for(user_id, channel_id)
        if (channel is None or channel.info.channel_type != "LongPolling"
                or request.accept.strip() not in JSON_ACCEPTS
                or request.body.strip() not in EMPTY_POLL_BODIES):
            return None
        from .channels import poll_answer
        from .negotiation import JSON

        async def wait() -> tuple[int, str, bytes]:
            # watch the connection while waiting: a client that leaves cancels its poll (the
            # channel then keeps what it would have answered)
            answer: tuple[int, str, bytes] = (0, "", b"")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch, nursery.cancel_scope)
                answer = await poll_answer(channel, JSON)
                nursery.cancel_scope.cancel()
            return answer

        return wait

    async def _watch(self, scope: trio.CancelScope) -> None:
        """Until cancelled: keep what a pipelining client sends; cancel ``scope`` at EOF."""
        while True:
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                scope.cancel()
                return
            self.buffer += data
            if len(self.buffer) > BODY_LIMIT + HEAD_LIMIT:
                scope.cancel()
                return


async def serve(router: Router, stream: trio.SocketStream, buffer: bytes, keep_alive: float,
                idle: Idle) -> bytes | None:
    return await Connection(router, stream, buffer, keep_alive, idle).serve()

