"""The whole server on a real socket: health, the live actor tree, shutdown, bad connections."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest
import trio

from actors import ActorState
from api.server import serve_http
from tests.servers import http_client, running_server

# hypercorn issue 225: an upgrade request with one trailing byte after the headers
UPGRADE_WITH_TRAILING_DATA = (
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: bKdPyn3u98cTfZJSh4TNeQ==\r\n\r\nx\r\n"
)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'tidings.db'}"


async def test_healthz_and_stats_show_the_actor_tree(sqlite_url):
    async with running_server(sqlite_url) as services, http_client(services) as client:
        health = await client.get("/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        stats = (await client.get("/stats")).json()
        tree = stats["tree"]
        assert (tree["name"], tree["kind"], tree["state"]) == ("root", "supervisor", "running")
        names = [c["name"] for c in tree["children"]]
        assert names == ["storage", "router", "subscriptions", "http"]
        for child in tree["children"]:
            assert child["state"] == "running"
            assert child["restartPolicy"] == "permanent"
            assert set(child) >= {"mailbox", "received", "handled", "failed", "restarts",
                                  "lastError", "uptime", "children"}
        storage = tree["children"][0]
        assert storage["handled"] >= 1  # the health check's query went through it
        assert stats["server"]["publicUrl"] == services.bound_urls[0]


async def test_public_url_is_what_the_server_hands_out(sqlite_url):
    async with running_server(sqlite_url, public_url="https://push.example.com/") as services, \
            http_client(services) as client:
        stats = (await client.get("/stats")).json()
        assert stats["server"]["publicUrl"] == "https://push.example.com"


async def test_shutdown_stops_every_actor_and_closes_the_port(sqlite_url):
    async with running_server(sqlite_url) as services:
        url = services.bound_urls[0]
        root = services.root
    assert root.state is ActorState.STOPPED
    assert [c["state"] for c in root.snapshot()["children"]] == []
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"{url}/healthz")


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def _raw_exchange(port: int, payload: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(payload)
        received = b""
        with trio.move_on_after(5):
            while chunk := await stream.receive_some(4096):
                received += chunk
        return received


async def test_malformed_requests_close_one_connection_only(sqlite_url):
    async with running_server(sqlite_url) as services, http_client(services) as client:
        port = _port(services.bound_urls[0])
        assert (await client.get("/healthz")).status_code == 200  # keep-alive connection open
        for payload in (UPGRADE_WITH_TRAILING_DATA, b"GARBAGE\r\n\r\n",
                        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"):
            answer = await _raw_exchange(port, payload)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 4")
        assert (await client.get("/healthz")).status_code == 200
        assert services.root.state is ActorState.RUNNING


async def _accepting_websocket_app(scope, receive, send):
    """The smallest app that reproduces hypercorn issue 225: it accepts every WebSocket."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await trio.sleep_forever()
    else:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"alive"})


async def test_guarded_server_survives_hypercorn_issue_225():
    from hypercorn.config import Config

    config = Config()
    config.bind = ["127.0.0.1:0"]
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        (url,) = await nursery.start(lambda task_status: serve_http(
            _accepting_websocket_app, config, shutdown_trigger=stop.wait, task_status=task_status))
        await _raw_exchange(_port(url), UPGRADE_WITH_TRAILING_DATA)
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).text == "alive"
        stop.set()


def test_tidings_serve_runs_and_stops_cleanly_on_sigterm(tmp_path):
    command = [sys.executable, "-m", "api.cli", "serve", "--port", "0"]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    with subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("Tidings is serving on http://127.0.0.1:"), line
            url = line.split()[4]
            assert httpx.get(f"{url}/healthz", timeout=10).json() == {"status": "ok"}
            assert (tmp_path / "tidings.db").exists()  # the default SQLite file, in the cwd
            process.send_signal(signal.SIGTERM)
            _, errors = process.communicate(timeout=20)
            assert process.returncode == 0, errors
            assert "received SIGTERM: shutting down" in errors
        finally:
            process.kill()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", _port(url)), timeout=2)


class _ClaimsNothing:
    """An intercept (the fast paths' place) that leaves every request to the app."""

    def claims(self, head: bytes) -> bool:
        return False

    async def serve(self, stream, head: bytes) -> bytes | None:  # pragma: no cover
        raise AssertionError("nothing is claimed")


async def test_a_connection_that_never_speaks_is_closed_after_the_keep_alive_timeout(
        autojump_clock):
    """The guarded server reads a request head before hypercorn sets a connection up; a
    client that sends nothing is still closed after the keep-alive timeout, as hypercorn
    closes one, and a client that speaks is served as before."""
    from hypercorn.config import Config

    config = Config()
    config.bind = ["127.0.0.1:0"]
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        (url,) = await nursery.start(lambda task_status: serve_http(
            _accepting_websocket_app, config, shutdown_trigger=stop.wait,
            task_status=task_status, intercept=_ClaimsNothing()))
        async with await trio.open_tcp_stream("127.0.0.1", _port(url)) as silent:
            opened = trio.current_time()
            assert await silent.receive_some(1) == b""
            assert config.keep_alive_timeout <= trio.current_time() - opened
            assert trio.current_time() - opened < config.keep_alive_timeout + 1
        answer = await _raw_exchange(_port(url), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200")
        assert b"alive" in answer
        stop.set()
