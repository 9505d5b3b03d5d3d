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
from typing import Any

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
        self.popen.terminate()
        try:
            self.popen.wait(15)
        except subprocess.TimeoutExpired:
            self.popen.kill()


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


async def start_gateway(data_dir: Path | None = None, env: dict[str, str] | None = None) -> Proc:
    """``switchboard serve --demo`` on its embedded default (SQLite, in-process jobs and events)."""
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="sb-bench-"))
    port = free_port()
    log = open(data_dir / "gateway.log", "wb")  # noqa: SIM115 - lives as long as the process
    popen = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--demo",
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
    while token is None:
        line = (await loop.run_in_executor(None, popen.stdout.readline)).decode()
        if not line:
            raise RuntimeError(f"gateway exited; see {data_dir / 'gateway.log'}")
        if "API token:" in line:
            token = line.rsplit(" ", 1)[1].strip()
    base = f"http://127.0.0.1:{port}"
    await wait_http(base + "/healthz", popen)
    return Proc(popen, base, data_dir, token)
