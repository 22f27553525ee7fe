"""The null server: shows the load generator's own ceiling.

A WebSocket handshake to ``/ws/...`` is answered 101 and then the connection is flooded with a
pre-built buffer of frames (one syscall per ~100 frames); any other request is answered with a
canned ``204``. The server does next to nothing per frame or request, so what the load generator
counts against it is the load generator's own limit.

    python -m bench.nullserver --port 8093
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import selectors
import socket

from api.channel_socket import SUBPROTOCOL, frame

from .baseline_trio import GUID
from .loadgen import fake_event_list

FLOOD = b"".join(frame(fake_event_list(f"o{i:016x}")) for i in range(100))
NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


def main(port: int) -> None:
    selector = selectors.DefaultSelector()
    listener = socket.create_server(("127.0.0.1", port), backlog=4096)
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ, None)
    print(f"null server on http://127.0.0.1:{port}", flush=True)
    flooding: set[socket.socket] = set()
    while True:
        for key, events in selector.select():
            sock = key.fileobj
            if key.data is None:
                client, _ = listener.accept()
                client.setblocking(False)
                selector.register(client, selectors.EVENT_READ, "client")
                continue
            assert isinstance(sock, socket.socket)
            if events & selectors.EVENT_WRITE:
                try:
                    sock.send(FLOOD)
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    selector.unregister(sock)
                    sock.close()
                continue
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                selector.unregister(sock)
                sock.close()
                flooding.discard(sock)
                continue
            if data.startswith(b"GET /ws/"):
                key_line = [line for line in data.split(b"\r\n")
                            if line.lower().startswith(b"sec-websocket-key:")][0]
                accept = base64.b64encode(hashlib.sha1(key_line.split(b":", 1)[1].strip()
                                                       + GUID).digest())
                sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                             f"\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n".encode())
                flooding.add(sock)
                selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, "client")
            elif sock not in flooding:
                sock.send(NO_CONTENT * data.count(b"\r\n\r\n"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.nullserver")
    parser.add_argument("--port", type=int, default=8093)
    main(parser.parse_args().port)
