"""``bench/RESULTS.md`` from one run's JSON record: the medians, Tidings beside the baselines,
the ratios and the targets of issue 5."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

NAMES = {"tidings": "Tidings", "trio": "baseline 1 (trio+h11+wsproto)",
         "websockets": "baseline 2 (websockets)"}

#: scenario -> (metric, unit, higher is better, target for Tidings as text)
HEADLINE = {
    "fanout": ("deliveries_per_s", "deliveries/s", True, "≥ 25,000/s and ≥ 50% of baseline 1"),
    "ingest": ("delivered_per_s", "delivered/s", True, "≥ 80% of baseline 1 (at max rate)"),
    "idle": ("kb_per_connection", "KB per connection", False, "≤ 25 KB"),
    "longpoll": ("polls_per_s", "completed polls/s", True, "≥ 2,000/s"),
    "replay": ("events_per_s", "events/s", True, "≥ 50,000/s"),
}
DETAILS = {
    "fanout": ["server_cpu_us_per_delivery", "p50_ms", "p99_ms", "post_p50_ms", "post_p99_ms",
               "messages_per_s"],
    "ingest": ["server_cpu_us_per_notification", "p50_ms", "p99_ms", "lost", "refused_503",
               "offered_per_s"],
    "idle": ["alive"],
    "longpoll": ["server_cpu_us_per_poll", "p50_ms", "p99_ms", "empty_polls"],
    "replay": ["hand_over_s", "server_cpu_us_per_event", "events"],
}


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return f"{int(value):,}"


def _case_label(scenario: str, options: dict[str, Any]) -> str:
    if scenario == "fanout":
        return f"N = {options['n']:,} subscribers"
    if scenario == "ingest":
        rate = "max" if options["rate"] == 0 else f"{options['rate']:,}/s"
        return f"{options['n']:,} channels, {rate}"
    if scenario == "idle":
        return f"{options['n']:,} WebSockets"
    if scenario == "longpoll":
        return f"{options['n']:,} pollers"
    if scenario == "replay":
        return f"{options['messages']:,} changes"
    return json.dumps(options)


def render(record: dict[str, Any], source: str) -> str:
    m = record["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Run {record['started']} with `{record['command'].strip()}` ({record['rounds']} "
        f"round(s), {record.get('seconds', 0) // 60} min); source: `{source}`.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']},"
        f" {m['system']}. Server, baselines and load generator share this machine.",
        "",
        "Every figure is the median over the rounds; within a round the servers ran one after "
        "the other on fresh processes, alternating the order. Reproduce with "
        "`python -m bench` (or `just bench`).",
        "",
    ]
    by_case: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    order: list[tuple[str, str]] = []
    for case in record["cases"]:
        key = (case["scenario"], _case_label(case["scenario"], case["options"]))
        if key not in by_case:
            by_case[key] = {}
            order.append(key)
        by_case[key][case["server"]] = case["median"]
    ceiling = [by_case[k]["null"] for k in order if k[0] == "ceiling"]
    if ceiling:
        c = ceiling[0]
        lines += ["## Load generator ceiling (against the null server)", "",
                  f"{_fmt(c.get('frames_per_s'))} notifications/s received and counted over "
                  f"200 WebSockets; {_fmt(c.get('requests_per_s'))} POSTs/s answered over 16 "
                  "connections. Figures below that approach these are the generator's limit, "
                  "not the server's.", ""]
    for scenario, (metric, unit, _, target) in HEADLINE.items():
        keys = [k for k in order if k[0] == scenario]
        if not keys:
            continue
        servers = [s for s in NAMES if any(s in by_case[k] for k in keys)]
        lines += [f"## {scenario}", "", f"Headline: {unit}. Target for Tidings: {target}.", ""]
        head = ["case"] + [f"{NAMES[s]}" for s in servers]
        head += [f"Tidings / {NAMES[s].split(' (')[0]}" for s in servers if s != "tidings"]
        head += [f"Tidings {d}" for d in DETAILS[scenario]]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for key in keys:
            row = [key[1]]
            medians = by_case[key]
            values = {s: medians.get(s, {}).get(metric) for s in servers}
            row += [_fmt(values[s]) + ("" if "errors" not in medians.get(s, {}) else " ⚠")
                    for s in servers]
            for s in servers:
                if s == "tidings":
                    continue
                mine, theirs = values.get("tidings"), values[s]
                row.append(f"{mine / theirs:.0%}" if mine and theirs else "–")
            row += [_fmt(medians.get("tidings", {}).get(d)) for d in DETAILS[scenario]]
            lines.append("| " + " | ".join(row) + " |")
        for key in keys:
            for server, medians in by_case[key].items():
                for error in medians.get("errors", []):
                    lines.append(f"\n⚠ {key[1]}, {server}: {error[-300:]}")
        lines.append("")
    return "\n".join(lines) + "\n"


def write_report(record: dict[str, Any], source: Path, target: Path) -> None:
    notes = target.with_name("NOTES.md")
    text = render(record, str(source.relative_to(target.parent.parent)))
    if notes.exists():
        text += "\n" + notes.read_text()
    target.write_text(text)


if __name__ == "__main__":
    path = Path(sys.argv[1])
    write_report(json.loads(path.read_text()), path.resolve(),
                 Path(__file__).resolve().parent / "RESULTS.md")
