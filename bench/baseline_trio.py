"""Baseline 1: about the limit of Python on this machine for the same requests.

A minimal trio + h11 + wsproto server that answers the part of the Notification Channel and NMS
API the load generator drives (create a channel, its WebSocket or long poll, a callbackURL, a
box subscription, a chat message), keeps everything in memory (no database), encodes each frame
once and writes it straight to each socket. It validates the JSON bodies it is sent and nothing
else.

    python -m bench.baseline_trio --port 8091
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import secrets
from dataclasses import dataclass, field

import h11
import trio
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Ping, TextMessage

from api.channel_socket import SUBPROTOCOL, frame  # the frame encoding Tidings writes

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass(eq=False)
class Channel:
    id: str
    callback_id: str
    kind: str
    max_notifications: int
    stream: trio.SocketStream | None = None
    lock: trio.StrictFIFOLock = field(default_factory=trio.StrictFIFOLock)
    queue: list[bytes] = field(default_factory=list)
    waiting: trio.Event | None = None

    async def write(self, data: bytes) -> None:
        if self.stream is None:
            return
        async with self.lock:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.stream = None

    def enqueue(self, item: bytes) -> None:
        self.queue.append(item)
        if self.waiting is not None:
            self.waiting.set()


class Server:
    def __init__(self, port: int) -> None:
        self.base = f"127.0.0.1:{port}"
        self.channels: dict[str, Channel] = {}
        self.callbacks: dict[str, Channel] = {}
        self.boxes: dict[str, list[Channel]] = {}
        self.seq = itertools.count(1)

    async def connection(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    conn.receive_data(data)
                    continue
                if isinstance(event, h11.Request):
                    headers = {k.lower(): v for k, v in event.headers}
                    if headers.get(b"upgrade", b"").lower() == b"websocket":
                        await self.websocket(stream, conn, event, headers)
                        return
                    body = bytearray()
                    while True:
                        part = conn.next_event()
                        if part is h11.NEED_DATA:
                            conn.receive_data(await stream.receive_some(65536))
                        elif isinstance(part, h11.Data):
                            body += part.data
                        else:
                            break
                    status, extra, payload, after = await self.route(
                        event.method.decode(), event.target.decode(), bytes(body))
                    out = conn.send(h11.Response(status_code=status, headers=[
                        ("Content-Type", "application/json"),
                        ("Content-Length", str(len(payload))), *extra]))
                    out += conn.send(h11.Data(data=payload)) if payload else b""
                    out += conn.send(h11.EndOfMessage())
                    await stream.send_all(out)
                    if after is not None:
                        await after()
                    conn.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed):
                    return
                else:
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            return

    async def route(self, method: str, target: str, body: bytes):  # type: ignore[no-untyped-def]
        parts = target.split("?")[0].strip("/").split("/")
        if parts[:2] == ["notificationchannel", "v1"]:
            if parts[2] == "callbacks" and method == "POST":
                channel = self.callbacks.get(parts[3])
                if channel is None:
                    return 404, [], b"", None
                json.loads(body)
                if channel.kind == "WebSockets":
                    data = frame(b'{"notificationList":' + body + b"}")
                    return 204, [], b"", lambda: channel.write(data)
                channel.enqueue(body)
                return 204, [], b"", None
            if len(parts) == 4 and method == "POST":
                return self.create_channel(parts[2], json.loads(body))
            if len(parts) == 6 and parts[5] == "notifications":
                return await self.long_poll(self.channels[parts[4]])
        if parts[:2] == ["nms", "v1"] and method == "POST":
            box = "/".join(parts[2:4])
            if parts[4] == "subscriptions":
                return self.subscribe(box, json.loads(body))
            if parts[4] == "objects":
                json.loads(body)
                return self.create_object(box)
        return 404, [], b"", None

    def create_channel(self, user: str, body: dict):  # type: ignore[no-untyped-def]
        data = body["notificationChannel"]
        channel = Channel(secrets.token_hex(8), secrets.token_urlsafe(16), data["channelType"],
                          int(data.get("channelData", {}).get("maxNotifications", 10)))
        self.channels[channel.id] = channel
        self.callbacks[channel.callback_id] = channel
        path = f"/notificationchannel/v1/{user}/channels/{channel.id}"
        url = (f"ws://{self.base}{path}/ws" if channel.kind == "WebSockets"
               else f"http://{self.base}{path}/notifications")
        answer = json.dumps({"notificationChannel": {
            "channelType": channel.kind, "channelData": {"channelURL": url},
            "callbackURL": f"http://{self.base}/notificationchannel/v1/callbacks/"
                           f"{channel.callback_id}",
            "resourceURL": f"http://{self.base}{path}"}}).encode()
        return 201, [("Location", f"http://{self.base}{path}")], answer, None

    def subscribe(self, box: str, body: dict):  # type: ignore[no-untyped-def]
        url = body["nmsSubscription"]["callbackReference"]["notifyURL"]
        channel = self.callbacks[url.rsplit("/", 1)[1]]
        self.boxes.setdefault(box, []).append(channel)
        sub_id = secrets.token_hex(8)
        answer = json.dumps({"nmsSubscription": {
            "callbackReference": {"notifyURL": url}, "index": 0, "restartToken": "1-0",
            "resourceURL": f"http://{self.base}/nms/v1/{box}/subscriptions/{sub_id}"}}).encode()
        return 201, [], answer, None

    def create_object(self, box: str):  # type: ignore[no-untyped-def]
        seq = next(self.seq)
        object_id = "o" + secrets.token_hex(8)
        url = f"http://{self.base}/nms/v1/{box}"
        resource = f"{url}/objects/{object_id}"
        answer = json.dumps({"reference": {"resourceURL": resource}}).encode()
        event_list = json.dumps({"nmsEventList": {
            "nmsEvent": [{"changedObject": {
                "parentFolder": f"{url}/folders/f0123456789abcdef", "flags": {"flag": []},
                "resourceURL": resource, "lastModSeq": seq}}],
            "callbackData": "bench", "index": seq, "restartToken": f"1-{seq}",
            "link": [{"rel": "NmsSubscription", "href": f"{url}/subscriptions/s01234567"}]}},
            separators=(",", ":")).encode()
        data = frame(b'{"notificationList":' + event_list + b"}")  # encoded once

        async def broadcast() -> None:
            for channel in self.boxes.get(box, ()):
                if channel.kind == "WebSockets":
                    await channel.write(data)
                else:
                    channel.enqueue(event_list)

        return 201, [("Location", resource)], answer, broadcast

    async def long_poll(self, channel: Channel):  # type: ignore[no-untyped-def]
        if not channel.queue:
            channel.waiting = trio.Event()
            with trio.move_on_after(30):
                await channel.waiting.wait()
            channel.waiting = None
        batch = channel.queue[:channel.max_notifications]
        del channel.queue[:len(batch)]
        if not batch:
            return 200, [], b'{"notificationList":null}', None
        if len(batch) == 1:
            return 200, [], b'{"notificationList":' + batch[0] + b"}", None
        return 200, [], b'{"notificationList":[' + b",".join(batch) + b"]}", None

    async def websocket(self, stream: trio.SocketStream, conn: h11.Connection,
                        request: h11.Request, headers: dict[bytes, bytes]) -> None:
        while conn.next_event() is not h11.PAUSED:
            pass
        parts = request.target.decode().strip("/").split("/")
        channel = self.channels.get(parts[4]) if len(parts) == 6 else None
        if channel is None:
            await stream.send_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            return
        accept = base64.b64encode(hashlib.sha1(headers[b"sec-websocket-key"] + GUID).digest())
        await stream.send_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                              f"\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n".encode())
        channel.stream = stream
        ws = Connection(ConnectionType.SERVER)
        if conn.trailing_data[0]:
            ws.receive_data(conn.trailing_data[0])
        while True:
            for event in ws.events():
                if isinstance(event, Ping):
                    await channel.write(ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    channel.stream = None
                    return
                elif isinstance(event, TextMessage):
                    pass  # connCheck / connAck: nothing to do in a benchmark
            data = await stream.receive_some(65536)
            if not data:
                channel.stream = None
                return
            ws.receive_data(data)


async def main(port: int) -> None:
    server = Server(port)
    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1", backlog=4096)
    print(f"baseline (trio + h11 + wsproto) on http://127.0.0.1:{port}", flush=True)
    await trio.serve_listeners(server.connection, listeners)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_trio")
    parser.add_argument("--port", type=int, default=8091)
    trio.run(main, parser.parse_args().port)
