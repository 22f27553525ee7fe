"""NMS subscriptions (spec §6.17–6.18): create (optionally from a restartToken), read, update
(duration, restartToken), cancel."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from quart import Blueprint, Response, request

from actors import ActorStopped
from actors.storage import run_job
from actors.subscription import (
    Cancel,
    DescribeSubscription,
    SubscriptionActor,
    SubscriptionInfo,
    SubscriptionView,
    Update,
)
from actors.subscriptions import StartSubscription
from storage import Subscription as SubscriptionRow
from storage.nms import Position, open_box, position
from storage.search import Criteria, to_json

from .bodies import as_int, as_text, read_body
from .codecs.nms import NMS_NS, subscription_body
from .context import services, store_urls
from .criteria import criteria_from
from .errors import invalid_input, not_found
from .negotiation import choose_format, render

blueprint = Blueprint("nms_subscriptions", __name__, url_prefix="/nms/v1/<store>/<box>")
_NS = {"nms": NMS_NS}


@dataclass(frozen=True)
class SubscriptionPolicy:
    default_duration: int = 3600
    max_duration: int = 86400


POLICY = SubscriptionPolicy()


def respond(body: dict[str, Any], *, status: int = 200,
            headers: dict[str, str] | None = None) -> Response:
    return render(body, choose_format(), status=status, namespaces=_NS, headers=headers)


def _duration(value: Any) -> int:
    if value is None:
        return POLICY.default_duration
    seconds = as_int(value, "duration", minimum=0)
    return POLICY.default_duration if seconds == 0 else min(seconds, POLICY.max_duration)


def _token(value: Any, current: Position) -> Position:
    """A restartToken this box handed out (not from its future, not from a later reset)."""
    try:
        token = Position.parse(as_text(value, "restartToken", max_length=40))
    except ValueError:
        raise invalid_input("restartToken", "a restartToken from a notification or "
                                             "subscription of this box") from None
    if token.validity > current.validity or (
            token.validity == current.validity and token.seq > current.seq):
        raise invalid_input("restartToken", "a restartToken from a notification or "
                                             "subscription of this box")
    return token


@blueprint.route("/subscriptions", methods=["GET", "POST"])
async def subscriptions(store: str, box: str) -> Response:
    choose_format()
    svc = services()
    if request.method == "GET":
        views = [a.view() for a in svc.subscriptions.supervisor.targets()
                 if isinstance(a, SubscriptionActor) and not a.ended
                 and (a.info.store, a.info.box) == (store, box)]
        return respond({"nmsSubscriptionList": {
            "subscription": [subscription_body(store_urls(), v) for v in views],
            "resourceURL": store_urls().box(store, box) + "/subscriptions"}})
    fields = (await read_body("nmsSubscription")).fields
    callback = fields.get("callbackReference")
    if not isinstance(callback, dict) or not isinstance(callback.get("notifyURL"), str):
        raise invalid_input("callbackReference.notifyURL", "an http(s) URL")
    notify_url = callback["notifyURL"]
    if not notify_url.startswith(("http://", "https://")) or len(notify_url) > 2048:
        raise invalid_input("callbackReference.notifyURL", "an http(s) URL")
    fmt = str(callback.get("notificationFormat") or "JSON").upper()
    if fmt not in ("JSON", "XML"):
        raise invalid_input("callbackReference.notificationFormat", "JSON, XML")
    criteria = None if fields.get("filter") is None else criteria_from(fields["filter"], "filter")
    callback_data = callback.get("callbackData")
    correlator = fields.get("clientCorrelator")
    request_ = _Creation(
        notify_url=notify_url, fmt=fmt.lower(), duration=_duration(fields.get("duration")),
        callback_data=None if callback_data is None else as_text(callback_data, "callbackData"),
        correlator=None if correlator is None else as_text(correlator, "clientCorrelator"),
        token=fields.get("restartToken"), filter=criteria)
    view, created = await _create(store, box, request_)
    url = store_urls().subscription(store, box, view.info.id)
    return respond({"nmsSubscription": subscription_body(store_urls(), view)},
                   status=201 if created else 200, headers={"Location": url})


@dataclass(frozen=True)
class _Creation:
    notify_url: str
    fmt: str
    duration: int
    callback_data: str | None
    correlator: str | None
    token: Any
    filter: Criteria | None


async def _create(store: str, box: str, creation: _Creation) -> tuple[SubscriptionView, bool]:
    svc = services()

    def insert(session: Any) -> tuple[SubscriptionInfo | str, Position, Position | None]:
        work = open_box(session, store, box)
        assert work is not None
        here = Position(work.box.validity, work.box.seq)
        replay = None if creation.token is None else _token(creation.token, here)
        if creation.correlator is not None:
            existing = session.scalar(sa.select(SubscriptionRow.id).where(
                SubscriptionRow.box_pk == work.box.pk,
                SubscriptionRow.client_correlator == creation.correlator))
            if existing is not None:
                return existing, here, None
        info = SubscriptionInfo(
            id="s" + secrets.token_hex(8), store=store, box=box, box_pk=work.box.pk,
            notify_url=creation.notify_url, callback_data=creation.callback_data,
            fmt=creation.fmt, duration=creation.duration, client_correlator=creation.correlator,
            filter=creation.filter, created_after=here.seq)
        stored_filter = None if creation.filter is None else {
            **to_json(creation.filter), "createdAfter": here.seq}
        session.add(SubscriptionRow(
            id=info.id, box_pk=info.box_pk, notify_url=info.notify_url,
            callback_data=info.callback_data, notification_format=info.fmt,
            duration=info.duration,
            expires_at=datetime.now(UTC) + timedelta(seconds=info.duration),
            filter=stored_filter,
            client_correlator=info.client_correlator,
            next_index=1, restart_token=str(here)))
        return info, here, replay

    info, here, replay = await run_job(svc.storage, insert)
    if isinstance(info, str):  # the clientCorrelator was used before: the same subscription
        existing = svc.subscriptions.subscription(store, box, info)
        if existing is not None:
            return await existing.ref.ask(DescribeSubscription), False
        raise not_found("clientCorrelator")
    actor = await svc.subscriptions.ref.ask(
        lambda r: StartSubscription(info, here, 1, replay, r), timeout=30)
    return actor.view(), True


def _subscription(store: str, box: str, subscription_id: str) -> SubscriptionActor:
    actor = services().subscriptions.subscription(store, box, subscription_id)
    if actor is None:
        raise not_found("subscriptionId")
    return actor


@blueprint.route("/subscriptions/<subscription_id>", methods=["GET", "POST", "DELETE"])
async def subscription(store: str, box: str, subscription_id: str) -> Response:
    choose_format()
    actor = _subscription(store, box, subscription_id)
    try:
        if request.method == "DELETE":
            await actor.ref.ask(Cancel)
            return Response(b"", status=204)
        if request.method == "POST":
            fields = (await read_body("nmsSubscriptionUpdate")).fields
            duration = None if fields.get("duration") is None else _duration(fields["duration"])
            restart = None
            if fields.get("restartToken") is not None:
                current = await run_job(services().storage, lambda s: position(s, store, box))
                restart = _token(fields["restartToken"], current)
            view = await actor.ref.ask(lambda r: Update(duration, restart, r))
        else:
            view = await actor.ref.ask(DescribeSubscription)
    except ActorStopped:
        raise not_found("subscriptionId") from None
    return respond({"nmsSubscription": subscription_body(store_urls(), view)})
