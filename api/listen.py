"""``tidings listen CHANNEL_URL``: a small WebSocket client for a Notification Channel.

It offers the OMA subprotocol, prints every frame on its own line, answers the server's
connCheck with a connAck, and exits when the server closes the channel.
"""

from __future__ import annotations

import sys

import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    open_websocket_url,
)

from .channel_socket import SUBPROTOCOL
from .codecs.notifications import client_message


async def listen(url: str, *, count: int | None = None) -> int:
    """Print notifications from ``url``; after ``count`` frames (if given) return 0."""
    async with open_websocket_url(url, subprotocols=[SUBPROTOCOL]) as ws:
        print(f"connected to {url} ({ws.subprotocol})", file=sys.stderr, flush=True)
        received = 0
        try:
            while count is None or received < count:
                message = await ws.get_message()
                root, fmt = client_message(message)
                if root == "connCheck":
                    await ws.send_message('{"connAck": {}}' if fmt == "json" else
                                          f'<nc:connAck xmlns:nc="{_NC}"/>')
                    continue
                print(message, flush=True)
                received += 1
        except ConnectionClosed as closed:
            code = closed.reason.code if closed.reason else 1006
            text = (closed.reason.reason if closed.reason else None) or ""
            print(f"closed by the server: {code} {text}".rstrip(), file=sys.stderr, flush=True)
            return 0 if code in (1000, 1001, 4000, 4002) else 1
    return 0


_NC = "urn:oma:xml:rest:netapi:notificationchannel:1"


def run(url: str, count: int | None = None) -> int:
    try:
        return trio.run(lambda: listen(url, count=count))
    except KeyboardInterrupt:
        return 0
    except ConnectionRejected as rejected:
        print(f"{url} refused the WebSocket: HTTP {rejected.status_code} "
              f"{(rejected.body or b'').decode(errors='replace')}", file=sys.stderr)
        return 1
    except (HandshakeError, OSError) as error:
        cause = error.__cause__ or error
        print(f"cannot connect to {url}: {cause}", file=sys.stderr)
        return 1
