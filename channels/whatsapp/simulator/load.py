"""Load generation: many simulated contacts write in through the simulator at a steady rate.

Each send goes through the simulator's phone API with ``wait``: it returns when the gateway acknowledged
the signed webhook (that is, after its commit), so the latency measured is contact → stored. Bounded: at
most ``MAX_CONTACTS`` contacts, ``MAX_RATE`` messages a second, ``MAX_DURATION`` seconds, and only
against a simulator on this machine.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

MAX_CONTACTS = 10_000
MAX_RATE = 2_000.0
MAX_DURATION = 3_600.0
MAX_IN_FLIGHT = 512
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def check_local(url: str) -> str:
    """The simulator URL, if it is on this machine (load is never sent elsewhere)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOCAL_HOSTS:
        raise ValueError(f"load goes only to a simulator on 127.0.0.1, not {url!r}")
    return url.rstrip("/")


@dataclass
class LoadReport:
    contacts: int
    rate: float
    duration: float
    sent: int = 0  # accepted by the simulator
    acknowledged: int = 0  # and acknowledged by the gateway's webhook
    errors: int = 0
    elapsed: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def percentile(self, p: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))  # nearest rank
        return ordered[index]

    def summary(self) -> dict[str, Any]:
        def ms(p: float) -> float | None:
            value = self.percentile(p)
            return round(value, 1) if value is not None else None

        return {
            "contacts": self.contacts,
            "rate": self.rate,
            "duration": self.duration,
            "sent": self.sent,
            "acknowledged": self.acknowledged,
            "errors": self.errors,
            "achieved_rate": round(self.sent / self.elapsed, 1) if self.elapsed else 0.0,
            "latency_ms": {"p50": ms(50), "p90": ms(90), "p99": ms(99), "max": ms(100)},
        }


def contact_number(i: int) -> str:
    """Synthetic, possible North American numbers in the 555 range: +1 555 0xx xxxx."""
    return f"+1555{i % 10_000_000:07d}"


async def run_load(
    url: str,
    contacts: int,
    rate: float,
    duration: float,
    business: str | None = None,
    session: aiohttp.ClientSession | None = None,
) -> LoadReport:
    """Send ``rate`` messages a second for ``duration`` seconds, round-robin over ``contacts`` phones."""
    base = check_local(url)
    if not 1 <= contacts <= MAX_CONTACTS:
        raise ValueError(f"contacts must be 1..{MAX_CONTACTS}")
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"rate must be above 0 and at most {MAX_RATE}")
    if not 0 < duration <= MAX_DURATION:
        raise ValueError(f"duration must be above 0 and at most {MAX_DURATION} s")
    report = LoadReport(contacts, rate, duration)
    own = session is None
    http = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
    try:
        if business is None:
            async with http.get(f"{base}/api/state") as resp:
                state = await resp.json()
            if not state["businesses"]:
                raise ValueError("the simulator knows no business number")
            business = str(state["businesses"][0]["phone_number_id"])
        in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        tasks: list[asyncio.Task[None]] = []

        async def one(n: int) -> None:
            body = {
                "business": business,
                "contact": contact_number(n % contacts),
                "name": f"Load {n % contacts}",
                "type": "text",
                "text": f"load message {n}",
                "wait": True,
            }
            started = time.perf_counter()
            try:
                async with http.post(f"{base}/api/send", json=body) as resp:
                    answer = await resp.json(content_type=None)
                    if resp.status != 201:
                        report.errors += 1
                        return
                report.sent += 1
                if answer.get("acknowledged"):
                    report.acknowledged += 1
                    report.latencies_ms.append((time.perf_counter() - started) * 1000)
            except (TimeoutError, aiohttp.ClientError, ValueError):
                report.errors += 1
            finally:
                in_flight.release()

        start = time.perf_counter()
        total = max(1, int(rate * duration))
        for n in itertools.count():
            if n >= total:
                break
            # A steady schedule: message n leaves at start + n / rate (no burst to catch up).
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await in_flight.acquire()
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
        report.elapsed = time.perf_counter() - start
    finally:
        if own:
            await http.close()
    return report
