"""WhatsApp's side: accepts the business's Graph API calls, enforces WhatsApp's own rules, plays the
contacts' phones and reports statuses by signed webhook.

The rules are WhatsApp's, independent of the gateway's policies (protocols.md §1):
- free-form messages only within 24 h of the contact's last message, else 131047;
- templates must exist in that language and be approved (132001) with the right parameter count (132000);
- a per-number throughput limit (130429);
- a contact who stopped marketing messages makes marketing templates fail with 131050 (as a status).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import phonenumbers

from channels.whatsapp.simulator.delivery import DEFAULT_RETRY_DELAYS, Delivery, WebhookSender
from channels.whatsapp.simulator.model import (
    DEFAULT_TEMPLATES,
    Business,
    Contact,
    Directory,
    SimMessage,
    Template,
)

WINDOW = timedelta(hours=24)
MAX_TEXT = 4096
ERROR_DOCS = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

GraphAnswer = tuple[int, dict[str, Any]]


@dataclass
class SimulatorSettings:
    # "sync": free text outside the window is refused with HTTP 400 / 131047; "status": accepted, then a
    # ``failed`` status webhook carries 131047 (Cloud API does both; protocols.md §1 caveat).
    window_mode: Literal["sync", "status"] = "sync"
    messages_per_second: float = 80.0  # Cloud API's default throughput per phone number
    retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS
    templates: Sequence[Template] = DEFAULT_TEMPLATES
    max_messages: int = 50_000  # kept in memory; the oldest are forgotten


@dataclass
class Outgoing:
    """A business message that passed validation: what the phone shows."""

    text: str | None
    extra: dict[str, Any]
    template: Template | None = None


@dataclass
class ForcedError:
    """An error the next send answers with (tests, the control endpoint)."""

    http_status: int
    code: int
    message: str


def graph_error(
    code: int, message: str, details: str | None = None, http_status: int = 400, kind: str = "OAuthException"
) -> GraphAnswer:
    """Graph's error shape (protocols.md §1)."""
    error: dict[str, Any] = {
        "message": f"(#{code}) {message}",
        "type": kind,
        "code": code,
        "fbtrace_id": secrets.token_urlsafe(12),
    }
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return http_status, {"error": error}


def new_wamid() -> str:
    return "wamid." + base64.b64encode(b"HBgL" + secrets.token_bytes(24)).decode()


def wa_id_of(number: str) -> str | None:
    """Any way of writing a phone number → WhatsApp's ``wa_id`` (E.164 digits, no plus)."""
    text = number.strip()
    if not text.startswith("+"):
        text = "+" + text
    try:
        parsed = phonenumbers.parse(text)
    except phonenumbers.NumberParseException:
        return None
    # Like WhatsApp, accept any possible number; pywa's fixtures use numbers that are not "valid".
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


class _Bucket:
    """Token bucket on the monotonic clock: throughput is about real seconds, not the business clock."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = max(rate, 1.0)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(max(self.rate, 1.0), self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class _Media:
    data: bytes
    mime_type: str
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha256 = base64.b64encode(hashlib.sha256(self.data).digest()).decode()


class Simulator:
    """All of the simulated platform's state and behaviour; ``app.py`` puts HTTP in front of it."""

    def __init__(
        self,
        directory: Directory,
        settings: SimulatorSettings | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.directory = directory
        self.settings = settings or SimulatorSettings()
        self.clock = clock
        self.templates = {(t.name, t.language): t for t in self.settings.templates}
        self.contacts: dict[str, Contact] = {}
        self.messages: dict[str, SimMessage] = {}
        self.last_inbound: dict[tuple[str, str], datetime] = {}
        self.media: dict[str, _Media] = {}
        self.forced_errors: list[ForcedError] = []
        self.duplicate_next = 0
        self.sender = WebhookSender(self.settings.retry_delays, on_acknowledged=self._acknowledged)
        self.version = 0
        self.closing = False
        self._changed = asyncio.Event()
        self._buckets: dict[str, _Bucket] = {}
        self._media_ids = itertools.count(int(time.time()) % 10**6 * 10**9 + 1)

    async def start(self) -> None:
        self.closing = False
        await self.sender.start()

    def close_waiters(self) -> None:
        """Server shutting down: release the pages' long polls now rather than after 25 s."""
        self.closing = True
        self._bump()

    async def stop(self) -> None:
        await self.sender.stop()

    async def verify_webhook(self, business: Business) -> bool:
        """Subscribe the business's callback URL as Meta does: the verify-token handshake."""
        return await self.sender.verify(business.webhook_url, business.verify_token, secrets.token_hex(8))

    # -- change notification for the phones page (long polling) --------------------------------------

    def _bump(self) -> None:
        self.version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_for_change(self, since: int, timeout: float) -> None:  # noqa: ASYNC109
        if self.version > since:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel on 3.11
                await self._changed.wait()

    # -- contacts -----------------------------------------------------------------------------------

    def contact(self, wa_id: str, name: str | None = None) -> Contact:
        found = self.contacts.get(wa_id)
        if found is None:
            found = self.contacts[wa_id] = Contact(wa_id, name or f"+{wa_id}")
            self._bump()
        elif name and found.name != name:
            found.name = name
            self._bump()
        return found

    def thread(self, phone_number_id: str, wa_id: str) -> list[SimMessage]:
        return [
            m for m in self.messages.values() if m.phone_number_id == phone_number_id and m.wa_id == wa_id
        ]

    def window_open(self, phone_number_id: str, wa_id: str) -> bool:
        last = self.last_inbound.get((phone_number_id, wa_id))
        return last is not None and self.clock() - last < WINDOW

    def _remember(self, message: SimMessage) -> None:
        self.messages[message.wamid] = message
        if len(self.messages) > self.settings.max_messages:
            for old in list(self.messages)[: len(self.messages) - self.settings.max_messages]:
                del self.messages[old]
        self._bump()

    # -- the Graph API, as the business calls it ---------------------------------------------------

    async def authorize(self, phone_number_id: str, authorization: str | None) -> Business | GraphAnswer:
        business = await self.directory.business(phone_number_id)
        scheme, _, token = (authorization or "").partition(" ")
        if business is None:
            # Graph answers an unknown object id like this whether or not the token is good.
            return graph_error(
                100,
                f"Unsupported post request. Object with ID '{phone_number_id}' does not exist, cannot be "
                "loaded due to missing permissions, or does not support this operation.",
                kind="GraphMethodException",
            )
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), business.access_token.encode()
        ):
            return graph_error(190, "Invalid OAuth access token - Cannot parse access token", http_status=401)
        return business

    async def business_by_token(self, authorization: str | None) -> Business | None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        for business in await self.directory.businesses():
            if hmac.compare_digest(token.strip().encode(), business.access_token.encode()):
                return business
        return None

    async def list_templates(self, waba_id: str, authorization: str | None) -> GraphAnswer:
        """``GET /{waba-id}/message_templates``: every template of the account, with its status."""
        business = await self.business_by_token(authorization)
        if business is None:
            return graph_error(190, "Invalid OAuth access token - Cannot parse access token", http_status=401)
        if business.waba_id != waba_id:
            return graph_error(100, f"Unsupported get request. Object with ID '{waba_id}' does not exist")
        return 200, {"data": [t.graph_view() for t in self.templates.values()], "paging": {"cursors": {}}}

    async def send_from_business(self, business: Business, body: Any) -> GraphAnswer:
        """``POST /{phone_number_id}/messages``: a send, or a read receipt for a contact's message."""
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return graph_error(100, "Invalid parameter", "messaging_product must be 'whatsapp'")
        if body.get("status") == "read":
            return self._business_read(business, body)
        bucket = self._buckets.setdefault(
            business.phone_number_id, _Bucket(self.settings.messages_per_second)
        )
        if not bucket.take():
            return graph_error(
                130429, "Rate limit hit", "Cloud API message throughput has been reached.", http_status=400
            )
        if self.forced_errors:
            forced = self.forced_errors.pop(0)
            return graph_error(forced.code, forced.message, forced.message, http_status=forced.http_status)
        to = body.get("to")
        wa_id = wa_id_of(to) if isinstance(to, str) else None
        if wa_id is None:
            return graph_error(100, "Invalid parameter", f"'to' is not a valid phone number: {to!r}")
        kind = body.get("type", "text")
        built = self._build_outgoing(business, wa_id, kind, body)
        if not isinstance(built, Outgoing):
            return built
        text, extra, template = built.text, built.extra, built.template
        failure: tuple[int, str, str] | None = None
        if template is None and not self.window_open(business.phone_number_id, wa_id):
            details = (
                "Message failed to send because more than 24 hours have passed since the customer last "
                "replied to this number."
            )
            if self.settings.window_mode == "sync":
                return graph_error(131047, "Re-engagement message", details)
            failure = (131047, "Re-engagement message", details)
        contact = self.contact(wa_id)
        if template is not None and template.category == "MARKETING" and contact.marketing_stopped:
            failure = (131050, "Unable to deliver the message", "The user has stopped marketing messages.")
        context = body.get("context")
        if isinstance(context, dict) and isinstance(context.get("message_id"), str):
            extra["context"] = context["message_id"]
        message = SimMessage(
            new_wamid(), business.phone_number_id, wa_id, "out", str(kind), text, self.clock(), extra=extra
        )
        self._remember(message)
        if failure is not None:
            self._fail(business, message, *failure)
        else:
            self._status(business, message, "sent")
            if contact.online:
                self._status(business, message, "delivered")
        answer: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": wa_id}],
            "messages": [{"id": message.wamid}],
        }
        if template is not None:
            answer["messages"][0]["message_status"] = "accepted"
        return 200, answer

    def _build_outgoing(
        self, business: Business, wa_id: str, kind: Any, body: dict[str, Any]
    ) -> Outgoing | GraphAnswer:
        """Validate one outgoing message as WhatsApp does; (text, extra for the page, template)."""
        part = body.get(kind) if isinstance(kind, str) else None
        if not isinstance(part, dict):
            return graph_error(100, "Invalid parameter", f"missing or invalid '{kind}' object")
        if kind == "text":
            text = part.get("body")
            if not isinstance(text, str) or not text:
                return graph_error(100, "Invalid parameter", "text.body is required")
            if len(text) > MAX_TEXT:
                return graph_error(
                    100, "Invalid parameter", "Param text['body'] must be at most 4096 characters"
                )
            return Outgoing(text, {})
        if kind == "template":
            return self._template(part)
        if kind in ("image", "document"):
            media_id = part.get("id")
            link = part.get("link")
            if isinstance(media_id, str) and media_id in self.media:
                shown = media_id
            elif isinstance(link, str) and link.startswith(("http://", "https://")):
                shown = None
            else:
                return graph_error(131053, "Media upload error", "the media id does not exist")
            caption = part.get("caption") if isinstance(part.get("caption"), str) else None
            return Outgoing(caption, {"media_id": shown, "link": link, "filename": part.get("filename")})
        if kind == "interactive":
            action = part.get("action")
            buttons = action.get("buttons") if isinstance(action, dict) else None
            text = (part.get("body") or {}).get("text") if isinstance(part.get("body"), dict) else None
            if part.get("type") != "button" or not isinstance(buttons, list) or not isinstance(text, str):
                return graph_error(
                    100, "Invalid parameter", "only reply-button interactive messages are simulated"
                )
            if not 1 <= len(buttons) <= 3:
                return graph_error(131009, "Parameter value is not valid", "buttons: 1 to 3 reply buttons")
            titles: list[dict[str, str]] = []
            for b in buttons:
                reply = b.get("reply") if isinstance(b, dict) else None
                if not isinstance(reply, dict) or not isinstance(reply.get("title"), str):
                    return graph_error(131009, "Parameter value is not valid", "a button needs a reply title")
                if len(reply["title"]) > 20:
                    return graph_error(
                        131009, "Parameter value is not valid", "button title over 20 characters"
                    )
                titles.append({"id": str(reply.get("id") or reply["title"]), "title": reply["title"]})
            return Outgoing(text, {"buttons": titles})
        return graph_error(100, "Invalid parameter", f"message type {kind!r} is not simulated")

    def _template(self, part: dict[str, Any]) -> Outgoing | GraphAnswer:
        name = part.get("name")
        language = part.get("language")
        code = language.get("code") if isinstance(language, dict) else None
        template = self.templates.get((str(name), str(code)))
        if template is None or template.status != "APPROVED":
            return graph_error(
                132001,
                "Template name does not exist in the translation",
                f"template name ({name}) does not exist in {code}" if template is None else "not approved",
            )
        params: list[str] = []
        components = part.get("components")
        for component in components if isinstance(components, list) else []:
            if not isinstance(component, dict) or component.get("type") != "body":
                continue
            parameters = component.get("parameters")
            if isinstance(parameters, list):
                params += [str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in parameters]
        if len(params) != template.param_count:
            return graph_error(
                132000,
                "Number of parameters does not match the expected number of params",
                f"body: number of localizable_params ({len(params)}) does not match the expected number "
                f"of params ({template.param_count})",
            )
        extra = {"template": template.name, "template_buttons": list(template.buttons)}
        return Outgoing(template.render(params), extra, template)

    def _business_read(self, business: Business, body: dict[str, Any]) -> GraphAnswer:
        wamid = body.get("message_id")
        message = self.messages.get(wamid) if isinstance(wamid, str) else None
        if (
            message is None
            or message.direction != "in"
            or message.phone_number_id != business.phone_number_id
        ):
            return graph_error(100, "Invalid parameter", "message_id is not a message this number received")
        # Reading one message marks it and everything earlier in the chat read, as WhatsApp does.
        for m in self.thread(business.phone_number_id, message.wa_id):
            if m.direction == "in" and m.at <= message.at and m.status != "read":
                m.status = "read"
        self._bump()
        return 200, {"success": True}

    # -- statuses (business messages) -----------------------------------------------------------------

    def _status_envelope(self, business: Business, status: dict[str, Any]) -> dict[str, Any]:
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": business.digits,
                "phone_number_id": business.phone_number_id,
            },
            "statuses": [status],
        }
        return _envelope(business, value)

    def _status(self, business: Business, message: SimMessage, status: str) -> Delivery:
        message.status = status
        self._bump()
        item: dict[str, Any] = {
            "id": message.wamid,
            "status": status,
            "timestamp": str(int(self.clock().timestamp())),
            "recipient_id": message.wa_id,
        }
        if status == "sent":
            origin = "service" if message.type != "template" else "utility"
            item["conversation"] = {"id": secrets.token_hex(16), "origin": {"type": origin}}
            item["pricing"] = {"billable": origin != "service", "pricing_model": "PMP", "category": origin}
        return self._deliver(business, self._status_envelope(business, item))

    def _fail(self, business: Business, message: SimMessage, code: int, title: str, details: str) -> Delivery:
        message.status = "failed"
        message.error = {"code": code, "title": title}
        self._bump()
        item = {
            "id": message.wamid,
            "status": "failed",
            "timestamp": str(int(self.clock().timestamp())),
            "recipient_id": message.wa_id,
            "errors": [
                {
                    "code": code,
                    "title": title,
                    "message": title,
                    "error_data": {"details": details},
                    "href": ERROR_DOCS,
                }
            ],
        }
        return self._deliver(business, self._status_envelope(business, item))

    def _deliver(
        self, business: Business, payload: dict[str, Any], inbound_wamid: str | None = None
    ) -> Delivery:
        duplicate = self.duplicate_next > 0
        if duplicate:
            self.duplicate_next -= 1
        return self.sender.submit(business, payload, duplicate=duplicate, inbound_wamid=inbound_wamid)

    def _acknowledged(self, delivery: Delivery) -> None:
        wamid = delivery.inbound_wamid
        message = self.messages.get(wamid) if wamid else None
        if message is not None and message.status == "sent":
            message.status = "delivered"  # the business's server has it: ✔✔ on the contact's phone
            self._bump()

    # -- the phones: what contacts do -----------------------------------------------------------------

    def set_marketing_stopped(self, wa_id: str, stopped: bool) -> None:
        """The contact's "stop marketing messages" preference: marketing templates then fail (131050)."""
        self.contact(wa_id).marketing_stopped = stopped
        self._bump()

    async def set_online(self, wa_id: str, online: bool) -> None:
        """A phone coming online receives what waited for it: those messages become ``delivered``."""
        contact = self.contact(wa_id)
        contact.online = online
        self._bump()
        if not online:
            return
        for message in list(self.messages.values()):
            if message.wa_id == wa_id and message.direction == "out" and message.status == "sent":
                business = await self.directory.business(message.phone_number_id)
                if business is not None:
                    self._status(business, message, "delivered")

    async def read_all(self, phone_number_id: str, wa_id: str) -> int:
        """The contact opens the chat: every business message not yet read becomes ``read``."""
        business = await self.directory.business(phone_number_id)
        if business is None:
            return 0
        count = 0
        for message in self.thread(phone_number_id, wa_id):
            if message.direction == "out" and message.status in ("sent", "delivered"):
                self._status(business, message, "read")
                count += 1
        return count

    async def contact_sends(
        self,
        phone_number_id: str,
        wa_id: str,
        kind: str,
        content: dict[str, Any],
        *,
        name: str | None = None,
        context: str | None = None,
    ) -> tuple[SimMessage, Delivery]:
        """The contact sends a message of WhatsApp type ``kind`` with its type object ``content``.

        Raises LookupError for an unknown business number.
        """
        business = await self.directory.business(phone_number_id)
        if business is None:
            raise LookupError(f"no business number {phone_number_id}")
        contact = self.contact(wa_id, name)
        now = self.clock()
        item: dict[str, Any] = {
            "from": wa_id,
            "id": new_wamid(),
            "timestamp": str(int(now.timestamp())),
            "type": kind,
        }
        if context:
            item["context"] = {"from": business.digits, "id": context}
        if kind == "contacts":
            item["contacts"] = content.get("contacts", [])
        else:
            item[kind] = content
        return self._inbound(business, contact, item)

    async def contact_sends_raw(
        self, phone_number_id: str, item: dict[str, Any], name: str | None = None
    ) -> tuple[SimMessage, Delivery]:
        """Deliver a message item as given (for types the page has no button for, e.g. ``unsupported``)."""
        business = await self.directory.business(phone_number_id)
        if business is None:
            raise LookupError(f"no business number {phone_number_id}")
        contact = self.contact(str(item.get("from")), name)
        item = {"id": new_wamid(), "timestamp": str(int(self.clock().timestamp())), **item}
        return self._inbound(business, contact, item)

    def _inbound(
        self, business: Business, contact: Contact, item: dict[str, Any]
    ) -> tuple[SimMessage, Delivery]:
        kind = str(item.get("type"))
        part = item.get(kind) if isinstance(item.get(kind), dict) else {}
        assert isinstance(part, dict)
        text = part.get("body") or part.get("caption") or part.get("text") or part.get("emoji")
        if kind == "interactive":
            reply = part.get(str(part.get("type"))) or {}
            text = reply.get("title") if isinstance(reply, dict) else None
        extra: dict[str, Any] = {}
        if kind in ("image", "document", "video", "audio", "sticker"):
            extra["media_id"] = part.get("id")
        if "context" in item:
            extra["context"] = item["context"]["id"]
        message = SimMessage(
            str(item["id"]),
            business.phone_number_id,
            contact.wa_id,
            "in",
            kind,
            text,
            self.clock(),
            extra=extra,
        )
        # WhatsApp opens (or restarts) the customer service window with each message the contact sends.
        self.last_inbound[(business.phone_number_id, contact.wa_id)] = self.clock()
        self._remember(message)
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": business.digits,
                "phone_number_id": business.phone_number_id,
            },
            "contacts": [{"profile": {"name": contact.name}, "wa_id": contact.wa_id}],
            "messages": [item],
        }
        return message, self._deliver(business, _envelope(business, value), message.wamid)

    # -- media ----------------------------------------------------------------------------------------

    def put_media(self, data: bytes, mime_type: str) -> str:
        media_id = str(next(self._media_ids))
        self.media[media_id] = _Media(data, mime_type)
        return media_id

    def media_info(self, media_id: str, download_url: str) -> dict[str, Any] | None:
        media = self.media.get(media_id)
        if media is None:
            return None
        return {
            "messaging_product": "whatsapp",
            "url": download_url,
            "mime_type": media.mime_type,
            "sha256": media.sha256,
            "file_size": len(media.data),
            "id": media_id,
        }


def _envelope(business: Business, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": business.waba_id, "changes": [{"field": "messages", "value": value}]}],
    }
