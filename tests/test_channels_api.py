"""The Notification Channel resources on a real hypercorn: the spec's examples replayed (JSON
from Appendix D, XML from section 6, form bodies from Appendix C), every 405, every error."""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from tests.channel_helpers import (
    ACR_PATH,
    BASE,
    CHANNELS,
    COMMON,
    D2_LONG_POLLING,
    D7_WEBSOCKETS,
    NC,
    USER_PATH,
    XML_LONG_POLLING,
    XML_WEBSOCKETS,
    XSI,
    create,
    error_of,
    path_of,
    xml,
)


async def _list_ids(client: httpx.AsyncClient, path: str = CHANNELS) -> list[str]:
    body = (await client.get(path)).json()["notificationChannelList"]
    return [c["resourceURL"].rsplit("/", 1)[1] for c in body["notificationChannel"]]


# -- creation: Appendix D (JSON) -------------------------------------------------------------
async def test_d7_create_websockets_channel_json(client):
    response = await client.post(CHANNELS, json=D7_WEBSOCKETS,
                                 headers={"Accept": "application/json"})
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/json")
    channel = response.json()["notificationChannel"]
    base = client.services.public_url
    channel_id = channel["resourceURL"].rsplit("/", 1)[1]
    assert response.headers["Location"] == channel["resourceURL"]
    assert channel["resourceURL"] == f"{base}{CHANNELS}/{channel_id}"
    assert channel["channelData"] == {
        "channelURL": f"ws://{base.split('://')[1]}{CHANNELS}/{channel_id}/ws",
        "maxNotifications": "5"}
    assert channel["callbackURL"].startswith(f"{base}{BASE}/callbacks/")
    assert len(channel["callbackURL"].rsplit("/", 1)[1]) >= 32  # unguessable
    assert {k: channel[k] for k in ("applicationTag", "channelLifetime", "channelType",
                                    "clientCorrelator")} == {
        "applicationTag": "myApp", "channelLifetime": "7200", "channelType": "WebSockets",
        "clientCorrelator": "987"}


async def test_d2_create_long_polling_channel_json(client):
    channel = await create(client, D2_LONG_POLLING)
    assert channel["channelType"] == "LongPolling"
    assert channel["channelData"]["channelURL"] == channel["resourceURL"] + "/notifications"
    assert channel["channelData"]["maxNotifications"] == "1"
    assert channel["channelData"]["maxWaitTime"] == "30"  # the policy default, stated


async def test_numbers_may_be_json_numbers_too(client):
    body = {"notificationChannel": {"channelType": "LongPolling", "channelLifetime": 600,
                                    "channelData": {"maxNotifications": 3, "maxWaitTime": 5}}}
    channel = await create(client, body)
    assert channel["channelLifetime"] == "600"
    assert channel["channelData"]["maxWaitTime"] == "5"
    assert "clientCorrelator" not in channel
    assert "applicationTag" not in channel


async def test_policy_defaults_and_maxima_apply(client):
    body = {"notificationChannel": {"channelType": "LongPolling", "channelLifetime": "999999",
                                    "channelData": {"maxNotifications": "5000",
                                                    "maxWaitTime": "9999"}}}
    capped = await create(client, body)
    assert capped["channelLifetime"] == "86400"
    assert capped["channelData"]["maxNotifications"] == "100"
    assert capped["channelData"]["maxWaitTime"] == "120"
    default = await create(client, {"notificationChannel": {"channelType": "WebSockets"}})
    assert default["channelLifetime"] == "7200"
    assert default["channelData"]["maxNotifications"] == "10"


# -- creation: section 6 (XML) and Appendix C (form) ----------------------------------------
async def test_6_1_5_1_create_long_polling_channel_xml(client):
    response = await client.post(CHANNELS, content=XML_LONG_POLLING,
                                 headers={"Content-Type": "application/xml",
                                          "Accept": "application/xml"})
    assert response.status_code == 201
    root = xml(response)
    assert root.tag == f"{{{NC}}}notificationChannel"
    assert root.findtext("clientCorrelator") == "123"
    assert root.findtext("applicationTag") == "myApp"
    assert root.findtext("channelType") == "LongPolling"
    data = root.find("channelData")
    assert data.get(f"{{{XSI}}}type") == "nc:LongPollingData"
    assert data.findtext("channelURL").endswith("/notifications")
    assert data.findtext("maxNotifications") == "1"
    assert root.findtext("channelLifetime") == "7200"
    assert response.headers["Location"] == root.findtext("resourceURL")
    assert "/callbacks/" in root.findtext("callbackURL")
    # children in the order of the spec's example
    assert [c.tag for c in root] == ["clientCorrelator", "applicationTag", "channelType",
                                     "channelData", "channelLifetime", "callbackURL",
                                     "resourceURL"]


async def test_6_1_5_6_create_websockets_channel_xml(client):
    response = await client.post(CHANNELS, content=XML_WEBSOCKETS,
                                 headers={"Content-Type": "application/xml",
                                          "Accept": "application/xml"})
    root = xml(response)
    data = root.find("channelData")
    assert data.get(f"{{{XSI}}}type") == "nc:WebSocketsData"
    assert data.findtext("channelURL").startswith("ws://")
    assert data.findtext("channelURL").endswith("/ws")


async def test_6_1_5_5_acr_user_and_c_1_3_form_body(client):
    form = ("clientCorrelator=123&applicationTag=myApp&channelType=LongPolling&"
            "maxNotifications=1&channelLifetime=7200")
    response = await client.post(f"{BASE}/{ACR_PATH}/channels", content=form,
                                 headers={"Content-Type": "application/x-www-form-urlencoded",
                                          "Accept": "application/xml"})
    assert response.status_code == 201
    root = xml(response)
    assert root.findtext("resourceURL").startswith(
        f"{client.services.public_url}{BASE}/{ACR_PATH}/channels/")
    assert root.find("channelData").findtext("maxNotifications") == "1"
    assert root.findtext("clientCorrelator") == "123"


async def test_form_body_cannot_create_a_websockets_channel(client):
    response = await client.post(CHANNELS, content="channelType=WebSockets",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert await _list_ids(client) == []


# -- client correlator, users ----------------------------------------------------------------
async def test_repeated_client_correlator_returns_the_existing_channel(client):
    first = await create(client, D7_WEBSOCKETS)
    again = await client.post(CHANNELS, json=D7_WEBSOCKETS)
    assert again.status_code == 200
    assert again.json()["notificationChannel"]["resourceURL"] == first["resourceURL"]
    assert again.headers["Location"] == first["resourceURL"]
    assert len(await _list_ids(client)) == 1
    other_user = await create(client, D7_WEBSOCKETS, path=f"{BASE}/{ACR_PATH}/channels")
    assert other_user["resourceURL"] != first["resourceURL"]


async def test_a_channel_is_visible_only_to_the_user_who_created_it(client):
    channel = await create(client)
    channel_id = channel["resourceURL"].rsplit("/", 1)[1]
    other = f"{BASE}/{ACR_PATH}/channels"
    assert await _list_ids(client, other) == []
    assert (await client.get(f"{other}/{channel_id}")).status_code == 404
    assert (await client.delete(f"{other}/{channel_id}")).status_code == 404
    assert await _list_ids(client) == [channel_id]


# -- list, read, delete ----------------------------------------------------------------------
async def test_d1_and_6_1_3_list_channels_json_and_xml(client):
    ws = await create(client, D7_WEBSOCKETS)
    lp = await create(client, D2_LONG_POLLING)
    body = (await client.get(CHANNELS)).json()["notificationChannelList"]
    assert body["resourceURL"] == f"{client.services.public_url}{CHANNELS}"
    assert [c["resourceURL"] for c in body["notificationChannel"]] == [
        ws["resourceURL"], lp["resourceURL"]]
    root = xml(await client.get(CHANNELS, headers={"Accept": "application/xml"}))
    assert root.tag == f"{{{NC}}}notificationChannelList"
    types = [c.find("channelData").get(f"{{{XSI}}}type")
             for c in root.findall("notificationChannel")]
    assert types == ["nc:WebSocketsData", "nc:LongPollingData"]
    assert root.findtext("resourceURL") == body["resourceURL"]


async def test_empty_list(client):
    body = (await client.get(f"{BASE}/acr%3Anobody/channels")).json()
    assert body == {"notificationChannelList": {
        "notificationChannel": [],
        "resourceURL": f"{client.services.public_url}{BASE}/acr%3Anobody/channels"}}


async def test_d10_get_and_d11_delete_a_channel(client):
    channel = await create(client, D2_LONG_POLLING)
    url = path_of(channel["resourceURL"])
    got = (await client.get(url)).json()["notificationChannel"]
    assert got["resourceURL"] == channel["resourceURL"]
    assert got["callbackURL"] == channel["callbackURL"]
    root = xml(await client.get(url, headers={"Accept": "application/xml"}))
    assert root.find("channelData").get(f"{{{XSI}}}type") == "nc:LongPollingData"
    deleted = await client.delete(url)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert error_of(await client.get(url)) == (404, "SVC0004", ["channelId"])
    assert await _list_ids(client) == []
    callback = path_of(channel["callbackURL"])
    assert (await client.post(callback, json={"a": {}})).status_code == 404


# -- lifetime --------------------------------------------------------------------------------
async def test_d16_d17_channel_lifetime_json(client):
    channel = await create(client, D7_WEBSOCKETS)
    url = path_of(channel["resourceURL"]) + "/channelLifetime"
    got = (await client.get(url)).json()
    assert got == {"notificationChannelLifetime": {"channelLifetime": "7200"}}
    put = await client.put(url, json={"notificationChannelLifetime": {
        "channelLifetime": "3600"}})
    assert put.json() == {"notificationChannelLifetime": {"channelLifetime": "3600"}}
    assert (await client.get(url)).json()["notificationChannelLifetime"]["channelLifetime"] in {
        "3600", "3599"}
    capped = await client.put(url, json={"notificationChannelLifetime": {"channelLifetime": 10**7}})
    assert capped.json()["notificationChannelLifetime"]["channelLifetime"] == "86400"


async def test_6_4_channel_lifetime_xml(client):
    channel = await create(client, D7_WEBSOCKETS)
    url = path_of(channel["resourceURL"]) + "/channelLifetime"
    body = (f'<?xml version="1.0" encoding="UTF-8"?>'
            f'<nc:notificationChannelLifetime xmlns:nc="{NC}">'
            "<channelLifetime>7200</channelLifetime></nc:notificationChannelLifetime>")
    root = xml(await client.put(url, content=body, headers={"Content-Type": "application/xml",
                                                            "Accept": "application/xml"}))
    assert root.tag == f"{{{NC}}}notificationChannelLifetime"
    assert root.findtext("channelLifetime") == "7200"


# -- unsupported types (6.1.5.7, D.8; §7.2.1 gives 403) -------------------------------------
@pytest.mark.parametrize("channel_type", ["OMAPush", "NativeChannel"])
async def test_unsupported_channel_type_is_pol1023(client, channel_type):
    body = {"notificationChannel": {"channelType": channel_type, "clientCorrelator": "1"}}
    response = await client.post(CHANNELS, json=body)
    assert error_of(response) == (403, "POL1023", [channel_type, "LongPolling, WebSockets"])
    assert response.json()["requestError"]["policyException"]["text"] == (
        "Notification channel type %1 not supported. Supported types: %2.")
    xml_error = xml(await client.post(CHANNELS, json=body, headers={"Accept": "application/xml"}))
    assert xml_error.tag == f"{{{COMMON}}}requestError"
    assert xml_error.find("policyException").findtext("messageId") == "POL1023"
    assert [v.text for v in xml_error.find("policyException").findall("variables")] == [
        channel_type, "LongPolling, WebSockets"]
    assert await _list_ids(client) == []


# -- 405 with Allow, everywhere --------------------------------------------------------------
@pytest.mark.parametrize(("suffix", "method", "allow"), [
    ("", "PUT", "GET, POST"),
    ("", "DELETE", "GET, POST"),
    ("/{id}", "PUT", "DELETE, GET"),
    ("/{id}", "POST", "DELETE, GET"),
    ("/{id}/channelLifetime", "POST", "GET, PUT"),
    ("/{id}/channelLifetime", "DELETE", "GET, PUT"),
    ("/{id}/notifications", "GET", "POST"),
    ("/{id}/notifications", "PUT", "POST"),
    ("/{id}/notifications", "DELETE", "POST"),
])
async def test_every_other_method_is_405_with_allow(client, suffix, method, allow):
    channel = await create(client, D2_LONG_POLLING)
    channel_id = channel["resourceURL"].rsplit("/", 1)[1]
    response = await client.request(method, CHANNELS + suffix.format(id=channel_id))
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    assert error_of(response)[1] == "SVC0001"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_callback_takes_only_post(client, method):
    channel = await create(client)
    response = await client.request(method, path_of(channel["callbackURL"]))
    assert (response.status_code, response.headers["Allow"]) == (405, "POST")


# -- bad input: a clear error, nothing changed ------------------------------------------------
BAD_BODIES = [
    ("application/json", b'{"notificationChannel": {', "notificationChannel"),
    ("application/json", b'["notificationChannel"]', "notificationChannel"),
    ("application/json", b'{"somethingElse": {}}', "notificationChannel"),
    ("application/json", b'{"notificationChannel": "x"}', "notificationChannel"),
    ("application/json", b'{"notificationChannel": {"channelType": "Carrier pigeon"}}',
     "channelType"),
    ("application/json", b'{"notificationChannel": {}}', "channelType"),
    ("application/json", b'{"notificationChannel": {"channelType": "WebSockets",'
                         b' "channelLifetime": "soon"}}', "channelLifetime"),
    ("application/json", b'{"notificationChannel": {"channelType": "WebSockets",'
                         b' "channelLifetime": 0}}', "channelLifetime"),
    ("application/json", b'{"notificationChannel": {"channelType": "WebSockets",'
                         b' "channelLifetime": true}}', "channelLifetime"),
    ("application/json", b'{"notificationChannel": {"channelType": "WebSockets",'
                         b' "channelData": {"maxNotifications": "-3"}}}', "maxNotifications"),
    ("application/json", b'{"notificationChannel": {"channelType": "WebSockets",'
                         b' "channelData": {"maxNotifications": 1.5}}}', "maxNotifications"),
    ("application/json", b'{"notificationChannel": {"channelType": "WebSockets",'
                         b' "callbackURL": "http://evil"}}', "callbackURL"),
    ("application/json", b'{"notificationChannel": {"channelType": "WebSockets",'
                         b' "channelData": {"channelURL": "ws://x"}}}', "channelData.channelURL"),
    ("application/json", b'{"notificationChannel": {"channelType": "WebSockets",'
                         b' "clientCorrelator": {"a": 1}}}', "clientCorrelator"),
    ("application/json", b"", "notificationChannel"),
    ("application/xml", b"<nc:notificationChannel xmlns:nc='x'><channelType>",
     "notificationChannel"),
    ("application/xml", XML_WEBSOCKETS.replace("nc:WebSocketsData", "nc:LongPollingData").encode(),
     "channelData"),
    ("application/xml", b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM '
                        b'"file:///etc/passwd">]><notificationChannel><channelType>&x;'
                        b"</channelType></notificationChannel>", "notificationChannel"),
    ("application/xml", b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
                        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
                        b"<notificationChannel><channelType>&lol3;</channelType>"
                        b"</notificationChannel>", "notificationChannel"),
]


@pytest.mark.parametrize(("content_type", "body", "part"), BAD_BODIES)
async def test_bad_creation_bodies_are_svc0002_and_change_nothing(client, content_type, body, part):
    response = await client.post(CHANNELS, content=body, headers={"Content-Type": content_type})
    status, message_id, variables = error_of(response)
    assert (status, message_id, variables[0]) == (400, "SVC0002", part)
    assert await _list_ids(client) == []
    assert (await client.get("/healthz")).status_code == 200


async def test_unsupported_content_type_is_415(client):
    response = await client.post(CHANNELS, content=b"channelType: WebSockets",
                                 headers={"Content-Type": "text/plain"})
    assert error_of(response)[:2] == (415, "SVC0001")
    assert await _list_ids(client) == []


async def test_oversized_body_is_413(client):
    # a raw socket: the server answers from the headers, before the 2 MB arrive
    size = 2_000_000
    port = int(client.services.bound_urls[0].rsplit(":", 1)[1])
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(
            f"POST {CHANNELS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n".encode() + b'{"notificationChannel": {')
        answer = b""
        with trio.fail_after(5):
            while b"}}}" not in answer:
                answer += await stream.receive_some(4096)
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body)["requestError"]["serviceException"]["messageId"] == "SVC0001"
    assert await _list_ids(client) == []


async def test_unacceptable_accept_is_406_and_changes_nothing(client):
    response = await client.post(CHANNELS, json=D7_WEBSOCKETS, headers={"Accept": "text/html"})
    assert error_of(response)[:2] == (406, "SVC0001")
    assert await _list_ids(client) == []


@pytest.mark.parametrize("accept", ["*/*", "application/*", "application/json;q=0.5, */*;q=0.1"])
async def test_wildcards_get_json(client, accept):
    response = await client.get(CHANNELS, headers={"Accept": accept})
    assert response.headers["content-type"].startswith("application/json")


async def test_xml_preferred_by_quality(client):
    response = await client.get(CHANNELS, headers={
        "Accept": "application/json;q=0.4, application/xml;q=0.9"})
    assert xml(response).tag == f"{{{NC}}}notificationChannelList"


async def test_unknown_resources_are_404_svc0004(client):
    assert error_of(await client.get(f"{CHANNELS}/nope"))[:2] == (404, "SVC0004")
    assert error_of(await client.get(f"{CHANNELS}/nope/channelLifetime"))[:2] == (404, "SVC0004")
    assert error_of(await client.post(f"{BASE}/callbacks/nope", json={"x": {}}))[:2] == (
        404, "SVC0004")
    assert error_of(await client.get("/no/such/thing"))[:2] == (404, "SVC0004")


async def test_lifetime_put_with_bad_body_changes_nothing(client):
    channel = await create(client)
    url = path_of(channel["resourceURL"]) + "/channelLifetime"
    await client.put(url, json={"notificationChannelLifetime": {"channelLifetime": "60"}})
    bad = await client.put(url, json={"notificationChannelLifetime": {"channelLifetime": "-1"}})
    assert error_of(bad) == (400, "SVC0002", ["channelLifetime", "an integer >= 1"])
    got = (await client.get(url)).json()
    remaining = int(got["notificationChannelLifetime"]["channelLifetime"])
    assert 58 <= remaining <= 60


async def test_user_id_with_percent_encoded_reserved_characters(client):
    path = f"{BASE}/sip%3Aalice%40example.com/channels"
    channel = await create(client, D7_WEBSOCKETS, path=path)
    assert channel["resourceURL"].startswith(f"{client.services.public_url}{path}/")
    assert await _list_ids(client, path) == [channel["resourceURL"].rsplit("/", 1)[1]]
    assert USER_PATH not in channel["resourceURL"]
