"""The WebSocket of a WebSockets channel (spec Appendix I), served straight on its connection.

hypercorn accepts every connection; :class:`api.server.GuardedTCPServer` reads the request head
and hands a WebSocket upgrade to ``/notificationchannel/v1/{userId}/channels/{channelId}/ws``
to :func:`serve` instead of to the ASGI app. The handshake goes through wsproto, the client's
frames through a small parser (:class:`ClientFrames`). Frames to the client are encoded once
and written by the channel actor straight to the socket (``os.write`` on the non-blocking
descriptor, no task wake-up: DESIGN "write directly"). What the socket does not take at once
waits in a backlog that a flusher task, started only then, writes out; the batch in flight is
confirmed (``sent``) only once it is all written.

Each connection is one task reading (connCheck / connAck, pings, close), plus the flusher
while there is a backlog. The channel closes a connection by cancelling its scope
with a close code: takeover (4001), deletion (4000), expiry (4002), unanswered connCheck
(4003), too slow (4004), shutdown (1001).
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request
from wsproto.utilities import RemoteProtocolError

from actors import ActorError
from actors.channel import Attach, ChannelActor, ClientConnAck, ClientConnCheck, Detach, Session
from actors.router import Router

from .codecs.notifications import client_message
from .errors import not_found, service_error

log = logging.getLogger("tidings.websocket")

SUBPROTOCOL = "notificationchannel-netapi-rest.openmobilealliance.org"
PATH = re.compile(rb"^GET /notificationchannel/v1/([^/?# ]+)/channels/([^/?# ]+)/ws[ ?]")
#: bytes a client may leave unread before it counts as too slow (its connection is closed)
BACKLOG_LIMIT = 1 << 20


def is_channel_socket(head: bytes) -> bool:
    """Is this request head a WebSocket handshake for a channel? (Only its first line.)"""
    return PATH.match(head) is not None


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A server-to-client frame, text unless told otherwise (unmasked, RFC 6455 §5.2)."""
    length = len(payload)
    if length < 126:
        return struct.pack(">BB", 0x80 | opcode, length) + payload
    if length < 65536:
        return struct.pack(">BBH", 0x80 | opcode, 126, length) + payload
    return struct.pack(">BBQ", 0x80 | opcode, 127, length) + payload


OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
#: the largest message a client may send (its messages are connCheck and connAck)
MESSAGE_LIMIT = 1 << 16


def control_frame(opcode: int, payload: bytes) -> bytes:
    """A server control frame (close, ping, pong: at most 125 bytes of payload)."""
    return frame(payload, opcode)


class FrameError(Exception):
    """The client broke RFC 6455: the connection is closed with 1002."""


def _unmask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    if not n:
        return b""
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(payload, "little") ^ key).to_bytes(n, "little")


class ClientFrames:
    """Frames from a client (RFC 6455 §5): masked, maybe fragmented. :meth:`feed` returns
    the complete messages and control frames as ``(opcode, payload)``."""

    __slots__ = ("buffer", "parts", "opcode")

    def __init__(self, data: bytes = b"") -> None:
        self.buffer = data
        self.parts: list[bytes] | None = None
        self.opcode = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self.buffer + data if self.buffer else data
        out: list[tuple[int, bytes]] = []
        at, size = 0, len(buf)
        while size - at >= 2:
            first, second = buf[at], buf[at + 1]
            if first & 0x70:
                raise FrameError("reserved bits set (no extension was agreed)")
            if not second & 0x80:
                raise FrameError("a client frame must be masked")
            fin, opcode, length, head = first & 0x80, first & 0x0F, second & 0x7F, 2
            if length == 126:
                if size - at < 4:
                    break
                length, head = struct.unpack_from(">H", buf, at + 2)[0], 4
            elif length == 127:
                if size - at < 10:
                    break
                length, head = struct.unpack_from(">Q", buf, at + 2)[0], 10
            if length > MESSAGE_LIMIT:
                raise FrameError("message too large")
            end = at + head + 4 + length
            if end > size:
                break
            payload = _unmask(buf[at + head + 4:end], buf[at + head:at + head + 4])
            at = end
            if opcode >= OP_CLOSE:
                if not fin or length > 125 or opcode > OP_PONG:
                    raise FrameError("bad control frame")
                out.append((opcode, payload))
                continue
            if opcode == OP_CONTINUATION:
                if self.parts is None:
                    raise FrameError("continuation outside a message")
                self.parts.append(payload)
                if sum(len(p) for p in self.parts) > MESSAGE_LIMIT:
                    raise FrameError("message too large")
            elif opcode in (OP_TEXT, OP_BINARY):
                if self.parts is not None:
                    raise FrameError("a new message inside a fragmented one")
                self.parts, self.opcode = [payload], opcode
            else:
                raise FrameError(f"unknown opcode {opcode}")
            if fin and self.parts is not None:
                out.append((self.opcode, b"".join(self.parts)))
                self.parts = None
        self.buffer = buf[at:]
        return out


class DirectSocket:
    """Writes to one connection: at once while the socket takes it; what it does not take
    waits in a backlog that a flusher task (started only then) writes out in order."""

    __slots__ = ("stream", "fd", "backlog", "batch_pending", "flushing", "broken", "nursery",
                 "on_batch_written")

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.fd = stream.socket.fileno()
        self.backlog = bytearray()
        self.batch_pending = False  # the backlog holds a batch not yet confirmed
        self.flushing = False  # a flusher owns the socket: nothing is written past it
        self.broken = False
        self.nursery: trio.Nursery | None = None
        self.on_batch_written: Callable[[], None] = lambda: None

    def write_now(self, text: str, batch: bool) -> bool:
        return self.write_bytes(frame(text.encode()), batch)

    def write_bytes(self, data: bytes, batch: bool = False) -> bool:
        if self.broken:
            raise trio.BrokenResourceError("connection lost")
        if not self.flushing:
            try:
                written = os.write(self.fd, data)
            except BlockingIOError:
                written = 0
            except OSError as error:
                self.broken = True
                raise trio.BrokenResourceError(str(error)) from None
            if written == len(data):
                return True
            data = data[written:]
            if self.nursery is None:
                raise trio.BrokenResourceError("the connection is not set up for writing")
            self.flushing = True
            self.nursery.start_soon(self._flush)
        if len(self.backlog) + len(data) > BACKLOG_LIMIT:
            raise trio.WouldBlock
        self.backlog += data
        self.batch_pending = self.batch_pending or batch
        return False

    async def _flush(self) -> None:
        try:
            while self.backlog:
                data, batch = bytes(self.backlog), self.batch_pending
                self.backlog.clear()
                self.batch_pending = False
                await self.stream.send_all(data)
                if batch:
                    self.on_batch_written()
        except BaseException:
            self.broken = True
            raise
        finally:
            self.flushing = False


async def _reject(stream: trio.SocketStream, ws: WSConnection, status: int,
                  body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    out = ws.send(RejectConnection(status_code=status, has_body=True, headers=[
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]))
    out += ws.send(RejectData(data=data))
    await stream.send_all(out)


async def serve(router: Router, stream: trio.SocketStream, head: bytes) -> None:
    """The whole life of one channel WebSocket, from the request head on."""
    ws = WSConnection(ConnectionType.SERVER)
    try:
        ws.receive_data(head)
        request = next(iter(ws.events()), None)
    except RemoteProtocolError as error:
        await stream.send_all(ws.send(error.event_hint or RejectConnection(status_code=400)))
        return
    if not isinstance(request, Request):
        return
    match = PATH.match(head)
    assert match is not None
    user_id, channel_id = (unquote(m.decode("latin-1")) for m in match.groups())
    actor = router.channel_for(user_id, channel_id)
    if actor is None or actor.info.channel_type != "WebSockets":
        await _reject(stream, ws, 404, not_found("channelId").body())
        return
    if SUBPROTOCOL not in request.subprotocols:
        await _reject(stream, ws, 400, service_error(
            400, f"the WebSocket handshake must offer the subprotocol {SUBPROTOCOL}").body())
        return
    await stream.send_all(ws.send(AcceptConnection(subprotocol=SUBPROTOCOL)))
    # frames from here on: a small parser, without the handshake's HTTP machinery (an idle
    # connection keeps only what it needs); it starts with what came after the handshake
    frames = ClientFrames(head[head.index(b"\r\n\r\n") + 4:])
    del ws, request
    direct = DirectSocket(stream)
    session = Session(write_now=direct.write_now)
    direct.on_batch_written = lambda: actor.sent(session)
    try:
        async with trio.open_nursery() as nursery:
            # closing the session cancels the connection's tasks (one scope per idle
            # connection less than a scope of its own around the nursery)
            session.scope = nursery.cancel_scope
            direct.nursery = nursery
            try:
                await actor.ref.ask(lambda reply: Attach(session, reply), timeout=10)
            except (ActorError, Exception):  # noqa: BLE001 - gone or busy: reconnect
                session.close(4000, "channel gone")
            else:
                await _read(actor, session, frames, direct)
            nursery.cancel_scope.cancel()  # the client left or closed
    except (trio.BrokenResourceError, trio.ClosedResourceError, trio.WouldBlock):
        pass  # the client went away, or is too slow to answer even a ping
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            await actor.ref.tell(Detach(session))
    if session.close_code is not None and not direct.broken:
        with trio.move_on_after(1):
            try:
                await stream.send_all(bytes(direct.backlog) + control_frame(
                    OP_CLOSE, struct.pack(">H", session.close_code)
                    + session.close_reason.encode()[:123]))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass


async def _read(actor: ChannelActor, session: Session, frames: ClientFrames,
                direct: DirectSocket) -> None:
    data = b""
    while True:
        try:
            messages = frames.feed(data)
        except FrameError as error:
            log.info("closing a channel WebSocket after a protocol error: %s", error)
            session.close(1002, "protocol error")
            return
        for opcode, payload in messages:
            if opcode in (OP_TEXT, OP_BINARY):
                root, fmt = client_message(payload)
                session.fmt = fmt
                if root == "connCheck":
                    await actor.ref.tell(ClientConnCheck(session))
                elif root == "connAck":
                    await actor.ref.tell(ClientConnAck(session))
            elif opcode == OP_PING:
                direct.write_bytes(control_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                direct.write_bytes(control_frame(OP_CLOSE, payload[:2]))  # echo the code
                direct.broken = True  # nothing more goes out after the close reply
                return
        data = await direct.stream.receive_some(65536)
        if not data:
            return
