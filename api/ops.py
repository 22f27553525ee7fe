"""Operator endpoints: ``/healthz`` and ``/stats`` (the live actor tree)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from quart import Blueprint

from actors import ActorError
from actors.storage import run_job
from storage import redact_url

from .context import services

blueprint = Blueprint("ops", __name__)

#: /healthz must answer quickly even when the database does not.
HEALTH_TIMEOUT = 2.0


@blueprint.get("/healthz")
async def healthz() -> tuple[dict[str, Any], int]:
    svc = services()
    try:
        await run_job(svc.storage, lambda s: s.execute(sa.text("SELECT 1")).scalar(),
                      timeout=HEALTH_TIMEOUT)
    except (ActorError, Exception) as error:  # noqa: BLE001 - any failure means unhealthy
        return {"status": "unavailable", "reason": f"database: {type(error).__name__}"}, 503
    return {"status": "ok"}, 200


@blueprint.get("/stats")
async def stats() -> dict[str, Any]:
    svc = services()
    return {
        "server": {
            "publicUrl": svc.public_url,
            "role": svc.settings.role,
            "listening": svc.bound_urls,
            "database": redact_url(svc.database.url),
        },
        "registry": {"size": len(svc.registry)},
        "tree": svc.root.snapshot(),
    }
