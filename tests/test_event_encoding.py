"""The nmsEventList JSON is assembled from a shared, encoded-once ``nmsEvent`` array: it must
be exactly the text a plain ``json.dumps`` of the whole list gives, for every subscription."""

from __future__ import annotations

import dataclasses
import json

from hypothesis import given
from hypothesis import strategies as st

from actors.subscription import SubscriptionInfo
from api.codecs.nms import EventListEncoder, Urls, event
from storage.nms import ItemState, Position

TEXT = st.text(min_size=0, max_size=12)
STATES = st.lists(st.one_of(
    st.builds(ItemState, st.just("object"), st.text(min_size=1, max_size=8),
              st.integers(1, 10**9), st.booleans(), parent_id=st.text(min_size=1, max_size=8),
              flags=st.lists(TEXT, max_size=3).map(tuple)),
    st.builds(ItemState, st.just("folder"), st.text(min_size=1, max_size=8),
              st.integers(1, 10**9), st.booleans(), parent_id=st.none() | TEXT, name=TEXT)),
    min_size=1, max_size=4)


@given(states=STATES, callback=st.none() | TEXT, store=TEXT, box=TEXT,
       index=st.integers(0, 10**6), seq=st.integers(0, 10**9))
def test_event_list_text_is_what_json_dumps_gives(states, callback, store, box, index, seq):
    encoder = EventListEncoder(Urls(lambda: "http://h:1"))
    info = SubscriptionInfo("s1", store, box, 1, "http://x", callback, "json", 60, None)
    for subscription in (info, dataclasses.replace(info, id="s2")):  # shared events, own tail
        text = encoder.event_list(subscription, states, index, Position(1, seq))
        body: dict = {"nmsEvent": [event(encoder.urls, store, box, s) for s in states]}
        if callback is not None:
            body["callbackData"] = callback
        body.update(index=index, restartToken=f"1-{seq}", link=[{
            "rel": "NmsSubscription",
            "href": encoder.urls.subscription(store, box, subscription.id)}])
        assert text == json.dumps({"nmsEventList": body}, ensure_ascii=False,
                                  separators=(",", ":"))
