"""Request bodies in JSON, XML or form encoding, read into one shape: :class:`Body`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from quart import request

from .codecs.xml import XmlError, element_value, local_name, parse_element, xsi_type
from .errors import OmaError, invalid_input, service_error
from .negotiation import FORM, JSON, XML, body_format, decode_json


@dataclass
class Body:
    """The members of the request's root element, and the ``xsi:type`` of its children."""

    fields: dict[str, Any]
    fmt: str
    types: dict[str, str] = field(default_factory=dict)


async def read_body(root: str, *, allow_form: bool = False, allow_empty: bool = False) -> Body:
    """Read the request body whose root is ``root``; raise an OMA error for anything else."""
    fmt = body_format()
    data = await raw_body()
    if not data.strip():
        if allow_empty:
            return Body({}, fmt or JSON)
        raise invalid_input(root)
    if fmt == JSON:
        return Body(json_root(data, root), JSON)
    if fmt == XML:
        return _xml_root(data, root)
    if fmt == FORM and allow_form:
        try:
            pairs = parse_qsl(data.decode(), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise invalid_input(root, "application/x-www-form-urlencoded members") from None
        # Appendix C's examples break lines after each '&'
        return Body({k.strip(): v.strip() for k, v in pairs}, FORM)
    raise unsupported_media_type(allow_form)


async def raw_body() -> bytes:
    """The request body as bytes (413 past the app's MAX_CONTENT_LENGTH)."""
    data = await request.get_data(cache=False, as_text=False)
    return data if isinstance(data, bytes) else data.encode()


def unsupported_media_type(allow_form: bool = False) -> OmaError:
    accepted = "application/json, application/xml" + (f", {FORM}" if allow_form else "")
    return service_error(415, f"Content-Type {request.mimetype or '(none)'} not supported; "
                              f"use {accepted}")


def body_from(content_type: str, data: bytes, root: str) -> Body:
    """A body part (e.g. multipart root-fields) in JSON or XML, read like a request body."""
    if content_type == JSON or content_type.endswith("+json"):
        return Body(json_root(data, root), JSON)
    if content_type in (XML, "text/xml"):
        return _xml_root(data, root)
    raise invalid_input(root, "application/json or application/xml")


def json_root(data: bytes, root: str) -> dict[str, Any]:
    try:
        value = decode_json(data)
    except ValueError:
        raise invalid_input(root, "well-formed JSON") from None
    if not isinstance(value, dict) or set(value) != {root}:
        raise invalid_input(root, f'a JSON object with the single member "{root}"')
    inner = value[root]
    if inner is None:
        return {}
    if not isinstance(inner, dict):
        raise invalid_input(root, "an object")
    return inner


def _xml_root(data: bytes, root: str) -> Body:
    try:
        element = parse_element(data)
    except XmlError as error:
        raise invalid_input(root, str(error)) from None
    if local_name(element.tag) != root:
        raise invalid_input(root, f"an XML document whose root element is {root}")
    value = element_value(element)
    types = {local_name(child.tag): t for child in element
             if isinstance(child.tag, str) and (t := xsi_type(child)) is not None}
    return Body(value if isinstance(value, dict) else {}, XML, types)


def as_int(value: Any, part: str, *, minimum: int) -> int:
    """An integer given as a number or a string of digits (the spec's JSON uses strings)."""
    if isinstance(value, bool):
        raise invalid_input(part, f"an integer >= {minimum}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    else:
        raise invalid_input(part, f"an integer >= {minimum}")
    if number < minimum:
        raise invalid_input(part, f"an integer >= {minimum}")
    return number


def as_text(value: Any, part: str, *, max_length: int = 512) -> str:
    if not isinstance(value, str) or len(value) > max_length:
        raise invalid_input(part, f"a string of at most {max_length} characters")
    return value
