"""What :class:`api.server.GuardedTCPServer` serves before the ASGI app: channel WebSockets
(:mod:`api.channel_socket`) and callback POSTs (:mod:`api.callback_path`)."""

from __future__ import annotations

import trio

from actors.router import Router

from . import callback_path, channel_socket


class FastPaths:
    def __init__(self, router: Router, *, keep_alive: float) -> None:
        self.router = router
        self.keep_alive = keep_alive

    def claims(self, head: bytes) -> bool:
        return channel_socket.is_channel_socket(head) or callback_path.is_callback(head)

    async def serve(self, stream: trio.SocketStream, head: bytes) -> bytes | None:
        if channel_socket.is_channel_socket(head):
            await channel_socket.serve(self.router, stream, head)
            return None
        return await callback_path.serve(self.router, stream, head, self.keep_alive)
