"""The aiohttp application: the REST API, the live stream, webhooks and the web pages."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from sqlalchemy import text

from gateway.api import (
    admin,
    audiences,
    automations,
    bots,
    broadcasts,
    contacts,
    conversations,
    csat,
    events,
    jobs,
    notifications,
    policies,
    profile,
    reports,
    routing,
    segmentations,
    tickets,
    uploads,
    web_session,
    webhook_subscriptions,
    worklist,
)
from gateway.api.auth import auth_middleware
from gateway.api.context import CONTAINER, PUBLIC_PATHS
from gateway.api.errors import error_middleware
from gateway.api.events import add_routes as add_event_webhook_routes
from gateway.api.spec import openapi_document, register
from gateway.container import Container
from gateway.metrics import CONTENT_TYPE
from gateway.simulator import mount_simulator
from gateway.stream import add_routes as add_stream_routes
from gateway.webchat import agent_api as webchat_api
from gateway.webchat.endpoints import add_routes as add_webchat_routes
from gateway.webhooks import add_routes as add_webhook_routes

API_PREFIX = "/api/v1"
STATIC = Path(__file__).parent / "static"
OPENAPI = web.AppKey("openapi", dict)


def make_app(container: Container, *, manage_container: bool = True) -> web.Application:
    """Build the app. With ``manage_container`` the app starts and stops the container with itself."""
    app = web.Application(middlewares=[error_middleware, auth_middleware], client_max_size=32 * 1024 * 1024)
    app[CONTAINER] = container
    ops = register(
        app,
        [
            admin.api,
            conversations.api,
            contacts.api,
            webchat_api.api,
            routing.api,
            bots.api,
            web_session.api,
            worklist.api,
            policies.api,
            jobs.api,
            broadcasts.api,
            audiences.api,
            reports.api,
            tickets.api,
            notifications.api,
            profile.api,
            uploads.api,
            webhook_subscriptions.api,
            csat.api,
            events.api,
            segmentations.api,
            automations.api,
        ],
        API_PREFIX,
    )
    app[OPENAPI] = openapi_document(ops, API_PREFIX)
    app.router.add_get(f"{API_PREFIX}/openapi.json", _openapi)
    add_stream_routes(app, API_PREFIX)
    app[PUBLIC_PATHS] = frozenset(
        {f"{API_PREFIX}/openapi.json"} | {API_PREFIX + op.path for op in ops if op.public}
    )
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    add_event_webhook_routes(app)  # before the channels' /webhooks/{kind}/{channel_id}
    add_webhook_routes(app)
    add_webchat_routes(app)
    if container.settings.simulator:
        mount_simulator(app, container)
    if manage_container:
        app.cleanup_ctx.append(_lifecycle)
    notifications.add_runtime(app)  # after the container has started
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    container = app[CONTAINER]
    await container.start()
    yield
    await container.stop()


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


# The web inbox renders everything as text; the policy is the second fence should a bug slip through.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)


async def _healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers. Says what it runs on, nothing secret."""
    c = request.app[CONTAINER]
    return web.json_response(
        {
            "status": "ok",
            "database": "sqlite" if c.db.is_sqlite else "postgresql",
            "jobs": "rq" if c.rq is not None else "in-process",
            "events": "redis" if c.pokes is not None else "in-process",
        }
    )


async def _readyz(request: web.Request) -> web.Response:
    """Readiness: the database answers, and Redis when configured. 503 naming what failed."""
    c = request.app[CONTAINER]
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(3):
            async with c.db.read() as session:
                await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    if c.rq is not None:
        rq = c.rq
        try:
            async with asyncio.timeout(3):
                await asyncio.to_thread(rq.ping)
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return web.json_response(
        {"status": "ready" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


async def _metrics(request: web.Request) -> web.Response:
    """Prometheus text format (gateway/metrics.py says which figures are per process)."""
    c = request.app[CONTAINER]
    expected = c.settings.metrics_token
    if expected:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return web.Response(status=401, text="metrics need the bearer token\n")
    await c.metrics.refresh(c.db, c.rq)
    return web.Response(body=c.metrics.render(), headers={"Content-Type": CONTENT_TYPE})
