"""The Notification Channel resources (spec §6): channels, one channel, its lifetime, long
polling, and the callback URL enablers post notifications to."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from quart import Blueprint, Response, request

from actors import ActorStopped, AskTimeout, MailboxFull
from actors.channel import (
    ChannelActor,
    ChannelGone,
    ChannelPolicy,
    ChannelView,
    Close,
    Describe,
    Poll,
    PollReplaced,
    Refresh,
)
from actors.router import ChannelRequest, CreateChannel

from .bodies import as_int, as_text, raw_body, read_body, unsupported_media_type
from .codecs.notifications import (
    NC_NS,
    NotificationCodec,
    UnsupportedFormat,
    parse_notifications,
)
from .codecs.xml import XSI, build, to_xml_bytes
from .context import services
from .errors import (
    OmaError,
    error_answer,
    invalid_input,
    not_found,
    render_error,
    service_error,
)
from .negotiation import FORM, JSON, XML, body_format, choose_format, render

blueprint = Blueprint("channels", __name__, url_prefix="/notificationchannel/v1")

SUPPORTED_TYPES = ("LongPolling", "WebSockets")
KNOWN_TYPES = ("LongPolling", "OMAPush", "WebSockets", "NativeChannel")
DATA_TYPES = {"LongPolling": "nc:LongPollingData", "WebSockets": "nc:WebSocketsData"}
#: members the server sets; a client that sends them gets SVC0002
SERVER_MEMBERS = ("callbackURL", "resourceURL")
_NS = {"nc": NC_NS}
_CODEC = NotificationCodec()


def policy() -> ChannelPolicy:
    return services().router.policy


# -- URLs ----------------------------------------------------------------------------------
def channels_url(user_id: str) -> str:
    return f"{services().public_url}/notificationchannel/v1/{quote(user_id, safe='')}/channels"


def channel_url(view: ChannelView) -> str:
    return f"{channels_url(view.info.user_id)}/{view.info.id}"


def delivery_url(view: ChannelView) -> str:
    if view.info.channel_type == "WebSockets":
        base = channel_url(view)
        scheme, rest = base.split("://", 1)
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"
    return f"{channel_url(view)}/notifications"


def callback_url(callback_id: str) -> str:
    return f"{services().public_url}/notificationchannel/v1/callbacks/{callback_id}"


# -- representations -----------------------------------------------------------------------
def channel_body(view: ChannelView) -> dict[str, Any]:
    info = view.info
    body: dict[str, Any] = {}
    if info.client_correlator is not None:
        body["clientCorrelator"] = info.client_correlator
    if info.application_tag is not None:
        body["applicationTag"] = info.application_tag
    data: dict[str, Any] = {"channelURL": delivery_url(view),
                            "maxNotifications": str(info.max_notifications)}
    if info.max_wait_time is not None:
        data["maxWaitTime"] = str(info.max_wait_time)
    body.update(channelType=info.channel_type, channelData=data,
                channelLifetime=str(view.remaining), callbackURL=callback_url(info.callback_id),
                resourceURL=channel_url(view))
    return body


def respond(body: dict[str, Any], view: ChannelView, *, status: int = 200,
            headers: dict[str, str] | None = None) -> Response:
    """One channel (or anything holding one ``channelData``), typed for XML."""
    types = {"channelData": DATA_TYPES[view.info.channel_type]}
    return render(body, choose_format(), status=status, namespaces=_NS, types=types,
                  headers=headers)


# -- /{userId}/channels --------------------------------------------------------------------
@blueprint.route("/<user_id>/channels", methods=["GET", "POST"])
async def channels(user_id: str) -> Response:
    if request.method == "GET":
        choose_format()
        views = services().router.channels_of(user_id)
        body = {"notificationChannelList": {
            "notificationChannel": [channel_body(v) for v in views],
            "resourceURL": channels_url(user_id)}}
        return _render_list(body, views)
    choose_format()  # 406 before anything changes
    creation = await _creation_request(user_id)
    view, created = await services().router.ref.ask(lambda r: CreateChannel(creation, r),
                                                  timeout=30)
    return respond({"notificationChannel": channel_body(view)}, view,
                   status=201 if created else 200, headers={"Location": channel_url(view)})


def _render_list(body: dict[str, Any], views: list[ChannelView]) -> Response:
    fmt = choose_format()
    if fmt == JSON:
        return render(body, fmt, namespaces=_NS)
    # XML: each channelData carries its own xsi:type
    element = build(f"{{{NC_NS}}}notificationChannelList", body["notificationChannelList"],
                    nsmap={"nc": NC_NS, "xsi": XSI})
    for child, view in zip(element.findall("notificationChannel"), views, strict=True):
        data = child.find("channelData")
        if data is not None:
            data.set(f"{{{XSI}}}type", DATA_TYPES[view.info.channel_type])
    return Response(to_xml_bytes(element), content_type=f"{XML}; charset=utf-8")


async def _creation_request(user_id: str) -> ChannelRequest:
    if not user_id or len(user_id) > 512:
        raise invalid_input("userId")
    body = await read_body("notificationChannel", allow_form=True)
    fields = body.fields
    if body.fmt == FORM:  # Appendix C: a flat list of members
        data: dict[str, Any] = {
            k: fields.pop(k) for k in ("maxNotifications", "maxWaitTime") if k in fields}
        fields["channelData"] = data
    for member in SERVER_MEMBERS:
        if member in fields:
            raise invalid_input(member, "none: the server sets it")
    channel_type = fields.get("channelType")
    if channel_type not in KNOWN_TYPES:
        raise invalid_input("channelType", ", ".join(KNOWN_TYPES))
    if channel_type not in SUPPORTED_TYPES:
        raise OmaError(403, "POL1023",
                       "Notification channel type %1 not supported. Supported types: %2.",
                       [channel_type, ", ".join(SUPPORTED_TYPES)])
    if body.fmt == FORM and channel_type == "WebSockets":
        raise unsupported_media_type()  # Appendix C excludes WebSockets channels
    data = fields.get("channelData") or {}
    if not isinstance(data, dict):
        raise invalid_input("channelData")
    declared = body.types.get("channelData")
    if declared is not None and declared != DATA_TYPES[channel_type].split(":")[1]:
        raise invalid_input("channelData", f"xsi:type {DATA_TYPES[channel_type]}")
    if "channelURL" in data:
        raise invalid_input("channelData.channelURL", "none: the server sets it")
    return ChannelRequest(
        user_id=user_id, channel_type=channel_type,
        max_notifications=_bounded(data, "maxNotifications", policy().default_max_notifications,
                                   policy().max_max_notifications, minimum=1),
        lifetime=_bounded(fields, "channelLifetime", policy().default_lifetime,
                          policy().max_lifetime, minimum=1),
        max_wait_time=(_bounded(data, "maxWaitTime", policy().default_max_wait,
                                policy().max_max_wait, minimum=0)
                       if channel_type == "LongPolling" else None),
        client_correlator=_optional_text(fields, "clientCorrelator"),
        application_tag=_optional_text(fields, "applicationTag"),
    )


def _bounded(fields: dict[str, Any], name: str, default: int, maximum: int, *, minimum: int) -> int:
    """The client's wish, or the policy default; the policy maximum caps it."""
    if fields.get(name) is None:
        return default
    return min(as_int(fields[name], name, minimum=minimum), maximum)


def _optional_text(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    return None if value is None else as_text(value, name)


# -- /{userId}/channels/{channelId} --------------------------------------------------------
def _channel(user_id: str, channel_id: str) -> ChannelActor:
    actor = services().router.channel_for(user_id, channel_id)
    if actor is None:
        raise not_found("channelId")
    return actor


async def _ask(actor: ChannelActor, make: Any) -> Any:
    try:
        return await actor.ref.ask(make, timeout=10)
    except (ChannelGone, ActorStopped):
        raise not_found("channelId") from None


@blueprint.route("/<user_id>/channels/<channel_id>", methods=["GET", "DELETE"])
async def channel(user_id: str, channel_id: str) -> Response:
    actor = _channel(user_id, channel_id)
    if request.method == "DELETE":
        await _ask(actor, Close)
        return Response(b"", status=204)
    view = await _ask(actor, Describe)
    return respond({"notificationChannel": channel_body(view)}, view)


@blueprint.route("/<user_id>/channels/<channel_id>/channelLifetime", methods=["GET", "PUT"])
async def channel_lifetime(user_id: str, channel_id: str) -> Response:
    actor = _channel(user_id, channel_id)
    fmt = choose_format()
    if request.method == "PUT":
        body = await read_body("notificationChannelLifetime")
        lifetime = _bounded(body.fields, "channelLifetime", policy().default_lifetime,
                            policy().max_lifetime, minimum=1)
        remaining = await _ask(actor, lambda r: Refresh(lifetime, r))
    else:
        remaining = (await _ask(actor, Describe)).remaining
    body_out = {"notificationChannelLifetime": {"channelLifetime": str(remaining)}}
    return render(body_out, fmt, namespaces=_NS)


# -- long polling --------------------------------------------------------------------------
@blueprint.route("/<user_id>/channels/<channel_id>/notifications", methods=["POST"])
async def long_poll(user_id: str, channel_id: str) -> Response:
    actor = _channel(user_id, channel_id)
    if actor.info.channel_type != "LongPolling":
        raise not_found("channelId")
    fmt = choose_format()
    await _poll_parameters()
    status, content_type, body = await poll_answer(actor, fmt)
    return Response(body, status=status, content_type=content_type)


async def poll_answer(actor: ChannelActor, fmt: str) -> tuple[int, str, bytes]:
    """(status, Content-Type, body) for one long poll on ``actor``, answered in ``fmt`` when
    there is nothing (or an error) to say; shared with the fast path (api.fast_http)."""
    wait = actor.info.max_wait_time or 0
    try:
        answer = await actor.ref.ask(Poll, timeout=wait + 30)
    except PollReplaced:
        error = OmaError(409, "SVC1012", "Simultaneous channel requests not supported")
    except (ChannelGone, ActorStopped):
        error = not_found("channelId")
    else:
        if answer is None:
            text = _CODEC.empty("xml" if fmt == XML else "json")
            return 200, f"{fmt}; charset=utf-8", text.encode()
        notification_fmt, frame = answer
        return 200, f"{XML if notification_fmt == 'xml' else JSON}; charset=utf-8", frame.encode()
    return error_answer(error, fmt)


async def _poll_parameters() -> None:
    """The body is an empty longPollingRequestParameters, in any of the three encodings."""
    fmt = body_format()
    if fmt == FORM:
        await request.get_data()  # `longPollingRequestParmeters=` (sic, Appendix C) or empty
        return
    await read_body("longPollingRequestParameters", allow_empty=True)


# -- callbackURL ---------------------------------------------------------------------------
@blueprint.route("/callbacks/<callback_id>", methods=["POST"])
async def callback(callback_id: str) -> Response:
    actor = services().router.channel_by_callback(callback_id)
    if actor is None:
        raise not_found("callbackId")
    data = await raw_body()
    try:  # the same parser as the fast path (api.fast_http)
        notifications = parse_notifications(request.mimetype, data)
    except UnsupportedFormat:
        raise unsupported_media_type() from None
    except ValueError as error:  # XmlError, NotificationError
        raise invalid_input("notification", str(error)) from None
    if not notifications:
        return Response(b"", status=204)
    try:
        actor.offer(notifications)
    except MailboxFull:
        raise service_error(503, "channel queue full; retry later",
                            headers={"Retry-After": "1"}) from None
    except ActorStopped:
        raise not_found("callbackId") from None
    return Response(b"", status=204)


@blueprint.errorhandler(AskTimeout)
async def _timeout(_: AskTimeout) -> Response:
    return render_error(service_error(503, "the server is busy; retry later",
                                      headers={"Retry-After": "1"}))

