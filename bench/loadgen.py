"""The load generator: one process, one epoll loop, talking to one server over loopback.

    python -m bench.loadgen SCENARIO --port P --pid SERVER_PID --api oma|ws [options]

prints one JSON object (the scenario's figures) on its last line. ``--api oma`` speaks the
Notification Channel and NMS HTTP API (Tidings and the trio baseline); ``--api ws`` speaks the
websockets baseline's protocol (subscribers on ``/ws/<i>``, a publisher on ``/pub``)."""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from .wire import (
    NUMBER,
    OBJECT_ID,
    HttpPool,
    Loop,
    Now,
    Process,
    Response,
    WsConn,
    percentile,
)

HOST = "127.0.0.1"
STORE, BOX = "bench", "tel%3A%2B15550100"
BOX_PATH = f"/nms/v1/{STORE}/{BOX}"
USER = "tel%3A%2B15550199"


def chat(n: int) -> bytes:
    return json.dumps({"object": {
        "parentFolderPath": "/conversations/bench",
        "attributes": {"attribute": [
            {"name": "From", "value": ["tel:+15550100"]},
            {"name": "To", "value": ["tel:+15550101"]},
            {"name": "TextContent", "value": [f"benchmark message {n}"]}]},
        "flags": {"flag": []}}}).encode()


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.loop = Loop()
        self.server = Process(args.pid)
        self.pool = HttpPool(self.loop, HOST, args.port, args.connections)
        self.profiler: subprocess.Popen[bytes] | None = None

    def measuring(self) -> float:
        """The measured phase starts: the server's CPU seconds so far (and py-spy starts on
        the server when ``BENCH_PROFILE`` names an output file)."""
        out = os.environ.get("BENCH_PROFILE")
        if out and self.profiler is None:
            spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
            self.profiler = subprocess.Popen(
                [spy, "record", "--pid", str(self.args.pid), "--format", "raw", "--rate", "250",
                 "--nonblocking", "--output", out],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self.server.cpu()

    def measured(self) -> float:
        """The measured phase ends: the server's CPU seconds so far."""
        cpu = self.server.cpu()
        if self.profiler is not None:
            self.profiler.send_signal(signal.SIGINT)
            self.profiler.wait(30)
            self.profiler = None
        return cpu

    # -- set-up -----------------------------------------------------------------------------
    def wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        if not self.loop.run_until(done, timeout):
            raise SystemExit(f"timed out after {timeout} s: {what}")

    def check(self, response: Response, *statuses: int) -> Response:
        if response.status not in statuses:
            raise SystemExit(f"HTTP {response.status}: {response.body[:300]!r}")
        return response

    def channels(self, n: int, channel_type: str = "WebSockets",
                 max_notifications: int = 10) -> list[dict[str, str]]:
        made: list[dict[str, str]] = []
        body = json.dumps({"notificationChannel": {
            "channelType": channel_type, "channelLifetime": "7200",
            "channelData": {"maxNotifications": str(max_notifications)}}}).encode()

        def created(response: Response) -> None:
            channel = json.loads(self.check(response, 201).body)["notificationChannel"]
            made.append({"channelURL": channel["channelData"]["channelURL"],
                         "callbackURL": channel["callbackURL"]})

        for _ in range(n):
            self.pool.request("POST", f"/notificationchannel/v1/{USER}/channels", body, created)
        self.wait(lambda: len(made) == n, 60 + n / 20, f"creating {n} channels")
        return made

    def sockets(self, urls: list[str], on_frame: Any, window: int = 200) -> list[WsConn]:
        """Open a WebSocket to each URL, at most ``window`` handshakes at a time."""
        conns: list[WsConn] = []
        for url in urls:
            path = "/" + url.split("/", 3)[3]
            self.wait(lambda: sum(1 for c in conns if not c.open) < window, 60, "handshakes")
            conns.append(WsConn(self.loop, HOST, self.args.port, path, on_frame))
            if conns[-1].closed:
                raise SystemExit(f"cannot connect: {conns[-1].error}")
        self.wait(lambda: all(c.open or c.closed for c in conns), 60, "handshakes")
        refused = [c.error for c in conns if c.closed]
        if refused:
            raise SystemExit(f"{len(refused)} WebSockets refused: {refused[0]}")
        return conns

    def subscribe(self, callback_urls: list[str], restart_token: str | None = None) -> None:
        done: list[Response] = []
        for url in callback_urls:
            sub: dict[str, Any] = {"callbackReference": {"notifyURL": url,
                                                         "callbackData": "bench"}}
            if restart_token is not None:
                sub["restartToken"] = restart_token
            self.pool.request("POST", f"{BOX_PATH}/subscriptions",
                              json.dumps({"nmsSubscription": sub}).encode(),
                              lambda r: done.append(self.check(r, 201)))
        self.wait(lambda: len(done) == len(callback_urls), 60 + len(callback_urls) / 20,
                  "subscribing")

    # -- scenarios --------------------------------------------------------------------------
    def fanout(self) -> dict[str, Any]:
        """N subscribers of one box; messages created as fast as the server takes them."""
        n, messages = self.args.n, self.args.messages
        receipts: dict[bytes, list[float]] = {}  # object id -> [count, last receipt]
        delivered = [0]

        def on_frame(_: WsConn, payload: bytes, now: float) -> None:
            for object_id in OBJECT_ID.findall(payload):
                seen = receipts.get(object_id)
                if seen is None:
                    receipts[object_id] = [1, now]
                else:
                    seen[0] += 1
                    seen[1] = now
                delivered[0] += 1

        if self.args.api == "ws":
            self.sockets([f"ws://x:0/ws/{i}" for i in range(n)], on_frame)
            publisher = WsConn(self.loop, HOST, self.args.port, "/pub")
            self.wait(lambda: publisher.open, 10, "publisher")
        else:
            channels = self.channels(n)
            self.sockets([c["channelURL"] for c in channels], on_frame)
            self.subscribe([c["callbackURL"] for c in channels])
        self.loop.sleep(0.5)
        accepted: dict[bytes, float] = {}
        posted: dict[bytes, float] = {}
        created = [0]
        cpu0, t0 = self.measuring(), Now()
        if self.args.api == "ws":
            pending: list[int] = []

            def on_ack(_: WsConn, payload: bytes, now: float) -> None:
                accepted[payload.split(b" ", 1)[1]] = now
                pending.pop()
                send_next()

            def send_next() -> None:
                if created[0] < messages:
                    created[0] += 1
                    pending.append(1)
                    object_id = f"o{random.getrandbits(64):016x}"
                    posted[object_id.encode()] = Now()
                    publisher.send_text(b"B %s\n%s" % (object_id.encode(),
                                                       fake_event_list(object_id)))

            publisher.on_frame = on_ack
            for _ in range(self.args.connections):
                send_next()
        else:
            def on_created(sent: float) -> Callable[[Response], None]:
                def created_(response: Response) -> None:
                    now = Now()
                    self.check(response, 201)
                    object_id = OBJECT_ID.search(response.headers["location"].encode())[1]
                    accepted[object_id], posted[object_id] = now, sent
                    send_next()
                return created_

            def send_next() -> None:
                if created[0] < messages:
                    created[0] += 1
                    self.pool.request("POST", f"{BOX_PATH}/objects", chat(created[0]),
                                      on_created(Now()))

            for _ in range(self.args.connections):
                send_next()
        expected = n * messages
        self.wait(lambda: delivered[0] >= expected and len(accepted) == messages,
                  120 + expected / 1000, "deliveries")
        elapsed, cpu = Now() - t0, self.measured() - cpu0
        latencies = [receipts[i][1] - t for i, t in accepted.items() if i in receipts]
        from_post = [receipts[i][1] - t for i, t in posted.items() if i in receipts]
        return {"subscribers": n, "messages": messages, "deliveries": delivered[0],
                "deliveries_per_s": round(delivered[0] / elapsed),
                "messages_per_s": round(messages / elapsed, 1),
                "server_cpu_us_per_delivery": round(cpu / delivered[0] * 1e6, 1),
                "p50_ms": ms(percentile(latencies, 0.5)),
                "p99_ms": ms(percentile(latencies, 0.99)),
                "post_p50_ms": ms(percentile(from_post, 0.5)),
                "post_p99_ms": ms(percentile(from_post, 0.99)),
                "incomplete": sum(1 for c, _ in receipts.values() if c < n),
                "seconds": round(elapsed, 2)}

    def ingest(self) -> dict[str, Any]:
        """C channels; one POST per notification to random callbackURLs, at each of the rates
        in turn (0: as fast as the server answers ``--connections`` POSTs at a time)."""
        n = self.args.n
        self.received: dict[int, float] = {}
        self.duplicates = 0

        def on_frame(_: WsConn, payload: bytes, now: float) -> None:
            received = self.received
            for number in NUMBER.findall(payload):
                key = int(number)
                if key in received:
                    self.duplicates += 1
                received[key] = now

        if self.args.api == "ws":
            self.sockets([f"ws://x:0/ws/{i}" for i in range(n)], on_frame)
            self.publisher = WsConn(self.loop, HOST, self.args.port, "/pub")
            self.wait(lambda: self.publisher.open, 10, "publisher")
            targets: list[str] = [str(i) for i in range(n)]
        else:
            channels = self.channels(n)
            self.sockets([c["channelURL"] for c in channels], on_frame)
            targets = ["/" + c["callbackURL"].split("/", 3)[3] for c in channels]
        runs = []
        for rate in (int(r) for r in str(self.args.rate).split(",")):
            self.loop.sleep(1.0)
            total = self.args.messages if rate == 0 else int(rate * self.args.seconds)
            runs.append({"channels": n, **self._ingest_at(rate, total, targets)})
        return {"runs": runs}

    def _ingest_at(self, rate: int, total: int, targets: list[str]) -> dict[str, Any]:
        self.received.clear()
        self.duplicates = 0
        received = self.received
        sent_at: dict[int, float] = {}
        accepted: set[int] = set()
        refused = [0]
        next_number = [0]
        window = [0]

        def on_answer(number: int) -> Callable[[Response], None]:
            def answer(response: Response) -> None:
                window[0] -= 1
                if response.status == 204:
                    accepted.add(number)
                elif response.status == 503:
                    refused[0] += 1
                else:
                    raise SystemExit(f"HTTP {response.status}: {response.body[:200]!r}")
            return answer

        def on_ack(_: WsConn, payload: bytes, now: float) -> None:
            accepted.add(int(payload.split(b" ", 1)[1]))
            window[0] -= 1

        def send_one() -> None:
            number = next_number[0]
            next_number[0] += 1
            target = random.choice(targets)
            body = b'{"benchNotification":{"n":%d}}' % number
            sent_at[number] = Now()
            window[0] += 1
            if self.args.api == "ws":
                self.publisher.send_text(b"T %s %d\n%s" % (target.encode(), number, body))
            else:
                self.pool.request("POST", target, body, on_answer(number))

        if self.args.api == "ws":
            self.publisher.on_frame = on_ack
        cpu0, t0 = self.measuring(), Now()
        limit = self.args.connections

        def tick() -> None:
            due = total if rate == 0 else min(total, int((Now() - t0) * rate) + 1)
            while next_number[0] < due and (rate != 0 or window[0] < limit):
                send_one()

        self.loop.tickers.append(tick)
        tick()
        self.wait(lambda: next_number[0] >= total and window[0] == 0,
                  60 + total / max(rate, 500) * 3, "sending")
        self.loop.tickers.remove(tick)
        send_seconds = Now() - t0
        self.loop.run_until(lambda: accepted <= received.keys(), 15)
        cpu = self.measured() - cpu0
        last = max(received.values(), default=t0 + 1)
        latencies = [received[k] - sent_at[k] for k in accepted if k in received]
        return {"target_rate": rate, "sent": total,
                "accepted": len(accepted), "refused_503": refused[0],
                "lost": len(accepted - received.keys()), "duplicates": self.duplicates,
                "offered_per_s": round(total / send_seconds),
                "delivered_per_s": round(len(received) / (last - t0)),
                "server_cpu_us_per_notification": round(cpu / max(1, len(received)) * 1e6, 1),
                "p50_ms": ms(percentile(latencies, 0.5)),
                "p99_ms": ms(percentile(latencies, 0.99)),
                "seconds": round(last - t0, 2)}

    def idle(self) -> dict[str, Any]:
        """RSS growth per idle WebSocket channel on a fresh server."""
        n = self.args.n
        self.loop.sleep(1.0)
        rss0 = self.server.rss_kb()
        if self.args.api == "ws":
            conns = self.sockets([f"ws://x:0/ws/{i}" for i in range(n)], None)
        else:
            conns = self.sockets([c["channelURL"] for c in self.channels(n)], None)
        self.loop.sleep(2.0)
        rss1 = self.server.rss_kb()
        alive = sum(1 for c in conns if c.open and not c.closed)
        return {"connections": n, "alive": alive, "rss_before_kb": rss0, "rss_after_kb": rss1,
                "kb_per_connection": round((rss1 - rss0) / n, 2)}

    def longpoll(self) -> dict[str, Any]:
        """P long-polling channels subscribed to one box; messages created as fast as the
        server takes them; every client polls again as soon as its poll returns."""
        n, seconds = self.args.n, self.args.seconds
        channels = self.channels(n, "LongPolling", max_notifications=100)
        self.subscribe([c["callbackURL"] for c in channels])
        polls = HttpPool(self.loop, HOST, self.args.port, n)
        completed, empty, latencies = [0], [0], []
        accepted: dict[bytes, float] = {}
        running = [True]
        busy_until = [0.0]

        def poll(conn_index: int) -> None:
            url = "/" + channels[conn_index]["channelURL"].split("/", 3)[3]

            def answer(response: Response) -> None:
                now = Now()
                self.check(response, 200)
                ids = OBJECT_ID.findall(response.body)
                if ids:
                    completed[0] += 1
                    for object_id in ids:
                        if object_id in accepted and now < busy_until[0]:
                            latencies.append(now - accepted[object_id])
                else:
                    empty[0] += 1
                if running[0]:
                    conn.request("POST", url, b"", answer)

            conn = polls.conns[conn_index]
            conn.request("POST", url, b"", answer)

        for i in range(n):
            poll(i)
        self.loop.sleep(0.5)
        created = [0]

        def on_created(response: Response) -> None:
            now = Now()
            location = self.check(response, 201).headers["location"].encode()
            accepted[OBJECT_ID.search(location)[1]] = now
            if running[0]:
                send_next()

        def send_next() -> None:
            created[0] += 1
            self.pool.request("POST", f"{BOX_PATH}/objects", chat(created[0]), on_created)

        cpu0, t0 = self.measuring(), Now()
        busy_until[0] = t0 + seconds
        for _ in range(self.args.connections):
            send_next()
        self.loop.sleep(seconds)
        elapsed, cpu = Now() - t0, self.measured() - cpu0
        done = completed[0]
        running[0] = False
        return {"pollers": n, "messages": created[0], "completed_polls": done,
                "polls_per_s": round(done / elapsed), "empty_polls": empty[0],
                "server_cpu_us_per_poll": round(cpu / max(1, done) * 1e6, 1),
                "p50_ms": ms(percentile(latencies, 0.5)),
                "p99_ms": ms(percentile(latencies, 0.99)), "seconds": round(elapsed, 2)}

    def replay(self) -> dict[str, Any]:
        """One subscriber replays the whole (pre-filled) box from restartToken ``1-0``; a live
        message is created just after it subscribes and must arrive after the history."""
        expected = self.args.messages
        events = [0]
        live_at: list[float] = []
        live_id: list[bytes] = []

        def on_frame(_: WsConn, payload: bytes, now: float) -> None:
            ids = OBJECT_ID.findall(payload)
            events[0] += len(ids)
            if live_id and live_id[0] in ids:
                live_at.append(now)

        (channel,) = self.channels(1, max_notifications=100)
        self.sockets([channel["channelURL"]], on_frame)
        cpu0, t0 = self.measuring(), Now()
        self.subscribe([channel["callbackURL"]], restart_token="1-0")
        subscribed = Now()
        self.pool.request("POST", f"{BOX_PATH}/objects", chat(0), lambda r: live_id.append(
            OBJECT_ID.search(self.check(r, 201).headers["location"].encode())[1]))
        self.wait(lambda: bool(live_at) and events[0] >= expected + 1, 600, "replay")
        elapsed, cpu = Now() - t0, self.measured() - cpu0
        return {"history": expected, "events": events[0],
                "events_per_s": round(events[0] / elapsed),
                "hand_over_s": round(live_at[0] - subscribed, 3),
                "server_cpu_us_per_event": round(cpu / events[0] * 1e6, 2),
                "seconds": round(elapsed, 2)}

    def ceiling(self) -> dict[str, Any]:
        """Against the null server: how many frames/s and request/responses/s this generator
        itself can count (the null server sends pre-built frames and canned answers)."""
        frames = [0]

        def on_frame(_: WsConn, payload: bytes, now: float) -> None:
            frames[0] += len(OBJECT_ID.findall(payload))

        conns = self.sockets([f"ws://x:0/ws/{i}" for i in range(self.args.n)], on_frame)
        t0 = Now()
        self.loop.sleep(self.args.seconds)
        frames_per_s = frames[0] / (Now() - t0)
        for conn in conns:
            conn.close()
        answered = [0]
        stop = [False]

        def again(conn_index: int) -> Callable[[Response], None]:
            def answer(_: Response) -> None:
                answered[0] += 1
                if not stop[0]:
                    self.pool.conns[conn_index].request("POST", "/callback", b'{"n":1}',
                                                        answer)
            return answer

        t0 = Now()
        for i, conn in enumerate(self.pool.conns):
            conn.request("POST", "/callback", b'{"n":1}', again(i))
        self.loop.sleep(self.args.seconds)
        stop[0] = True
        return {"frames_per_s": round(frames_per_s),
                "requests_per_s": round(answered[0] / (Now() - t0))}


def fake_event_list(object_id: str) -> bytes:
    """What the websockets baseline broadcasts: an nmsEventList of Tidings' size and shape."""
    url = f"http://127.0.0.1/nms/v1/{STORE}/{BOX}"
    return json.dumps({"notificationList": {"nmsEventList": {
        "nmsEvent": [{"changedObject": {
            "parentFolder": f"{url}/folders/f0123456789abcdef",
            "flags": {"flag": []}, "resourceURL": f"{url}/objects/{object_id}",
            "lastModSeq": 1}}],
        "callbackData": "bench", "index": 1, "restartToken": "1-1",
        "link": [{"rel": "NmsSubscription", "href": f"{url}/subscriptions/s0123456789"}]}}},
        separators=(",", ":")).encode()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("scenario",
                        choices=["fanout", "ingest", "idle", "longpoll", "replay", "ceiling"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True, help="the server's process id")
    parser.add_argument("--api", choices=["oma", "ws"], default="oma")
    parser.add_argument("--n", type=int, default=100, help="channels / subscribers")
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--rate", default="0", help="notifications/s, comma-separated (0: max)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16, help="HTTP connections")
    args = parser.parse_args()
    result = getattr(Bench(args), args.scenario)()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.exit(main())
