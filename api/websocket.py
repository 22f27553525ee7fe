"""The WebSocket of a WebSockets channel (spec Appendix I).

Each connection is two sibling tasks in one nursery: the reader (connCheck / connAck from the
client) and the writer (frames from the channel actor). The channel closes a connection by
cancelling its scope with a close code: takeover (4001), deletion (4000), expiry (4002),
unanswered connCheck (4003), too slow (4004).
"""

from __future__ import annotations

import json

import trio
from quart import Blueprint, Response, websocket

from actors import ActorError
from actors.channel import (
    Attach,
    ChannelActor,
    ClientConnAck,
    ClientConnCheck,
    Detach,
    Session,
)

from .codecs.notifications import client_message
from .context import services
from .errors import not_found, service_error

SUBPROTOCOL = "notificationchannel-netapi-rest.openmobilealliance.org"

blueprint = Blueprint("channel_ws", __name__, url_prefix="/notificationchannel/v1")


def _refuse(status: int, body: dict[str, object]) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


@blueprint.websocket("/<user_id>/channels/<channel_id>/ws")
async def channel_socket(user_id: str, channel_id: str) -> Response | None:
    actor = services().router.channel_for(user_id, channel_id)
    if actor is None or actor.info.channel_type != "WebSockets":
        return _refuse(404, not_found("channelId").body())
    if SUBPROTOCOL not in websocket.requested_subprotocols:
        return _refuse(400, service_error(
            400, f"the WebSocket handshake must offer the subprotocol {SUBPROTOCOL}").body())
    await websocket.accept(subprotocol=SUBPROTOCOL)
    session = Session()
    try:
        await actor.ref.ask(lambda reply: Attach(session, reply), timeout=10)
    except (ActorError, Exception):  # noqa: BLE001 - gone or busy: the client reconnects
        await websocket.close(4000, "channel gone")
        return None
    try:
        with session.scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_read, actor, session)
                nursery.start_soon(_write, actor, session)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            await actor.ref.tell(Detach(session))
    if session.close_code is not None:
        await websocket.close(session.close_code, session.close_reason)
    return None


async def _read(actor: ChannelActor, session: Session) -> None:
    while True:
        message = await websocket.receive()
        root, fmt = client_message(message)
        session.fmt = fmt
        if root == "connCheck":
            await actor.ref.tell(ClientConnCheck(session))
        elif root == "connAck":
            await actor.ref.tell(ClientConnAck(session))


async def _write(actor: ChannelActor, session: Session) -> None:
    async for frame in session.frames:
        await websocket.send(frame.text)
        if frame.batch:
            actor.sent(session)
