"""The HTTP side of outgoing webhooks: the client that posts, and the guard against request forgery.

Targets must be http(s) on public addresses: private, loopback, link-local, multicast and reserved
addresses are refused when a subscription is saved and again when each request connects (the name is
resolved once and the connection made to the checked address, so DNS cannot switch it in between),
unless ``SWITCHBOARD_WEBHOOKS_ALLOW_PRIVATE`` is set. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from inbox.webhook_sender import Answer

_READ_LIMIT = 4096  # bytes of the answer read (an excerpt is kept)


class TargetRefused(ValueError):
    """The URL may not be called; the message says why (it names no secret)."""


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id is not part of the address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def check_url_shape(url: str) -> URL:
    """http(s), a host, no credentials in it. Raises ``TargetRefused``."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise TargetRefused(f"not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise TargetRefused("only http and https URLs can be called")
    if not parsed.host:
        raise TargetRefused("the URL has no host")
    if parsed.user or parsed.password:
        raise TargetRefused("put no credentials in the URL; verify the signature instead")
    return parsed


async def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse a URL that is not http(s) or whose host is (or resolves to) a non-public address."""
    parsed = check_url_shape(url)
    if allow_private:
        return
    host = parsed.host
    assert host is not None
    literal = _ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, parsed.port or 443, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise TargetRefused(f"{host} does not resolve ({exc.strerror or exc})") from None
        addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        if not is_public(address):
            raise TargetRefused(
                f"{host} is a private, loopback or link-local address ({address}); "
                "set SWITCHBOARD_WEBHOOKS_ALLOW_PRIVATE=1 to allow such targets"
            )


class PublicOnlyResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver and drops non-public addresses (none left: refused)."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [r for r in found if is_public(r["host"])]
        if not public:
            raise OSError(f"{host} resolves only to private, loopback or link-local addresses")
        return public

    async def close(self) -> None:
        await self._inner.close()


class HttpPoster:
    """The ``Poster`` over one aiohttp session (opened by ``start``, so building does no I/O)."""

    def __init__(self, *, timeout: float, allow_private: bool) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._allow_private = allow_private
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            resolver: Any = None if self._allow_private else PublicOnlyResolver()
            connector = aiohttp.TCPConnector(resolver=resolver, limit=100, limit_per_host=4)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        if self._session is None:
            await self.start()
        assert self._session is not None
        try:
            parsed = check_url_shape(url)
            literal = _ip_literal(parsed.host or "")
            # aiohttp does not resolve an IP literal, so the resolver's check never sees it.
            if not self._allow_private and literal is not None and not is_public(literal):
                raise TargetRefused(f"{literal} is not a public address")
            async with self._session.post(
                url, data=body, headers=dict(headers), allow_redirects=False
            ) as resp:
                raw = await resp.content.read(_READ_LIMIT)
                return Answer(
                    status=resp.status,
                    retry_after=resp.headers.get("Retry-After"),
                    body=raw.decode("utf-8", errors="replace"),
                )
        except TargetRefused as exc:
            return Answer(status=None, error=f"refused: {exc}")
        except TimeoutError:
            return Answer(status=None, error=f"timed out after {self._timeout.total:g} s")
        except aiohttp.ClientConnectorError as exc:  # its str() drops the cause (our resolver's refusal)
            return Answer(status=None, error=f"cannot connect to {exc.host}:{exc.port}: {exc.os_error}")
        except aiohttp.ClientError as exc:
            return Answer(status=None, error=f"{type(exc).__name__}: {exc}")
        except OSError as exc:
            return Answer(status=None, error=f"{type(exc).__name__}: {exc}")
