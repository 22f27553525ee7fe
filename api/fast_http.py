"""The hot HTTP requests, taken straight off the wire: callback POSTs, long polls and new chat
messages.

Every notification an enabler sends is one ``POST /notificationchannel/v1/callbacks/{id}``,
every long-polling client sends ``POST .../channels/{id}/notifications`` again as soon as the
last one returned, and every chat message sent is one ``POST /nms/v1/{store}/{box}/objects``:
the requests a busy server answers most. :class:`api.server.GuardedTCPServer` hands a
connection whose next request is one of these here (the first request, or the next one on a
keep-alive connection while hypercorn is between requests).

Only plain requests are taken: HTTP/1.1, ``Content-Length``, no ``Expect``, no chunking; a
callback whose JSON or XML notifications the channel accepts (answered ``204``); a long poll on
an existing long-polling channel with an empty body (or ``{"longPollingRequestParameters":
null}``) from a client that accepts JSON; a new object in JSON, from a client that accepts
JSON, whose body passes the view's checks. Anything else — another route, an unknown id, a bad
body, a full queue, an ``Accept`` that asks for XML — goes on, unread, to hypercorn and the
Quart views (:mod:`api.channels`, :mod:`api.nms`), which give the one answer every error has;
the connection stays with hypercorn from then on. Answers that come after the work began are
made by the views' own code: a long poll's by :func:`api.channels.poll_answer`, a new object's
(errors included) by :func:`api.nms.add_object`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import unquote

import trio
from werkzeug.exceptions import InternalServerError

from actors import ActorStopped, MailboxFull
from actors.router import Router
from actors.store import Store

from .bodies import json_root
from .channels import poll_answer
from .codecs.nms import Urls
from .codecs.notifications import parse_notifications
from .errors import OmaError, error_answer, service_error
from .negotiation import JSON, json_bytes
from .nms import add_object, new_object
from .server import HEAD_LIMIT

log = logging.getLogger("tidings.http")

CALLBACK = re.compile(rb"^POST /notificationchannel/v1/callbacks/([^/?# ]+)[ ?]")
POLL = re.compile(rb"^POST /notificationchannel/v1/([^/?# ]+)/channels/([^/?# ]+)/notifications"
                  rb"[ ?]")
OBJECTS = re.compile(rb"^POST /nms/v1/([^/?# ]+)/([^/?# ]+)/objects[ ?]")
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
#: the ``Content-Type`` of every JSON answer (as the views write it)
JSON_TYPE = JSON + "; charset=utf-8"


class Routes:
    """What this server serves here: channels (the router), the store, or both."""

    def __init__(self, router: Router | None, store: tuple[Store, Urls] | None) -> None:
        self.router, self.store = router, store
        self.patterns = ((CALLBACK, POLL) if router is not None else ()) + (
            (OBJECTS,) if store is not None else ())

    def match(self, head: bytes) -> re.Match[bytes] | None:
        for pattern in self.patterns:
            if (match := pattern.match(head)) is not None:
                return match
        return None


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
    __slots__ = ("match", "mimetype", "accept", "length", "close", "body", "headers")

    def __init__(self, match: re.Match[bytes], mimetype: str, accept: str, length: int,
                 close: bool) -> None:
        self.match, self.mimetype, self.accept = match, mimetype, accept
        self.length, self.close, self.body = length, close, b""
        self.headers: dict[str, str] = {}  # of the answer, besides the usual ones


def _parse_head(routes: Routes, head: bytes) -> Request | None:
    """A plain HTTP/1.1 request for this module, else None."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] != "HTTP/1.1":
        return None
    match = routes.match(head)
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


def _response(status: int, content_type: str, body: bytes, close: bool,
              headers: dict[str, str]) -> bytes:
    reason = HTTPStatus(status).phrase.encode()
    head = b"HTTP/1.1 %d %s\r\ndate: %s\r\nserver: tidings\r\n" % (status, reason, _Date.now())
    if status != 204:
        head += b"content-type: %s\r\ncontent-length: %d\r\n" % (content_type.encode(),
                                                                  len(body))
    for name, value in headers.items():
        head += b"%s: %s\r\n" % (name.encode(), value.encode())
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

    def __init__(self, routes: Routes, stream: trio.SocketStream, buffer: bytes,
                 keep_alive: float, idle: Idle) -> None:
        self.routes, self.stream, self.buffer = routes, stream, buffer
        self.keep_alive, self.idle = keep_alive, idle
        self.handlers = {CALLBACK: self._callback, POLL: self._poll, OBJECTS: self._create}

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
            request = _parse_head(self.routes, self.buffer[:end])
            if request is None:
                return self.buffer
            start = end + 4
            while len(self.buffer) < start + request.length:
                if not await self._more():
                    return None
            request.body = self.buffer[start:start + request.length]
            answer = self.handlers[request.match.re](request)
            if answer is None:
                return self.buffer  # for the Quart view, unread
            self.buffer = self.buffer[start + request.length:]
            status, content_type, body = await answer() if callable(answer) else answer
            if status == 0:  # the client left during a long poll
                return None
            try:
                await self.stream.send_all(_response(status, content_type, body,
                                                     request.close, request.headers))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return None
            if request.close:
                return None

    # -- the requests ------------------------------------------------------------------------
    def _callback(self, request: Request) -> Answer | None:
        assert self.routes.router is not None
        callback_id = unquote(request.match[1].decode("latin-1"))
        channel = self.routes.router.channel_by_callback(callback_id)
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
        assert self.routes.router is not None
        channel = self.routes.router.channel_for(user_id, channel_id)
        if (channel is None or channel.info.channel_type != "LongPolling"
                or request.accept.strip() not in JSON_ACCEPTS
                or request.body.strip() not in EMPTY_POLL_BODIES):
            return None
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

    def _create(self, request: Request) -> Answer | None:
        assert self.routes.store is not None
        store_, urls = self.routes.store
        raw = request.match.groups()
        if (request.mimetype != JSON or request.accept.strip() not in JSON_ACCEPTS
                or not all(part.isascii() for part in raw)):
            return None
        store, box = (unquote(part.decode("ascii")) for part in raw)
        if "/" in store or "/" in box:
            return None  # not this route once decoded
        try:
            new = new_object(json_root(request.body, "object"), urls.box(store, box))
        except OmaError:
            return None  # the view says what is wrong

        async def create() -> tuple[int, str, bytes]:
            try:
                body, url = await add_object(store_, urls, store, box, new)
            except OmaError as error:
                return error_answer(error, JSON)
            except Exception:  # as the app answers an error it did not expect
                log.exception("creating an object in %s/%s failed", store, box)
                return error_answer(service_error(500, InternalServerError().name), JSON)
            request.headers["location"] = url
            return 201, JSON_TYPE, json_bytes(body)

        return create

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


async def serve(routes: Routes, stream: trio.SocketStream, buffer: bytes, keep_alive: float,
                idle: Idle) -> bytes | None:
    return await Connection(routes, stream, buffer, keep_alive, idle).serve()

