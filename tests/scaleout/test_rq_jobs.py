"""RQ as the job queue: a failing job is retried, lands in the failed registry after its retries, and
an admin sees it and puts it back through the API. Real redis-server; the worker runtime is the one
``switchboard worker`` uses, driven here in burst mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rq import SimpleWorker

from gateway.config import Settings
from gateway.container import build
from gateway.worker import WorkerRuntime, install
from inbox.model import PermanentChannelError, Reason
from tests.harness import start_gateway


class Flaky:
    """A job handler that fails while ``failing`` is set; it runs on the worker runtime's loop."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.failing = True

    async def __call__(self, arg: int) -> None:
        self.calls.append(arg)
        if self.failing:
            raise RuntimeError(f"provider for {arg} is down")


@pytest.fixture
def flaky() -> Flaky:
    return Flaky()


async def test_failed_job_is_listed_and_requeued_by_an_admin(tmp_path: Path, redis_db: str, flaky: Flaky):
    knobs: dict[str, Any] = {"redis_url": redis_db, "job_retry_intervals": [0, 0]}  # 2 quick retries
    gw = await start_gateway(tmp_path, settings=knobs)
    gw.container.jobs.register("test.flaky", flaky)
    worker_container = build(Settings(data_dir=tmp_path, **knobs), role="worker")
    worker_container.jobs.register("test.flaky", flaky)
    runtime = WorkerRuntime(worker_container)
    runtime.start()
    install(runtime)
    rq = gw.container.rq
    assert rq is not None
    try:
        await gw.container.jobs.enqueue("test.flaky", 7)
        SimpleWorker([rq.queue], connection=rq.redis).work(burst=True)
        assert flaky.calls == [7, 7, 7]  # the first try and two retries

        status, failed = await gw.api("GET", "/admin/jobs/failed")
        assert status == 200
        [job] = failed["items"]
        assert job["name"] == "test.flaky" and job["arg"] == 7
        assert job["id"].startswith("test-flaky-7-")
        assert "RuntimeError: provider for 7 is down" in job["error"]

        _, agent_token = await gw.user("agent7@example.org")
        status, body = await gw.api("GET", "/admin/jobs/failed", token=agent_token)
        assert status == 403, body
        status, body = await gw.api("POST", f"/admin/jobs/failed/{job['id']}/requeue", token=agent_token)
        assert status == 403, body

        flaky.failing = False
        status, body = await gw.api("POST", f"/admin/jobs/failed/{job['id']}/requeue")
        assert status == 200 and body == {"id": job["id"], "requeued": True}
        SimpleWorker([rq.queue], connection=rq.redis).work(burst=True)
        assert flaky.calls == [7, 7, 7, 7]
        status, failed = await gw.api("GET", "/admin/jobs/failed")
        assert failed["items"] == []

        status, body = await gw.api("POST", f"/admin/jobs/failed/{job['id']}/requeue")
        assert status == 404 and body["error"]["code"] == "not_found"
        status, body = await gw.api("POST", "/admin/jobs/failed/no%20such/requeue")
        assert status == 400
    finally:
        install(None)
        runtime.stop()
        await gw.close()


async def test_without_redis_the_failed_list_is_empty_and_health_says_embedded(gateway):
    status, failed = await gateway.api("GET", "/admin/jobs/failed")
    assert status == 200 and failed["items"] == []
    async with gateway.http.get(f"{gateway.base_url}/healthz") as resp:
        assert resp.status == 200
        assert await resp.json() == {
            "status": "ok",
            "database": "sqlite",
            "jobs": "in-process",
            "events": "in-process",
        }
    async with gateway.http.get(f"{gateway.base_url}/readyz") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ready", "checks": {"database": "ok"}}


async def test_readyz_names_redis_when_it_is_down(tmp_path: Path):
    from tests.services import free_port

    gw = await start_gateway(tmp_path, settings={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    try:
        async with gw.http.get(f"{gw.base_url}/readyz") as resp:
            assert resp.status == 503
            body = await resp.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["redis"].startswith("error: ")
        # A reply is still stored (the sweeper sends it once Redis is back), not reported as an error.
        status, message = await gw.api("POST", "/conversations/1/messages", json_body={"text": "Still here"})
        assert status == 201 and message["status"] == "queued"
    finally:
        await gw.close()


async def test_metrics_need_the_token_when_one_is_set_and_count_streams(tmp_path: Path):
    gw = await start_gateway(tmp_path, settings={"metrics_token": "scrape-me"})
    try:
        async with gw.http.get(f"{gw.base_url}/metrics") as resp:
            assert resp.status == 401
        async with gw.http.get(f"{gw.base_url}/metrics", headers={"Authorization": "Bearer nope"}) as resp:
            assert resp.status == 401

        stream = await gw.stream()
        await stream.ready()
        loop = await gw.loopback()
        loop.failures.append(PermanentChannelError(Reason.INVALID_RECIPIENT, "no such number"))
        status, message = await gw.api("POST", "/conversations/1/messages", json_body={"text": "Hello?"})
        assert status == 201
        failed = await stream.next(lambda e: e["type"] == "message.updated")
        assert failed["data"]["message"]["status"] == "failed"
        async with gw.http.get(
            f"{gw.base_url}/metrics", headers={"Authorization": "Bearer scrape-me"}
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            text = await resp.text()
        # The demo seeds one inbound message; the embedded mode has no RQ queue to report.
        assert 'switchboard_messages{channel="loopback",direction="in",status="received"} 1.0' in text
        assert 'switchboard_messages{channel="loopback",direction="out",status="failed"} 1.0' in text
        assert 'switchboard_send_refusals{channel="loopback",reason="invalid_recipient"} 1.0' in text
        assert "switchboard_websocket_clients 1.0" in text
        assert "switchboard_queue_jobs" not in text
    finally:
        await gw.close()


def test_worker_refuses_to_start_without_redis(tmp_path: Path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "SWITCHBOARD_REDIS_URL"}
    env["SWITCHBOARD_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "needs SWITCHBOARD_REDIS_URL" in result.stderr
