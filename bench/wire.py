"""The load generator's own I/O: one epoll loop, raw non-blocking sockets, a keep-alive HTTP/1.1
client and a WebSocket client that counts frames. Standard library only, no framework between
the socket and the count, so that the generator costs a few µs per frame (``--scenario
ceiling`` measures how many)."""

from __future__ import annotations

import abc
import base64
import os
import re
import selectors
import socket
import struct
import time
from collections import deque
from collections.abc import Callable

Now = time.perf_counter


class Loop:
    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.tickers: list[Callable[[], None]] = []

    def run_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Serve every socket until ``done()`` or ``timeout`` seconds passed."""
        deadline = Now() + timeout
        select, tickers = self.selector.select, self.tickers
        while not done():
            left = deadline - Now()
            if left <= 0:
                return False
            for key, events in select(min(left, 0.005 if tickers else 0.05)):
                conn = key.data
                if events & selectors.EVENT_READ:
                    conn.on_readable()
                if events & selectors.EVENT_WRITE:
                    conn.flush()
            for tick in tickers:
                tick()
        return True

    def sleep(self, seconds: float) -> None:
        self.run_until(lambda: False, seconds)


class Conn(abc.ABC):
    def __init__(self, loop: Loop, host: str, port: int) -> None:
        self.loop = loop
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.connect((host, port))
        except BlockingIOError:
            pass
        self.sock = sock
        self.out = bytearray()
        self.closed = False
        self.error: str | None = None
        self.on_close: Callable[[], None] | None = None
        loop.selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, self)
        self._writing = True

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        if self.out:
            self.out += data
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as error:
            self._fail(str(error))
            return
        if sent < len(data):
            self.out += data[sent:]
            self._want_write(True)

    def flush(self) -> None:
        if self.out:
            try:
                sent = self.sock.send(self.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                self._fail(str(error))
                return
            del self.out[:sent]
        if not self.out:
            self._want_write(False)

    def _want_write(self, on: bool) -> None:
        if on != self._writing and not self.closed:
            self._writing = on
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if on else 0)
            self.loop.selector.modify(self.sock, events, self)

    def on_readable(self) -> None:
        try:
            data = self.sock.recv(1 << 18)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._fail(str(error))
            return
        if not data:
            self._fail("closed by the server")
            return
        self.feed(data)

    @abc.abstractmethod
    def feed(self, data: bytes) -> None:
        """Take bytes the server sent (each kind of connection parses its own protocol)."""

    def _fail(self, why: str) -> None:
        if not self.closed:
            self.error = why
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.selector.unregister(self.sock)
            self.sock.close()
            if self.on_close is not None:
                self.on_close()


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


ResponseCallback = Callable[[Response], None]


class HttpConn(Conn):
    """One keep-alive connection, one request at a time."""

    def __init__(self, loop: Loop, host: str, port: int) -> None:
        super().__init__(loop, host, port)
        self.host = f"{host}:{port}"
        self.buf = b""
        self.callback: ResponseCallback | None = None

    @property
    def busy(self) -> bool:
        return self.callback is not None

    def request(self, method: str, path: str, body: bytes, callback: ResponseCallback,
                content_type: str = "application/json") -> None:
        self.callback = callback
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Content-Type: {content_type}\r\nAccept: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        self.send(head.encode() + body)

    def feed(self, data: bytes) -> None:
        self.buf += data
        while self.callback is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buf[:end].decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            start = end + 4
            if "content-length" in headers:
                length = int(headers["content-length"])
                if len(self.buf) < start + length:
                    return
                body, self.buf = self.buf[start:start + length], self.buf[start + length:]
            elif headers.get("transfer-encoding") == "chunked":
                parsed = _dechunk(self.buf, start)
                if parsed is None:
                    return
                body, rest = parsed
                self.buf = self.buf[rest:]
            else:
                body, self.buf = b"", self.buf[start:]
            callback, self.callback = self.callback, None
            callback(Response(status, headers, body))


def _dechunk(buf: bytes, at: int) -> tuple[bytes, int] | None:
    parts = []
    while True:
        line_end = buf.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(buf[at:line_end].split(b";")[0], 16)
        start = line_end + 2
        if len(buf) < start + size + 2:
            return None
        if size == 0:
            return b"".join(parts), start + 2
        parts.append(buf[start:start + size])
        at = start + size + 2


class HttpPool:
    """Requests queued over ``size`` keep-alive connections. A connection the server closed
    (its keep-alive timeout) is replaced, and a request it held is sent again."""

    def __init__(self, loop: Loop, host: str, port: int, size: int) -> None:
        self.loop, self.host, self.port = loop, host, port
        self.any_closed = False
        self.conns = [self._connect() for _ in range(size)]
        self.queue: deque[tuple[str, str, bytes, ResponseCallback]] = deque()
        self.held: dict[HttpConn, tuple[str, str, bytes, ResponseCallback]] = {}
        self.outstanding = 0
        self.reconnects = 0
        loop.tickers.append(self._revive)

    def request(self, method: str, path: str, body: bytes, callback: ResponseCallback) -> None:
        self.outstanding += 1
        self.queue.append((method, path, body, callback))
        self._dispatch()

    def _connect(self) -> HttpConn:
        conn = HttpConn(self.loop, self.host, self.port)
        conn.on_close = self._note_closed
        return conn

    def _note_closed(self) -> None:
        self.any_closed = True

    def _revive(self) -> None:
        if not self.any_closed:
            return
        self.any_closed = False
        for i, conn in enumerate(self.conns):
            if conn.closed:
                self.reconnects += 1
                lost = self.held.pop(conn, None)
                if lost is not None:
                    self.queue.appendleft(lost)
                self.conns[i] = self._connect()
        self._dispatch()

    def _dispatch(self) -> None:
        for conn in self.conns:
            if not self.queue:
                return
            if not conn.busy and not conn.closed:
                item = self.queue.popleft()
                method, path, body, callback = item
                self.held[conn] = item
                conn.request(method, path, body, self._done(conn, callback))

    def _done(self, conn: HttpConn, callback: ResponseCallback) -> ResponseCallback:
        def done(response: Response) -> None:
            self.held.pop(conn, None)
            self.outstanding -= 1
            callback(response)
            self._dispatch()
        return done

    def drained(self) -> bool:
        return self.outstanding == 0

    def failed(self) -> list[str]:
        return [c.error for c in self.conns if c.error]


FrameCallback = Callable[["WsConn", bytes, float], None]
SUBPROTOCOL = "notificationchannel-netapi-rest.openmobilealliance.org"


class WsConn(Conn):
    """A WebSocket client: handshake, then every text frame goes to ``on_frame``."""

    def __init__(self, loop: Loop, host: str, port: int, path: str,
                 on_frame: FrameCallback | None = None) -> None:
        super().__init__(loop, host, port)
        self.open = False
        self.frames = 0
        self.buf = b""
        self.on_frame = on_frame
        self.close_code: int | None = None
        key = base64.b64encode(os.urandom(16)).decode()
        self.send((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
                   ).encode())

    def feed(self, data: bytes) -> None:
        now = Now()
        buf = self.buf + data if self.buf else data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self._fail(buf[:end].split(b"\r\n")[0].decode("latin-1"))
                return
            self.open = True
            buf = buf[end + 4:]
        at, size = 0, len(buf)
        while size - at >= 2:
            first, length = buf[at], buf[at + 1] & 0x7F
            head = 2
            if length == 126:
                if size - at < 4:
                    break
                length = struct.unpack_from(">H", buf, at + 2)[0]
                head = 4
            elif length == 127:
                if size - at < 10:
                    break
                length = struct.unpack_from(">Q", buf, at + 2)[0]
                head = 10
            end = at + head + length
            if end > size:
                break
            opcode = first & 0x0F
            if opcode == 1 or opcode == 2:
                self.frames += 1
                if self.on_frame is not None:
                    self.on_frame(self, buf[at + head:end], now)
            elif opcode == 8:
                if length >= 2:
                    self.close_code = struct.unpack_from(">H", buf, at + head)[0]
            elif opcode == 9:
                self._send_frame(0xA, buf[at + head:end])
            at = end
        self.buf = buf[at:]

    def send_text(self, payload: bytes) -> None:
        self._send_frame(0x1, payload)

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        length = len(payload)
        if length < 126:
            head = struct.pack(">BB", 0x80 | opcode, 0x80 | length)
        elif length < 65536:
            head = struct.pack(">BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 0x80 | 127, length)
        self.send(head + b"\0\0\0\0" + payload)  # a zero mask: the payload as it is


OBJECT_ID = re.compile(rb"/objects/([A-Za-z0-9_-]+)")
NUMBER = re.compile(rb'"n":(\d+)')


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Process:
    """CPU time and resident memory of a server process, from /proc (Linux)."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cpu(self) -> float:
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.TICK

    def rss_kb(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")
