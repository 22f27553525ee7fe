"""objects/operations/search and subscription filters (SearchCriteria)."""

from __future__ import annotations

import pytest

from tests.channel_helpers import D7_WEBSOCKETS, create, error_of, path_of, websocket
from tests.nms_helpers import BOX, _events, _kinds, post_message

SEARCH = f"{BOX}/objects/operations/search"


def criterion(kind: str, value: str = "", name: str | None = None) -> dict:
    item = {"type": kind, "value": value}
    if name is not None:
        item["name"] = name
    return item


async def find(client, *criteria, operator=None, **selection) -> dict:
    body: dict = {"maxEntries": selection.pop("maxEntries", 100), **selection}
    if criteria:
        body["searchCriteria"] = {"criterion": list(criteria)}
        if operator:
            body["searchCriteria"]["operator"] = operator
    response = await client.post(SEARCH, json={"selectionCriteria": body})
    assert response.status_code == 200, response.text
    return response.json()


def texts(result: dict) -> list[str]:
    return [next(a["value"][0] for a in o["attributes"]["attribute"] if a["name"] == "TextContent")
            for o in result["objectList"]["object"]]


@pytest.fixture
async def seeded(client):
    urls = {}
    urls["a"] = await post_message(client, "lunch at noon?", sender="tel:+1", to="tel:+2")
    urls["b"] = await post_message(client, "Noon works", sender="tel:+2", to="tel:+1",
                                   path="/conversations/alice")
    urls["c"] = await post_message(client, "see you", sender="tel:+1", to="tel:+3",
                                   flags=["\\Seen"])
    return client, urls


async def test_attribute_flag_text_and_operators(seeded):
    client, _ = seeded
    assert texts(await find(client, criterion("Attribute", "tel:+1", "From"))) == [
        "lunch at noon?", "see you"]
    assert texts(await find(client, criterion("Flag", "false", "\\Seen"))) == [
        "lunch at noon?", "Noon works"]
    assert texts(await find(client, criterion("AllTextAttributes", "NOON"))) == [
        "lunch at noon?", "Noon works"]
    assert texts(await find(client, criterion("WholeWord", "you"))) == ["see you"]
    assert texts(await find(client, criterion("Attribute", "tel:+3", "To"),
                            criterion("Attribute", "tel:+2", "From"), operator="Or")) == [
        "Noon works", "see you"]
    assert texts(await find(client, criterion("Attribute", "tel:+1", "From"),
                            operator="Not")) == ["Noon works"]
    assert texts(await find(client)) == ["lunch at noon?", "Noon works", "see you"]


async def test_cursor_paging_and_descending_order(seeded):
    client, _ = seeded
    first = await find(client, maxEntries=2)
    assert texts(first) == ["lunch at noon?", "Noon works"]
    rest = await find(client, maxEntries=2, fromCursor=first["objectList"]["cursor"])
    assert texts(rest) == ["see you"]
    assert "cursor" not in rest["objectList"]
    newest = await find(client, maxEntries=1, sortCriterion={"type": "Date",
                                                            "order": "Descending"})
    assert texts(newest) == ["see you"]


async def test_created_and_vanished_objects_and_scope(seeded):
    client, urls = seeded
    everything = await find(client, criterion("CreatedObjects", ""))
    assert len(texts(everything)) == 3
    cursor = everything["objectList"]["creationCursor"]
    assert texts(await find(client, criterion("CreatedObjects", cursor))) == []
    await post_message(client, "new one")
    assert texts(await find(client, criterion("CreatedObjects", cursor))) == ["new one"]
    await client.delete(urls["a"])
    vanished = await find(client, criterion("VanishedObjects"))
    assert vanished == {"objectReferenceList": {"objectReference": [
        {"resourceURL": client.services.public_url + urls["a"]}]}}
    alice = (await client.get(urls["b"])).json()["object"]["parentFolder"]
    assert texts(await find(client, searchScope={"resourceURL": alice})) == ["Noon works"]


async def test_date_range(seeded):
    client, _ = seeded
    assert len(texts(await find(client, criterion("Date", "minDate=2000-01-01T00:00:00Z")))) == 3
    assert texts(await find(client, criterion("Date", "maxDate=2000-01-01T00:00:00Z"))) == []


@pytest.mark.parametrize(("selection", "part"), [
    ({}, "maxEntries"),
    ({"maxEntries": 5, "searchCriteria": {"criterion": [{"type": "Telepathy", "value": ""}]}},
     "searchCriteria.type"),
    ({"maxEntries": 5, "searchCriteria": {"criterion": [{"type": "Flag", "value": "x"}]}},
     "searchCriteria.name"),
    ({"maxEntries": 5, "searchCriteria": {"criterion": [{"type": "Date", "value": "soon"}]}},
     "searchCriteria.value"),
    ({"maxEntries": 5, "searchCriteria": {"criterion": [
        {"type": "VanishedObjects", "value": ""}, {"type": "Flag", "name": "\\Seen",
                                                   "value": "true"}]}}, "searchCriteria.type"),
    ({"maxEntries": 5, "fromCursor": "abc"}, "fromCursor"),
])
async def test_bad_selection_criteria_are_svc0002(client, selection, part):
    response = await client.post(SEARCH, json={"selectionCriteria": selection})
    status, message_id, variables = error_of(response)
    assert (status, message_id, variables[0]) == (400, "SVC0002", part)


async def test_a_filtered_subscription_gets_only_matching_changes(client):
    channel = await create(client, D7_WEBSOCKETS)
    body = {"nmsSubscription": {
        "callbackReference": {"notifyURL": channel["callbackURL"]},
        "filter": {"criterion": [{"type": "Flag", "name": "\\Flagged", "value": "true"}]}}}
    response = await client.post(f"{BOX}/subscriptions", json=body)
    assert response.status_code == 201
    assert response.json()["nmsSubscription"]["filter"]["criterion"][0]["name"] == "\\Flagged"
    async with websocket(channel["channelData"]["channelURL"]) as ws:
        plain = await post_message(client, "not flagged")
        flagged = await post_message(client, "important", flags=["\\Flagged"])
        events = await _events(ws)
        assert _kinds(events) == [("changedObject", flagged.rsplit("/", 1)[1])]
        assert events["index"] == 1
        await client.put(f"{plain}/flags/%5CFlagged", json={"empty": None})
        events = await _events(ws)
        assert _kinds(events) == [("changedObject", plain.rsplit("/", 1)[1])]
        assert events["index"] == 2


async def test_created_objects_filter_is_live_only(client):
    before = await post_message(client, "old")
    channel = await create(client, D7_WEBSOCKETS)
    body = {"nmsSubscription": {
        "callbackReference": {"notifyURL": channel["callbackURL"]},
        "restartToken": "1-0",
        "filter": {"criterion": [{"type": "CreatedObjects", "value": ""}]}}}
    assert (await client.post(f"{BOX}/subscriptions", json=body)).status_code == 201
    async with websocket(channel["channelData"]["channelURL"]) as ws:
        new = await post_message(client, "new")
        events = await _events(ws)
    assert _kinds(events) == [("changedObject", new.rsplit("/", 1)[1])]
    assert before.rsplit("/", 1)[1] not in str(events)
    assert path_of(channel["resourceURL"])
