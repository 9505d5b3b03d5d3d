"""Account set-up: inboxes, channels, users, teams and the account itself."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.context import container_of, path_id, user_of
from gateway.api.errors import ApiError, forbidden, not_found
from gateway.api.spec import ApiRoutes, Page
from inbox import tables as t
from inbox.access import is_admin, visible_inbox_ids
from inbox.auth import hash_password, new_token, token_digest
from inbox.i18n import Language
from inbox.identities import InvalidAddress, normalize_email
from inbox.model import ChannelKind, Role
from inbox.queries import list_by_id
from inbox.views import ChannelView, InboxView, TeamView, UserView

api = ApiRoutes()


class ListQuery(BaseModel):
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=200)


def require_admin(request: web.Request) -> t.User:
    user = user_of(request)
    if not is_admin(user):
        raise forbidden("only admins and super admins may do this")
    return user


async def check_user_ids(session: AsyncSession, account_id: int, ids: list[int], field: str) -> None:
    if not ids:
        return
    found = set(
        await session.scalars(select(t.User.id).where(t.User.account_id == account_id, t.User.id.in_(ids)))
    )
    missing = sorted(set(ids) - found)
    if missing:
        raise ApiError(
            422,
            "validation_error",
            f"{field}: no such users: {missing}",
            [{"field": field, "problem": "unknown"}],
        )


async def check_team(
    session: AsyncSession, account_id: int, team_id: int | None, field: str = "team_id"
) -> None:
    if team_id is None:
        return
    team = await session.get(t.Team, team_id)
    if team is None or team.account_id != account_id:
        raise ApiError(
            422,
            "validation_error",
            f"{field}: team {team_id} does not exist",
            [{"field": field, "problem": "unknown"}],
        )


# -- inboxes ---------------------------------------------------------------------------------------


class InboxCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    team_id: int | None = None
    member_ids: list[int] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict)


class InboxPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    team_id: int | None = None
    member_ids: list[int] | None = None
    settings: dict[str, Any] | None = None


async def inbox_view(session: AsyncSession, inbox: t.InboxRow) -> InboxView:
    members = await session.scalars(select(t.InboxMember.user_id).where(t.InboxMember.inbox_id == inbox.id))
    return InboxView(
        id=inbox.id,
        name=inbox.name,
        team_id=inbox.team_id,
        member_ids=sorted(members),
        settings=dict(inbox.settings or {}),
    )


@api.route("GET", "/inboxes", summary="Inboxes you may see", response=Page[InboxView])
async def list_inboxes(request: web.Request) -> Page[InboxView]:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        ids = await visible_inbox_ids(session, user)
        rows = await session.scalars(select(t.InboxRow).where(t.InboxRow.id.in_(ids)).order_by(t.InboxRow.id))
        return Page[InboxView](items=[await inbox_view(session, r) for r in rows])


@api.route(
    "POST", "/inboxes", summary="Create an inbox (admins)", body=InboxCreate, response=InboxView, status=201
)
async def create_inbox(request: web.Request, body: InboxCreate) -> InboxView:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        await check_team(session, user.account_id, body.team_id)
        await check_user_ids(session, user.account_id, body.member_ids, "member_ids")
        inbox = t.InboxRow(
            account_id=user.account_id,
            name=body.name,
            team_id=body.team_id,
            settings=body.settings,
            created_at=c.clock(),
        )
        session.add(inbox)
        await session.flush()
        session.add_all([t.InboxMember(inbox_id=inbox.id, user_id=u) for u in set(body.member_ids)])
        await session.flush()
        return await inbox_view(session, inbox)


@api.route("PATCH", "/inboxes/{id}", summary="Change an inbox (admins)", body=InboxPatch, response=InboxView)
async def patch_inbox(request: web.Request, body: InboxPatch) -> InboxView:
    user = require_admin(request)
    inbox_id = path_id(request)
    async with container_of(request).db.write() as session:
        inbox = await session.get(t.InboxRow, inbox_id)
        if inbox is None or inbox.account_id != user.account_id:
            raise not_found("inbox", inbox_id)
        if body.name is not None:
            inbox.name = body.name
        if "team_id" in body.model_fields_set:
            await check_team(session, user.account_id, body.team_id)
            inbox.team_id = body.team_id
        if body.settings is not None:
            inbox.settings = body.settings
        if body.member_ids is not None:
            await check_user_ids(session, user.account_id, body.member_ids, "member_ids")
            await session.execute(delete(t.InboxMember).where(t.InboxMember.inbox_id == inbox.id))
            session.add_all([t.InboxMember(inbox_id=inbox.id, user_id=u) for u in set(body.member_ids)])
        await session.flush()
        return await inbox_view(session, inbox)


# -- channels --------------------------------------------------------------------------------------


class ChannelCreate(BaseModel):
    inbox_id: int
    kind: ChannelKind
    name: str = Field(min_length=1, max_length=200)
    config: dict[str, Any] = Field(default_factory=dict)


class ChannelCreated(ChannelView):
    webhook_url: str | None


def webhook_url(public_url: str, channel: t.Channel) -> str | None:
    if channel.kind in (ChannelKind.WHATSAPP, ChannelKind.TELEGRAM):
        return f"{public_url}/webhooks/{channel.kind}/{channel.id}"
    return None


@api.route("GET", "/channels", summary="Channels of the inboxes you may see", response=Page[ChannelView])
async def list_channels(request: web.Request) -> Page[ChannelView]:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        ids = await visible_inbox_ids(session, user)
        rows = await session.scalars(
            select(t.Channel).where(t.Channel.inbox_id.in_(ids)).order_by(t.Channel.id)
        )
        return Page[ChannelView](items=[ChannelView.of(r, reveal_secrets=is_admin(user)) for r in rows])


@api.route(
    "POST",
    "/channels",
    summary="Attach a channel to an inbox (admins); returns webhook URL and secrets",
    body=ChannelCreate,
    response=ChannelCreated,
    status=201,
)
async def create_channel(request: web.Request, body: ChannelCreate) -> ChannelCreated:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        inbox = await session.get(t.InboxRow, body.inbox_id)
        if inbox is None or inbox.account_id != user.account_id:
            raise ApiError(
                422,
                "validation_error",
                f"inbox_id: inbox {body.inbox_id} does not exist",
                [{"field": "inbox_id", "problem": "unknown"}],
            )
        config = dict(body.config)
        config.setdefault("webhook_secret", secrets.token_urlsafe(32))
        channel = t.Channel(
            account_id=user.account_id,
            inbox_id=inbox.id,
            kind=body.kind,
            name=body.name,
            config=config,
            created_at=c.clock(),
        )
        session.add(channel)
        await session.flush()
        view = ChannelView.of(channel, reveal_secrets=True)
    await c.adapters.get(channel.id)  # start receiving at once
    return ChannelCreated(
        **view.model_dump(), webhook_url=webhook_url(c.settings.effective_public_url(), channel)
    )


# -- users -----------------------------------------------------------------------------------------


class UserCreate(BaseModel):
    email: str = Field(max_length=320)
    name: str | None = Field(default=None, max_length=200)
    role: Role = Role.AGENT
    password: str | None = Field(default=None, min_length=8, max_length=1024)
    inbox_ids: list[int] = Field(default_factory=list)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        try:
            return normalize_email(value)
        except InvalidAddress as exc:
            raise ValueError(str(exc)) from exc


class UserCreated(BaseModel):
    user: UserView
    token: str  # shown once; only its digest is stored


@api.route("GET", "/users", summary="Users of your account", query=ListQuery, response=Page[UserView])
async def list_users(request: web.Request, query: ListQuery) -> Page[UserView]:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        rows, cursor = await list_by_id(
            session,
            select(t.User).where(t.User.account_id == user.account_id),
            t.User.id,
            query.limit,
            query.cursor,
        )
        return Page[UserView](items=[UserView.of(u) for u in rows], next_cursor=cursor)


@api.route("GET", "/users/me", summary="The signed-in user", response=UserView)
async def me(request: web.Request) -> UserView:
    return UserView.of(user_of(request))


@api.route(
    "POST",
    "/users",
    summary="Create a user (admins); returns its API token once",
    body=UserCreate,
    response=UserCreated,
    status=201,
)
async def create_user(request: web.Request, body: UserCreate) -> UserCreated:
    actor = require_admin(request)
    if body.role == Role.SUPER_ADMIN and actor.role != Role.SUPER_ADMIN:
        raise forbidden("only a super admin may create another super admin")
    c = container_of(request)
    async with c.db.write() as session:
        created, token = await create_user_in(
            session,
            account_id=actor.account_id,
            email=body.email,
            name=body.name,
            role=body.role,
            password=body.password,
            now=c.clock(),
        )
        for inbox_id in set(body.inbox_ids):
            inbox = await session.get(t.InboxRow, inbox_id)
            if inbox is None or inbox.account_id != actor.account_id:
                raise ApiError(
                    422,
                    "validation_error",
                    f"inbox_ids: inbox {inbox_id} does not exist",
                    [{"field": "inbox_ids", "problem": "unknown"}],
                )
            session.add(t.InboxMember(inbox_id=inbox_id, user_id=created.id))
        return UserCreated(user=UserView.of(created), token=token)


async def create_user_in(
    session: AsyncSession,
    *,
    account_id: int,
    email: str,
    name: str | None,
    role: Role,
    password: str | None,
    now: datetime,
) -> tuple[t.User, str]:
    """Create a user and an API token; the one place users are made (API, CLI, demo)."""
    exists = await session.scalar(select(t.User.id).where(t.User.email == email))
    if exists is not None:
        raise ApiError(409, "email_taken", f"a user with email {email} already exists")
    user = t.User(
        account_id=account_id,
        email=email,
        name=name or email.split("@")[0],
        role=role,
        password_hash=hash_password(password) if password else None,
        availability="offline",
        created_at=now,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise ApiError(409, "email_taken", f"a user with email {email} already exists") from exc
    token = await issue_token(session, user.id, now)
    return user, token


async def issue_token(session: AsyncSession, user_id: int, now: datetime) -> str:
    token = new_token()
    session.add(t.ApiToken(user_id=user_id, token_hash=token_digest(token), created_at=now))
    await session.flush()
    return token


# -- teams -----------------------------------------------------------------------------------------


class TeamCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    member_ids: list[int] = Field(default_factory=list)


async def team_view(session: AsyncSession, team: t.Team) -> TeamView:
    members = await session.scalars(select(t.TeamMember.user_id).where(t.TeamMember.team_id == team.id))
    return TeamView(id=team.id, name=team.name, member_ids=sorted(members))


@api.route("GET", "/teams", summary="Teams of your account", response=Page[TeamView])
async def list_teams(request: web.Request) -> Page[TeamView]:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        rows = await session.scalars(
            select(t.Team).where(t.Team.account_id == user.account_id).order_by(t.Team.id)
        )
        return Page[TeamView](items=[await team_view(session, r) for r in rows])


@api.route("POST", "/teams", summary="Create a team (admins)", body=TeamCreate, response=TeamView, status=201)
async def create_team(request: web.Request, body: TeamCreate) -> TeamView:
    user = require_admin(request)
    c = container_of(request)
    async with c.db.write() as session:
        await check_user_ids(session, user.account_id, body.member_ids, "member_ids")
        team = t.Team(account_id=user.account_id, name=body.name, created_at=c.clock())
        session.add(team)
        await session.flush()
        session.add_all([t.TeamMember(team_id=team.id, user_id=u) for u in set(body.member_ids)])
        await session.flush()
        return await team_view(session, team)


# -- the account -----------------------------------------------------------------------------------


class AccountView(BaseModel):
    id: int
    name: str
    timezone: str
    included_conversations: int
    language: str  # server texts (alert mails, confirmations) and the default of its users' pages
    contact_limit: int | None = None  # the plan's contacts (None: no limit); past it no business sends


class AccountPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    included_conversations: int | None = Field(default=None, ge=0, le=100_000_000)
    language: Language | None = None
    contact_limit: int | None = Field(default=None, ge=0, le=100_000_000)  # an explicit null: no limit

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


def account_view(a: t.Account) -> AccountView:
    return AccountView(
        id=a.id,
        name=a.name,
        timezone=a.timezone,
        included_conversations=a.included_conversations,
        language=a.language,
        contact_limit=a.contact_limit,
    )


@api.route("GET", "/account", summary="Your account and plan", response=AccountView)
async def get_account(request: web.Request) -> AccountView:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        account = await session.get(t.Account, user.account_id)
        assert account is not None
        return account_view(account)


@api.route(
    "PATCH",
    "/account",
    summary="Change the account and plan (super admins)",
    body=AccountPatch,
    response=AccountView,
)
async def patch_account(request: web.Request, body: AccountPatch) -> AccountView:
    user = user_of(request)
    if user.role != Role.SUPER_ADMIN:
        raise forbidden("only super admins may change the account and its plan")
    async with container_of(request).db.write() as session:
        account = await session.get(t.Account, user.account_id)
        assert account is not None
        for field in ("name", "timezone", "included_conversations", "language"):
            value = getattr(body, field)
            if value is not None:
                setattr(account, field, value)
        if "contact_limit" in body.model_fields_set:
            account.contact_limit = body.contact_limit
        return account_view(account)
