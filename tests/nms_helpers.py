"""Shared by the message store tests: a box, chat messages, reading nmsEventLists."""

from __future__ import annotations

import json

from tests.channel_helpers import path_of

NMS = "urn:oma:xml:rest:netapi:nms:1"
BOX = "/nms/v1/myStore/tel%3A%2B19585550100"


def chat(text: str, *, sender: str = "tel:+19585550100", to: str = "tel:+19585550101",
         path: str = "/conversations/bob", flags: list[str] | None = None) -> dict:
    return {"object": {
        "parentFolderPath": path,
        "attributes": {"attribute": [
            {"name": "From", "value": [sender]},
            {"name": "To", "value": [to]},
            {"name": "TextContent", "value": [text]}]},
        "flags": {"flag": flags or []}}}


async def post_message(client, text: str, **kwargs) -> str:
    response = await client.post(f"{BOX}/objects", json=chat(text, **kwargs))
    assert response.status_code == 201, response.text
    url = response.json()["reference"]["resourceURL"]
    assert response.headers["Location"] == url
    return path_of(url)


def attribute(obj: dict, name: str) -> list[str]:
    (found,) = [a["value"] for a in obj["attributes"]["attribute"] if a["name"] == name]
    return found


async def _lists(ws) -> list[dict]:
    """The nmsEventLists of the next frame (a frame may carry several)."""
    items = json.loads(await ws.get_message())["notificationList"]
    return [i["nmsEventList"] for i in (items if isinstance(items, list) else [items])]


async def _events(ws) -> dict:
    (events,) = await _lists(ws)
    return events


async def _subscribe(client, callback_url: str, token: str | None = None) -> dict:
    body: dict = {"nmsSubscription": {"callbackReference": {"notifyURL": callback_url,
                                                            "callbackData": "chat"}}}
    if token is not None:
        body["nmsSubscription"]["restartToken"] = token
    response = await client.post(f"{BOX}/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return response.json()["nmsSubscription"]


def _kinds(events: dict) -> list[tuple[str, str]]:
    out = []
    for item in events["nmsEvent"]:
        ((kind, value),) = item.items()
        out.append((kind, value["resourceURL"].rsplit("/", 1)[1]))
    return out


