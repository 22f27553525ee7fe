"""What :class:`api.server.GuardedTCPServer` serves before the ASGI app: channel WebSockets
(:mod:`api.channel_socket`), callback POSTs and long polls (:mod:`api.fast_http`)."""

from __future__ import annotations

import trio

from actors.router import Router

from . import channel_socket, fast_http


class FastPaths:
    def __init__(self, router: Router, *, keep_alive: float) -> None:
        self.router = router
        self.keep_alive = keep_alive
        self.idle = fast_http.Idle()

    def stopping(self) -> None:
        """The server is stopping: connections waiting for a next request close now."""
        self.idle.close_all()

    def claims(self, head: bytes) -> bool:
        return channel_socket.is_channel_socket(head) or fast_http.claims(head)

    async def serve(self, stream: trio.SocketStream, head: bytes) -> bytes | None:
        if channel_socket.is_channel_socket(head):
            await channel_socket.serve(self.router, stream, head)
            return None
        return await fast_http.serve(self.router, stream, head, self.keep_alive, self.idle)
