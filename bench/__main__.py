"""``make bench``: run the benchmarks, print each figure beside its same-run baseline, save JSON.

python -m bench                     # everything, full size, embedded gateway
python -m bench --quick             # small sizes (a smoke run)
python -m bench --only ingest,send
python -m bench --loops asyncio          # only the default loop (default: asyncio,uvloop side by side)
python -m bench --scale-out              # 2 gateways + 2 workers on PostgreSQL and Redis
python -m bench --mode embedded,scale-out --quick   # both, side by side in one table and JSON

Sizes: --sends, --sockets, --conversations, --quota-sends, --quota-limit, --duration override the plan.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import audience, fanout, ingest, query, quota, reporting, send, widgets
from bench.common import raise_nofile
from bench.deployment import GATEWAYS, MODES, WORKERS

RESULTS = Path(__file__).parent / "results"
FIGURES = ("ingest", "send", "fanout", "widgets", "query", "quota", "reports", "audience")
SCALE_OUT = "+scale-out"  # suffix of a figure's key in the results when measured in scale-out mode


def key_of(name: str, loop: str, default_loop: str, mode: str) -> str:
    """``send``, ``send@asyncio``, ``send+scale-out``: embedded keys are those of earlier runs."""
    return name + ("" if loop == default_loop else f"@{loop}") + ("" if mode == "embedded" else SCALE_OUT)


def figure_of(key: str) -> str:
    return key.split("+")[0].split("@")[0]


async def main(args: argparse.Namespace) -> dict[str, Any]:
    only = set(args.only.split(",")) if args.only else None
    quick = args.quick
    loops = args.loops.split(",")
    modes = ["scale-out"] if args.scale_out else args.mode.split(",")
    for mode in modes:
        if mode not in MODES:
            raise SystemExit(f"--mode: {mode!r} is not one of {', '.join(MODES)}")
    raise_nofile()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "modes": {
            mode: "embedded (SQLite, in-process jobs and events)"
            if mode == "embedded"
            else f"scale-out ({GATEWAYS} gateways, {WORKERS} RQ workers, PostgreSQL, Redis)"
            for mode in modes
        },
        "loops": loops,
    }
    duration = args.duration or (5 if quick else 20)
    plan: dict[str, Any] = {
        "ingest": lambda env, mode: ingest.run(connections=64, duration=duration, env=env, mode=mode),
        "send": lambda env, mode: send.run(
            total=args.sends or (500 if quick else 100_000), env=env, mode=mode, via=args.send_via
        ),
        "fanout": lambda env, mode: fanout.run(
            agents=200 if quick else 2000,
            rate=50 if quick else 200,
            duration=3 if quick else 10,
            env=env,
            mode=mode,
        ),
        "widgets": lambda env, mode: widgets.run(
            sockets=args.sockets or (500 if quick else 10_000), env=env, mode=mode, hold_s=0 if quick else 40
        ),
        "query": lambda env, mode: query.run(
            conversations=args.conversations or (5_000 if quick else 200_000),
            per_conversation=10,
            requests=50 if quick else 300,
            env=env,
            mode=mode,
        ),
        "reports": lambda env, mode: reporting.run(
            conversations=args.conversations or (5_000 if quick else 200_000),
            per_conversation=10,
            requests=20 if quick else 100,
            env=env,
            mode=mode,
        ),
        "audience": lambda env, mode: audience.run(
            contacts=args.conversations or (20_000 if quick else 1_000_000),
            requests=10 if quick else 30,
            env=env,
        ),
        "quota": lambda env, mode: quota.run(
            sends=args.quota_sends or (300 if quick else 10_000),
            limit=args.quota_limit or (100 if quick else 1_000),
            env=env,
            mode=mode,
        ),
    }
    per_loop = {"ingest", "send", "widgets"}  # where the event loop is worth comparing
    for name, bench in plan.items():
        if only and name not in only:
            continue
        for mode in modes:
            # The loop comparison is an embedded question; scale-out runs on the default loop only.
            for loop in loops if name in per_loop and mode == "embedded" else loops[:1]:
                key = key_of(name, loop, loops[0], mode)
                print(f"running {key} ...", flush=True)
                load_before = os.getloadavg()[0]
                results[key] = await bench({"SWITCHBOARD_EVENT_LOOP": loop}, mode)
                results[key]["event_loop"] = loop
                results[key]["mode"] = mode
                # The machine's 1-minute load around the run: other work on it skews every figure.
                results[key]["load_avg"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
                print(json.dumps(results[key], indent=2), flush=True)
    return results


def _keys(results: dict[str, Any], figure: str) -> list[str]:
    """The results of one figure, embedded first, so the modes sit side by side."""
    keys = [k for k in results if isinstance(results[k], dict) and figure_of(k) == figure]
    return sorted(keys, key=lambda k: (results[k].get("mode", "embedded") != "embedded", keys.index(k)))


def _label(r: dict[str, Any]) -> str:
    load = r.get("load_avg")
    return f"[{r.get('mode', 'embedded')}, {r.get('event_loop', '?')}" + (
        f", load {load[0]}→{load[1]}]" if load else "]"
    )


def _usage(u: dict[str, Any]) -> str:
    """``cpu s | peak MB`` cells; in scale-out summed over gateways and workers, with the services beside."""
    cpu, mb = f"{u['cpu_s']}", f"{u['peak_rss_mb']}"
    services = [(name, u[name]) for name in ("postgres", "redis") if isinstance(u.get(name), dict)]
    if services:
        cpu += " (+ " + ", ".join(f"{n} {s['cpu_s']}" for n, s in services) + ")"
        mb += " (+ " + ", ".join(f"{n} {s['pss_mb']} PSS" for n, s in services) + ")"
    return f"{cpu} | {mb}"


def _per(cpu: dict[str, float] | None, what: str) -> str:
    """``; 31.2 ms CPU/msg (+ postgres 4.1, redis 0.1)`` from a ``cpu_ms_per_*`` figure."""
    if not cpu:
        return ""
    rest = [f"{k} {v}" for k, v in cpu.items() if k != "gateways_workers"]
    return f"; {cpu['gateways_workers']} ms CPU/{what}" + (f" (+ {', '.join(rest)})" if rest else "")


def table(results: dict[str, Any]) -> str:
    rows = [
        "| figure | gateway(s) | baseline (same run) | ratio | target | cpu s | peak MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in _keys(results, "ingest"):
        r = results[key]
        g, b = r["gateway"], r["baseline"]
        rows.append(
            f"| inbound ingest {_label(r)} ({r['connections']} conn, {r['duration_s']} s) | "
            f"{g['max']['req_per_s']} req/s, p99 {g['max']['p99_ms']} ms; at half baseline rate: "
            f"{g['at_half_baseline']['req_per_s']} req/s, p99 {g['at_half_baseline']['p99_ms']} ms"
            + (f"; at half its own: p99 {g['at_half_own']['p99_ms']} ms" if "at_half_own" in g else "")
            + _per(g.get("cpu_ms_per_message"), "msg")
            + " | "
            f"{b['max']['req_per_s']} req/s; half: p99 {b['at_half_baseline']['p99_ms']} ms | "
            f"{r['ratio_req_per_s']}× | {r['target']} | {_usage(g)} |"
        )
    for key in _keys(results, "send"):
        r = results[key]
        g, b = r["gateway"], r["baseline"]
        rows.append(
            f"| outbound send {_label(r)} ({r['sends']:,} template sends via {r.get('via', 'messages')}) | "
            f"{g['sends_per_s']} sends/s "
            f"(API {g['api_sends_per_s']}/s), accounted {g['accounted_for']:,}: {g['final_statuses']}"
            f"{_per(g.get('cpu_ms_per_send'), 'send')} | "
            f"{b['sends_per_s']} sends/s | {r['ratio']}× | {r['target']} | {_usage(g)} |"
        )
    for key in _keys(results, "fanout"):
        f = results[key]
        g, b = f["gateway"], f["baseline"]
        rows.append(
            f"| live fan-out {_label(f)} ({f['agents']} agents, {f['rate_per_s']}/s) | p99 {g['p99_ms']} ms, "
            f"{g['delivered']}/{g['expected']} | p99 {b['p99_ms']} ms, {b['delivered']}/{b['expected']} | "
            f"{f['ratio_p99']}× | {f['target']} | {_usage(g)} |"
        )
    for key in _keys(results, "query"):
        q = results[key]
        for i, name in enumerate(("list_by_inbox_status", "next_pages", "search_contact", "search_text")):
            usage = _usage(q) if i == 0 else " | "
            rows.append(
                f"| inbox query {name} {_label(q)} ({q['conversations']:,} conv, {q['messages']:,} msg) | "
                f"p50 {q[name]['p50_ms']} ms, p99 {q[name]['p99_ms']} ms | — | — | {q['target']} | {usage} |"
            )
    for key in _keys(results, "reports"):
        r = results[key]
        base = r.get("baseline_summary_from_facts")
        for i, name in enumerate(reporting.REQUESTS):
            usage = _usage(r) if i == 0 else " | "
            compared = "— | —"
            if name == "summary" and base:  # the summary's statements over the facts, as before the roll-ups
                ratio = round(base["p99_ms"] / r[name]["p99_ms"], 1) if r[name]["p99_ms"] else "—"
                compared = (
                    f"from the facts: p50 {base['p50_ms']} ms, p99 {base['p99_ms']} ms | {ratio}× faster"
                )
            rows.append(
                f"| reports {name} {_label(r)} ({r['conversations']:,} conv, {r['messages']:,} msg, "
                f"{r['facts']:,} facts, 90 days) | p50 {r[name]['p50_ms']} ms, p99 {r[name]['p99_ms']} ms; "
                f"{r[name]['gateway_cpu_ms_per_request']} ms CPU/request | {compared} | {r['target']} | {usage} |"
            )
    for key in _keys(results, "audience"):
        r = results[key]
        base = r["baseline_all_contacts"]
        for i, name in enumerate(("tag", "attribute_range", "combined_with_exclusions")):
            usage = _usage(r) if i == 0 else " | "
            f = r[name]
            rows.append(
                f"| audience preview {name} {_label(r)} ({r['contacts']:,} contacts, {f['matched']:,} match) | "
                f"p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms; {f['gateway_cpu_ms_per_request']} ms CPU/request | "
                f"all contacts: p99 {base['p99_ms']} ms | {round(f['p99_ms'] / base['p99_ms'], 2)}× | "
                f"{r['target']} | {usage} |"
            )
    for key in _keys(results, "widgets"):
        r = results[key]
        each = r.get("rss_open_each_mb", [])
        base = r.get("baseline")
        held = (
            f"; after {r['hold_s']:g} s {r['rss_held_mb']} MB, {r['server_sockets_held']:,} held"
            if "rss_held_mb" in r
            else ""
        )
        rows.append(
            f"| widget sockets {_label(r)} ({r['open']:,}/{r['sockets']:,} open"
            + (f", {r['server_sockets']:,} on the server" if "server_sockets" in r else "")
            + f") | RSS {r['rss_open_mb']} MB"
            + (f" ({' + '.join(map(str, each))})" if len(each) > 1 else "")
            + f", {r['per_socket_kb']} KB/socket over {r['rss_before_mb']} MB{held} | "
            + (
                f"bare aiohttp: {base['rss_open_mb']} MB, {base['per_socket_kb']} KB/socket over "
                f"{base['rss_before_mb']} MB | {r['ratio_per_socket']}× per socket"
                if base
                else "— | —"
            )
            + f" | {r['target']} | {_usage(r)} |"
        )
    for key in _keys(results, "quota"):
        r = results[key]
        rows.append(
            f"| quota exactness {_label(r)} ({r['sends']:,} sends, limit {r['limit']:,}) | "
            f"{r['conversations_sent']} conversations, used {r['quota_used']}, alerts {r['alert_tiers']} "
            f"({r['alert_mails']} mails) | — | — | {r['target']} | {_usage(r)} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", help="comma-separated: ingest,send,fanout,widgets,query,quota,reports")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument(
        "--loops", default="uvloop,asyncio", help="event loops for the gateway, first is the default"
    )
    parser.add_argument("--duration", type=float, help="seconds of ingest load")
    parser.add_argument("--sends", type=int, help="broadcast size")
    parser.add_argument(
        "--send-via",
        choices=send.VIA,
        default="broadcasts",
        help="send figure: POST /broadcasts of 500 recipients (default), one POST /messages each, or one broadcast to an audience",
    )
    parser.add_argument("--sockets", type=int, help="idle widget sockets")
    parser.add_argument("--conversations", type=int, help="inbox query and reports data size")
    parser.add_argument("--quota-sends", type=int)
    parser.add_argument("--quota-limit", type=int)
    parser.add_argument(
        "--mode",
        default="embedded",
        help=f"comma-separated, side by side: {','.join(MODES)} (default embedded)",
    )
    parser.add_argument(
        "--scale-out",
        action="store_true",
        help=f"same as --mode scale-out: {GATEWAYS} gateways, {WORKERS} workers, PostgreSQL, Redis",
    )
    args = parser.parse_args()
    for name in (args.only or "").split(","):
        if name and name not in FIGURES:
            parser.error(f"--only: {name!r} is not one of {','.join(FIGURES)}")
    res = asyncio.run(main(args))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{datetime.now(UTC):%Y-%m-%d}.json"
    if out.exists() and (args.only or args.scale_out):
        # A partial rerun (some figures, or scale-out alone) updates the day's file, keeping the rest.
        old = json.loads(out.read_text())
        res = {**old, **res, "modes": {**old.get("modes", {}), **res["modes"]}}
    out.write_text(json.dumps(res, indent=2))
    print()
    print(table(res))
    print(f"\nsaved {out}")
