"""Per-request access to the container and the signed-in user."""

from __future__ import annotations

from aiohttp import web

from gateway.api.errors import ApiError
from gateway.container import Container
from inbox import tables as t

CONTAINER = web.AppKey("container", Container)
USER = web.RequestKey("user", t.User)
PUBLIC_PATHS = web.AppKey("public_paths", frozenset)
WEB_SESSION = web.RequestKey("web_session", t.WebSession)  # set when signed in by cookie


def container_of(request: web.Request) -> Container:
    return request.app[CONTAINER]


def user_of(request: web.Request) -> t.User:
    return request[USER]  # set by the auth middleware for every non-public /api/v1 route


def path_id(request: web.Request, name: str = "id") -> int:
    raw = request.match_info[name]
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_id", f"{name} must be an integer, not {raw!r}") from None
    if value < 1 or value > 2**62:
        raise ApiError(400, "bad_id", f"{name} is out of range")
    return value
