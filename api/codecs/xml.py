"""Safe XML in, OMA-style XML out.

Parsing never resolves entities, never touches the network and refuses any DOCTYPE (the door
for XXE and "billion laughs"). :func:`element_value` turns an element into a dict following
the Common JSON rules: child elements become keys, a repeated element a list, leaf text a
string, ``link`` attributes (``rel``, ``href``) a dict.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

XSI = "http://www.w3.org/2001/XMLSchema-instance"
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
    huge_tree=False, remove_comments=True, remove_pis=True,
)


class XmlError(ValueError):
    """The body is not well-formed, safe XML."""


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_element(data: bytes) -> etree._Element:
    """The root element of ``data``; raises :class:`XmlError` for anything unsafe or broken."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as error:
        raise XmlError(f"malformed XML: {error.msg}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise XmlError("DOCTYPE declarations are not accepted")
    return root


def element_value(element: etree._Element) -> Any:
    """One element as Common-JSON data (attributes other than ``xsi:type`` become keys)."""
    children = [child for child in element if isinstance(child.tag, str)]
    attributes = {local_name(k): v for k, v in element.attrib.items() if k != f"{{{XSI}}}type"}
    if not children and not attributes:
        text = (element.text or "").strip()
        return text if text else None
    value: dict[str, Any] = dict(attributes)
    for child in children:
        name = local_name(child.tag)
        item = element_value(child)
        if name in value:
            existing = value[name]
            value[name] = [*existing, item] if isinstance(existing, list) else [existing, item]
        else:
            value[name] = item
    return value


def xsi_type(element: etree._Element) -> str | None:
    """The local part of an element's ``xsi:type`` (``nc:WebSocketsData`` → ``WebSocketsData``)."""
    value = element.get(f"{{{XSI}}}type")
    return None if value is None else value.rsplit(":", 1)[-1]


def build(tag: str, value: Any, *, nsmap: dict[str | None, str] | None = None,
          types: dict[str, str] | None = None) -> etree._Element:
    """Element ``tag`` (Clark notation allowed) from Common-JSON ``value``.

    ``types`` maps a child name to the ``xsi:type`` it carries (e.g. ``channelData``).
    """
    element = etree.Element(tag, nsmap=nsmap)
    _fill(element, value, types or {})
    return element


def _fill(element: etree._Element, value: Any, types: dict[str, str]) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        element.text = _text(value)
        return
    if local_name(element.tag) == "link" and set(value) <= {"rel", "href"}:
        for key in ("rel", "href"):
            if key in value:
                element.set(key, _text(value[key]))
        return
    for name, item in value.items():
        for one in item if isinstance(item, list) else [item]:
            child = etree.SubElement(element, name)
            if name in types:
                child.set(f"{{{XSI}}}type", types[name])
            _fill(child, one, types)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_xml_bytes(element: etree._Element) -> bytes:
    data: bytes = etree.tostring(element, xml_declaration=True, encoding="UTF-8")
    return data


def element_bytes(element: etree._Element) -> bytes:
    """An element without the XML declaration, to be embedded in a larger document."""
    data: bytes = etree.tostring(element, encoding="UTF-8", xml_declaration=False)
    return data
