"""Administrative routes. They change whole boxes: bind the server to a private address (the
default, 127.0.0.1) or keep ``/admin`` behind the proxy's access control."""

from __future__ import annotations

from quart import Blueprint, Response

from storage import nms

from .context import services

blueprint = Blueprint("admin", __name__, url_prefix="/admin/v1")


@blueprint.route("/boxes/<store>/<box>/reset", methods=["POST"])
async def reset_box(store: str, box: str) -> Response:
    """Empty the box; its subscriptions get ``resetBox``; older restartTokens replay it."""
    await services().store.write(store, box, nms.reset_box)
    return Response(b"", status=204)
