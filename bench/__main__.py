"""``make bench``: run the benchmarks, print each figure beside its same-run baseline, save JSON.

python -m bench                     # everything, full size
python -m bench --quick             # small sizes (a smoke run)
python -m bench --only ingest,send
python -m bench --loops asyncio          # only the default loop (default: asyncio,uvloop side by side)

Sizes: --sends, --sockets, --conversations, --quota-sends, --quota-limit, --duration override the plan.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import fanout, ingest, query, quota, send, widgets
from bench.common import raise_nofile

RESULTS = Path(__file__).parent / "results"


async def main(args: argparse.Namespace) -> dict[str, Any]:
    only = set(args.only.split(",")) if args.only else None
    quick = args.quick
    loops = args.loops.split(",")
    raise_nofile()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "mode": "embedded (SQLite, in-process jobs and events)",
        "loops": loops,
    }
    duration = args.duration or (5 if quick else 20)
    plan: dict[str, Any] = {
        "ingest": lambda env: ingest.run(connections=64, duration=duration, env=env),
        "send": lambda env: send.run(total=args.sends or (500 if quick else 100_000), env=env),
        "fanout": lambda env: fanout.run(
            agents=200 if quick else 2000, rate=50 if quick else 200, duration=3 if quick else 10, env=env
        ),
        "widgets": lambda env: widgets.run(sockets=args.sockets or (500 if quick else 10_000), env=env),
        "query": lambda env: query.run(
            conversations=args.conversations or (5_000 if quick else 200_000),
            per_conversation=10,
            requests=50 if quick else 300,
            env=env,
        ),
        "quota": lambda env: quota.run(
            sends=args.quota_sends or (300 if quick else 10_000),
            limit=args.quota_limit or (100 if quick else 1_000),
            env=env,
        ),
    }
    per_loop = {"ingest", "send", "widgets"}  # where the event loop is worth comparing
    for name, bench in plan.items():
        if only and name not in only:
            continue
        for loop in loops if name in per_loop else loops[:1]:
            key = name if loop == loops[0] else f"{name}@{loop}"
            print(f"running {key} ...", flush=True)
            results[key] = await bench({"SWITCHBOARD_EVENT_LOOP": loop})
            results[key]["event_loop"] = loop
            print(json.dumps(results[key], indent=2), flush=True)
    return results


def table(results: dict[str, Any]) -> str:
    rows = [
        "| figure | gateway | baseline (same run) | ratio | target | cpu s | peak MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in [k for k in results if k.split("@")[0] == "ingest"]:
        r = results[key]
        g, b = r["gateway"], r["baseline"]
        rows.append(
            f"| inbound ingest [{r['event_loop']}] ({r['connections']} conn, {r['duration_s']} s) | "
            f"{g['max']['req_per_s']} req/s, p99 {g['max']['p99_ms']} ms; at half baseline rate: "
            f"{g['at_half_baseline']['req_per_s']} req/s, p99 {g['at_half_baseline']['p99_ms']} ms"
            + (f"; at half its own: p99 {g['at_half_own']['p99_ms']} ms" if "at_half_own" in g else "")
            + " | "
            f"{b['max']['req_per_s']} req/s; half: p99 {b['at_half_baseline']['p99_ms']} ms | "
            f"{r['ratio_req_per_s']}× | {r['target']} | {g['cpu_s']} | {g['peak_rss_mb']} |"
        )
    for key in [k for k in results if k.split("@")[0] == "send"]:
        r = results[key]
        g, b = r["gateway"], r["baseline"]
        rows.append(
            f"| outbound send [{r['event_loop']}] ({r['sends']:,} template sends) | {g['sends_per_s']} sends/s "
            f"(API {g['api_sends_per_s']}/s), accounted {g['accounted_for']:,}: {g['final_statuses']} | "
            f"{b['sends_per_s']} sends/s | {r['ratio']}× | {r['target']} | {g['cpu_s']} | {g['peak_rss_mb']} |"
        )
    if "fanout" in results:
        f = results["fanout"]
        g, b = f["gateway"], f["baseline"]
        rows.append(
            f"| live fan-out ({f['agents']} agents, {f['rate_per_s']}/s) | p99 {g['p99_ms']} ms, "
            f"{g['delivered']}/{g['expected']} | p99 {b['p99_ms']} ms, {b['delivered']}/{b['expected']} | "
            f"{f['ratio_p99']}× | {f['target']} | {g['cpu_s']} | {g['peak_rss_mb']} |"
        )
    if "query" in results:
        q = results["query"]
        for key in ("list_by_inbox_status", "next_pages", "search_contact", "search_text"):
            rows.append(
                f"| inbox query {key} ({q['conversations']:,} conv, {q['messages']:,} msg) | p50 {q[key]['p50_ms']} ms, "
                f"p99 {q[key]['p99_ms']} ms | — | — | {q['target']} | {q['cpu_s']} | {q['peak_rss_mb']} |"
            )
    for key in [k for k in results if k.split("@")[0] == "widgets"]:
        r = results[key]
        rows.append(
            f"| widget sockets [{r['event_loop']}] ({r['open']:,}/{r['sockets']:,} open) | RSS {r['rss_open_mb']} MB "
            f"({r['per_socket_kb']} KB/socket) | — | — | {r['target']} | {r['cpu_s']} | {r['peak_rss_mb']} |"
        )
    if "quota" in results:
        r = results["quota"]
        rows.append(
            f"| quota exactness ({r['sends']:,} sends, limit {r['limit']:,}) | {r['conversations_sent']} conversations, "
            f"used {r['quota_used']}, alerts {r['alert_tiers']} ({r['alert_mails']} mails) | — | — | {r['target']} | "
            f"{r['cpu_s']} | {r['peak_rss_mb']} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", help="comma-separated: ingest,send,fanout,widgets,query,quota")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument(
        "--loops", default="uvloop,asyncio", help="event loops for the gateway, first is the default"
    )
    parser.add_argument("--duration", type=float, help="seconds of ingest load")
    parser.add_argument("--sends", type=int, help="broadcast size")
    parser.add_argument("--sockets", type=int, help="idle widget sockets")
    parser.add_argument("--conversations", type=int, help="inbox query data size")
    parser.add_argument("--quota-sends", type=int)
    parser.add_argument("--quota-limit", type=int)
    args = parser.parse_args()
    res = asyncio.run(main(args))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{datetime.now(UTC):%Y-%m-%d}.json"
    if out.exists() and args.only:  # a partial rerun updates the day's file, keeping the other figures
        res = {**json.loads(out.read_text()), **res}
    out.write_text(json.dumps(res, indent=2))
    print()
    print(table(res))
    print(f"\nsaved {out}")
