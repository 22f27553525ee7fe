"""``--role store`` and ``--role channels``: two servers, the store reaching the channel server
over HTTP."""

from __future__ import annotations

import json

from api.runtime import Settings, open_tidings
from tests.channel_helpers import D7_WEBSOCKETS, create, path_of, websocket
from tests.nms_helpers import BOX, post_message
from tests.servers import http_client


async def test_a_store_and_a_channel_server_apart(tmp_path):
    channels = Settings(port=0, database_url=f"sqlite:///{tmp_path / 'channels.db'}",
                        role="channels")
    store = Settings(port=0, database_url=f"sqlite:///{tmp_path / 'store.db'}", role="store")
    async with open_tidings(channels) as channel_server, http_client(channel_server) as nc, \
            open_tidings(store) as store_server, http_client(store_server) as nms:
        assert (await nc.get(f"{BOX}/subscriptions")).status_code == 404
        assert (await nms.get("/notificationchannel/v1/acr%3Ax/channels")).status_code == 404
        channel = await create(nc, D7_WEBSOCKETS)
        body = {"nmsSubscription": {"callbackReference": {"notifyURL": channel["callbackURL"]}}}
        assert (await nms.post(f"{BOX}/subscriptions", json=body)).status_code == 201
        async with websocket(channel["channelData"]["channelURL"]) as ws:
            message = await post_message(nms, "across two servers")
            frame = json.loads(await ws.get_message())
        event = frame["notificationList"]["nmsEventList"]["nmsEvent"][-1]["changedObject"]
        assert path_of(event["resourceURL"]) == message
        assert (await nms.get("/stats")).json()["server"]["role"] == "store"
