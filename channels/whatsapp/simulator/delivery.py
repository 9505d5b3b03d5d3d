"""Signed webhook delivery to the business's callback URL, retried with back-off on anything but 200.

Meta retries non-200 answers and timeouts with growing back-off (protocols.md §1, "Retries and
duplicates"); the schedule here is configurable so tests run it in milliseconds. A delivery can be
sent twice on purpose to exercise the receiver's de-duplication.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from channels.whatsapp.signature import HEADER, sign
from channels.whatsapp.simulator.model import Business

_LOGGER = logging.getLogger(__name__)

DEFAULT_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


@dataclass
class Delivery:
    """One webhook POST (and its retries). ``done`` is set when it was acknowledged or given up."""

    url: str
    body: bytes
    duplicate: bool = False
    inbound_wamid: str | None = None  # the contact's message this webhook carries, if any
    attempts: list[int | str] = field(default_factory=list)  # HTTP status, or the error's name
    acknowledged: bool = False
    started: float = field(default_factory=time.monotonic)
    latency: float | None = None  # seconds from submit to the acknowledging 200
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


class WebhookSender:
    def __init__(
        self,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        concurrency: int = 64,
        timeout: float = 10.0,
        on_acknowledged: Callable[[Delivery], None] | None = None,
    ) -> None:
        self.retry_delays = tuple(retry_delays)
        self.log: list[Delivery] = []  # every delivery, newest last (bounded)
        self._limit = asyncio.Semaphore(concurrency)
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_acknowledged = on_acknowledged

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        self._session = None

    def submit(
        self,
        business: Business,
        payload: dict[str, Any],
        *,
        duplicate: bool = False,
        inbound_wamid: str | None = None,
    ) -> Delivery:
        """Queue one signed POST of ``payload`` to the business's webhook URL."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        delivery = Delivery(business.webhook_url, body, duplicate, inbound_wamid)
        self.log.append(delivery)
        del self.log[:-5000]
        task = asyncio.create_task(self._run(delivery, business.app_secret))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return delivery

    async def verify(self, url: str, verify_token: str, challenge: str) -> bool:
        """Meta's subscription handshake: GET with hub.* parameters, expecting the challenge back."""
        assert self._session is not None, "webhook sender not started"
        params = {"hub.mode": "subscribe", "hub.verify_token": verify_token, "hub.challenge": challenge}
        try:
            async with self._session.get(url, params=params) as resp:
                return resp.status == 200 and (await resp.text()) == challenge
        except (TimeoutError, aiohttp.ClientError):
            return False

    async def _run(self, delivery: Delivery, secret: str) -> None:
        try:
            for attempt in range(len(self.retry_delays) + 1):
                if await self._post(delivery, secret):
                    delivery.acknowledged = True
                    delivery.latency = time.monotonic() - delivery.started
                    if self._on_acknowledged is not None:
                        self._on_acknowledged(delivery)
                    if delivery.duplicate:
                        await self._post(delivery, secret)  # the same bytes again, as Meta sometimes does
                    return
                if attempt < len(self.retry_delays):
                    await asyncio.sleep(self.retry_delays[attempt])
            _LOGGER.warning("webhook to %s given up after %d attempts", delivery.url, len(delivery.attempts))
        finally:
            delivery.done.set()

    async def _post(self, delivery: Delivery, secret: str) -> bool:
        assert self._session is not None, "webhook sender not started"
        headers = {"Content-Type": "application/json", HEADER: sign(secret, delivery.body)}
        async with self._limit:
            try:
                async with self._session.post(delivery.url, data=delivery.body, headers=headers) as resp:
                    await resp.read()
                    delivery.attempts.append(resp.status)
                    return resp.status == 200
            except (TimeoutError, aiohttp.ClientError) as exc:
                delivery.attempts.append(type(exc).__name__)
                return False
