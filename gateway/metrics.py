"""Prometheus metrics: ``GET /metrics`` on every gateway, and on a worker's ``worker_metrics_port``.

Two kinds of figures:
- process-local (sum them over instances): websocket clients of this gateway; job run time, wait
  time and failures in this worker.
- cluster-wide, read at scrape time from the database and Redis (every gateway reports the same
  value; aggregate with ``max``): messages by channel kind, direction and status; refused or failed
  sends by reason; jobs queued, scheduled, running and failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from inbox import tables as t
from inbox.db import Database
from inbox.model import MessageKind, MessageStatus

if TYPE_CHECKING:
    from gateway.rq_jobs import RqJobs

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_DIRECTION = {MessageKind.INCOMING.value: "in", MessageKind.OUTGOING.value: "out"}


class _ClusterFigures(Collector):
    """Yields what the last ``refresh`` read; a process that never refreshes (a worker) yields nothing."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, str, int]] = []
        self.refusals: list[tuple[str, str, int]] = []
        self.queue: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        if not (self.messages or self.refusals or self.queue):
            return
        messages = GaugeMetricFamily(
            "switchboard_messages",
            "Messages by channel kind, direction (in/out) and status, across the cluster",
            labels=["channel", "direction", "status"],
        )
        for channel, direction, status, n in self.messages:
            messages.add_metric([channel, direction, status], n)
        yield messages
        refusals = GaugeMetricFamily(
            "switchboard_send_refusals",
            "Outbound messages refused by a policy or failed at the provider, by reason, across the cluster",
            labels=["channel", "reason"],
        )
        for channel, reason, n in self.refusals:
            refusals.add_metric([channel, reason], n)
        yield refusals
        if self.queue:
            depth = GaugeMetricFamily(
                "switchboard_queue_jobs", "Jobs in the RQ queue by state", labels=["state"]
            )
            for state, n in self.queue.items():
                depth.add_metric([state], n)
            yield depth


class Metrics:
    """One registry per container (tests run several in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.websocket_clients = Gauge(
            "switchboard_websocket_clients",
            "Open live-stream websockets on this gateway",
            registry=self.registry,
        )
        self.job_seconds = Histogram(
            "switchboard_job_duration_seconds",
            "Time a job took to run in this worker",
            ["job"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
        self.job_wait_seconds = Histogram(
            "switchboard_job_wait_seconds",
            "Time a job waited in the queue before a worker started it",
            ["job"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
        self.job_failures = Counter(
            "switchboard_job_failures", "Jobs that raised in this worker", ["job"], registry=self.registry
        )
        self._cluster = _ClusterFigures()
        self.registry.register(self._cluster)

    async def refresh(self, db: Database, jobs: RqJobs | None) -> None:
        async with db.read() as session:
            rows = (
                await session.execute(
                    select(t.Channel.kind, t.Message.kind, t.Message.status, func.count())
                    .join(t.Channel, t.Channel.id == t.Message.channel_id)
                    .where(t.Message.kind.in_(list(_DIRECTION)))
                    .group_by(t.Channel.kind, t.Message.kind, t.Message.status)
                )
            ).all()
            refused = (
                await session.execute(
                    select(t.Channel.kind, t.Message.reason, func.count())
                    .join(t.Channel, t.Channel.id == t.Message.channel_id)
                    .where(
                        t.Message.kind == MessageKind.OUTGOING,
                        t.Message.status == MessageStatus.FAILED,
                        t.Message.reason.is_not(None),
                    )
                    .group_by(t.Channel.kind, t.Message.reason)
                )
            ).all()
        self._cluster.messages = [(str(c), _DIRECTION[str(k)], str(s), int(n)) for c, k, s, n in rows]
        self._cluster.refusals = [(str(c), str(r), int(n)) for c, r, n in refused]
        if jobs is not None:
            self._cluster.queue = await asyncio.to_thread(jobs.depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)
