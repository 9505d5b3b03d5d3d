"""Authentication for every ``/api/v1`` call except the public ones.

Two ways in: a bearer token (scripts, integrations; unchanged) or the web inbox's session cookie. A
cookie-authenticated call that changes state must carry the session's CSRF token in ``X-CSRF-Token``
(a cross-site form or fetch cannot read it), and a cookie-authenticated websocket must come from our
own origin (browsers send cookies on cross-site websocket handshakes of the same site).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import select

from gateway.api.context import PUBLIC_PATHS, USER, WEB_SESSION, container_of
from gateway.api.errors import error_response
from inbox import tables as t
from inbox.auth import token_digest

SESSION_COOKIE = "sb_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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


async def session_of(request: web.Request) -> tuple[t.User, t.WebSession] | None:
    """The user and web session behind the request's session cookie, if it is valid and not expired."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    c = container_of(request)
    async with c.db.read() as session:
        row = (
            await session.execute(
                select(t.User, t.WebSession)
                .join(t.WebSession, t.WebSession.user_id == t.User.id)
                .where(t.WebSession.token_hash == token_digest(cookie))
            )
        ).first()
    if row is None or row[1].expires_at <= c.clock():
        return None
    return row[0], row[1]


def same_origin(request: web.Request) -> bool:
    """True when the request's Origin header (if any) names this server."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser cross-origin request (curl, same-origin navigations)
    parts = urlsplit(origin)
    public = urlsplit(container_of(request).settings.effective_public_url())
    return parts.netloc == request.host or (parts.scheme, parts.netloc) == (public.scheme, public.netloc)


@web.middleware
async def auth_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if not request.path.startswith("/api/v1/") or request.path in request.app[PUBLIC_PATHS]:
        return await handler(request)
    if _token_from(request) is not None:
        user = await authenticate(request)
        if user is None:
            return error_response(401, "unauthenticated", "the bearer token is not valid")
        request[USER] = user
        return await handler(request)
    if SESSION_COOKIE in request.cookies:
        found = await session_of(request)
        if found is None:
            return error_response(401, "unauthenticated", "your session has ended; sign in again")
        user, web_session = found
        if request.method not in SAFE_METHODS and not hmac.compare_digest(
            request.headers.get(CSRF_HEADER, "").encode(), web_session.csrf_token.encode()
        ):
            return error_response(
                403, "csrf_failed", f"a signed-in browser request that changes data needs {CSRF_HEADER}"
            )
        if request.headers.get("Upgrade", "").lower() == "websocket" and not same_origin(request):
            return error_response(403, "bad_origin", "the stream only accepts this site's own pages")
        request[USER] = user
        request[WEB_SESSION] = web_session
        return await handler(request)
    return error_response(401, "unauthenticated", "missing bearer token (Authorization: Bearer <token>)")
