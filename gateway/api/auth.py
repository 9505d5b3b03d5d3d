"""Bearer-token authentication for every ``/api/v1`` call except the public ones."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy import select

from gateway.api.context import PUBLIC_PATHS, USER, container_of
from gateway.api.errors import error_response
from inbox import tables as t
from inbox.auth import token_digest


def _token_from(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    # Browsers cannot set headers on a websocket handshake.
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return request.query.get("access_token") or None
    return None


async def authenticate(request: web.Request) -> t.User | None:
    token = _token_from(request)
    if token is None:
        return None
    async with container_of(request).db.read() as session:
        user: t.User | None = await session.scalar(
            select(t.User)
            .join(t.ApiToken, t.ApiToken.user_id == t.User.id)
            .where(t.ApiToken.token_hash == token_digest(token))
        )
        return user


@web.middleware
async def auth_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if not request.path.startswith("/api/v1/") or request.path in request.app[PUBLIC_PATHS]:
        return await handler(request)
    if _token_from(request) is None:
        return error_response(401, "unauthenticated", "missing bearer token (Authorization: Bearer <token>)")
    user = await authenticate(request)
    if user is None:
        return error_response(401, "unauthenticated", "the bearer token is not valid")
    request[USER] = user
    return await handler(request)
