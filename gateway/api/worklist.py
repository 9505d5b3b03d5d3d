"""Read endpoints the web inbox needs: unread counts, read markers, a contact's conversations,
attachment downloads, and canned responses."""

from __future__ import annotations

import mimetypes

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from gateway.api.admin import require_admin
from gateway.api.contacts import visible_contact
from gateway.api.context import container_of, path_id, user_of
from gateway.api.conversations import visible_conversation
from gateway.api.errors import ApiError, not_found
from gateway.api.spec import ApiRoutes, Page
from gateway.webchat.agent_api import send_read_receipt
from inbox import tables as t
from inbox.access import is_admin, visible_inbox_ids
from inbox.queries import labels_for
from inbox.worklist import ConversationListItem, UnreadCounts, enrich, mark_read, unread_counts

api = ApiRoutes()

# Shown inline by the browser; everything else downloads (an SVG or HTML file must never render on
# our origin, where it could run script with the agent's session).
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "audio/ogg", "audio/mpeg"})


@api.route(
    "GET",
    "/unread-counts",
    summary="Conversations with unread messages per inbox, team, and the Mine / Unassigned / All views",
    response=UnreadCounts,
)
async def get_unread_counts(request: web.Request) -> UnreadCounts:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        inbox_ids = await visible_inbox_ids(session, user)
        return await unread_counts(session, user.id, inbox_ids, hide_held=not is_admin(user))


class ReadMarker(BaseModel):
    conversation_id: int
    last_read_message_id: int
    unread_count: int
    up_to: int  # the contact's messages the contact now sees as read (read receipt)


class ReadBody(BaseModel):
    up_to: int | None = Field(default=None, ge=1)  # default: the newest message


@api.route(
    "POST",
    "/conversations/{id}/read",
    summary="Mark the conversation read: for you (unread counts) and for the contact (read receipt)",
    body=ReadBody,
    body_required=False,
    response=ReadMarker,
)
async def post_read(request: web.Request, body: ReadBody) -> ReadMarker:
    user = user_of(request)
    c = container_of(request)
    conversation_id = path_id(request)
    for attempt in range(2):
        try:
            async with c.db.write() as session:
                await visible_conversation(session, user, conversation_id)
                newest = await mark_read(session, user.id, conversation_id, c.clock())
            break
        except IntegrityError:  # the same user marked it read in another tab at the same moment
            if attempt == 1:
                raise
    up_to = await send_read_receipt(c, user, conversation_id, body.up_to)
    return ReadMarker(
        conversation_id=conversation_id, last_read_message_id=newest, unread_count=0, up_to=up_to
    )


class ContactConversationsQuery(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)


@api.route(
    "GET",
    "/contacts/{id}/conversations",
    summary="A contact's conversations you may see, newest activity first",
    query=ContactConversationsQuery,
    response=Page[ConversationListItem],
)
async def contact_conversations(
    request: web.Request, query: ContactConversationsQuery
) -> Page[ConversationListItem]:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        contact = await visible_contact(session, user, path_id(request))
        inbox_ids = await visible_inbox_ids(session, user)
        rows = list(
            await session.scalars(
                select(t.Conversation)
                .where(
                    t.Conversation.contact_id == contact.id,
                    t.Conversation.inbox_id.in_(inbox_ids),
                    *([] if is_admin(user) else [t.Conversation.meta["held"].as_boolean().is_not(True)]),
                )
                .order_by(t.Conversation.last_activity_at.desc(), t.Conversation.id.desc())
                .limit(query.limit)
            )
        )
        labels = await labels_for(session, [r.id for r in rows])
        return Page[ConversationListItem](items=await enrich(session, user.id, rows, labels))


@api.route("GET", "/messages/{id}/attachments/{index}", summary="Download one attachment of a message")
async def get_attachment(request: web.Request) -> web.Response:
    user = user_of(request)
    c = container_of(request)
    message_id = path_id(request)
    raw_index = request.match_info["index"]
    if not (raw_index.isascii() and raw_index.isdigit()) or len(raw_index) > 3:
        raise ApiError(400, "bad_id", f"index must be a small integer, not {raw_index!r}")
    index = int(raw_index)
    async with c.db.read() as session:
        message = await session.get(t.Message, message_id)
        if message is None or message.account_id != user.account_id:
            raise not_found("message", message_id)
        await visible_conversation(session, user, message.conversation_id)
        attachments = list(message.attachments or [])
    if index >= len(attachments) or not attachments[index].get("media_key"):
        raise not_found("attachment", index)
    meta = attachments[index]
    try:
        data = await c.media.get(str(meta["media_key"]))
    except (OSError, ValueError) as exc:
        raise ApiError(404, "not_found", "the file of this attachment is no longer stored") from exc
    content_type = str(meta.get("content_type") or "application/octet-stream").split(";")[0].strip().lower()
    filename = str(meta.get("filename") or f"attachment-{message_id}-{index}")
    filename = "".join(ch for ch in filename if ch.isprintable() and ch not in '"\\/') or "attachment"
    inline = content_type in INLINE_TYPES
    if not inline:
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return web.Response(
        body=data,
        content_type=content_type if inline else "application/octet-stream",
        headers={
            "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=86400",
        },
    )


# The email adapter keeps the sanitized HTML of a mail on the record (raw["html"]). It is served as its
# own document with a sandbox policy and shown in a sandboxed iframe: even HTML the sanitizer missed
# can run no script, submit no form and reach no cookie of ours.
EMAIL_HTML_CSP = (
    "sandbox; default-src 'none'; img-src data: cid: https:; style-src 'unsafe-inline'; font-src data:"
)


@api.route(
    "GET", "/messages/{id}/html", summary="The sanitized HTML of an email message, as a sandboxed page"
)
async def get_message_html(request: web.Request) -> web.Response:
    user = user_of(request)
    message_id = path_id(request)
    async with container_of(request).db.read() as session:
        message = await session.get(t.Message, message_id)
        if message is None or message.account_id != user.account_id:
            raise not_found("message", message_id)
        await visible_conversation(session, user, message.conversation_id)
        html = (message.raw or {}).get("html")
    if not isinstance(html, str) or not html.strip():
        raise ApiError(404, "not_found", f"message {message_id} has no HTML body")
    return web.Response(
        text=html,
        content_type="text/html",
        headers={
            "Content-Security-Policy": EMAIL_HTML_CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "private, max-age=3600",
        },
    )


# -- canned responses --------------------------------------------------------------------------------


class CannedView(BaseModel):
    id: int
    short_code: str
    text: str


class CannedCreate(BaseModel):
    short_code: str = Field(min_length=1, max_length=64, pattern=r"^[\w-]+$")
    text: str = Field(min_length=1, max_length=8000)


@api.route(
    "GET",
    "/canned-responses",
    summary="Saved replies for the composer's / shortcut",
    response=Page[CannedView],
)
async def list_canned(request: web.Request) -> Page[CannedView]:
    user = user_of(request)
    async with container_of(request).db.read() as session:
        rows = await session.scalars(
            select(t.CannedResponse)
            .where(t.CannedResponse.account_id == user.account_id)
            .order_by(t.CannedResponse.short_code)
        )
        return Page[CannedView](
            items=[CannedView(id=r.id, short_code=r.short_code, text=r.text) for r in rows]
        )


@api.route(
    "POST",
    "/canned-responses",
    summary="Save a reply (admins)",
    body=CannedCreate,
    response=CannedView,
    status=201,
)
async def create_canned(request: web.Request, body: CannedCreate) -> CannedView:
    user = require_admin(request)
    c = container_of(request)
    try:
        async with c.db.write() as session:
            row = t.CannedResponse(
                account_id=user.account_id,
                short_code=body.short_code.lower(),
                text=body.text,
                created_at=c.clock(),
            )
            session.add(row)
            await session.flush()
            return CannedView(id=row.id, short_code=row.short_code, text=row.text)
    except IntegrityError as exc:
        raise ApiError(
            409,
            "short_code_taken",
            f"short_code: /{body.short_code} already exists",
            [{"field": "short_code", "problem": "taken"}],
        ) from exc


@api.route("DELETE", "/canned-responses/{id}", summary="Delete a saved reply (admins)")
async def delete_canned(request: web.Request) -> None:
    user = require_admin(request)
    canned_id = path_id(request)
    async with container_of(request).db.write() as session:
        result = await session.execute(
            delete(t.CannedResponse).where(
                t.CannedResponse.id == canned_id, t.CannedResponse.account_id == user.account_id
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise not_found("canned response", canned_id)
