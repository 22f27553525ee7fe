"""Helpers to run a real Tidings server (hypercorn on 127.0.0.1:0) inside a test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from api.runtime import Services, Settings, open_tidings


@asynccontextmanager
async def running_server(database_url: str, **settings: object) -> AsyncIterator[Services]:
    async with open_tidings(Settings(port=0, database_url=database_url, **settings)) as services:  # type: ignore[arg-type]
        yield services


@asynccontextmanager
async def http_client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=services.bound_urls[0], timeout=10) as client:
        yield client
