"""``/webhooks/{kind}/{channel_id}``: handed to the channel's adapter, which verifies before parsing.

An adapter that receives webhooks implements ``WebhookReceiver``; it must store (through its sink)
before answering 2xx, so an acknowledged message is never lost.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from aiohttp import web

from gateway.adapters import UnknownChannelError
from gateway.api.context import container_of
from gateway.api.errors import ApiError


@runtime_checkable
class WebhookReceiver(Protocol):
    async def handle_webhook(self, request: web.Request) -> web.StreamResponse: ...


async def webhook(request: web.Request) -> web.StreamResponse:
    kind = request.match_info["kind"]
    raw_id = request.match_info["channel_id"]
    if not (raw_id.isascii() and raw_id.isdigit()):  # "²".isdigit() is true, int("²") fails
        raise ApiError(404, "not_found", f"no channel {raw_id!r}")
    try:
        adapter = await container_of(request).adapters.get(int(raw_id))
    except UnknownChannelError:
        raise ApiError(404, "not_found", f"no channel {raw_id}") from None
    if adapter.kind != kind or not isinstance(adapter, WebhookReceiver):
        raise ApiError(404, "not_found", f"channel {raw_id} is not a {kind} channel that takes webhooks")
    return await adapter.handle_webhook(request)


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", "/webhooks/{kind}/{channel_id}", webhook)
