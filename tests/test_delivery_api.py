"""Delivery on a real hypercorn: callbackURL → long poll (6.3.5, D.12–D.14) and → WebSocket
(Appendix I) with trio-websocket, connCheck/connAck, takeover, deletion."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
import trio.testing
from lxml import etree
from trio_websocket import ConnectionClosed

from actors.channel import ChannelPolicy
from api.runtime import Settings, open_tidings
from tests.channel_helpers import (
    CHANNELS,
    D2_LONG_POLLING,
    NC,
    PRESENCE_JSON,
    PRESENCE_XML,
    SUBPROTOCOL,
    create,
    error_of,
    inbound,
    path_of,
    websocket,
)
from tests.servers import http_client

POLL_BODY = {"longPollingRequestParameters": None}


@pytest.fixture
async def client(tmp_path):
    settings = Settings(port=0, database_url=f"sqlite:///{tmp_path / 'tidings.db'}",
                        channel_policy=ChannelPolicy(queue_limit=5, default_max_wait=1))
    async with open_tidings(settings) as services, http_client(services) as client:
        client.services = services  # type: ignore[attr-defined]
        yield client


async def _long_polling(client, max_notifications: str = "1", max_wait: str = "1"):
    body = {"notificationChannel": {"channelType": "LongPolling", "channelData": {
        "maxNotifications": max_notifications, "maxWaitTime": max_wait}}}
    channel = await create(client, body)
    return path_of(channel["channelData"]["channelURL"]), path_of(channel["callbackURL"])


async def _notify(client, callback: str, body) -> None:
    if isinstance(body, str):
        response = await client.post(callback, content=body,
                                     headers={"Content-Type": "application/xml"})
    else:
        response = await client.post(callback, json=body)
    assert response.status_code == 204, response.text


# -- long polling ----------------------------------------------------------------------------
async def test_d12_single_notification_in_a_list(client):
    poll, callback = await _long_polling(client)
    await _notify(client, callback, PRESENCE_JSON)
    response = await client.post(poll, json=POLL_BODY)
    assert response.status_code == 200
    assert response.json() == {"notificationList": PRESENCE_JSON}


async def test_d13_multiple_notifications_in_arrival_order(client):
    poll, callback = await _long_polling(client, max_notifications="10")
    sent = [inbound("msg123", "Who is RESTing on the beach?"),
            inbound("msg1234", "Who is still RESTing on the beach?"), PRESENCE_JSON]
    for body in sent:
        await _notify(client, callback, body)
    assert (await client.post(poll, json=POLL_BODY)).json() == {"notificationList": sent}


async def test_d14_server_timeout_is_an_empty_list(client):
    poll, _ = await _long_polling(client, max_wait="1")
    response = await client.post(poll, json=POLL_BODY)
    assert response.json() == {"notificationList": None}
    xml_body = (f'<?xml version="1.0" encoding="UTF-8"?>'
                f'<nc:longPollingRequestParameters xmlns:nc="{NC}"/>')
    response = await client.post(poll, content=xml_body, headers={
        "Content-Type": "application/xml", "Accept": "application/xml"})
    root = etree.fromstring(response.content)
    assert (root.tag, len(root)) == (f"{{{NC}}}notificationList", 0)


async def test_6_3_5_xml_notifications_and_c_2_form_poll(client):
    poll, callback = await _long_polling(client, max_notifications="5")
    await _notify(client, callback, PRESENCE_XML)
    listed = (f'<nc:notificationList xmlns:nc="{NC}">{PRESENCE_XML}{PRESENCE_XML}'
              "</nc:notificationList>")
    await _notify(client, callback, listed)  # a notificationList is unwrapped
    response = await client.post(poll, content="longPollingRequestParmeters=", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/xml"})
    root = etree.fromstring(response.content)
    assert root.tag == f"{{{NC}}}notificationList"
    names = [child.tag for child in root]
    assert names == ["{urn:oma:xml:rest:netapi:presence:1}presenceNotification"] * 3
    assert root[0].findtext("callbackData") == "1234"


async def test_max_notifications_splits_what_is_pending(client):
    poll, callback = await _long_polling(client, max_notifications="2")
    for n in range(3):
        await _notify(client, callback, inbound(f"m{n}", "hi"))
    first = (await client.post(poll, json=POLL_BODY)).json()["notificationList"]
    second = (await client.post(poll, json=POLL_BODY)).json()["notificationList"]
    ids = [i["inboundMessageNotification"]["inboundMessage"]["messageId"]
           for i in [*first, second]]
    assert ids == ["m0", "m1", "m2"]


async def test_a_waiting_poll_is_answered_when_a_notification_arrives(client):
    poll, callback = await _long_polling(client, max_wait="60")
    results = []

    async def wait() -> None:
        results.append((await client.post(poll, json=POLL_BODY)).json())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await _wait_polling(client)
        await _notify(client, callback, PRESENCE_JSON)
    assert results == [{"notificationList": PRESENCE_JSON}]


async def _wait_polling(client) -> None:
    router = client.services.router
    await _until(lambda: any(a.poll is not None for a in _channels(router)))


async def _until(condition) -> None:
    """Let the server run until ``condition()`` holds (its requests arrive over real sockets)."""
    with trio.fail_after(5):
        while not condition():
            await trio.testing.wait_all_tasks_blocked(cushion=0.001)


def _channels(router):
    return [router.registry.lookup(n) for n in router.registry.names("channel:")]


async def test_5_3_19_second_poll_ends_the_first_with_409(client):
    poll, callback = await _long_polling(client, max_wait="60")
    first = []

    async def poll_first() -> None:
        first.append(await client.post(poll, json=POLL_BODY))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(poll_first)
        await _wait_polling(client)
        async with trio.open_nursery() as second_nursery:
            second = []

            async def poll_second() -> None:
                second.append(await client.post(poll, json=POLL_BODY))

            second_nursery.start_soon(poll_second)
            await _until(lambda: bool(first))
            await _notify(client, callback, PRESENCE_JSON)
    assert error_of(first[0]) == (409, "SVC1012", [])
    assert second[0].json() == {"notificationList": PRESENCE_JSON}


async def test_deleting_a_channel_answers_its_pending_poll_with_404(client):
    body = {"notificationChannel": {"channelType": "LongPolling",
                                    "channelData": {"maxWaitTime": "60"}}}
    channel = await create(client, body)
    poll = path_of(channel["channelData"]["channelURL"])
    answers = []

    async def wait() -> None:
        answers.append(await client.post(poll, json=POLL_BODY))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await _wait_polling(client)
        assert (await client.delete(path_of(channel["resourceURL"]))).status_code == 204
    assert error_of(answers[0])[:2] == (404, "SVC0004")


async def test_a_full_queue_answers_503_with_retry_after_and_loses_nothing(client):
    poll, callback = await _long_polling(client, max_notifications="100")
    for n in range(5):  # queue_limit is 5 in this fixture
        await _notify(client, callback, inbound(f"m{n}", "x"))
    full = await client.post(callback, json=inbound("m5", "x"))
    assert error_of(full)[:2] == (503, "SVC0001")
    assert full.headers["Retry-After"] == "1"
    got = (await client.post(poll, json=POLL_BODY)).json()["notificationList"]
    assert [i["inboundMessageNotification"]["inboundMessage"]["messageId"] for i in got] == [
        f"m{n}" for n in range(5)]
    await _notify(client, callback, inbound("m5", "x"))  # room again


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", b"{oops"),
    ("application/json", b"[]"),
    ("application/json", b'{"notificationList": [1, 2]}'),
    ("application/xml", b"<unclosed>"),
    ("application/xml", b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'),
])
async def test_bad_notifications_are_400_and_queue_nothing(client, content_type, body):
    poll, callback = await _long_polling(client)
    response = await client.post(callback, content=body, headers={"Content-Type": content_type})
    assert error_of(response)[:2] == (400, "SVC0002")
    assert (await client.post(poll, json=POLL_BODY)).json() == {"notificationList": None}


async def test_callback_with_unsupported_content_type_is_415(client):
    _, callback = await _long_polling(client)
    response = await client.post(callback, content=b"hello", headers={"Content-Type": "text/plain"})
    assert error_of(response)[:2] == (415, "SVC0001")


# -- WebSockets ------------------------------------------------------------------------------
async def _websocket_channel(client, max_notifications: str = "5"):
    body = {"notificationChannel": {"channelType": "WebSockets",
                                    "channelData": {"maxNotifications": max_notifications}}}
    channel = await create(client, body)
    return channel["channelData"]["channelURL"], path_of(channel["callbackURL"]), channel


async def _handshake_status(url: str, subprotocols: list[str]) -> int:
    """The HTTP status a WebSocket upgrade gets (raw socket: trio-websocket leaks its stream
    when a handshake is rejected)."""
    host_port, path = url.split("://", 1)[1].split("/", 1)
    host, port = host_port.rsplit(":", 1)
    offer = f"Sec-WebSocket-Protocol: {', '.join(subprotocols)}\r\n" if subprotocols else ""
    request = (f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nConnection: Upgrade\r\n"
               "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
               f"Sec-WebSocket-Key: bKdPyn3u98cTfZJSh4TNeQ==\r\n{offer}\r\n")
    async with await trio.open_tcp_stream(host, int(port)) as stream:
        await stream.send_all(request.encode())
        head = b""
        while b"\r\n" not in head:
            chunk = await stream.receive_some(4096)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1])


async def test_handshake_without_the_oma_subprotocol_is_refused(client):
    url, _, _ = await _websocket_channel(client)
    assert await _handshake_status(url, []) == 400
    assert await _handshake_status(url, ["chat"]) == 400
    assert await _handshake_status(url, ["chat", SUBPROTOCOL]) == 101


async def test_server_selects_the_oma_subprotocol_and_delivers_in_order(client):
    url, callback, _ = await _websocket_channel(client, max_notifications="10")
    async with websocket(url, ["chat", SUBPROTOCOL]) as ws:
        assert ws.subprotocol == SUBPROTOCOL
        await _notify(client, callback, PRESENCE_JSON)
        assert json.loads(await ws.get_message()) == {"notificationList": PRESENCE_JSON}
        await _notify(client, callback, PRESENCE_XML)
        root = etree.fromstring((await ws.get_message()).encode())
        assert root.tag == f"{{{NC}}}notificationList"
        assert root[0].findtext("presentityUserId") == "tel:+19585550100"


async def test_queued_notifications_go_out_on_connect_in_batches(client):
    url, callback, _ = await _websocket_channel(client, max_notifications="2")
    for n in range(5):
        await _notify(client, callback, inbound(f"m{n}", "queued"))
    async with websocket(url) as ws:
        frames = [json.loads(await ws.get_message()) for _ in range(3)]
    lists = [f["notificationList"] for f in frames]
    assert [len(x) if isinstance(x, list) else 1 for x in lists] == [2, 2, 1]
    flat = [*lists[0], *lists[1], lists[2]]
    assert [i["inboundMessageNotification"]["inboundMessage"]["messageId"] for i in flat] == [
        f"m{n}" for n in range(5)]


async def test_conn_check_gets_conn_ack_with_the_lifetime(client):
    url, _, channel = await _websocket_channel(client)
    async with websocket(url) as ws:
        await ws.send_message(json.dumps({"connCheck": {}}))
        assert json.loads(await ws.get_message()) == {"connAck": {"channelLifetime": "7200"}}
        await ws.send_message(f'<nc:connCheck xmlns:nc="{NC}"/>')
        ack = etree.fromstring((await ws.get_message()).encode())
        assert (ack.tag, ack.findtext("channelLifetime")) == (f"{{{NC}}}connAck", "7200")


async def test_a_second_connection_takes_over_and_the_first_is_closed(client):
    url, callback, _ = await _websocket_channel(client)
    async with websocket(url) as first:
        async with websocket(url) as second:
            with pytest.raises(ConnectionClosed) as closed:
                await first.get_message()
            assert closed.value.reason.code == 4001
            await _notify(client, callback, PRESENCE_JSON)
            assert json.loads(await second.get_message()) == {"notificationList": PRESENCE_JSON}


async def test_deleting_the_channel_closes_its_websocket(client):
    url, callback, channel = await _websocket_channel(client)
    async with websocket(url) as ws:
        assert (await client.delete(path_of(channel["resourceURL"]))).status_code == 204
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        assert closed.value.reason.code == 4000
    assert (await client.post(callback, json=PRESENCE_JSON)).status_code == 404


async def test_websocket_to_an_unknown_or_long_polling_channel_is_refused(client):
    base = client.services.public_url.replace("http://", "ws://")
    assert await _handshake_status(f"{base}{CHANNELS}/nope/ws", [SUBPROTOCOL]) == 404
    channel = await create(client, D2_LONG_POLLING)
    url = f"{base}{path_of(channel['resourceURL'])}/ws"
    assert await _handshake_status(url, [SUBPROTOCOL]) == 404


async def test_notifications_sent_while_disconnected_arrive_on_reconnect(client):
    url, callback, _ = await _websocket_channel(client)
    async with websocket(url) as ws:
        await _notify(client, callback, inbound("m0", "live"))
        await ws.get_message()
    for n in (1, 2, 3):
        await _notify(client, callback, inbound(f"m{n}", "while away"))
    async with websocket(url) as ws:
        got = json.loads(await ws.get_message())["notificationList"]
    assert [i["inboundMessageNotification"]["inboundMessage"]["messageId"] for i in got] == [
        "m1", "m2", "m3"]


async def test_malformed_upgrade_on_the_channel_socket_closes_that_connection_only(client):
    url, callback, _ = await _websocket_channel(client)
    path = path_of(url.replace("ws://", "http://"))
    port = int(client.services.bound_urls[0].rsplit(":", 1)[1])
    async with websocket(url) as ws:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(
                f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: bKdPyn3u98cTfZJSh4TNeQ==\r\n"
                f"Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\nx\r\n".encode())
            with trio.move_on_after(2):
                while await stream.receive_some(4096):
                    pass
        # the first connection was taken over by the malformed one or not; either way the
        # server is alive and a new connection works
        del ws
    async with websocket(url) as ws:
        await _notify(client, callback, PRESENCE_JSON)
        assert json.loads(await ws.get_message()) == {"notificationList": PRESENCE_JSON}
    assert (await client.get("/healthz")).status_code == 200


async def test_a_running_channel_shows_in_stats(client):
    _, _, channel = await _websocket_channel(client)
    channel_id = channel["resourceURL"].rsplit("/", 1)[1]
    tree = (await client.get("/stats")).json()["tree"]
    router = next(c for c in tree["children"] if c["name"] == "router")
    (shown,) = router["children"]
    assert (shown["name"], shown["kind"], shown["state"]) == (
        f"channel:{channel_id}", "channel", "running")
    assert shown["restartPolicy"] == "transient"
    assert shown["channelType"] == "WebSockets"


async def test_stopping_the_server_closes_websockets_with_going_away(tmp_path):
    settings = Settings(port=0, database_url=f"sqlite:///{tmp_path / 'stop.db'}")
    closed = []
    async with trio.open_nursery() as nursery:
        async with open_tidings(settings) as services, http_client(services) as client:
            client.services = services  # type: ignore[attr-defined]
            channel = await create(client, D2_LONG_POLLING)
            poll = path_of(channel["channelData"]["channelURL"])
            ws_channel = await create(client, {"notificationChannel": {
                "channelType": "WebSockets"}})
            ready = trio.Event()

            async def hold_socket() -> None:
                async with websocket(ws_channel["channelData"]["channelURL"]) as ws:
                    ready.set()
                    with pytest.raises(ConnectionClosed) as info:
                        await ws.get_message()
                    closed.append(info.value.reason.code)

            nursery.start_soon(hold_socket)
            await ready.wait()
            answers = []

            async def hold_poll() -> None:
                async with httpx.AsyncClient(base_url=services.bound_urls[0]) as other:
                    answers.append(await other.post(poll, json=POLL_BODY, timeout=60))

            nursery.start_soon(hold_poll)
            await _wait_polling(client)
    assert closed == [1001]
    assert answers[0].json() == {"notificationList": None}
