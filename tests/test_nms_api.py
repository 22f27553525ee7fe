"""The message store on a real hypercorn: objects, flags, folders and subscriptions (Appendix D
examples), and the chat journey through a WebSocket channel."""

from __future__ import annotations

import json
import os
import sys

import pytest
import trio
import trio.testing
from lxml import etree

from tests.channel_helpers import D7_WEBSOCKETS, create, error_of, path_of, websocket
from tests.nms_helpers import (
    BOX,
    NMS,
    _events,
    _kinds,
    _lists,
    _subscribe,
    attribute,
    chat,
    post_message,
)


# -- objects and flags -----------------------------------------------------------------------
async def test_create_and_read_a_chat_message(client):
    response = await client.post(f"{BOX}/objects", json=chat("The quick brown fox",
                                                             flags=["\\Seen"]))
    assert response.status_code == 201
    reference = response.json()["reference"]
    assert reference["path"].startswith("/conversations/bob/")
    obj = (await client.get(path_of(reference["resourceURL"]))).json()["object"]
    assert obj["resourceURL"] == reference["resourceURL"]
    assert obj["path"] == reference["path"]
    assert attribute(obj, "TextContent") == ["The quick brown fox"]
    assert attribute(obj, "From") == ["tel:+19585550100"]
    assert attribute(obj, "To") == ["tel:+19585550101"]
    assert attribute(obj, "Message-Context") == ["pager-message"]
    assert len(attribute(obj, "Date")) == 1
    assert obj["flags"] == {"flag": ["\\Seen"]}
    assert isinstance(obj["lastModSeq"], int)
    folder = (await client.get(path_of(obj["parentFolder"]))).json()["folder"]
    assert folder["name"] == "bob"
    assert folder["path"] == "/conversations/bob"
    assert folder["objects"]["objectReference"] == [{"resourceURL": obj["resourceURL"]}]


async def test_xml_object_body_and_xml_answer(client):
    body = f"""<nms:object xmlns:nms="{NMS}"><parentFolderPath>/inbox</parentFolderPath>
      <attributes><attribute><name>From</name><value>tel:+1</value></attribute>
      <attribute><name>To</name><value>tel:+2</value><value>tel:+3</value></attribute>
      <attribute><name>TextContent</name><value>hello</value></attribute></attributes>
      <flags><flag>\\Flagged</flag></flags></nms:object>"""
    response = await client.post(f"{BOX}/objects", content=body, headers={
        "Content-Type": "application/xml", "Accept": "application/xml"})
    assert response.status_code == 201
    reference = etree.fromstring(response.content)
    url = reference.findtext("resourceURL")
    root = etree.fromstring((await client.get(path_of(url), headers={
        "Accept": "application/xml"})).content)
    assert root.tag == f"{{{NMS}}}object"
    to = [a for a in root.find("attributes") if a.findtext("name") == "To"][0]
    assert [v.text for v in to.findall("value")] == ["tel:+2", "tel:+3"]
    assert [f.text for f in root.find("flags")] == ["\\Flagged"]


async def test_flags_as_in_d11_d13_d14_d16_d17(client):
    url = await post_message(client, "flag me")
    flags = f"{url}/flags"
    first = (await client.get(flags)).json()["flagList"]
    assert first["flag"] == []
    assert first["resourceURL"].endswith(flags)
    put = await client.put(flags, json={"flagList": {"flag": ["\\Seen", "\\Flagged"]}})
    assert put.json()["flagList"]["flag"] == ["\\Seen", "\\Flagged"]
    assert (await client.get(f"{flags}/%5CSeen")).status_code == 204
    missing = await client.get(f"{flags}/%5CAnswered")
    assert (missing.status_code, missing.json()) == (404, {"empty": None})
    added = await client.put(f"{flags}/%5CAnswered", json={"empty": None})
    assert added.status_code == 201
    assert added.headers["Location"].endswith(f"{flags}/%5CAnswered")
    assert (await client.delete(f"{flags}/%5CSeen")).status_code == 204
    assert (await client.get(flags)).json()["flagList"]["flag"] == ["\\Flagged", "\\Answered"]


async def test_a_change_that_changes_nothing_keeps_last_mod_seq(client):
    url = await post_message(client, "x")
    await client.put(f"{url}/flags", json={"flagList": {"flag": ["\\Seen"]}})
    before = (await client.get(url)).json()["object"]["lastModSeq"]
    await client.put(f"{url}/flags", json={"flagList": {"flag": ["\\Seen"]}})
    await client.put(f"{url}/flags/%5CSeen", json={"empty": None})
    assert (await client.get(url)).json()["object"]["lastModSeq"] == before
    await client.put(f"{url}/flags/%5CFlagged", json={"empty": None})
    assert (await client.get(url)).json()["object"]["lastModSeq"] > before


async def test_d10_delete_an_object(client):
    url = await post_message(client, "bye")
    assert (await client.delete(url)).status_code == 204
    assert error_of(await client.get(url))[:2] == (404, "SVC0004")
    assert error_of(await client.delete(url))[:2] == (404, "SVC0004")
    assert error_of(await client.get(f"{url}/flags"))[:2] == (404, "SVC0004")


@pytest.mark.parametrize(("body", "part"), [
    ({"object": {"attributes": {"attribute": []}}}, "attributes.From"),
    ({"object": {"attributes": {"attribute": [
        {"name": "From", "value": ["a", "b"]}, {"name": "To", "value": ["c"]},
        {"name": "TextContent", "value": ["t"]}]}}}, "attributes.From"),
    ({"object": {"parentFolder": "http://elsewhere/folders/f1",
                 **chat("x")["object"]}}, "parentFolder"),
    ({"object": {**chat("x")["object"], "parentFolderPath": "no-slash"}}, "parentFolderPath"),
    ({"object": {**chat("x")["object"], "flags": {"flag": [1]}}}, "flags"),
    ({"notAnObject": {}}, "object"),
])
async def test_bad_objects_are_svc0002_and_store_nothing(client, body, part):
    response = await client.post(f"{BOX}/objects", json=body)
    status, message_id, variables = error_of(response)
    assert (status, message_id, variables[0]) == (400, "SVC0002", part)


@pytest.mark.parametrize(("path", "method", "allow"), [
    ("/objects", "GET", "POST"),
    ("/objects/{id}", "PUT", "DELETE, GET"),
    ("/objects/{id}/flags", "POST", "GET, PUT"),
    ("/subscriptions", "PUT", "GET, POST"),
    ("/subscriptions/sub1", "PUT", "DELETE, GET, POST"),
])
async def test_nms_405_with_allow(client, path, method, allow):
    url = await post_message(client, "x")
    response = await client.request(method, BOX + path.format(id=url.rsplit("/", 1)[1]))
    assert (response.status_code, response.headers["Allow"]) == (405, allow)


# -- subscriptions (D.58–D.63) ----------------------------------------------------------------
D59 = {"nmsSubscription": {
    "callbackReference": {"notifyURL": "http://applicationClient.example.com/nms/notifications/77777",
                          "callbackData": "abcd"},
    "duration": 7200, "clientCorrelator": "12345"}}


async def test_d59_to_d63_subscription_life(client):
    created = await client.post(f"{BOX}/subscriptions", json=D59)
    assert created.status_code == 201
    sub = created.json()["nmsSubscription"]
    assert created.headers["Location"] == sub["resourceURL"]
    assert sub["callbackReference"] == D59["nmsSubscription"]["callbackReference"]
    assert (sub["duration"], sub["clientCorrelator"], sub["index"]) == (7200, "12345", 1)
    assert isinstance(sub["restartToken"], str)
    again = await client.post(f"{BOX}/subscriptions", json=D59)  # same clientCorrelator
    assert again.status_code == 200
    assert again.json()["nmsSubscription"]["resourceURL"] == sub["resourceURL"]
    listed = (await client.get(f"{BOX}/subscriptions")).json()["nmsSubscriptionList"]
    assert [s["resourceURL"] for s in listed["subscription"]] == [sub["resourceURL"]]
    url = path_of(sub["resourceURL"])
    assert (await client.get(url)).json()["nmsSubscription"]["resourceURL"] == sub["resourceURL"]
    updated = await client.post(url, json={"nmsSubscriptionUpdate": {
        "duration": 10800, "restartToken": sub["restartToken"]}})
    body = updated.json()["nmsSubscription"]
    assert (updated.status_code, body["duration"], body["index"]) == (200, 10800, 1)
    assert (await client.delete(url)).status_code == 204
    assert error_of(await client.get(url))[:2] == (404, "SVC0004")
    assert (await client.get(f"{BOX}/subscriptions")).json()["nmsSubscriptionList"][
        "subscription"] == []


@pytest.mark.parametrize("token", ["garbage", "1-999999", "7-0", "-1", ""])
async def test_a_malformed_or_unknown_restart_token_is_svc0002(client, token):
    body = {"nmsSubscription": {**D59["nmsSubscription"], "restartToken": token}}
    del body["nmsSubscription"]["clientCorrelator"]
    response = await client.post(f"{BOX}/subscriptions", json=body)
    assert error_of(response)[:3] == (400, "SVC0002", error_of(response)[2])
    assert error_of(response)[2][0] == "restartToken"
    listed = (await client.get(f"{BOX}/subscriptions")).json()["nmsSubscriptionList"]
    assert listed["subscription"] == []


# -- the chat journey, end to end ---------------------------------------------------------
async def test_chat_over_a_websocket_channel(client):
    channel = await create(client, D7_WEBSOCKETS)
    sub = await _subscribe(client, channel["callbackURL"])
    async with websocket(channel["channelData"]["channelURL"]) as ws:
        url = await post_message(client, "hi bob")
        object_id = url.rsplit("/", 1)[1]
        created = await _events(ws)
        assert created["callbackData"] == "chat"
        assert created["index"] == 1
        assert created["link"] == [{"rel": "NmsSubscription", "href": sub["resourceURL"]}]
        assert ("changedObject", object_id) in _kinds(created)
        await client.put(f"{url}/flags/%5CSeen", json={"empty": None})
        seen = await _events(ws)
        assert seen["index"] == 2
        (event,) = seen["nmsEvent"]
        assert event["changedObject"]["flags"] == {"flag": ["\\Seen"]}
        await client.delete(url)
        deleted = await _events(ws)
        assert _kinds(deleted) == [("deletedObject", object_id)]
        assert deleted["index"] == 3
        assert deleted["nmsEvent"][0]["deletedObject"]["lastModSeq"] > event["changedObject"][
            "lastModSeq"]


async def test_messages_sent_while_away_arrive_on_reconnect(client):
    channel = await create(client, D7_WEBSOCKETS)
    await _subscribe(client, channel["callbackURL"])
    ids = [(await post_message(client, f"m{n}")).rsplit("/", 1)[1] for n in range(3)]
    async with websocket(channel["channelData"]["channelURL"]) as ws:
        got: list[str] = []
        while len(got) < 3:
            for events in await _lists(ws):
                got += [i for k, i in _kinds(events) if k == "changedObject"]
    assert got == ids


async def test_an_old_restart_token_brings_the_history_then_live_changes(client):
    channel = await create(client, D7_WEBSOCKETS)
    first = await _subscribe(client, channel["callbackURL"])
    old_token = first["restartToken"]
    history = [(await post_message(client, f"h{n}")).rsplit("/", 1)[1] for n in range(4)]
    await client.delete(path_of(first["resourceURL"]))
    other = await create(client, {"notificationChannel": {"channelType": "WebSockets"}})
    again = await _subscribe(client, other["callbackURL"], token=old_token)
    async with websocket(other["channelData"]["channelURL"]) as ws:
        replayed: list[str] = []
        indexes = []
        while len(replayed) < 4:
            for events in await _lists(ws):
                indexes.append(events["index"])
                replayed += [i for k, i in _kinds(events) if k == "changedObject"]
        assert replayed == history
        live = (await post_message(client, "live")).rsplit("/", 1)[1]
        events = await _events(ws)
        indexes.append(events["index"])
        assert _kinds(events) == [("changedObject", live)]
    assert indexes == list(range(1, len(indexes) + 1))
    current = (await client.get(path_of(again["resourceURL"]))).json()["nmsSubscription"]
    assert current["index"] == indexes[-1] + 1
    assert current["restartToken"] == events["restartToken"]


async def test_a_subscription_ends_when_its_channel_is_gone(client):
    channel = await create(client, D7_WEBSOCKETS)
    sub = await _subscribe(client, channel["callbackURL"])
    await client.delete(path_of(channel["resourceURL"]))
    await post_message(client, "into the void")
    with trio.fail_after(5):
        while (await client.get(path_of(sub["resourceURL"]))).status_code != 404:
            await trio.testing.wait_all_tasks_blocked(cushion=0.01)


async def test_box_reset_reaches_subscribers_and_old_tokens_replay_it(client):
    channel = await create(client, D7_WEBSOCKETS)
    sub = await _subscribe(client, channel["callbackURL"])
    before_reset = sub["restartToken"]
    async with websocket(channel["channelData"]["channelURL"]) as ws:
        old = await post_message(client, "before the reset")
        await _events(ws)
        command = [sys.executable, "-m", "api.cli", "box-reset", "myStore", "tel:+19585550100",
                   "--server", client.services.bound_urls[0]]
        done = await trio.run_process(command, capture_stdout=True, capture_stderr=True,
                                      env={**os.environ, "PYTHONPATH": os.getcwd()})
        assert done.returncode == 0, done.stderr
        reset = await _events(ws)
        assert reset["nmsEvent"] == [{"resetBox": None}]
        assert error_of(await client.get(old))[:2] == (404, "SVC0004")
        new = (await post_message(client, "after the reset")).rsplit("/", 1)[1]
        after = await _events(ws)
        assert ("changedObject", new) in _kinds(after)
        assert after["restartToken"].startswith("2-")
    other = await create(client, {"notificationChannel": {"channelType": "WebSockets"}})
    await _subscribe(client, other["callbackURL"], token=before_reset)
    async with websocket(other["channelData"]["channelURL"]) as ws:
        lists = await _lists(ws)
        while sum(len(x["nmsEvent"]) for x in lists) < 2:
            lists += await _lists(ws)
    events = [e for x in lists for e in x["nmsEvent"]]
    assert events[0] == {"resetBox": None}
    assert ("changedObject", new) in [k for x in lists for k in _kinds_safe(x)]


def _kinds_safe(events: dict) -> list[tuple[str, str]]:
    return [(kind, value["resourceURL"].rsplit("/", 1)[1])
            for item in events["nmsEvent"] for kind, value in item.items() if value]


async def test_folder_name_and_delete(client):
    channel = await create(client, D7_WEBSOCKETS)
    await _subscribe(client, channel["callbackURL"])
    url = await post_message(client, "in a folder", path="/work")
    obj = (await client.get(url)).json()["object"]
    folder = path_of(obj["parentFolder"])
    async with websocket(channel["channelData"]["channelURL"]) as ws:
        await _events(ws)  # the creation
        assert (await client.get(f"{folder}/folderName")).json() == {"name": "work"}
        renamed = await client.put(f"{folder}/folderName", json={"name": "office"})
        assert renamed.json() == {"name": "office"}
        (event,) = (await _events(ws))["nmsEvent"]
        assert event["changedFolder"]["name"] == "office"
        assert (await client.get(url)).json()["object"]["path"].startswith("/office/")
        await client.put(f"{folder}/folderName", json={"name": "office"})  # no change
        assert (await client.delete(folder)).status_code == 204
        kinds = [k for k, _ in _kinds(await _events(ws))]
        assert kinds == ["deletedObject", "deletedFolder"]
    assert error_of(await client.get(folder))[:2] == (404, "SVC0004")
    assert error_of(await client.get(url))[:2] == (404, "SVC0004")
    root = (await client.get(path_of(event["changedFolder"]["parentFolder"]))).json()["folder"]
    assert error_of(await client.delete(path_of(root["resourceURL"])))[:2] == (403, "POL0001")


def _multipart(root: bytes, root_type: str, attachments: list[tuple[str, bytes]]) -> bytes:
    parts = [b"--outer123456\r\nContent-Type: " + root_type.encode() +
             b'\r\nContent-Disposition: form-data; name="root-fields"\r\n\r\n' + root + b"\r\n"]
    if attachments:
        inner = b"".join(
            b"--sep\r\nContent-Type: " + kind.encode() +
            b'\r\nContent-Disposition: attachment; filename="part"\r\n\r\n' + body + b"\r\n"
            for kind, body in attachments) + b"--sep--\r\n"
        parts.append(b'--outer123456\r\nContent-Type: multipart/mixed; boundary="sep"\r\n'
                     b'Content-Disposition: form-data; name="attachments"\r\n\r\n' + inner)
    return b"".join(parts) + b"--outer123456--\r\n"


MULTIPART = 'multipart/form-data; boundary="outer123456"'


async def test_d2_multipart_upload_with_a_text_attachment(client):
    root = json.dumps({"object": {
        "parentFolderPath": "/main/conversation5",
        "attributes": {"attribute": [{"name": "From", "value": ["tel:+19585550101"]},
                                     {"name": "To", "value": ["tel:+19585550100"]}]},
        "flags": {"flag": ["\\Seen", "\\Flagged"]}}}).encode()
    body = _multipart(root, "application/json", [("text/plain", b"See you at noon")])
    response = await client.post(f"{BOX}/objects", content=body,
                                 headers={"Content-Type": MULTIPART})
    assert response.status_code == 201, response.text
    assert response.json()["reference"]["path"].startswith("/main/conversation5/")
    obj = (await client.get(path_of(response.headers["Location"]))).json()["object"]
    assert attribute(obj, "TextContent") == ["See you at noon"]
    assert obj["flags"] == {"flag": ["\\Seen", "\\Flagged"]}


@pytest.mark.parametrize(("body", "part"), [
    (_multipart(b"{}", "application/json", []), "object"),
    (_multipart(json.dumps(chat("x")).encode(), "application/json",
                [("image/gif", b"GIF89a")]), "attachments"),
    (b"--outer123456\r\n\r\nnothing\r\n--outer123456--\r\n", "multipart"),
])
async def test_bad_multipart_uploads_store_nothing(client, body, part):
    response = await client.post(f"{BOX}/objects", content=body,
                                 headers={"Content-Type": MULTIPART})
    assert error_of(response)[:3] == (400, "SVC0002", error_of(response)[2])
    assert error_of(response)[2][0] == part


async def test_concurrent_first_subscriptions_to_a_new_box_all_succeed(client):
    """The first writers of a box race to create it; every one of them gets its 201."""
    body = {"notificationChannel": {"channelType": "WebSockets"}}
    callbacks = [(await create(client, body))["callbackURL"] for _ in range(8)]
    statuses: list[int] = []

    async def subscribe(url: str) -> None:
        response = await client.post("/nms/v1/raceStore/newbox/subscriptions", json={
            "nmsSubscription": {"callbackReference": {"notifyURL": url}}})
        statuses.append(response.status_code)

    async with trio.open_nursery() as nursery:
        for url in callbacks:
            nursery.start_soon(subscribe, url)
    assert statuses == [201] * 8
