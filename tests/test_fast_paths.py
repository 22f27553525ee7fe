"""The requests served before the ASGI app (callback POSTs, channel WebSockets) behave as the
app would, on real keep-alive connections: mixed with other requests, pipelined, with errors
answered by the app, and in order."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager

import trio
import trio.testing

from tests.channel_helpers import CHANNELS, create, path_of, websocket

NOTE = b'{"chatNotification":{"n":%d}}'


async def _ws_channel(client):
    body = {"notificationChannel": {"channelType": "WebSockets",
                                    "channelData": {"maxNotifications": "10"}}}
    channel = await create(client, body)
    return channel["channelData"]["channelURL"], path_of(channel["callbackURL"])


def _post(path: str, body: bytes, *, close: bool = False, content_type: str = "application/json",
          ) -> bytes:
    extra = "Connection: close\r\n" if close else ""
    return (f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n"
            f"Accept: application/json\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body


class Responses:
    """Reads HTTP/1.1 responses (Content-Length bodies) off one raw connection."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream, self.buffer = stream, b""

    async def next(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self.buffer:
            data = await self.stream.receive_some(65536)
            assert data, "the server closed the connection"
            self.buffer += data
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += await self.stream.receive_some(65536)
        self.buffer = rest[length:]
        return status, rest[:length]

    async def closed(self) -> bool:
        with trio.move_on_after(5):
            return await self.stream.receive_some(1) == b""
        return False


async def _received(ws, count: int) -> list[int]:
    numbers: list[int] = []
    with trio.fail_after(10):
        while len(numbers) < count:
            items = json.loads(await ws.get_message())["notificationList"]
            for item in items if isinstance(items, list) else [items]:
                numbers.append(item["chatNotification"]["n"])
    return numbers


@asynccontextmanager
async def await_server(settings, open_tidings, http_client):
    async with open_tidings(settings) as services, http_client(services) as client:
        client.services = services
        yield client, int(services.bound_urls[0].rsplit(":", 1)[1])


def _port(client) -> int:
    return int(client.services.bound_urls[0].rsplit(":", 1)[1])


async def test_callbacks_mixed_with_other_requests_on_one_keep_alive_connection(client):
    url, callback = await _ws_channel(client)
    async with websocket(url) as ws, await trio.open_tcp_stream("127.0.0.1",
                                                                 _port(client)) as stream:
        responses = Responses(stream)
        await stream.send_all(_post(CHANNELS, json.dumps({"notificationChannel": {
            "channelType": "LongPolling"}}).encode()))
        assert (await responses.next())[0] == 201
        await stream.send_all(_post(callback, NOTE % 1))
        assert await responses.next() == (204, b"")
        await stream.send_all(f"GET {CHANNELS} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        status, body = await responses.next()
        assert status == 200
        assert b"notificationChannelList" in body
        await stream.send_all(_post(callback, NOTE % 2))
        assert await responses.next() == (204, b"")
        assert await _received(ws, 2) == [1, 2]


async def test_connection_close_on_a_callback_is_honoured(client):
    url, callback = await _ws_channel(client)
    async with websocket(url) as ws, await trio.open_tcp_stream("127.0.0.1",
                                                                 _port(client)) as stream:
        responses = Responses(stream)
        await stream.send_all(_post(callback, NOTE % 1, close=True))
        assert await responses.next() == (204, b"")
        assert await responses.closed()
        assert await _received(ws, 1) == [1]


async def test_pipelined_callbacks_are_answered_and_delivered_in_order(client):
    url, callback = await _ws_channel(client)
    async with websocket(url) as ws, await trio.open_tcp_stream("127.0.0.1",
                                                                 _port(client)) as stream:
        responses = Responses(stream)
        await stream.send_all(b"".join(_post(callback, NOTE % n) for n in range(1, 6)))
        assert [await responses.next() for _ in range(5)] == [(204, b"")] * 5
        assert await _received(ws, 5) == [1, 2, 3, 4, 5]


async def test_a_bad_callback_on_a_fast_connection_gets_the_apps_error_and_the_next_works(
        client):
    url, callback = await _ws_channel(client)
    async with websocket(url) as ws, await trio.open_tcp_stream("127.0.0.1",
                                                                 _port(client)) as stream:
        responses = Responses(stream)
        await stream.send_all(_post(callback, NOTE % 1))
        assert await responses.next() == (204, b"")
        await stream.send_all(_post(callback, b'{"broken'))
        status, body = await responses.next()
        assert status == 400
        assert json.loads(body)["requestError"]["serviceException"]["messageId"] == "SVC0002"
        await stream.send_all(_post(callback, b"<a/>", content_type="text/plain"))
        assert (await responses.next())[0] == 415
        await stream.send_all(_post("/notificationchannel/v1/callbacks/nope", NOTE % 9))
        assert (await responses.next())[0] == 404
        await stream.send_all(_post(callback, NOTE % 2))
        assert await responses.next() == (204, b"")
        assert await _received(ws, 2) == [1, 2]


async def test_a_chunked_callback_body_is_taken_too(client):
    url, callback = await _ws_channel(client)
    body = NOTE % 7
    async with websocket(url) as ws, await trio.open_tcp_stream("127.0.0.1",
                                                                 _port(client)) as stream:
        await stream.send_all(
            f"POST {callback} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\n\r\n{len(body):x}\r\n".encode() + body
            + b"\r\n0\r\n\r\n")
        assert (await Responses(stream).next())[0] == 204
        assert await _received(ws, 1) == [7]


async def test_a_full_channel_answers_503_with_retry_after_on_the_fast_path(client):
    _, callback = await _ws_channel(client)  # nobody connected: notifications queue up
    limit = client.services.settings.channel_policy.queue_limit
    async with await trio.open_tcp_stream("127.0.0.1", _port(client)) as stream:
        responses = Responses(stream)
        for n in range(limit):
            await stream.send_all(_post(callback, NOTE % n))
            assert (await responses.next())[0] == 204
        await stream.send_all(_post(callback, NOTE % limit))
        status, body = await responses.next()
    assert status == 503
    assert json.loads(body)["requestError"]["serviceException"]["messageId"] == "SVC0001"


async def _lp_channel(client, wait: int = 30):
    body = {"notificationChannel": {"channelType": "LongPolling", "channelData": {
        "maxNotifications": "10", "maxWaitTime": str(wait)}}}
    channel = await create(client, body)
    channel_id = channel["resourceURL"].rsplit("/", 1)[1]
    actor = client.services.router.channel_for("tel:+19585550100", channel_id)
    return path_of(channel["channelData"]["channelURL"]), path_of(channel["callbackURL"]), actor


async def _until(condition) -> None:
    with trio.fail_after(10):
        while not condition():
            await trio.testing.wait_all_tasks_blocked(cushion=0.01)


async def test_long_polls_on_one_keep_alive_connection_get_each_notification_once(client):
    poll, callback, actor = await _lp_channel(client)
    async with await trio.open_tcp_stream("127.0.0.1", _port(client)) as stream:
        responses = Responses(stream)
        got: list[int] = []
        for n in range(1, 4):
            await stream.send_all(_post(poll, b""))
            await _until(lambda: actor.poll is not None)
            assert (await client.post(callback, content=NOTE % n, headers={
                "Content-Type": "application/json"})).status_code == 204
            status, body = await responses.next()
            assert status == 200
            got.append(json.loads(body)["notificationList"]["chatNotification"]["n"])
    assert got == [1, 2, 3]


async def test_a_poller_that_leaves_loses_nothing(client):
    poll, callback, actor = await _lp_channel(client)
    async with await trio.open_tcp_stream("127.0.0.1", _port(client)) as stream:
        await stream.send_all(_post(poll, b""))
        await _until(lambda: actor.poll is not None)
    # the client is gone; a notification accepted now waits for the next poll
    assert (await client.post(callback, content=NOTE % 5, headers={
        "Content-Type": "application/json"})).status_code == 204
    answer = await client.post(poll, json={"longPollingRequestParameters": None})
    assert answer.json() == {"notificationList": {"chatNotification": {"n": 5}}}


async def test_a_second_simultaneous_poll_replaces_the_first_with_409(client):
    poll, callback, actor = await _lp_channel(client)
    async with await trio.open_tcp_stream("127.0.0.1", _port(client)) as first:
        await first.send_all(_post(poll, b""))
        await _until(lambda: actor.poll is not None)
        waiting = actor.poll
        async with trio.open_nursery() as nursery:
            second: list = []

            async def poll_again() -> None:
                second.append(await client.post(poll, json={
                    "longPollingRequestParameters": None}))

            nursery.start_soon(poll_again)
            status, body = await Responses(first).next()
            assert status == 409
            assert json.loads(body)["requestError"]["serviceException"]["messageId"] == "SVC1012"
            await _until(lambda: actor.poll is not None and actor.poll is not waiting)
            assert (await client.post(callback, content=NOTE % 8, headers={
                "Content-Type": "application/json"})).status_code == 204
    assert second[0].json() == {"notificationList": {"chatNotification": {"n": 8}}}


async def test_stopping_the_server_closes_idle_fast_path_connections_at_once(tmp_path):
    """An enabler's keep-alive connection, idle after its callback POSTs, does not hold up
    Ctrl+C for the keep-alive timeout or the shutdown grace period (5 s each)."""
    from api.runtime import Settings, open_tidings
    from tests.servers import http_client

    settings = Settings(port=0, database_url=f"sqlite:///{tmp_path / 't.db'}")
    async with await_server(settings, open_tidings, http_client) as (client, port):
        _, callback = await _ws_channel(client)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(_post(callback, NOTE % 1))
        assert await Responses(stream).next() == (204, b"")
        stopped_at = trio.current_time()
    assert trio.current_time() - stopped_at < 2.5
    assert await Responses(stream).closed()
    await stream.aclose()
