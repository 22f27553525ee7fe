"""The requests served before the ASGI app (callback POSTs, long polls, new chat messages,
channel WebSockets) behave as the app would, on real keep-alive connections: mixed with other
requests, pipelined, with errors answered by the app, and in order."""

from __future__ import annotations

import json
import re
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from tests.channel_helpers import CHANNELS, D7_WEBSOCKETS, create, path_of, websocket
from tests.nms_helpers import BOX, chat

NOTE = b'{"chatNotification":{"n":%d}}'


async def _ws_channel(client):
    body = {"notificationChannel": {"channelType": "WebSockets",
                                    "channelData": {"maxNotifications": "10"}}}
    channel = await create(client, body)
    return channel["channelData"]["channelURL"], path_of(channel["callbackURL"])


def _post(path: str, body: bytes, *, close: bool = False, content_type: str = "application/json",
          accept: str = "application/json") -> bytes:
    extra = "Connection: close\r\n" if close else ""
    return (f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n"
            f"Accept: {accept}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body


class Responses:
    """Reads HTTP/1.1 responses (Content-Length bodies) off one raw connection."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream, self.buffer = stream, b""

    async def next(self) -> tuple[int, bytes]:
        status, _, body = await self.answer()
        return status, body

    async def answer(self) -> tuple[int, dict[str, str], bytes]:
        """Status, headers (lower-case names) and body of the next response."""
        while b"\r\n\r\n" not in self.buffer:
            data = await self.stream.receive_some(65536)
            assert data, "the server closed the connection"
            self.buffer += data
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        headers = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", 0))
        while len(rest) < length:
            rest += await self.stream.receive_some(65536)
        self.buffer = rest[length:]
        return status, headers, rest[:length]

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


# -- new chat messages ---------------------------------------------------------------------
#: an Accept that asks for JSON too, but is not one the fast path takes: the Quart view answers
FOR_THE_VIEW = "application/json, text/html;q=0.1"


def _same_shape(body: bytes) -> object:
    """The answer with generated ids, sequence numbers and dates made alike."""
    text = re.sub(rb"\b([of])[0-9a-f]{16}\b", rb"\1<id>", body)
    return json.loads(text) if text.strip() else None


async def _create_twice(stream, responses, body: bytes, path: str = f"{BOX}/objects"):
    """The same request answered by the fast path, then by the view."""
    await stream.send_all(_post(path, body))
    fast = await responses.answer()
    await stream.send_all(_post(path, body, accept=FOR_THE_VIEW))
    view = await responses.answer()
    return fast, view


@pytest.mark.parametrize("case", [
    "in a folder by path", "at the root", "in a folder by URL", "in no such folder",
    "in another box's folder", "at a path that is not one", "without To", "malformed JSON",
    "with another root", "with flags that are not strings"])
async def test_a_new_chat_message_is_answered_by_the_fast_path_as_the_view_answers_it(
        client, case):
    """Same status, Content-Type, Location and body, errors included; what each created is
    stored and reported alike."""
    async with await trio.open_tcp_stream("127.0.0.1", _port(client)) as stream:
        responses = Responses(stream)
        await stream.send_all(_post(f"{BOX}/objects", json.dumps(chat("seed")).encode()))
        status, headers, seeded = await responses.answer()
        assert status == 201
        folder = (await client.get(path_of(headers["location"]))).json()["object"]["parentFolder"]
        message = chat("hello")
        if case == "at the root":
            del message["object"]["parentFolderPath"]
        elif case == "in a folder by URL":
            message["object"] = {**message["object"], "parentFolder": folder}
            del message["object"]["parentFolderPath"]
        elif case == "in no such folder":
            message["object"]["parentFolder"] = folder.rsplit("/", 1)[0] + "/f0123456789abcdef"
        elif case == "in another box's folder":
            message["object"]["parentFolder"] = folder.replace("tel%3A%2B", "tel%3A%2B1")
        elif case == "at a path that is not one":
            message["object"]["parentFolderPath"] = "conversations"
        elif case == "without To":
            message["object"]["attributes"]["attribute"].pop(1)
        elif case == "with flags that are not strings":
            message["object"]["flags"] = {"flag": [1, 2]}
        body = json.dumps(message).encode()
        if case == "malformed JSON":
            body = body[:-3]
        elif case == "with another root":
            body = json.dumps({"chatMessage": message["object"]}).encode()
        fast, view = await _create_twice(stream, responses, body)
    (fast_status, fast_headers, fast_body), (view_status, view_headers, view_body) = fast, view
    assert fast_status == view_status
    assert fast_headers["content-type"] == view_headers["content-type"]
    assert _same_shape(fast_body) == _same_shape(view_body)
    assert ("location" in fast_headers) == ("location" in view_headers) == (fast_status == 201)
    if fast_status == 201:
        assert fast_headers["server"] == "tidings"  # it was the fast path
        fast_object = (await client.get(path_of(fast_headers["location"]))).json()["object"]
        view_object = (await client.get(path_of(view_headers["location"]))).json()["object"]
        for stored in (fast_object, view_object):
            del stored["resourceURL"], stored["lastModSeq"], stored["path"]
            (date,) = [a for a in stored["attributes"]["attribute"] if a["name"] == "Date"]
            date["value"] = ["<the second it came>"]  # (the two may straddle a second)
        assert fast_object == view_object
        assert fast_object["attributes"]["attribute"][2] == {"name": "TextContent",
                                                             "value": ["hello"]}
    else:
        assert fast_status in (400, 415)
        error = json.loads(fast_body)["requestError"]["serviceException"]
        assert error["messageId"] == "SVC0002"


async def test_a_chat_message_created_on_a_keep_alive_connection_reaches_the_subscriber(client):
    channel = await create(client, D7_WEBSOCKETS)
    subscription = {"nmsSubscription": {"callbackReference": {
        "notifyURL": channel["callbackURL"]}}}
    assert (await client.post(f"{BOX}/subscriptions", json=subscription)).status_code == 201
    async with websocket(channel["channelData"]["channelURL"]) as ws, \
            await trio.open_tcp_stream("127.0.0.1", _port(client)) as stream:
        responses = Responses(stream)
        urls = []
        await stream.send_all(b"".join(_post(f"{BOX}/objects", json.dumps(chat(f"m{n}")).encode())
                                       for n in range(3)))
        for _ in range(3):
            status, headers, body = await responses.answer()
            assert status == 201
            assert json.loads(body)["reference"]["resourceURL"] == headers["location"]
            urls.append(headers["location"])
        reported: list[str] = []
        with trio.fail_after(10):
            while len(reported) < 3:
                frame = json.loads(await ws.get_message())["notificationList"]
                for item in frame if isinstance(frame, list) else [frame]:
                    for event in item["nmsEventList"]["nmsEvent"]:
                        ((kind, value),) = event.items()
                        if "/objects/" in value["resourceURL"]:  # (its folders come first)
                            reported.append(value["resourceURL"])
    assert reported == urls


async def test_a_store_failure_on_the_fast_path_is_a_500_request_error_and_the_next_works(
        client, monkeypatch):
    store = client.services.store
    write = store.write

    async def failing(*args, **kwargs):
        raise RuntimeError("the disk is full")

    async with await trio.open_tcp_stream("127.0.0.1", _port(client)) as stream:
        responses = Responses(stream)
        monkeypatch.setattr(store, "write", failing)
        await stream.send_all(_post(f"{BOX}/objects", json.dumps(chat("lost")).encode()))
        status, headers, body = await responses.answer()
        assert status == 500
        assert headers["content-type"] == "application/json; charset=utf-8"
        assert json.loads(body)["requestError"]["serviceException"]["messageId"] == "SVC0001"
        monkeypatch.setattr(store, "write", write)
        await stream.send_all(_post(f"{BOX}/objects", json.dumps(chat("kept")).encode()))
        assert (await responses.next())[0] == 201
    listed = await client.post(f"{BOX}/objects/operations/search", json={"selectionCriteria": {
        "maxEntries": "10"}})
    texts = [a["value"] for o in listed.json()["objectList"]["object"]
             for a in o["attributes"]["attribute"] if a["name"] == "TextContent"]
    assert texts == [["kept"]]


async def test_a_channel_server_does_not_take_new_chat_messages(tmp_path):
    from api.runtime import Settings, open_tidings
    from tests.servers import http_client

    settings = Settings(port=0, database_url=f"sqlite:///{tmp_path / 't.db'}", role="channels")
    async with await_server(settings, open_tidings, http_client) as (client, port), \
            await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(_post(f"{BOX}/objects", json.dumps(chat("nowhere")).encode()))
        status, headers, body = await Responses(stream).answer()
    assert status == 404
    assert headers["server"] != "tidings"
