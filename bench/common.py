"""Shared bench plumbing: start processes on 127.0.0.1, read their CPU and peak memory, percentiles."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary_ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def peak_rss_mb(pid: int) -> float:
    match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return round(int(match.group(1)) / 1024, 1) if match else float("nan")


def rss_mb(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return round(int(match.group(1)) / 1024, 1) if match else float("nan")


def stop_process(popen: subprocess.Popen[bytes], grace: float = 15) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds: a simulator still sending the status webhooks of a
    100,000-send run would otherwise hold the benchmark past its figures."""
    popen.terminate()
    try:
        popen.wait(grace)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()


@dataclass
class Proc:
    """A server process under measurement."""

    popen: subprocess.Popen[bytes]
    base_url: str
    data_dir: Path
    token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def usage(self) -> dict[str, float]:
        return {"cpu_s": round(cpu_seconds(self.popen.pid), 2), "peak_rss_mb": peak_rss_mb(self.popen.pid)}

    def profile(self, name: str, seconds: float) -> subprocess.Popen[bytes] | None:
        """With BENCH_PROFILE=DIR, sample this process with py-spy (collapsed stacks in DIR/name.txt)."""
        out = os.environ.get("BENCH_PROFILE")
        if not out:
            return None
        Path(out).mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [
                "py-spy",
                "record",
                "--format",
                "raw",
                "--pid",
                str(self.popen.pid),
                "--duration",
                str(int(seconds)),
                "-o",
                str(Path(out) / f"{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        stop_process(self.popen)


async def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
            try:
                async with http.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > end:
                raise RuntimeError(f"{url} did not come up")
            await asyncio.sleep(0.1)  # polling a starting process: there is no event to wait on


async def start_gateway(
    data_dir: Path | None = None, env: dict[str, str] | None = None, *, demo: bool = True
) -> Proc:
    """``switchboard serve`` (``--demo``: seeds the demo account and prints its token).

    With no database or Redis URL in ``env`` this is the embedded default (SQLite under ``data_dir``,
    in-process jobs and events); bench/deployment.py passes them for the scale-out cluster.
    """
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="sb-bench-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(data_dir / "gateway.log", "wb")  # noqa: SIM115 - lives as long as the process
    popen = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            *(["--demo"] if demo else []),
            "--port",
            str(port),
            "--smtp-port",
            "0",
            "--data-dir",
            str(data_dir),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        env={**os.environ, "SWITCHBOARD_LOG_LEVEL": "WARNING", **(env or {})},
    )
    token = None
    assert popen.stdout is not None
    loop = asyncio.get_running_loop()
    while True:  # "serving on" comes after start-up (migrations, bus, channels) and the demo seed
        line = (await loop.run_in_executor(None, popen.stdout.readline)).decode()
        if not line:
            raise RuntimeError(f"gateway exited; see {data_dir / 'gateway.log'}")
        if "API token:" in line:
            token = line.rsplit(" ", 1)[1].strip()
        if line.startswith("Switchboard serving on"):
            break
    base = f"http://127.0.0.1:{port}"
    await wait_http(base + "/healthz", popen)
    return Proc(popen, base, data_dir, token)


def raise_nofile(want: int = 65536) -> int:
    """Raise this process's open-files soft limit (sockets) as far as the hard limit allows."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Target(Protocol):
    """What the API helper needs: a gateway's base URL and the demo admin's token."""

    @property
    def base_url(self) -> str: ...

    @property
    def token(self) -> str | None: ...


async def api(http: aiohttp.ClientSession, gw: Target, method: str, path: str, body: Any = None) -> Any:
    """One API call as the demo super admin; raises on an error status."""
    async with http.request(
        method, f"{gw.base_url}/api/v1{path}", json=body, headers={"Authorization": f"Bearer {gw.token}"}
    ) as resp:
        data = await resp.json(content_type=None) if resp.status != 204 else None
        if resp.status >= 400:
            raise RuntimeError(f"{method} {path}: {resp.status} {data}")
        return data


def sqlite_rows(gw: Proc, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the embedded gateway's SQLite file directly (counting outcomes after a run)."""
    import sqlite3

    path = gw.data_dir / "switchboard.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
        return list(db.execute(sql, params))


async def closed_loop(
    n_workers: int, duration: float, one: Any, rate: float | None = None
) -> tuple[list[float], int, float]:
    """``n_workers`` connections each sending back to back (or paced to ``rate`` in total) for ``duration`` s.

    Returns (latencies of the successes, errors, elapsed seconds).
    """
    latencies: list[float] = []
    errors = 0
    start = time.monotonic()
    end = start + duration
    counter = 0

    async def worker() -> None:
        nonlocal errors, counter
        while True:
            n = counter
            counter += 1
            if rate is not None:
                at = start + n / rate
                if at >= end or time.monotonic() >= end:  # a server that falls behind is not waited for
                    return
                delay = at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing the load generator
            elif time.monotonic() >= end:
                return
            t0 = time.perf_counter()
            try:
                ok = await one(n)
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1

    await asyncio.gather(*(worker() for _ in range(n_workers)))
    return latencies, errors, time.monotonic() - start
