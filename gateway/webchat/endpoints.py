"""Visitor-facing HTTP and websocket endpoints of the website chat.

GET  /widget.js                          the widget (plain JavaScript, no build step)
GET  /demo/                              a page with the widget embedded (the demo channel)
GET  /webchat/{token}/config             the widget's settings, chat flow for this page, agent presence
GET  /webchat/{token}/ws?key=&after=     the live socket; ``after`` = last message id the widget has
POST /webchat/{token}/upload             a file from the visitor (multipart), checked server-side
GET  /webchat/{token}/media/{key}        a file on a message, by signed link

Socket frames from the widget: message {client_id, text, context, profile}, typing {typing},
delivered / read {ids: [provider ids]}, profile {name, email}, ping. To the widget: hello, message,
ready {last_id}, ack {client_id, id}, error {code, message, client_id?, retry_after?}, typing, read
{up_to}, presence {presence}, pong. Every message carries its id; the widget drops ids it already has,
so a resume that overlaps a live push shows nothing twice.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, WSMsgType, web
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select

from channels.webchat.adapter import Refused, WebchatAdapter
from channels.webchat.identity import Visitor
from channels.webchat.media import media_signature
from gateway.adapters import UnknownChannelError
from gateway.api.context import container_of
from gateway.webchat import store
from gateway.webchat.hook import visitor_context
from gateway.webchat.hub import WIDGET_HUB, WidgetHub
from gateway.webchat.hub import install as install_hub
from gateway.webchat.origin import origin_refusal
from gateway.webchat.sockets import Chat, VisitorSocket
from inbox import tables as t
from inbox.events import record_event
from inbox.identities import InvalidAddress, normalize_email
from inbox.model import ChannelKind, MessageStatus

_LOGGER = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent.parent / "static"
TYPING_EVERY = 3.0  # seconds between repeated "typing" events to agents


def _json_error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=status)


def _client_ip(request: web.Request) -> str:
    return request.remote or "unknown"


async def _chat(request: web.Request) -> Chat | web.Response:
    """Resolve the token and check the Origin; a Response is a refusal to return as is."""
    c = container_of(request)
    channel = await store.channel_by_token(c.db, request.match_info["token"])
    if channel is None:
        return _json_error(404, "unknown_channel", "no chat with this token")
    try:
        adapter = await c.adapters.get(channel.id)
    except UnknownChannelError:
        return _json_error(404, "unknown_channel", "no chat with this token")
    if not isinstance(adapter, WebchatAdapter):
        return _json_error(404, "unknown_channel", "no chat with this token")
    refused = origin_refusal(request, adapter.config.allowed_origins, c.settings.effective_public_url())
    if refused is not None:
        _LOGGER.warning(
            "webchat %s: refused origin %s from %s", channel.id, refused[:200], _client_ip(request)
        )
        return _json_error(403, "origin_refused", f"this chat may not be embedded on {refused[:200]}")
    return request.app[WIDGET_HUB].chat(channel, adapter)


_UNPROCESSABLE = ("file_type_refused", "empty_file", "message_too_long", "empty_message", "bad_client_id")


def _refusal(exc: Refused) -> web.Response:
    status = 429 if exc.code in ("rate_limited", "too_many_connections") else 403
    if exc.code == "file_too_large":
        status = 413
    elif exc.code in _UNPROCESSABLE:
        status = 422
    return _json_error(status, exc.code, exc.message, retry_after=exc.retry_after)


# -- static pages ------------------------------------------------------------------------------------


_CATALOGS_LINE = "  var CATALOGS = {};\n"  # in widget.js: where the texts go


def widget_source() -> bytes:
    """widget.js with the "widget." texts of every catalog (static/i18n/*.json) in it: the widget picks
    the visitor's language itself and has its words before the first paint, in the one request."""
    source = (STATIC / "widget.js").read_text(encoding="utf-8")
    catalogs = {
        path.stem: {
            k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if k.startswith("widget.")
        }
        for path in sorted((STATIC / "i18n").glob("*.json"))
    }
    if _CATALOGS_LINE not in source:
        raise RuntimeError("widget.js has no 'var CATALOGS = {};' line for the texts")
    literal = json.dumps(catalogs, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return source.replace(_CATALOGS_LINE, f"  var CATALOGS = {literal};\n", 1).encode("utf-8")


async def widget_js(request: web.Request) -> web.StreamResponse:
    return web.Response(
        body=await asyncio.to_thread(widget_source),
        headers={"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "public, max-age=300"},
    )


async def demo_page(request: web.Request) -> web.Response:
    """The demo shop page; ``?channel=TOKEN`` embeds another webchat channel than the demo's."""
    c = container_of(request)
    wanted = request.query.get("channel")
    if wanted and await store.channel_by_token(c.db, wanted) is not None:
        token: str | None = wanted
    else:
        async with c.db.read() as session:
            rows = await session.scalars(
                select(t.Channel).where(t.Channel.kind == ChannelKind.WEBCHAT).order_by(t.Channel.id)
            )
            token = next((str(r.config["token"]) for r in rows if (r.config or {}).get("token")), None)
    if token is None:
        return web.Response(
            status=404, text="no webchat channel with a token; run `switchboard serve --demo`"
        )
    page = (STATIC / "demo" / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{WIDGET_SRC}}", html.escape(f"{request.scheme}://{request.host}/widget.js"))
    page = page.replace("{{TOKEN}}", html.escape(token))
    return web.Response(text=page, content_type="text/html")


# -- config --------------------------------------------------------------------------------------------


async def widget_config(request: web.Request) -> web.StreamResponse:
    chat = await _chat(request)
    if isinstance(chat, web.Response):
        return chat
    page_url = request.query.get("page_url", "")[:2048]
    first_visit = request.query.get("first_visit") == "1"
    flow = chat.adapter.flow_for(page_url, first_visit)
    async with chat.c.db.read() as session:
        presence = await store.presence(session, chat.channel, chat.adapter.config, chat.c.clock())
    body = {"channel": chat.adapter.config.public(), "flow": flow.model_dump(), "presence": presence}
    return chat.cors(request, web.json_response(body, headers={"Cache-Control": "no-store"}))


# -- the socket ------------------------------------------------------------------------------------------


class _Profile(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)


class _MessageFrame(BaseModel):
    client_id: str = Field(min_length=1, max_length=100)
    text: str = Field(max_length=65536)
    context: dict[str, Any] = Field(default_factory=dict)
    profile: _Profile = Field(default_factory=_Profile)


def _query(request: web.Request) -> dict[str, str]:
    """The query string's first values. Parsed here, not through ``request.query``: that one stays
    cached on the request, which aiohttp keeps for as long as the socket is open."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True):
        params.setdefault(name, value)
    return params


async def _admit(request: web.Request, ip: str) -> tuple[Chat, Visitor, int] | web.Response:
    """The chat, the visitor and ``after`` of a socket request, or the refusal to answer with. Its own
    function so that nothing it read stays referenced by the handler while the socket is open."""
    chat = await _chat(request)
    if isinstance(chat, web.Response):
        return chat
    q = _query(request)
    try:
        visitor = chat.adapter.identify(
            key=q.get("key"), identifier=q.get("identifier"), signature=q.get("signature"), ip=ip
        )
    except Refused as exc:
        return _refusal(exc)
    try:
        after = max(0, int(q.get("after", "0")))
    except ValueError:
        return _json_error(400, "bad_after", "after must be a message id")
    return chat, visitor, after


class _TabSocket(web.WebSocketResponse):
    """A widget tab's websocket, whose read loop runs in ``write_eof``.

    aiohttp calls ``write_eof`` once the handler has returned its response. Reading the tab's frames
    there instead of in the handler lets the handler's frame and those of the middlewares (errors,
    auth, aiohttp's current-app) finish after the opening: ~1 KB less per idle tab. Nothing of the
    middlewares applied to an upgraded socket anyway (an error response cannot be sent on it).
    """

    _tab: VisitorSocket | None = None
    _hub: WidgetHub | None = None
    _ip = ""

    def serve_later(self, hub: WidgetHub, tab: VisitorSocket, ip: str) -> None:
        self._hub, self._tab, self._ip = hub, tab, ip

    async def write_eof(self) -> None:  # type: ignore[override]  # as aiohttp's own WebSocketResponse
        hub, tab, self._hub, self._tab = self._hub, self._tab, None, None
        if hub is not None and tab is not None:
            try:  # the read loop in this frame, not one more coroutine per idle tab
                async for msg in self:
                    tab.heard()
                    if msg.type != WSMsgType.TEXT:
                        if msg.type == WSMsgType.PING:
                            await self.pong(msg.data)
                        elif msg.type == WSMsgType.ERROR:
                            break
                        continue
                    try:
                        await _handle_frame(tab, msg.data, self._ip)
                    except Exception:
                        # Not acknowledged, so the widget still holds the message: closing makes it
                        # reconnect and send it again, instead of telling the visitor it failed for good.
                        _LOGGER.exception("webchat %s: failed to handle a visitor frame", tab.chat.channel.id)
                        await self.close(code=1011, message=b"server error; reconnect")
                        break
            except ConnectionResetError:
                pass  # the tab went away
            finally:
                await _close_tab(hub, tab)
        await super().write_eof()


async def visitor_socket(request: web.Request) -> web.StreamResponse:
    ip = _client_ip(request)
    admitted = await _admit(request, ip)
    if isinstance(admitted, web.Response):
        return admitted
    chat, visitor, after = admitted

    # No per-message deflate: widget frames are small, and each socket would hold its own zlib state.
    # No heartbeat or autoping of aiohttp's: the hub pings every tab from one timer (sockets.py
    # VisitorSocket.beat), and ``_TabSocket.write_eof`` answers pings and notes pongs.
    ws = _TabSocket(heartbeat=None, autoping=False, max_msg_size=256 * 1024, compress=False)
    await ws.prepare(request)
    hub = request.app[WIDGET_HUB]
    sock = hub.socket(ws, request, chat, visitor)
    # Attach before reading the history: a reply sent meanwhile is queued, and the id check drops it
    # if the history had it too.
    chat.adapter.attach(visitor, sock)
    hub.add(sock)
    try:
        await _opening(hub, sock, after)
    except ConnectionResetError:
        await _close_tab(hub, sock)  # the tab went away while its history was sent
        return ws
    except BaseException:
        await _close_tab(hub, sock)
        raise
    sock.start()
    ws.serve_later(hub, sock, ip)  # the frames are read once this handler has returned
    return ws


async def _close_tab(hub: WidgetHub, sock: VisitorSocket) -> None:
    sock.chat.adapter.detach(sock.visitor, sock)
    hub.remove(sock)
    await sock.stop()
    if not sock.ws.closed:
        await sock.ws.close()


async def _opening(hub: WidgetHub, sock: VisitorSocket, after: int) -> None:
    """hello, the history after ``after`` (or the newest page), ready. A function of its own so that
    nothing it read stays referenced for as long as the tab is open."""
    chat, visitor = sock.chat, sock.visitor
    async with chat.c.db.read() as session:
        conv_ids = await store.visitor_conversation_ids(session, chat.channel.id, visitor.address)
        conversations = [c for c in [await session.get(t.Conversation, i) for i in conv_ids] if c]
        rows = await store.history(session, conv_ids, after)
        frames = [await chat.renderer.frame(session, m, visitor.address) for m in rows]
        presence = await store.presence(session, chat.channel, chat.adapter.config, chat.c.clock())
    for conversation_id in conv_ids:
        hub.remember(conversation_id, chat.channel.id, visitor.address)
    await sock.send_now(
        {
            "type": "hello",
            "presence": presence,
            "verified": visitor.verified,
            "agent_read_up_to": store.agent_read_up_to(conversations),
            "resumed": after > 0,
        }
    )
    for frame in frames:
        await sock.send_now(frame)
    await sock.send_now({"type": "ready", "last_id": max([after, *(f["id"] for f in frames)])})


async def _handle_frame(sock: VisitorSocket, data: str, ip: str) -> None:
    try:
        frame = json.loads(data)
        if not isinstance(frame, dict):
            raise ValueError("not an object")
    except ValueError:
        await sock.deliver({"type": "error", "code": "bad_frame", "message": "frames are JSON objects"})
        return
    kind = frame.get("type")
    chat, visitor = sock.chat, sock.visitor
    try:
        chat.adapter.check_frame(visitor, ip)
        if kind == "ping":
            await sock.deliver({"type": "pong"})
        elif kind == "message":
            await _visitor_message(sock, frame, ip)
        elif kind == "typing":
            await _visitor_typing(sock, bool(frame.get("typing")))
        elif kind in ("delivered", "read"):
            ids = [i for i in frame.get("ids") or [] if isinstance(i, str)]
            status = MessageStatus.DELIVERED if kind == "delivered" else MessageStatus.READ
            await chat.adapter.acknowledge(visitor, ids, status)
        elif kind == "profile":
            await _visitor_profile(sock, _Profile.model_validate(frame))
        else:
            await sock.deliver({"type": "error", "code": "bad_frame", "message": f"unknown frame {kind!r}"})
    except ValidationError as exc:
        field = ".".join(str(p) for p in exc.errors()[0]["loc"]) if exc.errors() else "frame"
        await sock.deliver(
            {
                "type": "error",
                "code": "bad_frame",
                "message": f"{field}: {exc.errors()[0]['msg'] if exc.errors() else 'invalid'}",
                "client_id": frame.get("client_id"),
            }
        )
    except Refused as exc:
        await sock.deliver(
            {
                "type": "error",
                "code": exc.code,
                "message": exc.message,
                "retry_after": exc.retry_after,
                "client_id": frame.get("client_id"),
            }
        )


def _context(raw: Mapping[str, Any], profile: _Profile) -> dict[str, Any]:
    context = visitor_context(dict(raw))
    if profile.email:
        context["email"] = profile.email
    return context


async def _visitor_message(sock: VisitorSocket, frame: dict[str, Any], ip: str) -> None:
    body = _MessageFrame.model_validate(frame)
    chat = sock.chat
    result = await chat.adapter.receive_text(
        sock.visitor,
        client_id=body.client_id,
        text=body.text,
        ip=ip,
        name=body.profile.name,
        context=_context(body.context, body.profile),
    )
    # Acknowledged only now that the pipeline committed it: the widget may forget its copy.
    await sock.deliver(
        {"type": "ack", "client_id": body.client_id, "id": result.message_id, "duplicate": result.duplicate}
    )
    await echo(chat, sock.visitor, result.message_id)


async def echo(chat: Chat, visitor: Visitor, message_id: int) -> None:
    """Show a visitor's stored message in all their open tabs (the sender's included)."""
    async with chat.c.db.read() as session:
        m = await store.visible_message(session, message_id, chat.channel.id)
        if m is None:
            return
        frame = await chat.renderer.frame(session, m, visitor.address)
    chat.remember(m.conversation_id, chat.channel.id, visitor.address)  # its events need no lookup
    await chat.adapter.push(visitor.address, frame)


async def _visitor_typing(sock: VisitorSocket, typing: bool) -> None:
    now = asyncio.get_running_loop().time()
    if typing and sock.typing and now - sock.last_typing < TYPING_EVERY:
        return  # agents already know; repeated keystrokes are not news
    if not typing and not sock.typing:
        return
    sock.typing, sock.last_typing = typing, now
    chat = sock.chat
    async with chat.c.db.write() as session:
        conv_ids = await store.visitor_conversation_ids(session, chat.channel.id, sock.visitor.address)
        if not conv_ids:
            return  # nobody to tell before the first message
        conversation = await session.get(t.Conversation, conv_ids[-1])
        assert conversation is not None
        await record_event(
            session,
            "conversation.typing",
            account_id=conversation.account_id,
            now=chat.c.clock(),
            inbox_id=conversation.inbox_id,
            conversation_id=conversation.id,
            payload={
                "conversation_id": conversation.id,
                "channel_id": conversation.channel_id,
                "who": "contact",
                "typing": typing,
            },
        )


async def _visitor_profile(sock: VisitorSocket, profile: _Profile) -> None:
    """The offline form's email (and name) onto the visitor's contact, if they already wrote."""
    chat = sock.chat
    email = None
    if profile.email:
        try:
            email = normalize_email(profile.email)
        except InvalidAddress:
            await sock.deliver(
                {"type": "error", "code": "bad_email", "message": "that email address looks wrong"}
            )
            return
    async with chat.c.db.write() as session:
        identity = await session.scalar(
            select(t.ContactIdentity).where(
                t.ContactIdentity.account_id == chat.channel.account_id,
                t.ContactIdentity.kind == ChannelKind.WEBCHAT,
                t.ContactIdentity.address == sock.visitor.address,
            )
        )
        if identity is None:
            await sock.deliver({"type": "profile_saved", "stored": False})
            return
        contact = await session.get(t.Contact, identity.contact_id)
        assert contact is not None
        if email:
            contact.email = email
        if profile.name and not contact.name:
            contact.name = profile.name.strip()[:200] or None
    await sock.deliver({"type": "profile_saved", "stored": True})


# -- uploads and media -----------------------------------------------------------------------------------


async def upload(request: web.Request) -> web.StreamResponse:
    chat = await _chat(request)
    if isinstance(chat, web.Response):
        return chat
    ip = _client_ip(request)
    limit = chat.adapter.config.limits.max_upload_bytes
    fields: dict[str, str] = {}
    data: bytes | None = None
    filename: str | None = None
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):
        return chat.cors(request, _json_error(400, "bad_upload", "send the file as multipart/form-data"))
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.name == "file":
            filename = part.filename
            buf = bytearray()
            while chunk := await part.read_chunk(64 * 1024):
                buf.extend(chunk)
                if len(buf) > limit:  # stop reading: no need to take in the rest
                    _LOGGER.warning("webchat %s: refused file_too_large from %s", chat.channel.id, ip)
                    return chat.cors(
                        request,
                        _json_error(413, "file_too_large", f"files may be at most {limit // 1024} KiB"),
                    )
            data = bytes(buf)
        elif part.name in ("key", "identifier", "signature", "client_id", "context"):
            fields[part.name] = (await part.read(decode=True)).decode("utf-8", "replace")[:8192]
    try:
        visitor = chat.adapter.identify(
            key=fields.get("key"),
            identifier=fields.get("identifier"),
            signature=fields.get("signature"),
            ip=ip,
        )
        try:
            raw_context = json.loads(fields.get("context") or "{}")
        except ValueError:
            raw_context = {}
        context = visitor_context(raw_context if isinstance(raw_context, dict) else {})
        result = await chat.adapter.receive_upload(
            visitor,
            client_id=fields.get("client_id", ""),
            data=data or b"",
            filename=filename,
            ip=ip,
            context=context,
        )
    except Refused as exc:
        return chat.cors(request, _refusal(exc))
    await echo(chat, visitor, result.message_id)
    body = {"client_id": fields.get("client_id"), "id": result.message_id, "duplicate": result.duplicate}
    return chat.cors(request, web.json_response(body, status=201))


INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
SERVED_TYPES = INLINE_TYPES | {"application/pdf", "text/plain"}


async def media(request: web.Request) -> web.StreamResponse:
    chat = await _chat(request)
    if isinstance(chat, web.Response):
        return chat
    key = request.match_info["key"]
    kind = request.query.get("t", "")
    expected = media_signature(chat.adapter.signing_secret, key, kind)
    if not hmac.compare_digest(expected, request.query.get("s", "")):
        return _json_error(404, "not_found", "no such file")
    try:
        path = chat.c.media.path_of(key)
    except ValueError:
        return _json_error(404, "not_found", "no such file")
    if not path.exists():
        return _json_error(404, "not_found", "no such file")
    headers = {
        "Content-Type": kind if kind in SERVED_TYPES else "application/octet-stream",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=86400",
    }
    if kind not in INLINE_TYPES:
        headers["Content-Disposition"] = "attachment"
    return web.FileResponse(path, headers=headers)


def add_routes(app: web.Application) -> None:
    install_hub(app)
    app.router.add_get("/widget.js", widget_js)
    app.router.add_get("/demo/", demo_page)
    app.router.add_get("/webchat/{token}/config", widget_config)
    app.router.add_get("/webchat/{token}/ws", visitor_socket)
    app.router.add_post("/webchat/{token}/upload", upload)
    app.router.add_get("/webchat/{token}/media/{key}", media)
