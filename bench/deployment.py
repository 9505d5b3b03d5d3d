"""Where a bench run gets its gateways: the embedded default or the scale-out cluster.

``embedded``: one ``switchboard serve --demo`` on SQLite with in-process jobs and events.
``scale-out``: a throw-away PostgreSQL cluster and redis-server (the test suite's starters in
tests/services.py, not a copy of them), two gateways (the first migrates and seeds the demo) and two
``switchboard worker`` processes (RQ), all on 127.0.0.1, as tests/scaleout/ runs them. A bench spreads
its clients over ``Deployment.url(n)`` and reads outcomes with ``Deployment.rows`` (SQLite or PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs; the gateway reaches it through SQLAlchemy

from bench.common import CLK_TCK, ROOT, Proc, rss_mb, sqlite_rows, start_gateway

MODES = ("embedded", "scale-out")
GATEWAYS = 2
WORKERS = 2


# -- CPU and memory of a process and its descendants (/proc) ---------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (an RQ worker forks its scheduler; PostgreSQL one per backend)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


def _status_kb(pid: int, key: str, file: str = "status") -> int:
    with contextlib.suppress(OSError):
        match = re.search(rf"^{key}:\s+(\d+) kB", Path(f"/proc/{pid}/{file}").read_text(), re.M)
        if match:
            return int(match.group(1))
    return 0


def tree_usage(pid: int) -> dict[str, float]:
    """CPU seconds and memory summed over a process tree.

    CPU: utime + stime of each live process plus cutime + cstime (its children already reaped, e.g.
    PostgreSQL backends of closed connections), so nothing is counted twice. Memory: the sum of peak
    RSS (VmHWM) counts shared pages once per process (PostgreSQL's shared buffers, a forked child's
    inherited heap); the sum of PSS now splits shared pages fairly but is not a peak.
    """
    cpu, hwm, pss = 0.0, 0, 0
    tree = process_tree(pid)
    for p in tree:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += sum(int(f) for f in fields[11:15]) / CLK_TCK  # utime stime cutime cstime
        hwm += _status_kb(p, "VmHWM")
        pss += _status_kb(p, "Pss", "smaps_rollup")
    return {
        "cpu_s": round(cpu, 2),
        "peak_rss_mb": round(hwm / 1024, 1),
        "pss_mb": round(pss / 1024, 1),
        "processes": len(tree),
    }


def find_server(name: str, port: int) -> int | None:
    """The pid of the server listening on ``port``: its command line names both (postgres -p PORT,
    redis-server's title ``redis-server 127.0.0.1:PORT``)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        line = " ".join(argv)
        if name in argv[0] and (f"-p {port} " in line + " " or f":{port}" in line):
            return int(entry.name)
    return None


# -- deployments ----------------------------------------------------------------------------------


@dataclass
class Deployment:
    """The gateways a bench drives, their workers and services; stopped with ``stop()``."""

    mode: str
    gateways: list[Proc]
    database_url: str | None = None  # None: the first gateway's SQLite file
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    services: dict[str, int] = field(default_factory=dict)  # name -> pid of the server process
    exit: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    waits: WaitSampler | None = None  # scale-out: what PostgreSQL's busy backends wait on

    @property
    def base_url(self) -> str:
        return self.gateways[0].base_url

    @property
    def token(self) -> str | None:
        return self.gateways[0].token

    @property
    def data_dir(self) -> Path:
        return self.gateways[0].data_dir

    def url(self, n: int) -> str:
        """The base URL for the ``n``-th client or request: round robin over the gateways."""
        return self.gateways[n % len(self.gateways)].base_url

    def profile(self, name: str, seconds: float) -> subprocess.Popen[bytes] | None:
        return self.gateways[0].profile(name, seconds)

    def rss_mb(self) -> float:
        """Resident memory now, summed over the gateways."""
        return round(sum(rss_mb(gw.popen.pid) for gw in self.gateways), 1)

    def usage(self) -> dict[str, Any]:
        """CPU seconds and peak RSS: the gateway's, or summed over gateways and workers (scale-out,
        each process and PostgreSQL/Redis listed beside)."""
        if self.mode == "embedded":
            return self.gateways[0].usage()
        each = {f"gateway-{i + 1}": tree_usage(gw.popen.pid) for i, gw in enumerate(self.gateways)}
        each |= {f"worker-{i + 1}": tree_usage(w.pid) for i, w in enumerate(self.workers)}
        return {
            "cpu_s": round(sum(u["cpu_s"] for u in each.values()), 2),
            "peak_rss_mb": round(sum(u["peak_rss_mb"] for u in each.values()), 1),
            "processes": each,
            **{name: tree_usage(pid) for name, pid in self.services.items()},
            **({"postgres_waits": self.waits.summary()} if self.waits else {}),
        }

    def cpu_now(self) -> dict[str, float]:
        """CPU seconds so far: gateways (and workers), and each service; for per-operation deltas."""
        if self.mode == "embedded":
            return {"gateways_workers": self.gateways[0].usage()["cpu_s"]}
        pids = [gw.popen.pid for gw in self.gateways] + [w.pid for w in self.workers]
        return {
            "gateways_workers": round(sum(tree_usage(pid)["cpu_s"] for pid in pids), 2),
            **{name: tree_usage(pid)["cpu_s"] for name, pid in self.services.items()},
        }

    def cpu_ms_per(self, before: dict[str, float], count: int) -> dict[str, float]:
        """CPU milliseconds per operation since ``before`` (a ``cpu_now()``), by process group."""
        now = self.cpu_now()
        return {k: round((now[k] - before.get(k, 0.0)) * 1000 / max(1, count), 1) for k in now}

    async def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read outcomes straight from the database (``?`` placeholders, either store)."""
        if self.database_url is None:
            return sqlite_rows(self.gateways[0], sql, params)
        numbers = itertools.count(1)
        con = await asyncpg.connect(self.database_url)
        try:
            records = await con.fetch(re.sub(r"\?", lambda _: f"${next(numbers)}", sql), *params)
        finally:
            await con.close()
        return [tuple(r) for r in records]

    def stop(self) -> None:
        self.exit.close()


async def deploy(mode: str, env: dict[str, str] | None = None, data_dir: Path | None = None) -> Deployment:
    """Start a deployment in ``mode`` (one of MODES); ``data_dir`` reuses an embedded gateway's data."""
    if mode == "embedded":
        gw = await start_gateway(data_dir, env)
        dep = Deployment(mode, [gw])
        dep.exit.callback(gw.stop)
        return dep
    if mode != "scale-out":
        raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
    dep = Deployment(mode, [])
    try:
        await _scale_out(dep, env or {})
    except BaseException:
        dep.stop()
        raise
    return dep


async def _scale_out(dep: Deployment, env: dict[str, str]) -> None:
    from tests.services import create_database, postgres_server, redis_server

    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-cluster-"))
    server = dep.exit.enter_context(_service(postgres_server))
    create_database(server, "switchboard")
    redis_url = dep.exit.enter_context(_service(redis_server, tmp))
    dep.database_url = f"{server}/switchboard"
    for name, url in (("postgres", server), ("redis-server", redis_url)):
        pid = find_server(name, int(url.rsplit(":", 1)[1].split("/")[0]))
        if pid is not None:
            dep.services[name.split("-")[0]] = pid
    cluster = {**env, "SWITCHBOARD_DATABASE_URL": dep.database_url, "SWITCHBOARD_REDIS_URL": redis_url}
    dep.exit.callback(_stop_all, dep)  # registered before the processes: a failed start stops them too
    first = await start_gateway(tmp / "gateway-1", cluster)  # migrates, seeds the demo, prints the token
    dep.gateways.append(first)
    # The schema is there: the other gateways and the workers start side by side.
    dep.workers.extend(_start_worker(tmp / f"worker-{i + 1}", cluster) for i in range(WORKERS))
    started = await asyncio.gather(
        *(start_gateway(tmp / f"gateway-{i + 1}", cluster, demo=False) for i in range(1, GATEWAYS)),
        _registered(redis_url, dep.workers),
        return_exceptions=True,  # all finish before a failure is raised: nothing started is left behind
    )
    dep.gateways.extend(gw for gw in started if isinstance(gw, Proc))
    for outcome in started:
        if isinstance(outcome, BaseException):
            raise outcome
    dep.waits = WaitSampler(dep.database_url)
    await dep.waits.start()
    dep.exit.callback(dep.waits.stop)


class WaitSampler:
    """Samples ``pg_stat_activity`` 10 times a second while the cluster runs: how many of the gateways'
    and workers' backends are busy (in a statement or holding a transaction open) and what the ones in
    a statement wait on. It shows where cluster-wide serialization (locks) sits."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._con: Any = None
        self._task: asyncio.Task[None] | None = None
        self.samples = 0  # samples with at least one busy backend
        self.waiting: Counter[str] = Counter()  # backend-samples by "wait type: wait event"

    async def start(self) -> None:
        self._con = await asyncpg.connect(self._url)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        query = (
            "SELECT state, coalesce(wait_event_type || ': ' || wait_event, 'on CPU') FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'"
        )
        with contextlib.suppress(Exception):  # ends when the connection is terminated on stop
            while True:
                rows = await self._con.fetch(query)
                if rows:
                    self.samples += 1
                    for state, wait in rows:
                        self.waiting["idle in transaction" if state.startswith("idle") else wait] += 1
                await asyncio.sleep(0.1)  # the sampling period

    def summary(self) -> dict[str, Any]:
        """Mean busy backends per sample (over samples with any busy), by what they were doing."""
        n = max(1, self.samples)
        return {
            "busy_samples": self.samples,
            "mean_backends": {k: round(v / n, 2) for k, v in self.waiting.most_common(6)},
        }

    def stop(self) -> None:
        if self._con is not None:
            self._con.terminate()
        if self._task is not None:
            self._task.cancel()


@contextlib.contextmanager
def _service(starter: Any, *args: Any) -> Iterator[str]:
    """One of tests/services.py's starters, outside pytest: a missing server is an error here."""
    import pytest

    try:
        with contextlib.contextmanager(starter)(*args) as url:
            yield url
    except (pytest.skip.Exception, pytest.fail.Exception) as exc:
        raise RuntimeError(f"scale-out mode: {exc}") from None


def _start_worker(data_dir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    data_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "worker", "--data-dir", str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir / "worker.log", "wb"),  # the log lives as long as the process
        env={**os.environ, "SWITCHBOARD_LOG_LEVEL": "WARNING", **env},
        start_new_session=True,  # its own process group: the forked RQ scheduler goes with it
    )


def _stop_all(dep: Deployment) -> None:
    """SIGTERM every gateway and worker (a worker's whole process group) at once, then wait for each;
    what has not exited after 15 s is killed."""
    for gw in dep.gateways:
        gw.popen.terminate()
    for worker in dep.workers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGTERM)
    end = time.monotonic() + 15
    for gw in dep.gateways:
        with contextlib.suppress(subprocess.TimeoutExpired):
            gw.popen.wait(max(0.1, end - time.monotonic()))
        gw.popen.kill()
        gw.popen.wait()
    for worker in dep.workers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(max(0.1, end - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


async def _registered(redis_url: str, workers: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    """Wait until every worker has registered with RQ (before that, its jobs would only queue)."""
    from redis import Redis
    from rq import Worker

    end = time.monotonic() + timeout
    with Redis.from_url(redis_url) as redis:
        while len(Worker.all(connection=redis)) < len(workers):
            for w in workers:
                if w.poll() is not None:
                    raise RuntimeError(f"a worker exited with {w.returncode}")
            if time.monotonic() > end:
                raise RuntimeError("the workers did not register with RQ")
            await asyncio.sleep(0.1)  # polling a starting process: bench plumbing, not a test
