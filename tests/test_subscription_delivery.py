"""Subscriptions to a notifyURL outside this server (real HTTP, retries, 404 ends it), and
subscription expiry on virtual time."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing
from hypercorn.config import Config

from api.runtime import Settings, open_tidings
from api.server import serve_http
from tests.nms_helpers import BOX, chat, post_message
from tests.servers import http_client


class Receiver:
    """A client-side notification URL: answers with the scripted statuses, records bodies."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[tuple[int, bytes]] = []
        self.received = trio.Event()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status = self.statuses.pop(0) if self.statuses else 204
        self.bodies.append((status, body))
        if status == 204:
            self.received.set()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
async def receiver_url():
    receiver = Receiver([500, 503])
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        (url,) = await nursery.start(lambda task_status: serve_http(
            receiver, config, shutdown_trigger=stop.wait, task_status=task_status))
        yield receiver, f"{url}/nms/notifications/77777"
        stop.set()


async def test_external_notify_url_gets_retried_until_it_accepts(tmp_path, receiver_url):
    receiver, url = receiver_url
    settings = Settings(port=0, database_url=f"sqlite:///{tmp_path / 't.db'}")
    async with open_tidings(settings) as services, http_client(services) as client:
        body = {"nmsSubscription": {"callbackReference": {
            "notifyURL": url, "callbackData": "12345", "notificationFormat": "XML"}}}
        assert (await client.post(f"{BOX}/subscriptions", json=body)).status_code == 201
        await post_message(client, "over real HTTP")
        with trio.fail_after(20):
            await receiver.received.wait()
        statuses = [status for status, _ in receiver.bodies]
        assert statuses == [500, 503, 204]  # the same list, retried with backoff
        assert len({b for _, b in receiver.bodies}) == 1
        text = receiver.bodies[-1][1].decode()
        assert text.startswith("<?xml")
        assert "<nms:nmsEventList" in text
        assert "<callbackData>12345</callbackData>" in text
        assert "<index>1</index>" in text


async def test_a_404_from_the_notify_url_ends_the_subscription(tmp_path, receiver_url):
    receiver, url = receiver_url
    receiver.statuses[:] = [404]
    settings = Settings(port=0, database_url=f"sqlite:///{tmp_path / 't.db'}")
    async with open_tidings(settings) as services, http_client(services) as client:
        body = {"nmsSubscription": {"callbackReference": {"notifyURL": url}}}
        sub = (await client.post(f"{BOX}/subscriptions", json=body)).json()["nmsSubscription"]
        await client.post(f"{BOX}/objects", json=chat("nobody home"))
        sub_path = "/" + sub["resourceURL"].split("://", 1)[1].split("/", 1)[1]
        with trio.fail_after(10):
            while (await client.get(sub_path)).status_code != 404:
                await trio.testing.wait_all_tasks_blocked(cushion=0.01)
        assert [status for status, _ in receiver.bodies] == [404]
        assert json.loads((await client.get(f"{BOX}/subscriptions")).text)[
            "nmsSubscriptionList"]["subscription"] == []


async def test_what_was_not_delivered_before_a_restart_is_delivered_after(tmp_path,
                                                                           receiver_url):
    receiver, url = receiver_url
    receiver.statuses[:] = [503] * 1000  # the client is down for the whole first run
    database_url = f"sqlite:///{tmp_path / 't.db'}"
    async with open_tidings(Settings(port=0, database_url=database_url)) as services, \
            http_client(services) as client:
        body = {"nmsSubscription": {"callbackReference": {"notifyURL": url}}}
        assert (await client.post(f"{BOX}/subscriptions", json=body)).status_code == 201
        created = await post_message(client, "while the client was down")
        with trio.fail_after(10):
            while not receiver.bodies:
                await trio.testing.wait_all_tasks_blocked(cushion=0.01)
    receiver.statuses.clear()  # the client is back
    async with open_tidings(Settings(port=0, database_url=database_url)):
        with trio.fail_after(20):
            await receiver.received.wait()
    body = json.loads(receiver.bodies[-1][1])["nmsEventList"]
    objects = [e["changedObject"]["resourceURL"] for e in body["nmsEvent"]
               if "changedObject" in e]
    assert [o.rsplit("/", 1)[1] for o in objects] == [created.rsplit("/", 1)[1]]
    assert body["index"] == 1
