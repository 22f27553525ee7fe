"""``objects/operations/search`` (NMS §6.7): SelectionCriteria in, objectList out, with cursor
paging (``fromCursor`` / ``cursor``) and CreatedObjects' ``creationCursor``.

The search reads the box's objects and evaluates the criteria in the worker thread; a box of
chat messages is scanned whole for each page (indexes per criterion are future work)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from quart import Blueprint, Response

from storage import StoredObject, nms
from storage.nms import BoxWork
from storage.search import Criteria, matches

from .bodies import as_int, read_body
from .codecs.nms import NMS_NS, Urls
from .context import services, store_urls
from .criteria import criteria_from
from .errors import invalid_input
from .negotiation import choose_format, render
from .nms import object_body

blueprint = Blueprint("nms_search", __name__, url_prefix="/nms/v1/<store>/<box>")
#: the largest page a client may ask for
MAX_ENTRIES = 1000


@blueprint.route("/objects/operations/search", methods=["POST"])
async def search(store: str, box: str) -> Response:
    fmt = choose_format()
    u = store_urls()
    fields = (await read_body("selectionCriteria")).fields
    if fields.get("maxEntries") is None:
        raise invalid_input("maxEntries", "an integer >= 1")
    limit = min(as_int(fields["maxEntries"], "maxEntries", minimum=1), MAX_ENTRIES)
    criteria = None
    if fields.get("searchCriteria") is not None:
        criteria = criteria_from(fields["searchCriteria"], "searchCriteria")
    descending = _descending(fields.get("sortCriterion"))
    cursor = _cursor(fields.get("fromCursor"), "fromCursor")
    created_after = 0
    if criteria is not None and criteria.created is not None and criteria.created.value:
        created_after = _cursor(criteria.created.value, "criterion.value") or 0
    scope = fields.get("searchScope")
    scope_url = scope.get("resourceURL") if isinstance(scope, dict) else None

    def run(work: BoxWork | None) -> dict[str, Any]:
        return _page(u, work, store, box, criteria, limit, cursor, descending, created_after,
                     scope_url)

    return render(await services().store.read(store, box, run), fmt,
                  namespaces={"nms": NMS_NS})


def _descending(sort: Any) -> bool:
    if sort is None:
        return False
    if not isinstance(sort, dict) or sort.get("type") != "Date":
        raise invalid_input("sortCriterion", "type Date, order Ascending or Descending")
    order = sort.get("order") or "Ascending"
    if order not in ("Ascending", "Descending"):
        raise invalid_input("sortCriterion.order", "Ascending, Descending")
    return bool(order == "Descending")


def _cursor(value: Any, part: str) -> int | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.isdigit():
        raise invalid_input(part, "a cursor this server returned")
    return int(value)


def _page(u: Urls, work: BoxWork | None, store: str, box: str, criteria: Criteria | None,
          limit: int, cursor: int | None, descending: bool, created_after: int,
          scope_url: Any) -> dict[str, Any]:
    vanished = criteria is not None and criteria.vanished
    if work is None:
        rows: list[StoredObject] = []
    else:
        order = StoredObject.created_seq.desc() if descending else StoredObject.created_seq
        query = sa.select(StoredObject).where(StoredObject.box_pk == work.box.pk,
                                              StoredObject.deleted.is_(vanished)).order_by(order)
        if cursor is not None:
            query = query.where(StoredObject.created_seq < cursor if descending
                                else StoredObject.created_seq > cursor)
        rows = list(work.session.scalars(query))
    if scope_url is not None and work is not None:
        prefix = u.box(store, box) + "/folders/"
        if not isinstance(scope_url, str) or not scope_url.startswith(prefix):
            raise invalid_input("searchScope", "a folder resourceURL of this box")
        folder_id = scope_url[len(prefix):]
        rows = [r for r in rows if r.folder_id == folder_id]
    found = [r for r in rows if criteria is None
             or matches(nms.object_state(r), criteria, created_after=created_after)]
    page, more = found[:limit], len(found) > limit
    if vanished:
        return {"objectReferenceList": {"objectReference": [
            {"resourceURL": u.object(store, box, r.id)} for r in page]}}
    body: dict[str, Any] = {"object": [object_body(u, work, r, store, box)["object"]
                                       for r in page] if work is not None else []}
    if more:
        body["cursor"] = str(page[-1].created_seq)
    if criteria is not None and criteria.created is not None:
        body["creationCursor"] = str(work.box.seq if work is not None else 0)
    return {"objectList": body}
