"""NMS store resources (spec §6.1–6.4, 6.11): chat message objects, their flags, folders."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from quart import Blueprint, Response, request

from actors.store import Store
from storage import nms
from storage.nms import BoxWork, NotFound

from .bodies import body_from, raw_body, read_body
from .codecs.multipart import MultipartError, parse_upload
from .codecs.nms import NMS_NS, Urls
from .context import services, store_urls
from .errors import OmaError, invalid_input, not_found
from .negotiation import JSON, body_format, choose_format, decode_json, render

blueprint = Blueprint("nms", __name__, url_prefix="/nms/v1/<store>/<box>")
_NS = {"nms": NMS_NS}
#: attributes a chat message must carry (NMS Appendix I names)
REQUIRED = ("From", "To", "TextContent")
MAX_FLAGS = 64


def respond(body: dict[str, Any], *, status: int = 200,
            headers: dict[str, str] | None = None) -> Response:
    return render(body, choose_format(), status=status, namespaces=_NS, headers=headers)


# -- reading a body ------------------------------------------------------------------------
def _values(value: Any, part: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in items):
        raise invalid_input(part, "strings")
    return items


def _attributes(fields: dict[str, Any]) -> list[dict[str, Any]]:
    listed = (fields.get("attributes") or {}).get("attribute") or []
    found: dict[str, list[str]] = {}
    for item in listed if isinstance(listed, list) else [listed]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise invalid_input("attributes", "attribute entries with a name and values")
        found.setdefault(item["name"], []).extend(_values(item.get("value", []), item["name"]))
    for name in REQUIRED:
        if not found.get(name):
            raise invalid_input(f"attributes.{name}", "a chat message has From, To and "
                                                      "TextContent")
    if len(found["From"]) != 1:
        raise invalid_input("attributes.From", "exactly one sender")
    found.setdefault("Date", [datetime.now(UTC).isoformat(timespec="seconds")])
    found.setdefault("Message-Context", ["pager-message"])
    return [{"name": name, "value": values} for name, values in found.items()]


def _flags(value: Any, part: str = "flags") -> list[str]:
    listed = (value or {}).get("flag") if isinstance(value, dict) else value
    flags = [] if listed is None else _values(listed, part)
    if len(flags) > MAX_FLAGS or any(not f or len(f) > 128 for f in flags):
        raise invalid_input(part, f"at most {MAX_FLAGS} non-empty flags")
    return flags


def _folder_id_from(url: str, box_url: str) -> str:
    prefix = box_url + "/folders/"
    if not url.startswith(prefix) or "/" in url[len(prefix):]:
        raise invalid_input("parentFolder", "a folder resourceURL of this box")
    return url[len(prefix):]


# -- representations -----------------------------------------------------------------------
def object_body(u: Urls, work: BoxWork, obj: Any, store: str, box: str) -> dict[str, Any]:
    """Built inside the database job: ``u`` comes from the request, not the app context."""
    path = nms.object_path(work, obj)
    return {"object": {
        "parentFolder": u.folder(store, box, obj.folder_id),
        "attributes": {"attribute": obj.attributes},
        "flags": {"flag": list(obj.flags)},
        "resourceURL": u.object(store, box, obj.id),
        "path": path,
        "lastModSeq": obj.last_mod_seq,
    }}


def flag_list(u: Urls, obj: Any, store: str, box: str) -> dict[str, Any]:
    return {"flagList": {"flag": list(obj.flags),
                         "resourceURL": u.object(store, box, obj.id) + "/flags"}}


# -- /objects ------------------------------------------------------------------------------
@dataclass(frozen=True)
class NewObject:
    """A chat message to create, read from a request body and checked."""

    attributes: list[dict[str, Any]]
    flags: list[str]
    folder_id: str | None
    parent_path: str | None


def new_object(fields: dict[str, Any], box_url: str) -> NewObject:
    """Raises an OMA error (400) naming the part that is wrong."""
    attributes = _attributes(fields)
    flags = _flags(fields.get("flags"))
    parent_url, parent_path = fields.get("parentFolder"), fields.get("parentFolderPath")
    folder_id = None if parent_url is None else _folder_id_from(str(parent_url), box_url)
    if parent_path is not None and not isinstance(parent_path, str):
        raise invalid_input("parentFolderPath")
    return NewObject(attributes, flags, folder_id, parent_path)


async def add_object(store_: Store, urls: Urls, store: str, box: str,
                     new: NewObject) -> tuple[dict[str, Any], str]:
    """Create the object: the 201's body and the object's URL. Raises an OMA error.

    The view below and :mod:`api.fast_http` (a plain JSON request) both create with this."""
    def create(work: BoxWork) -> tuple[str, str]:
        if new.folder_id is not None:
            folder = nms.live_folder(work, new.folder_id)
        else:
            folder = nms.folder_at(work, new.parent_path or "/", create=True)
        obj = nms.create_object(work, folder, new.attributes, new.flags)
        return obj.id, nms.object_path(work, obj)

    try:
        object_id, path = await store_.write(store, box, create)
    except NotFound:
        raise invalid_input("parentFolder", "an existing folder of this box") from None
    except ValueError as error:
        raise invalid_input("parentFolderPath", str(error)) from None
    url = urls.object(store, box, object_id)
    return {"reference": {"resourceURL": url, "path": path}}, url


@blueprint.route("/objects", methods=["POST"])
async def create_object(store: str, box: str) -> Response:
    choose_format()
    if request.mimetype == "multipart/form-data":
        fields = await _multipart_object()
    else:
        fields = (await read_body("object")).fields
    urls = store_urls()
    body, url = await add_object(services().store, urls, store, box,
                                 new_object(fields, urls.box(store, box)))
    return respond(body, status=201, headers={"Location": url})


async def _multipart_object() -> dict[str, Any]:
    """root-fields plus attachments; a text/plain attachment becomes the TextContent."""
    try:
        upload = parse_upload(request.headers.get("Content-Type", ""), await raw_body())
    except MultipartError as error:
        raise invalid_input("multipart", str(error)) from None
    if upload.other_types:
        raise invalid_input("attachments", "text/plain only: this store keeps chat text, "
                                           f"not {', '.join(upload.other_types)}")
    fields = body_from(upload.root_type, upload.root_body, "object").fields
    if upload.texts:
        attributes = (fields.get("attributes") or {}).get("attribute") or []
        listed = attributes if isinstance(attributes, list) else [attributes]
        listed.append({"name": "TextContent", "value": ["\n".join(upload.texts)]})
        fields["attributes"] = {"attribute": listed}
    return fields


async def _read(store: str, box: str, object_id: str, view: Any) -> Any:
    def read(work: BoxWork | None) -> Any:
        if work is None:
            raise NotFound(object_id)
        return view(work, nms.live_object(work, object_id))

    try:
        return await services().store.read(store, box, read)
    except NotFound:
        raise not_found("objectId") from None


async def _write(store: str, box: str, object_id: str, change: Any) -> Any:
    try:
        return await services().store.write(store, box, change)
    except NotFound:
        raise not_found("objectId") from None


@blueprint.route("/objects/<object_id>", methods=["GET", "DELETE"])
async def one_object(store: str, box: str, object_id: str) -> Response:
    if object_id == "operations":
        raise not_found("objectId")
    choose_format()
    if request.method == "DELETE":
        await _write(store, box, object_id, lambda work: nms.delete_object(work, object_id))
        return Response(b"", status=204)
    u = store_urls()
    body = await _read(store, box, object_id,
                       lambda work, obj: object_body(u, work, obj, store, box))
    return respond(body)


@blueprint.route("/objects/<object_id>/flags", methods=["GET", "PUT"])
async def flags(store: str, box: str, object_id: str) -> Response:
    choose_format()
    u = store_urls()
    if request.method == "PUT":
        wanted = _flags((await read_body("flagList")).fields)
        body = await _write(store, box, object_id, lambda work: flag_list(
            u, nms.set_flags(work, object_id, wanted), store, box))
    else:
        body = await _read(store, box, object_id,
                           lambda work, obj: flag_list(u, obj, store, box))
    return respond(body)


@blueprint.route("/objects/<object_id>/flags/<path:flag>", methods=["GET", "PUT", "DELETE"])
async def one_flag(store: str, box: str, object_id: str, flag: str) -> Response:
    name = unquote(flag)
    if request.method == "GET":
        present = await _read(store, box, object_id, lambda work, obj: name in obj.flags)
        if not present:
            return respond({"empty": None}, status=404)
        return Response(b"", status=204)
    if request.method == "PUT":
        def add(work: BoxWork) -> bool:
            obj = nms.live_object(work, object_id)
            had = name in obj.flags
            nms.set_flags(work, object_id, [*obj.flags, name])
            return had

        had = await _write(store, box, object_id, add)
        if had:
            return Response(b"", status=204)
        location = store_urls().object(store, box, object_id) + "/flags/" + quote(name, safe="")
        return respond({"empty": None}, status=201, headers={"Location": location})

    def remove(work: BoxWork) -> None:
        obj = nms.live_object(work, object_id)
        nms.set_flags(work, object_id, [f for f in obj.flags if f != name])

    await _write(store, box, object_id, remove)
    return Response(b"", status=204)


# -- /folders/{folderId} -------------------------------------------------------------------
@blueprint.route("/folders/<folder_id>/folderName", methods=["GET", "PUT"])
async def folder_name(store: str, box: str, folder_id: str) -> Response:
    """Light-weight resource (§6.12): ``{"name": ...}``."""
    choose_format()
    if request.method == "PUT":
        data = await raw_body()
        try:
            value = decode_json(data) if body_format() == JSON else None
        except ValueError:
            value = None
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            raise invalid_input("name", 'a JSON object {"name": "..."}')
        name = value["name"]
        try:
            renamed = await services().store.write(
                store, box, lambda work: nms.rename_folder(work, folder_id, name).name)
        except NotFound:
            raise not_found("folderId") from None
        except PermissionError as error:
            raise OmaError(403, "POL0001", "A policy error occurred. Error code is %1",
                           [str(error)]) from None
        except FileExistsError:
            raise invalid_input("name", "a name no sibling folder has") from None
        except ValueError as error:
            raise invalid_input("name", str(error)) from None
        return _json({"name": renamed})

    def read(work: BoxWork | None) -> str:
        if work is None:
            raise NotFound(folder_id)
        return nms.live_folder(work, folder_id).name

    try:
        return _json({"name": await services().store.read(store, box, read)})
    except NotFound:
        raise not_found("folderId") from None


def _json(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), content_type="application/json; charset=utf-8")


@blueprint.route("/folders/<folder_id>", methods=["GET", "DELETE"])
async def folder(store: str, box: str, folder_id: str) -> Response:
    choose_format()
    if request.method == "DELETE":
        try:
            await services().store.write(store, box,
                                         lambda work: nms.delete_folder(work, folder_id))
        except NotFound:
            raise not_found("folderId") from None
        except PermissionError as error:
            raise OmaError(403, "POL0001", "A policy error occurred. Error code is %1",
                           [str(error)]) from None
        return Response(b"", status=204)
    u = store_urls()

    def read(work: BoxWork | None) -> dict[str, Any]:
        if work is None:
            raise NotFound(folder_id)
        found = nms.live_folder(work, folder_id)
        folders, objects = nms.folder_children(work.session, found)
        return {"folder": {
            "parentFolder": u.folder(store, box, found.parent_id),
            "attributes": {"attribute": []},
            "resourceURL": u.folder(store, box, found.id),
            "path": nms.folder_path(work.session, found),
            "name": found.name,
            "lastModSeq": found.last_mod_seq,
            "subFolders": {"folderReference": [
                {"resourceURL": u.folder(store, box, f.id)} for f in folders]},
            "objects": {"objectReference": [
                {"resourceURL": u.object(store, box, o.id)} for o in objects]},
        }}

    try:
        return respond(await services().store.read(store, box, read))
    except NotFound:
        raise not_found("folderId") from None
