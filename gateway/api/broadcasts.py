"""Broadcasts: one business-initiated message (usually a template) to many addresses on a channel.

A campaign in one request instead of one ``POST /messages`` per recipient. Each recipient still goes
through the outbox gate on its own (consent, the 24-hour window, the quota) and gets its own message,
``queued`` or ``failed`` with a reason; the messages are stored in batches, one transaction per batch,
so a broadcast costs a fraction of the single sends (bench/README.md, "outbound send").
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field, model_validator

from gateway.api.context import container_of, user_of
from gateway.api.conversations import TemplateBody, channel_in_body, template_ref
from gateway.api.errors import ApiError
from gateway.api.spec import ApiRoutes
from inbox.contacts import resolve_contact
from inbox.conversations import find_or_open_conversation
from inbox.identities import InvalidAddress, normalize_address
from inbox.model import MessageStatus
from inbox.outbox import Draft, DraftError
from inbox.views import MessageView

api = ApiRoutes()

MAX_RECIPIENTS = 1000
# Recipients stored per write transaction: large enough to spread a commit and its event hand-out
# over many messages, small enough that status webhooks and inbound messages are not held up long
# behind the writer (SQLite has one).
BATCH = 50


class BroadcastBody(BaseModel):
    channel_id: int
    recipients: list[str] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    template: TemplateBody | None = None
    text: str | None = Field(default=None, max_length=65536)

    @model_validator(mode="after")
    def _one(self) -> BroadcastBody:
        if self.template is None and not (self.text and self.text.strip()):
            raise ValueError("give text or a template")
        return self


class BroadcastItem(BaseModel):
    """One recipient's outcome: its message, ``queued`` or ``failed`` with the gate's reason."""

    to: str
    message: MessageView


class BroadcastResult(BaseModel):
    channel_id: int
    queued: int
    failed: int
    items: list[BroadcastItem]


def _addresses(kind: str, recipients: list[str]) -> list[str]:
    """Normalized addresses, in order; 422 naming every recipient that is invalid or repeated."""
    problems: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    addresses: list[str] = []
    for index, raw in enumerate(recipients):
        field = f"recipients[{index}]"
        try:
            address = normalize_address(kind, raw)
        except InvalidAddress as exc:
            problems.append({"field": field, "problem": str(exc)})
            continue
        if address in seen:
            problems.append({"field": field, "problem": f"same address as recipients[{seen[address]}]"})
            continue
        seen[address] = index
        addresses.append(address)
    if problems:
        named = ", ".join(p["field"] for p in problems[:10]) + (" ..." if len(problems) > 10 else "")
        raise ApiError(
            422, "invalid_recipient", f"{len(problems)} recipient(s) cannot be sent to: {named}", problems
        )
    return addresses


@api.route(
    "POST",
    "/broadcasts",
    summary="Business-initiated send of one message to many addresses on a channel; each passes the gate",
    body=BroadcastBody,
    response=BroadcastResult,
    status=201,
)
async def post_broadcast(request: web.Request, body: BroadcastBody) -> BroadcastResult:
    user = user_of(request)
    c = container_of(request)
    async with c.db.read() as session:
        channel = await channel_in_body(session, user, body.channel_id)
    addresses = _addresses(channel.kind, body.recipients)
    template = template_ref(body.template)
    items: list[BroadcastItem] = []
    for start in range(0, len(addresses), BATCH):
        batch = addresses[start : start + BATCH]
        views: list[MessageView] = []
        async with c.db.write() as session:
            now = c.clock()
            # The channel may have changed since the read above; this transaction's copy decides.
            channel = await channel_in_body(session, user, body.channel_id)
            for address in batch:
                contact = await resolve_contact(session, channel.account_id, channel.kind, address, None, now)
                conversation, _ = await find_or_open_conversation(session, channel, contact.id, address, now)
                draft = Draft(
                    conversation_id=conversation.id,
                    text=body.text,
                    template=template,
                    author_id=user.id,
                    origin="api",
                    business_initiated=True,
                )
                try:
                    views.append(await c.outbox.submit(draft, session=session))
                except DraftError as exc:
                    raise ApiError(422, "validation_error", str(exc)) from exc
        # Delivery starts once the batch is committed; the next batch is stored meanwhile.
        for view in views:
            await c.outbox.enqueue_if_queued(view)
        items.extend(BroadcastItem(to=a, message=v) for a, v in zip(batch, views, strict=True))
    queued = sum(1 for i in items if i.message.status == MessageStatus.QUEUED)
    return BroadcastResult(channel_id=channel.id, queued=queued, failed=len(items) - queued, items=items)
