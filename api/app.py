"""The Quart (trio) application: blueprints and the error handlers every route shares."""

from __future__ import annotations

from quart_trio import QuartTrio

from . import admin, channels, errors, nms, nms_subscriptions, ops, search
from .runtime import Services


def create_app(services: Services) -> QuartTrio:
    app = QuartTrio("tidings")
    app.extensions["tidings"] = services
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    app.register_blueprint(ops.blueprint)
    role = services.settings.role
    if role in ("all", "channels"):
        app.register_blueprint(channels.blueprint)  # its WebSocket: api.channel_socket
    if role in ("all", "store"):
        # a store alone reaches the channel server's callbackURLs over HTTP
        app.register_blueprint(nms.blueprint)
        app.register_blueprint(nms_subscriptions.blueprint)
        app.register_blueprint(search.blueprint)
        app.register_blueprint(admin.blueprint)
    errors.install(app)
    return app
