"""Signing in to the web inbox (email + password → session cookie), signing out, and presence."""

from __future__ import annotations

import asyncio
import functools
import secrets
from datetime import timedelta
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import delete, select

from gateway.api.auth import SESSION_COOKIE, same_origin
from gateway.api.context import WEB_SESSION, container_of, user_of
from gateway.api.errors import ApiError
from gateway.api.spec import ApiRoutes
from gateway.presence import set_availability
from inbox import tables as t
from inbox.auth import hash_password, token_digest, verify_password
from inbox.i18n import Language, user_language
from inbox.views import UserView

api = ApiRoutes()

SESSION_LIFETIME = timedelta(days=7)


@functools.cache
def _dummy_hash() -> str:
    """Verified when the email is unknown, so a wrong email takes as long as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))


class SignIn(BaseModel):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class SessionView(BaseModel):
    user: UserView
    csrf_token: str | None  # send as X-CSRF-Token on every state-changing call; None for bearer callers
    language: str  # the pages' language: the user's own choice, else the account's


class MePatch(BaseModel):
    availability: Literal["online", "away", "offline"] | None = None
    language: Language | None = None  # null: follow the account's language


async def _session_view(request: web.Request, user: t.User, view: UserView, csrf: str | None) -> SessionView:
    async with container_of(request).db.read() as session:
        language = await user_language(session, user)
    return SessionView(user=view, csrf_token=csrf, language=language)


async def _set_presence(request: web.Request, user_id: int, availability: str) -> UserView:
    return await set_availability(container_of(request), user_id, availability)


def _cookie_secure(request: web.Request) -> bool:
    return request.secure or container_of(request).settings.effective_public_url().startswith("https:")


@api.route(
    "POST",
    "/auth/sign-in",
    summary="Sign in with email and password; sets the session cookie and returns the CSRF token",
    body=SignIn,
    response=SessionView,
    public=True,
)
async def sign_in(request: web.Request, body: SignIn) -> web.Response:
    if not same_origin(request):
        raise ApiError(403, "bad_origin", "sign in from this site's own page")
    c = container_of(request)
    email = body.email.strip().lower()
    # Password guessing: after too many failures for one email or from one address, wait.
    failures = c.sign_ins
    keys = (f"email:{email}", f"ip:{request.remote or '?'}")
    waits = [w for w in [await failures.blocked_for(k) for k in keys] if w is not None]
    if waits:
        retry = int(max(waits)) + 1
        raise ApiError(
            429,
            "too_many_attempts",
            f"too many failed sign-ins; try again in {retry} s",
            {"retry_after": retry},
        )
    async with c.db.read() as session:
        user = await session.scalar(select(t.User).where(t.User.email == email))
    password_hash = (
        user.password_hash
        if user is not None and user.password_hash
        else await asyncio.to_thread(_dummy_hash)
    )
    # argon2 takes long by design (0.1 to 1 s): off the event loop, so other requests keep flowing.
    ok = await asyncio.to_thread(verify_password, password_hash, body.password)
    if user is None or not user.password_hash or not ok:
        for key in keys:
            await failures.hit(key)
        raise ApiError(401, "invalid_credentials", "the email or the password is wrong")
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = c.clock()
    async with c.db.write() as session:
        # Expired sessions of this user are cleared on the way (keeps the table small without a job).
        await session.execute(
            delete(t.WebSession).where(t.WebSession.user_id == user.id, t.WebSession.expires_at <= now)
        )
        session.add(
            t.WebSession(
                user_id=user.id,
                token_hash=token_digest(token),
                csrf_token=csrf,
                created_at=now,
                expires_at=now + SESSION_LIFETIME,
            )
        )
    view = await _session_view(request, user, await _set_presence(request, user.id, "online"), csrf)
    response = web.json_response(text=view.model_dump_json())
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=_cookie_secure(request),
    )
    return response


@api.route(
    "GET", "/auth/session", summary="Who is signed in, and the session's CSRF token", response=SessionView
)
async def current_session(request: web.Request) -> SessionView:
    web_session = request.get(WEB_SESSION)
    user = user_of(request)
    return await _session_view(
        request, user, UserView.of(user), web_session.csrf_token if web_session else None
    )


@api.route("POST", "/auth/sign-out", summary="End this browser session and clear its cookie")
async def sign_out(request: web.Request) -> web.Response:
    web_session = request.get(WEB_SESSION)
    user = user_of(request)
    if web_session is not None:
        async with container_of(request).db.write() as session:
            await session.execute(delete(t.WebSession).where(t.WebSession.id == web_session.id))
            others = await session.scalar(
                select(t.WebSession.id).where(t.WebSession.user_id == user.id).limit(1)
            )
        if others is None:
            await _set_presence(request, user.id, "offline")
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@api.route(
    "PATCH",
    "/users/me",
    summary="Set your own presence (online, away, offline; others see it live) and your pages' language",
    body=MePatch,
    response=UserView,
)
async def patch_me(request: web.Request, body: MePatch) -> UserView:
    given = body.model_fields_set
    if "availability" in given and body.availability is None:
        raise ApiError(
            422,
            "validation_error",
            "availability: must be online, away or offline",
            [{"field": "availability", "problem": "null"}],
        )
    if not given & {"availability", "language"}:
        raise ApiError(
            422,
            "validation_error",
            "availability or language: give at least one",
            [{"field": "availability", "problem": "missing"}, {"field": "language", "problem": "missing"}],
        )
    user = user_of(request)
    view = UserView.of(user)
    if "language" in given:
        async with container_of(request).db.write() as session:
            row = await session.get(t.User, user.id)
            assert row is not None
            row.language = body.language
            view = UserView.of(row)
    if body.availability is not None:
        view = await _set_presence(request, user.id, body.availability)
    return view
