"""Benchmarks: Tidings and two baselines under the same load, alternately, several times.

    python -m bench                      # everything, 3 rounds (about 16 minutes)
    python -m bench --quick              # smaller sizes, 1 round (a smoke run, not figures)
    python -m bench --only fanout,ingest --rounds 5

Each case starts a fresh server process (Tidings on a new SQLite file, or a baseline), runs the
load generator (``bench.loadgen``, its own process) against it over loopback, and stops it.
Within a round the servers take turns, so a noisy moment hurts all of them alike; figures are
medians over the rounds. Every run writes ``bench/results/<time>.json``; ``bench/RESULTS.md``
is written from it (``--no-report`` leaves it alone).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .report import write_report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
#: a folder for py-spy profiles of the Tidings server (``--profile``), or empty
PROFILE = ""
API = {"tidings": "oma", "trio": "oma", "websockets": "ws", "null": "ws"}


def server_command(kind: str, port: int, workdir: str) -> list[str]:
    if kind == "tidings":
        return [sys.executable, "-m", "api.cli", "--log-level", "WARNING", "serve",
                "--port", str(port), "--database-url", f"sqlite:///{workdir}/tidings.db",
                "--public-url", f"http://127.0.0.1:{port}"]
    module = {"trio": "bench.baseline_trio", "websockets": "bench.baseline_websockets",
              "null": "bench.nullserver"}[kind]
    return [sys.executable, "-m", module, "--port", str(port)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running(kind: str, seed: int = 0) -> Iterator[tuple[int, int]]:
    """A fresh server process; yields (port, pid)."""
    with tempfile.TemporaryDirectory(prefix="tidings-bench-") as workdir:
        if seed:
            from .seed import seed as fill

            fill(f"sqlite:///{workdir}/tidings.db", seed)
        port = free_port()
        log = open(Path(workdir) / "server.log", "wb")  # noqa: SIM115 - closed below
        process = subprocess.Popen(server_command(kind, port, workdir), cwd=ROOT,
                                   stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{kind} exited: {Path(log.name).read_text()[-2000:]}")
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} did not start listening")
                time.sleep(0.1)
            yield port, process.pid
        finally:
            process.send_signal(signal.SIGTERM)  # (SIGINT is ignored in background jobs)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


def load(scenario: str, kind: str, options: dict[str, Any], seed: int = 0,
         timeout: float = 900) -> dict[str, Any]:
    with running(kind, seed) as (port, pid):
        command = [sys.executable, "-m", "bench.loadgen", scenario, "--port", str(port),
                   "--pid", str(pid), "--api", API[kind]]
        for name, value in options.items():
            command += [f"--{name}", str(value)]
        env = dict(os.environ)
        if PROFILE and kind == "tidings":  # py-spy on the server while the load is measured
            env["BENCH_PROFILE"] = str(Path(PROFILE) / f"{scenario}-{int(time.time())}.txt")
        try:
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                                  timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout} s"}
    if done.returncode != 0 or not done.stdout.strip():
        return {"error": (done.stderr or done.stdout).strip()[-600:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def plan(quick: bool) -> list[tuple[str, dict[str, Any], list[str], int]]:
    """(scenario, load generator options, servers, seeded history)."""
    cases: list[tuple[str, dict[str, Any], list[str], int]] = [
        ("ceiling", {"n": 200, "seconds": 3}, ["null"], 0)]
    deliveries = 10_000 if quick else 60_000
    for n in (100, 1000) if quick else (100, 1000, 5000):
        cases.append(("fanout", {"n": n, "messages": max(10, deliveries // n)},
                      ["tidings", "trio", "websockets"], 0))
    rates = "500,1000,2000,0"
    for n in (500,) if quick else (500, 2000):
        cases.append(("ingest", {"n": n, "rate": rates, "seconds": 2 if quick else 4,
                                 "messages": 3000 if quick else 8000},
                      ["tidings", "trio", "websockets"], 0))
    for n in (1000,) if quick else (1000, 5000, 10000):
        cases.append(("idle", {"n": n}, ["tidings", "trio", "websockets"], 0))
    cases.append(("longpoll", {"n": 100 if quick else 200, "seconds": 3 if quick else 5},
                  ["tidings", "trio"], 0))
    history = 20_000 if quick else 100_000
    cases.append(("replay", {"messages": history}, ["tidings"], history))
    return cases


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f
                      if line.startswith("model name")), "")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cpu": model, "cores": os.cpu_count(), "memory_gib": round(memory / 2**30, 1),
            "python": platform.python_version(), "system": platform.platform()}


def median_results(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per metric, the median over the rounds (numbers only; errors are kept as a count)."""
    good = [r for r in runs if "error" not in r]
    out: dict[str, Any] = {"rounds": len(good)}
    if len(good) < len(runs):
        out["errors"] = [r["error"] for r in runs if "error" in r]
    for key in good[0] if good else ():
        values = [r[key] for r in good if isinstance(r.get(key), (int, float))]
        if values:
            out[key] = round(statistics.median(values), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3)")
    parser.add_argument("--only", default="", help="scenarios, comma-separated")
    parser.add_argument("--servers", default="", help="servers, comma-separated")
    parser.add_argument("--profile", default="", help="folder for py-spy profiles of Tidings")
    parser.add_argument("--no-report", action="store_true", help="leave bench/RESULTS.md alone")
    args = parser.parse_args()
    global PROFILE
    PROFILE = args.profile
    rounds = args.rounds or (1 if args.quick else 3)
    only = set(filter(None, args.only.split(",")))
    servers = set(filter(None, args.servers.split(",")))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 10k sockets on each side
    started = datetime.now(UTC)
    record: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"), "machine": machine(),
        "command": "python -m bench " + " ".join(sys.argv[1:]), "rounds": rounds, "cases": []}
    for scenario, options, kinds, seed in plan(args.quick):
        if only and scenario not in only:
            continue
        kinds = [k for k in kinds if not servers or k in servers or k == "null"]
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
        for round_ in range(rounds):
            for kind in kinds if round_ % 2 == 0 else reversed(kinds):
                began = time.monotonic()
                result = load(scenario, kind, options, seed)
                runs[kind].append(result)
                print(f"{scenario} {options} {kind} round {round_ + 1}: "
                      f"{json.dumps(result)[:400]} ({time.monotonic() - began:.0f} s)",
                      flush=True)
        for kind, results in runs.items():
            if scenario == "ingest":  # one load generator run covers every rate
                for i, rate in enumerate(str(options["rate"]).split(",")):
                    per_rate = [r["runs"][i] if "runs" in r else r for r in results]
                    record["cases"].append({
                        "scenario": scenario, "options": {**options, "rate": int(rate)},
                        "server": kind, "runs": per_rate, "median": median_results(per_rate)})
            else:
                record["cases"].append({"scenario": scenario, "options": options,
                                        "server": kind, "runs": results,
                                        "median": median_results(results)})
    record["seconds"] = round((datetime.now(UTC) - started).total_seconds())
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    if not args.no_report:
        write_report(record, path, ROOT / "bench" / "RESULTS.md")
        print("wrote bench/RESULTS.md")


if __name__ == "__main__":
    main()
