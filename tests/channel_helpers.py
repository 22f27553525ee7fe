"""What the channel API tests share: a running server, a client, and the spec's bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio
from lxml import etree
from trio_websocket import open_websocket_url

NC = "urn:oma:xml:rest:netapi:notificationchannel:1"
COMMON = "urn:oma:xml:rest:netapi:common:1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SUBPROTOCOL = "notificationchannel-netapi-rest.openmobilealliance.org"
USER = "tel:+19585550100"
USER_PATH = "tel%3A%2B19585550100"
ACR_PATH = "acr%3Apseudonym123"
BASE = "/notificationchannel/v1"
CHANNELS = f"{BASE}/{USER_PATH}/channels"

# Appendix D.7 (JSON, WebSockets) and D.2 (JSON, Long Polling), verbatim but for the trailing
# commas the spec's examples carry (they are not JSON).
D7_WEBSOCKETS = {"notificationChannel": {
    "applicationTag": "myApp", "channelData": {"maxNotifications": "5"},
    "channelLifetime": "7200", "channelType": "WebSockets", "clientCorrelator": "987"}}
D2_LONG_POLLING = {"notificationChannel": {
    "applicationTag": "myApp", "channelData": {"maxNotifications": "1"},
    "channelLifetime": "7200", "channelType": "LongPolling", "clientCorrelator": "123"}}

XML_LONG_POLLING = """<?xml version="1.0" encoding="UTF-8"?>
<nc:notificationChannel xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <clientCorrelator>123</clientCorrelator>
  <applicationTag>myApp</applicationTag>
  <channelType>LongPolling</channelType>
  <channelData xsi:type="nc:LongPollingData">
     <maxNotifications>1</maxNotifications>
  </channelData>
  <channelLifetime>7200</channelLifetime>
</nc:notificationChannel>"""

XML_WEBSOCKETS = """<?xml version="1.0" encoding="UTF-8"?>
<nc:notificationChannel xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
   <clientCorrelator>987</clientCorrelator>
   <applicationTag>myApp</applicationTag>
   <channelType>WebSockets</channelType>
   <channelData xsi:type="nc:WebSocketsData">
      <maxNotifications>5</maxNotifications>
   </channelData>
   <channelLifetime>7200</channelLifetime>
</nc:notificationChannel>"""

PRESENCE_JSON = {"presenceNotification": {
    "callbackData": "1234",
    "link": {"href": "http://example.com/exampleAPI/v1/presence/tel%3A%2B19585550101/"
                     "subscriptions/presenceSubscriptions/tel%3A%2B19585550100/sub001",
             "rel": "PresenceSubscription"},
    "presence": {"person": {"mood": {"moodValue": "Happy"}}},
    "presentityUserId": "tel:+19585550100",
    "resourceStatus": "Active"}}

PRESENCE_XML = """<pr:presenceNotification xmlns:pr="urn:oma:xml:rest:netapi:presence:1">
 <presentityUserId>tel:+19585550100</presentityUserId>
 <callbackData>1234</callbackData>
 <resourceStatus>Active</resourceStatus>
 <presence><person><mood><moodValue>Happy</moodValue></mood></person></presence>
 <link rel="PresenceSubscription" href="http://example.com/exampleAPI/v1/presence/sub001"/>
</pr:presenceNotification>"""


def inbound(message_id: str, subject: str) -> dict[str, Any]:
    """An inboundMessageNotification as in Appendix D.13."""
    return {"inboundMessageNotification": {"inboundMessage": {
        "destinationAddress": "tel:+19585550100",
        "inboundMMSMessage": {"subject": subject},
        "messageId": message_id,
        "senderAddress": "tel:+19585550101"}}}


def xml(response: httpx.Response) -> etree._Element:
    assert response.headers["content-type"].startswith("application/xml"), response.text
    return etree.fromstring(response.content)


async def create(client: httpx.AsyncClient, body: dict[str, Any] | None = None,
                 path: str = CHANNELS) -> dict[str, Any]:
    response = await client.post(path, json=body or D7_WEBSOCKETS)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()["notificationChannel"]
    return created


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def error_of(response: httpx.Response) -> tuple[int, str, list[str]]:
    body = response.json()["requestError"]
    ((_, exception),) = body.items()
    return response.status_code, exception["messageId"], exception.get("variables", [])


@asynccontextmanager
async def websocket(url: str, subprotocols: list[str] | None = None) -> AsyncIterator[Any]:
    """trio-websocket's client, closing its TCP stream itself: when the server closes first,
    trio-websocket 0.12 waits for the TCP close and then never closes its own socket."""
    async with open_websocket_url(url, subprotocols=subprotocols or [SUBPROTOCOL]) as ws:
        try:
            yield ws
        finally:
            with trio.CancelScope(shield=True):
                await ws._stream.aclose()
