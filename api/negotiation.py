"""Content negotiation: request bodies in (JSON, XML, form), responses out (JSON or XML)."""

from __future__ import annotations

import json
from typing import Any

from quart import Response, request

from .codecs import dump_json
from .codecs.xml import build, to_xml_bytes

JSON = "application/json"
XML = "application/xml"
FORM = "application/x-www-form-urlencoded"


class NotAcceptable(Exception):
    """The ``Accept`` header allows neither JSON nor XML."""


def choose_format(*, strict: bool = True) -> str:
    """JSON or XML for the response. JSON when ``Accept`` is absent or a wildcard.

    With ``strict=False`` (error bodies) an unacceptable ``Accept`` falls back to JSON.
    """
    if not request.headers.get("Accept", "").strip():
        return JSON
    accept = request.accept_mimetypes
    q_json, q_xml = accept[JSON], max(accept[XML], accept["text/xml"])
    if q_json <= 0 and q_xml <= 0:
        if strict:
            raise NotAcceptable(request.headers["Accept"])
        return JSON
    return JSON if q_json >= q_xml else XML


def render(body: dict[str, Any], fmt: str, *, status: int = 200,
           namespaces: dict[str, str], types: dict[str, str] | None = None,
           headers: dict[str, str] | None = None) -> Response:
    """A response holding ``body`` (one root key) as JSON or as XML.

    ``namespaces`` maps the root's prefix to its namespace (``{"nc": NC_NS}``); the root element
    is qualified, its children are not (as in the spec's examples).
    """
    data = encode(body, fmt, namespaces=namespaces, types=types)
    response = Response(data, status=status, content_type=f"{fmt}; charset=utf-8")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def encode(body: dict[str, Any], fmt: str, *, namespaces: dict[str, str],
           types: dict[str, str] | None = None) -> bytes:
    """The bytes of a response body in ``fmt`` (see :func:`render`)."""
    if fmt == JSON:
        return json_bytes(body)
    ((root, value),) = body.items()
    ((prefix, namespace),) = namespaces.items()
    nsmap: dict[str | None, str] = {prefix: namespace}
    if types:
        nsmap["xsi"] = "http://www.w3.org/2001/XMLSchema-instance"
    return to_xml_bytes(build(f"{{{namespace}}}{root}", value, nsmap=nsmap, types=types))


def json_bytes(body: Any) -> bytes:
    """A JSON response body, as every answer writes it."""
    return dump_json(body).encode()


def body_format() -> str:
    """The format of the request body, from ``Content-Type`` (``""`` if there is none)."""
    return format_of(request.mimetype)


def format_of(mimetype: str) -> str:
    """JSON, XML or FORM for a body of this media type, else the media type itself."""
    if mimetype in (JSON,) or mimetype.endswith("+json"):
        return JSON
    if mimetype in (XML, "text/xml") or mimetype.endswith("+xml"):
        return XML
    if mimetype == FORM:
        return FORM
    return mimetype or ""


def decode_json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"malformed JSON: {error}") from None


__all__ = ["FORM", "JSON", "XML", "NotAcceptable", "body_format", "choose_format", "decode_json",
           "encode", "format_of", "json_bytes", "render"]
