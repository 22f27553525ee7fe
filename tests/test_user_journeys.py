"""What a new user does: the README's quick tour, and a server restart that keeps channels."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import partial

import httpx
import trio
import trio.testing

from api.runtime import Settings, open_tidings
from tests.channel_helpers import CHANNELS, D2_LONG_POLLING, D7_WEBSOCKETS, create, path_of
from tests.servers import http_client


async def test_quick_tour_with_tidings_listen(tmp_path):
    """README: create a channel with curl, `tidings listen` its channelURL, POST, see it."""
    settings = Settings(port=0, database_url=f"sqlite:///{tmp_path / 'tidings.db'}")
    async with open_tidings(settings) as services, http_client(services) as client:
        channel = await create(client, D7_WEBSOCKETS)
        command = [sys.executable, "-m", "api.cli", "listen",
                   channel["channelData"]["channelURL"], "--count", "1"]
        env = {**os.environ, "PYTHONPATH": os.getcwd()}
        async with trio.open_nursery() as nursery:
            listener = await nursery.start(partial(
                trio.run_process, command, env=env, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, check=False))
            output = bytearray()

            async def read() -> None:
                async for chunk in listener.stdout:
                    output.extend(chunk)

            nursery.start_soon(read)
            with trio.fail_after(30):
                while services.router.channel_for(
                        "tel:+19585550100",
                        channel["resourceURL"].rsplit("/", 1)[1]).session is None:
                    await trio.testing.wait_all_tasks_blocked(cushion=0.01)
            message = {"chatMessage": {"from": "alice", "text": "hello"}}
            response = await client.post(path_of(channel["callbackURL"]), json=message)
            assert response.status_code == 204
            with trio.fail_after(30):
                await listener.wait()
        assert listener.returncode == 0
        assert output.decode().splitlines() == [
            '{"notificationList":{"chatMessage":{"from":"alice","text":"hello"}}}']


async def test_channels_survive_a_server_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'tidings.db'}"
    async with open_tidings(Settings(port=0, database_url=url)) as services, \
            http_client(services) as client:
        channel = await create(client, D2_LONG_POLLING)
    async with open_tidings(Settings(port=0, database_url=url)) as services, \
            http_client(services) as client:
        listed = (await client.get(CHANNELS)).json()["notificationChannelList"]
        (again,) = listed["notificationChannel"]
        assert again["resourceURL"].rsplit("/", 1)[1] == channel["resourceURL"].rsplit("/", 1)[1]
        assert again["callbackURL"].rsplit("/", 1)[1] == channel["callbackURL"].rsplit("/", 1)[1]
        callback = path_of(again["callbackURL"])
        assert (await client.post(callback, json={"chat": {"n": 1}})).status_code == 204
        poll = path_of(again["channelData"]["channelURL"])
        answer = await client.post(poll, json={"longPollingRequestParameters": None})
        assert answer.json() == {"notificationList": {"chat": {"n": 1}}}
        assert isinstance(httpx.URL(again["resourceURL"]).port, int)


async def test_subscriptions_survive_a_server_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'tidings.db'}"
    box = "/nms/v1/chat/tel%3A%2B19585550100"
    # a stable public URL, as behind a proxy: the stored callbackURL stays this server's own
    settings = Settings(port=0, database_url=url, public_url="http://tidings.example")
    async with open_tidings(settings) as services, http_client(services) as client:
        channel = await create(client, D2_LONG_POLLING)
        body = {"nmsSubscription": {"callbackReference": {"notifyURL": channel["callbackURL"]},
                                    "duration": 600}}
        sub = (await client.post(f"{box}/subscriptions", json=body)).json()["nmsSubscription"]
    async with open_tidings(settings) as services, http_client(services) as client:
        again = (await client.get(path_of(sub["resourceURL"]))).json()["nmsSubscription"]
        assert again["restartToken"] == sub["restartToken"]
        assert 590 <= again["duration"] <= 600
        message = {"object": {"attributes": {"attribute": [
            {"name": "From", "value": ["a"]}, {"name": "To", "value": ["b"]},
            {"name": "TextContent", "value": ["after the restart"]}]}}}
        assert (await client.post(f"{box}/objects", json=message)).status_code == 201
        poll = path_of(channel["channelData"]["channelURL"])
        answer = (await client.post(poll, json={"longPollingRequestParameters": None})).json()
        events = answer["notificationList"]["nmsEventList"]["nmsEvent"]
        assert any("changedObject" in e for e in events)
