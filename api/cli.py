"""``tidings`` on the command line."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
from urllib.parse import quote

import trio

from storage import DEFAULT_DATABASE_URL

from .runtime import Settings, open_tidings

log = logging.getLogger("tidings")

#: Thresholds of the cyclic garbage collector for a server process. A server holds thousands of
#: long-lived actors (about 150 tracked objects per channel with its connection, and per
#: subscription) and makes almost no cyclic garbage: with Python's default (700, 10, 10) the
#: young generations are collected so often that request and delivery objects get promoted,
#: and full collections, each a pause that grows with the number of channels (~0.9 s at 5,000
#: channels with a subscription each), come every few seconds while channels are being opened.
GC_THRESHOLDS = (10_000, 10, 10)


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, then stop everything in reverse order."""
    if settings.public_url is None and settings.host in ("0.0.0.0", "::", ""):
        log.warning("bound to all interfaces without --public-url: the URLs handed out "
                    "(channelURL, callbackURL, resourceURL) will name %s, which clients cannot "
                    "reach; pass --public-url http://<this host>:%s", settings.host or "*",
                    settings.port)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_tidings(settings) as services:
            # what start-up made (modules, the app, the actor tree) lives as long as the
            # process: no collection needs to look at it again
            gc.collect()
            gc.freeze()
            print(f"Tidings is serving on {services.public_url} "
                  f"(role {settings.role}, database {services.database.dialect}); "
                  "Ctrl+C stops it", flush=True)
            async for received in signals:
                log.info("received %s: shutting down", signal.Signals(received).name)
                break
    log.info("stopped")


def _box_reset(server: str, store: str, box: str) -> int:
    import httpx

    url = f"{server.rstrip('/')}/admin/v1/boxes/{quote(store, safe='')}/{quote(box, safe='')}/reset"
    try:
        response = httpx.post(url, timeout=30)
    except httpx.HTTPError as error:
        print(f"cannot reach {server}: {error}", file=sys.stderr)
        return 1
    if response.status_code != 204:
        print(f"{response.status_code}: {response.text}", file=sys.stderr)
        return 1
    print(f"box {box} of store {store} was reset")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tidings", description="OMA notification server")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the server")
    run.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=8080, help="port to bind (default 8080)")
    run.add_argument("--database-url", default=DEFAULT_DATABASE_URL,
                     help="SQLAlchemy URL (default: sqlite:///tidings.db in the working "
                          "directory; PostgreSQL: postgresql+psycopg://user@host/db)")
    run.add_argument("--role", choices=("all", "store", "channels"), default="all",
                     help="serve the message store and the channels (all, the default), or one "
                          "of them; a store alone delivers to the channel server over HTTP")
    run.add_argument("--public-url", default=None,
                     help="base of every URL the server hands out, e.g. https://push.example.com "
                          "behind a proxy (default: the bound address)")
    listen = commands.add_parser(
        "listen", help="print the notifications of a WebSockets channel (answers connCheck)")
    listen.add_argument("channel_url", help="the channel's channelURL (ws://...)")
    listen.add_argument("--count", type=int, default=None,
                        help="exit after this many notification frames")
    reset = commands.add_parser(
        "box-reset", help="empty an NMS box on a running server (subscribers get resetBox)")
    reset.add_argument("store")
    reset.add_argument("box", help="the boxId, e.g. tel:+19585550100")
    reset.add_argument("--server", default="http://127.0.0.1:8080",
                       help="the running server (default http://127.0.0.1:8080)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        settings = Settings(host=args.host, port=args.port, database_url=args.database_url,
                            public_url=args.public_url, role=args.role)
        gc.set_threshold(*GC_THRESHOLDS)
        trio.run(serve, settings)
    elif args.command == "box-reset":
        return _box_reset(args.server, args.store, args.box)
    elif args.command == "listen":
        from .listen import run

        return run(args.channel_url, args.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
