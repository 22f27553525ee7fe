"""What every request handler reaches for: the server's services and the store's URLs."""

from __future__ import annotations

from quart import current_app

from .codecs.nms import Urls
from .runtime import Services


def services() -> Services:
    found: Services = current_app.extensions["tidings"]
    return found


def store_urls() -> Urls:
    """URLs of the store, from the public URL (read when a URL is built, not now)."""
    svc = services()
    return Urls(lambda: svc.public_url)
