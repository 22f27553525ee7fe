"""Baseline 2: the broadcast server a Python user would write with the ``websockets`` library.

Subscribers connect to ``/ws/<name>``; a publisher connects to ``/pub`` and sends
``B <id>\\n<payload>`` (broadcast the payload to every subscriber) or ``T <name> <id>\\n<body>``
(send ``{"notificationList":<body>}`` to one subscriber); each is answered ``ok <id>``.
``websockets`` serves WebSockets only, so this baseline has no HTTP API: no long polling, no
store, no replay.

    python -m bench.baseline_websockets --port 8092
"""

from __future__ import annotations

import argparse
import asyncio

from websockets.asyncio.server import ServerConnection, broadcast, serve

SUBPROTOCOL = "notificationchannel-netapi-rest.openmobilealliance.org"
subscribers: dict[str, ServerConnection] = {}


async def handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request is not None else ""
    if path == "/pub":
        async for message in ws:
            text = message if isinstance(message, str) else message.decode()
            head, _, payload = text.partition("\n")
            parts = head.split(" ")
            if parts[0] == "B":
                broadcast(subscribers.values(), payload)
                await ws.send(f"ok {parts[1]}")
            else:
                target = subscribers.get(parts[1])
                if target is not None:
                    await target.send('{"notificationList":' + payload + "}")
                await ws.send(f"ok {parts[2]}")
        return
    name = path.rsplit("/", 1)[-1]
    subscribers[name] = ws
    try:
        await ws.wait_closed()
    finally:
        subscribers.pop(name, None)


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                     max_queue=None, backlog=4096) as server:
        print(f"baseline (websockets) on ws://127.0.0.1:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_websockets")
    parser.add_argument("--port", type=int, default=8092)
    asyncio.run(main(parser.parse_args().port))
