"""``make bench``: run the benchmarks, print each figure beside its same-run baseline, save JSON.

python -m bench                     # everything, full size
python -m bench --quick             # small sizes (a smoke run)
python -m bench --only fanout,query
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import fanout, query

RESULTS = Path(__file__).parent / "results"


async def main(only: set[str] | None, quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "mode": "embedded (SQLite, in-process jobs and events)",
    }
    plan = {
        "fanout": lambda: fanout.run(
            agents=200 if quick else 2000, rate=50 if quick else 200, duration=3 if quick else 10
        ),
        "query": lambda: query.run(
            conversations=5_000 if quick else 200_000, per_conversation=10, requests=50 if quick else 300
        ),
    }
    for name, bench in plan.items():
        if only and name not in only:
            continue
        print(f"running {name} ...", flush=True)
        results[name] = await bench()
        print(json.dumps(results[name], indent=2), flush=True)
    return results


def table(results: dict[str, Any]) -> str:
    rows = [
        "| figure | gateway | baseline (same run) | ratio | target | cpu s | peak MB |",
        "|---|---|---|---|---|---|---|",
    ]
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
    return "\n".join(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", help="comma-separated: fanout,query")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args()
    res = asyncio.run(main(set(args.only.split(",")) if args.only else None, args.quick))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{datetime.now(UTC):%Y-%m-%d}.json"
    out.write_text(json.dumps(res, indent=2))
    print()
    print(table(res))
    print(f"\nsaved {out}")
