"""Delivery of NMS notifications to a subscription's notifyURL.

This server's own callbackURLs are handed to the channel in-process (no HTTP round trip); any
other URL gets a real HTTP POST. 404/410 means the target is gone (the subscription ends);
5xx, refused connections, timeouts and a full channel are retried by the subscription.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from actors import ActorStopped, MailboxFull
from actors.channel import Notification
from actors.router import Router
from actors.subscription import RetryLater, TargetGone

#: seconds one HTTP delivery may take before it counts as failed (and is retried)
HTTP_TIMEOUT = 10.0
CALLBACK_PATH = "/notificationchannel/v1/callbacks/"


class NotifyUrlDelivery:
    """``await delivery(url, fmt, body)``: returns once the target accepted the notification."""

    def __init__(self, router: Router, public_url: Callable[[], str]) -> None:
        self.router = router
        self.public_url = public_url
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, url: str, fmt: str, body: str) -> None:
        if not self._to_own_channel(url, fmt, body):
            await self._post(url, fmt, body)

    def now(self, url: str, fmt: str, body: str) -> bool:
        """The synchronous fast path: ``True`` if ``url`` is one of this server's callbackURLs
        and its channel took the notification; ``False`` otherwise (use ``await self(...)``,
        which also reports why)."""
        try:
            return self._to_own_channel(url, fmt, body)
        except (TargetGone, RetryLater):
            return False

    def _to_own_channel(self, url: str, fmt: str, body: str) -> bool:
        """Queue the notification on the channel if ``url`` is one of this server's
        callbackURLs (``False``: it is not); raises TargetGone or RetryLater."""
        own = self.public_url() + CALLBACK_PATH
        if not url.startswith(own):
            return False
        callback_id = url[len(own):]
        channel = self.router.channel_by_callback(callback_id)
        if channel is None:
            raise TargetGone(callback_id)
        try:
            channel.offer([Notification(fmt, body)])
        except MailboxFull:
            raise RetryLater("channel queue full") from None
        except ActorStopped:
            raise TargetGone(callback_id) from None
        return True

    async def _post(self, url: str, fmt: str, body: str) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=HTTP_TIMEOUT)
        content_type = "application/xml" if fmt == "xml" else "application/json"
        try:
            response = await self._client.post(url, content=body.encode(),
                                               headers={"Content-Type": content_type})
        except httpx.HTTPError as error:
            raise RetryLater(f"{type(error).__name__}: {error}") from None
        if response.status_code in (404, 410):
            raise TargetGone(url)
        if not response.is_success:
            raise RetryLater(f"HTTP {response.status_code}")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
