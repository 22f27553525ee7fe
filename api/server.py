"""hypercorn's trio server, with each connection guarded, run as the ``http`` actor.

hypercorn's own ``serve`` runs every connection handler in one nursery, so an exception in one
connection (hypercorn issue 225: an upgrade request with trailing bytes ends in h11's
``LocalProtocolError``) cancels the whole server. :class:`GuardedTCPServer` catches such an
error, logs it and closes that connection only; :func:`serve_http` is hypercorn's
``worker_serve`` for plain TCP listeners with that handler.

The hot requests do not go through the ASGI app: the guarded server reads the request head
first and hands a channel's WebSocket upgrade (:mod:`api.channel_socket`, which then owns the
connection and writes frames straight to its socket) and callback POSTs
(:mod:`api.fast_http`), and long polls, to ``intercept``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Protocol

import h11
import trio
from hypercorn.config import Config
from hypercorn.events import Closed, RawData
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import MAX_RECV, TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import ShutdownError, raise_shutdown, repr_socket_addr, wrap_app

from actors import Actor, ActorState

log = logging.getLogger("tidings.http")


class Intercept(Protocol):
    """Connections served before (or instead of) the ASGI app."""

    def claims(self, head: bytes) -> bool:
        """Is this request (its first line) for :meth:`serve`?"""
        ...

    async def serve(self, stream: trio.SocketStream, head: bytes) -> bytes | None:
        """Serve the connection from this request head on; return the bytes hypercorn must
        take from here, or None when the connection is done."""
        ...


#: the longest request head read before deciding who serves the connection
HEAD_LIMIT = 16384


class GuardedTCPServer(TCPServer):
    """One connection. A protocol error in it closes it and nothing else."""

    def __init__(self, *args: Any, intercept: Intercept | None = None) -> None:
        super().__init__(*args)
        self.intercept = intercept
        self._prefetched = b""  # what run() read before hypercorn set the connection up

    async def _read_data(self) -> None:
        """hypercorn's read loop, but a request that starts while hypercorn is between
        requests (the first one, or the next on a keep-alive connection) and that the
        intercept claims is served by the intercept."""
        if self._prefetched:
            prefetched, self._prefetched = self._prefetched, b""
            await self.protocol.handle(RawData(prefetched))
        while True:
            try:
                with trio.fail_after(self.config.read_timeout or math.inf):
                    data = await self.stream.receive_some(MAX_RECV)
            except (trio.ClosedResourceError, trio.BrokenResourceError, trio.TooSlowError):
                break
            if data and self.intercept is not None and self._between_requests():
                await self.idle_task.stop()  # the intercept keeps its own time
                rest = await self._intercepted(bytes(data), self.intercept)
                if rest is None:  # the intercept is done with the connection: close it now
                    await self._close()  # (not when hypercorn's tasks for it have ended)
                    break
                data = rest
            await self.protocol.handle(RawData(bytes(data)))
            if data == b"":
                break
        await self.protocol.handle(Closed())

    def _between_requests(self) -> bool:
        protocol = getattr(self.protocol, "protocol", None)
        if not isinstance(protocol, H11Protocol) or protocol.stream is not None:
            return False
        connection = protocol.connection
        return (isinstance(connection, h11.Connection) and connection.our_state is h11.IDLE
                and connection.their_state is h11.IDLE
                and not len(getattr(connection, "_receive_buffer", b"?")))

    async def _intercepted(self, head: bytes, intercept: Intercept) -> bytes | None:
        """Read the request head; if claimed, the intercept serves it. Returns what hypercorn
        reads next (b"" at the end of the stream), or None when the connection is done."""
        with trio.move_on_after(self.config.keep_alive_timeout):
            while b"\r\n\r\n" not in head and len(head) < HEAD_LIMIT:
                if b"\r\n" in head and not intercept.claims(head):
                    return head  # not ours
                try:
                    data = await self.stream.receive_some(MAX_RECV)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                if not data:
                    return None
                head += data
        if b"\r\n\r\n" not in head or not intercept.claims(head):
            return head
        return await intercept.serve(self.stream, head)  # type: ignore[arg-type]

    async def run(self) -> None:
        try:
            if self.intercept is not None:  # the first request, before hypercorn sets up
                data = b""  # a client silent for the keep-alive timeout is closed, as hypercorn
                with trio.move_on_after(self.config.keep_alive_timeout):  # closes one
                    try:
                        data = bytes(await self.stream.receive_some(MAX_RECV))
                    except (trio.ClosedResourceError, trio.BrokenResourceError):
                        pass
                rest = await self._intercepted(bytes(data), self.intercept) if data else None
                if rest is None:
                    await self._close()
                    return
                self._prefetched = rest
            await super().run()
        except Exception as error:  # an ExceptionGroup from hypercorn's per-connection nursery
            log.warning("closed a connection after a protocol error: %r", _leaf(error))
            with trio.CancelScope(shield=True):
                await self.stream.aclose()


def _leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


async def serve_http(
    app: Any,
    config: Config,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    intercept: Intercept | None = None,
) -> None:
    """Serve ``app`` until ``shutdown_trigger`` returns; reports the bound URLs when listening."""
    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
    lifespan_state: dict[str, Any] = {}
    lifespan = Lifespan(wrapped, config, lifespan_state)
    context = WorkerContext(None)

    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as connections:
            sockets = config.create_sockets()
            listeners = []
            binds = []
            for sock in sockets.insecure_sockets:
                sock.listen(config.backlog)
                listeners.append(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))
                binds.append(f"http://{repr_socket_addr(sock.family, sock.getsockname())}")
            task_status.started(binds)
            handler = partial(
                GuardedTCPServer, wrapped, config, context, ConnectionState(lifespan_state.copy()),
                intercept=intercept,
            )
            try:
                async with trio.open_nursery() as server:
                    server.start_soon(raise_shutdown, shutdown_trigger)
                    server.start_soon(partial(
                        trio.serve_listeners, handler, listeners, handler_nursery=connections
                    ))
            except BaseExceptionGroup as group:
                _, others = group.split(ShutdownError)
                if others is not None:
                    raise others from None
            finally:
                await context.terminated.set()
                connections.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()


class HttpServer(Actor):
    """The ``http`` actor: hypercorn serving the Quart app.

    It takes no messages; closing its mailbox is the graceful shutdown signal (listeners close,
    open connections get ``graceful_timeout`` to finish, then are cancelled).
    """

    kind = "http"
    mailbox_capacity = 1

    def __init__(self, app: Any, config: Config, *, name: str = "http",
                 on_bound: Callable[[list[str]], None] | None = None,
                 on_stopping: Callable[[], None] | None = None,
                 intercept: Intercept | None = None) -> None:
        super().__init__(name)
        self.app = app
        self.config = config
        self.binds: list[str] = []
        self._on_bound = on_bound
        self._on_stopping = on_stopping
        self.intercept = intercept
        self._stop = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        self._stop = trio.Event()

        async def serve(*, task_status: trio.TaskStatus[list[str]]) -> None:
            await serve_http(self.app, self.config, shutdown_trigger=self._stop.wait,
                             task_status=task_status, intercept=self.intercept)

        async with trio.open_nursery() as nursery:
            self.binds = await nursery.start(serve)
            if self._on_bound is not None:
                self._on_bound(self.binds)
            self.state = ActorState.RUNNING
            self.stats.started_at = trio.current_time()
            task_status.started(self.binds)

    def close_mailbox(self) -> None:
        super().close_mailbox()
        if self._on_stopping is not None and not self._stop.is_set():
            self._on_stopping()  # long-lived connections end now, not at the grace deadline
        self._stop.set()

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "listening": self.binds}
