"""Satisfaction surveys: an inbox's settings (admins), a conversation's surveys, the CSAT report."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.admin import require_admin
from gateway.api.context import container_of, path_id, user_of
from gateway.api.conversations import visible_conversation
from gateway.api.errors import field_error, forbidden, not_found
from gateway.api.spec import ApiRoutes
from inbox import tables as t
from inbox.access import is_admin, visible_inbox_ids
from inbox.csat import CsatReport, SurveyView, csat_report, surveys_of

api = ApiRoutes()


class CsatSettings(BaseModel):
    enabled: bool = False
    delay_seconds: int = Field(default=0, ge=0, le=7 * 24 * 3600)
    question: str | None = Field(
        default=None, max_length=1000
    )  # None: the default, in the account's language
    scale: Literal["numbers", "emoji"] = "numbers"
    follow_up: bool = False
    template_name: str | None = Field(default=None, max_length=512)  # sent outside a service window
    template_language: str | None = Field(default=None, min_length=2, max_length=16)

    @classmethod
    def of(cls, row: t.CsatSetting | None) -> CsatSettings:
        if row is None:
            return cls()
        return cls(
            enabled=row.enabled,
            delay_seconds=row.delay_seconds,
            question=row.question,
            scale="emoji" if row.scale == "emoji" else "numbers",
            follow_up=row.follow_up,
            template_name=row.template_name,
            template_language=row.template_language,
        )


class SurveyList(BaseModel):
    items: list[SurveyView]


class CsatQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date | None = Field(default=None, alias="from")
    to: date | None = None
    inbox_id: int | None = Field(default=None, ge=1, le=2**62)
    agent_id: int | None = Field(default=None, ge=1, le=2**62)


async def _inbox(request: web.Request, account_id: int) -> t.InboxRow:
    inbox_id = path_id(request)
    async with container_of(request).db.read() as session:
        inbox = await session.get(t.InboxRow, inbox_id)
    if inbox is None or inbox.account_id != account_id:
        raise not_found("inbox", inbox_id)
    return inbox


@api.route(
    "GET", "/inboxes/{id}/csat", summary="The inbox's satisfaction survey settings", response=CsatSettings
)
async def get_settings(request: web.Request) -> CsatSettings:
    user = require_admin(request)
    inbox = await _inbox(request, user.account_id)
    async with container_of(request).db.read() as session:
        return CsatSettings.of(await session.get(t.CsatSetting, inbox.id))


@api.route(
    "PUT",
    "/inboxes/{id}/csat",
    summary="Set the survey sent after resolution: on/off, delay, question, scale, follow-up, template",
    body=CsatSettings,
    response=CsatSettings,
)
async def put_settings(request: web.Request, body: CsatSettings) -> CsatSettings:
    user = require_admin(request)
    inbox = await _inbox(request, user.account_id)
    if body.template_language and not body.template_name:
        raise field_error("template_name", "give the template's name with its language")
    c = container_of(request)
    async with c.db.write() as session:
        row = await session.get(t.CsatSetting, inbox.id)
        if row is None:
            row = t.CsatSetting(inbox_id=inbox.id, account_id=user.account_id)
            session.add(row)
        row.enabled = body.enabled
        row.delay_seconds = body.delay_seconds
        row.question = body.question.strip() if body.question and body.question.strip() else None
        row.scale = body.scale
        row.follow_up = body.follow_up
        row.template_name = body.template_name
        row.template_language = body.template_language
        row.updated_at = c.clock()
        await session.flush()
        return CsatSettings.of(row)


@api.route(
    "GET",
    "/conversations/{id}/csat",
    summary="The conversation's satisfaction surveys: sent or not (why), rating, comment",
    response=SurveyList,
)
async def conversation_surveys(request: web.Request) -> SurveyList:
    async with container_of(request).db.read() as session:
        conversation = await visible_conversation(session, user_of(request), path_id(request))
        return SurveyList(items=await surveys_of(session, conversation.id))


@api.route(
    "GET",
    "/reports/csat",
    summary="Satisfaction of conversations resolved in [from, to]: median, distribution, per agent",
    query=CsatQuery,
    response=CsatReport,
)
async def report(request: web.Request, query: CsatQuery) -> CsatReport:
    user = user_of(request)
    agent_id = query.agent_id
    if not is_admin(user):
        if agent_id is not None and agent_id != user.id:
            raise forbidden("agents see only their own numbers")
        agent_id = user.id
    if query.from_ and query.to and query.from_ > query.to:
        raise field_error("from", f"{query.from_} is after to ({query.to})")
    async with container_of(request).db.read() as session:
        account = await session.get(t.Account, user.account_id)
        assert account is not None
        zone = ZoneInfo(account.timezone)
        inbox_ids = await visible_inbox_ids(session, user)
        if query.inbox_id is not None:
            if query.inbox_id not in inbox_ids:
                raise field_error("inbox_id", f"no inbox {query.inbox_id} you can see")
            inbox_ids = {query.inbox_id}
        since = datetime.combine(query.from_, time(), zone) if query.from_ else None
        until = datetime.combine(query.to + timedelta(days=1), time(), zone) if query.to else None
        return await csat_report(
            session, user.account_id, since=since, until=until, inbox_ids=inbox_ids, agent_id=agent_id
        )
