"""OMA ``requestError`` bodies and the error handlers every resource shares.

Raise :class:`OmaError` (or one of its helpers) anywhere in a handler; it is rendered as a
``requestError`` with a ``serviceException`` or ``policyException`` in the negotiated format.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from .negotiation import NotAcceptable, choose_format, encode

COMMON_NS = "urn:oma:xml:rest:netapi:common:1"


class OmaError(Exception):
    """An error answer: HTTP status plus an OMA exception (``service`` or ``policy``)."""

    def __init__(self, status: int, message_id: str, text: str,
                 variables: Sequence[str] = (), *, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{message_id}: {text} {list(variables)}")
        self.status = status
        self.message_id = message_id
        self.text = text
        self.variables = list(variables)
        self.headers = headers or {}

    @property
    def kind(self) -> str:
        return "policyException" if self.message_id.startswith("POL") else "serviceException"

    def body(self) -> dict[str, Any]:
        exception: dict[str, Any] = {"messageId": self.message_id, "text": self.text}
        if self.variables:
            exception["variables"] = self.variables
        return {"requestError": {self.kind: exception}}


def invalid_input(part: str, valid: str | None = None) -> OmaError:
    """SVC0002, naming the message part (and what would have been valid)."""
    if valid is None:
        return OmaError(400, "SVC0002", "Invalid input value for message part %1", [part])
    return OmaError(400, "SVC0002", "Invalid input value for message part %1, valid values are %2",
                    [part, valid])


def not_found(part: str) -> OmaError:
    """SVC0004 with 404: the resource named by ``part`` does not exist (for this user)."""
    return OmaError(404, "SVC0004", "No valid addresses provided in message part %1", [part])


def service_error(status: int, detail: str, headers: dict[str, str] | None = None) -> OmaError:
    """SVC0001, the generic service error, with a readable detail."""
    return OmaError(status, "SVC0001", "A service error occurred. Error code is %1", [detail],
                    headers=headers)


def method_not_allowed(allowed: Sequence[str]) -> OmaError:
    return service_error(405, f"method {request.method} not allowed; allowed: {', '.join(allowed)}",
                         headers={"Allow": ", ".join(allowed)})


def error_answer(error: OmaError, fmt: str) -> tuple[int, str, bytes]:
    """(status, Content-Type, body) of the error in ``fmt``: the error handlers' answer, also
    written by the requests served before the app (:mod:`api.fast_http`)."""
    return error.status, f"{fmt}; charset=utf-8", encode(error.body(), fmt,
                                                         namespaces={"common": COMMON_NS})


def render_error(error: OmaError) -> Response:
    status, content_type, data = error_answer(error, choose_format(strict=False))
    response = Response(data, status=status, content_type=content_type)
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def install(app: Quart) -> None:
    """Route every error through :func:`render_error`."""

    @app.errorhandler(OmaError)
    async def _oma(error: OmaError) -> Response:
        return render_error(error)

    @app.errorhandler(NotAcceptable)
    async def _not_acceptable(error: NotAcceptable) -> Response:
        return render_error(service_error(
            406, f"cannot answer in {error}; use application/json or application/xml"))

    @app.errorhandler(HTTPException)
    async def _http(error: HTTPException) -> Response:
        status = error.code or 500
        if status == 404:
            return render_error(not_found("URL"))
        if status == 405:
            allowed = sorted(getattr(error, "valid_methods", None) or [])
            shown = [m for m in allowed if m not in {"HEAD", "OPTIONS"}]
            return render_error(method_not_allowed(shown))
        if status == 413:
            # the rest of the body is not read: close, or the client blocks sending it
            return render_error(service_error(413, "request body too large",
                                              headers={"Connection": "close"}))
        return render_error(service_error(status, error.name))


__all__ = ["OmaError", "error_answer", "install", "invalid_input", "not_found", "render_error",
           "service_error"]
