"""What :class:`api.server.GuardedTCPServer` serves before the ASGI app: channel WebSockets
(:mod:`api.channel_socket`), callback POSTs, long polls and new chat messages
(:mod:`api.fast_http`)."""

from __future__ import annotations

import trio

from actors.router import Router
from actors.store import Store

from . import channel_socket, fast_http
from .codecs.nms import Urls


class FastPaths:
    """``router``: this server serves channels; ``store``: it serves the message store."""

    def __init__(self, router: Router | None, *, store: tuple[Store, Urls] | None = None,
                 keep_alive: float) -> None:
        self.router = router
        self.routes = fast_http.Routes(router, store)
        self.keep_alive = keep_alive
        self.idle = fast_http.Idle()

    def stopping(self) -> None:
        """The server is stopping: connections waiting for a next request close now."""
        self.idle.close_all()

    def claims(self, head: bytes) -> bool:
        return ((self.router is not None and channel_socket.is_channel_socket(head))
                or self.routes.match(head) is not None)

    async def serve(self, stream: trio.SocketStream, head: bytes) -> bytes | None:
        if self.router is not None and channel_socket.is_channel_socket(head):
            await channel_socket.serve(self.router, stream, head)
            return None
        return await fast_http.serve(self.routes, stream, head, self.keep_alive, self.idle)
