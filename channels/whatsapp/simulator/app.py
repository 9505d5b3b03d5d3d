"""HTTP in front of the ``Simulator``: the Graph API the business calls, and the phones page's API.

Mount it at ``/simulator`` (the gateway does with ``settings.simulator``; ``switchboard simulator`` runs
it alone): the Graph base URL is then ``{host}/simulator/graph`` and the phones page ``/simulator/``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from channels.whatsapp.simulator.platform import ForcedError, GraphAnswer, Simulator, graph_error, wa_id_of

STATIC = Path(__file__).parent / "static"
SIMULATOR = web.AppKey("whatsapp_simulator", Simulator)
MAX_UPLOAD = 16 * 1024 * 1024
VERSION = r"{version:v[0-9]+\.[0-9]+}"


def create_simulator_app(simulator: Simulator) -> web.Application:
    """The simulator as an aiohttp app (start/stop of its webhook sender tied to the app's)."""
    app = web.Application(client_max_size=MAX_UPLOAD + 1024 * 1024)
    app[SIMULATOR] = simulator
    app.router.add_post(f"/graph/{VERSION}/{{phone_number_id}}/messages", graph_messages)
    app.router.add_post(f"/graph/{VERSION}/{{phone_number_id}}/media", graph_upload)
    app.router.add_get(f"/graph/{VERSION}/{{waba_id}}/message_templates", graph_templates)
    app.router.add_get(f"/graph/{VERSION}/{{media_id}}", graph_media_info)
    app.router.add_get("/lookaside/{media_id}", graph_download, name="lookaside")
    app.router.add_get("/", page)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/api/state", phone_state)
    app.router.add_post("/api/contacts", phone_new_contact)
    app.router.add_post("/api/send", phone_send)
    app.router.add_post("/api/read", phone_read)
    app.router.add_post("/api/online", phone_online)
    app.router.add_post("/api/marketing", phone_marketing)
    app.router.add_get("/api/media/{media_id}", phone_media)
    app.router.add_post("/api/control", control)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_release_polls)
    return app


async def _release_polls(app: web.Application) -> None:
    app[SIMULATOR].close_waiters()


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    await app[SIMULATOR].start()
    yield
    await app[SIMULATOR].stop()


def _sim(request: web.Request) -> Simulator:
    return request.app[SIMULATOR]


def _graph(answer: GraphAnswer) -> web.Response:
    status, body = answer
    return web.json_response(body, status=status)


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


# -- Graph API (the business's side) ----------------------------------------------------------------


async def graph_messages(request: web.Request) -> web.Response:
    sim = _sim(request)
    business = await sim.authorize(
        request.match_info["phone_number_id"], request.headers.get("Authorization")
    )
    if isinstance(business, tuple):
        return _graph(business)
    try:
        body = json.loads(await request.read())
    except ValueError:
        return _graph(graph_error(100, "Invalid parameter", "the body is not JSON"))
    return _graph(await sim.send_from_business(business, body))


async def graph_templates(request: web.Request) -> web.Response:
    sim = _sim(request)
    return _graph(
        await sim.list_templates(request.match_info["waba_id"], request.headers.get("Authorization"))
    )


async def graph_upload(request: web.Request) -> web.Response:
    sim = _sim(request)
    business = await sim.authorize(
        request.match_info["phone_number_id"], request.headers.get("Authorization")
    )
    if isinstance(business, tuple):
        return _graph(business)
    if not request.content_type.startswith("multipart/"):
        return _graph(graph_error(100, "Invalid parameter", "upload media as multipart/form-data"))
    data: bytes | None = None
    mime = "application/octet-stream"
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and part.name == "file":
            mime = part.headers.get("Content-Type", mime)
            data = await part.read(decode=False)
    if not data:
        return _graph(graph_error(100, "Invalid parameter", "no file part"))
    return web.json_response({"id": sim.put_media(bytes(data), mime)})


async def graph_media_info(request: web.Request) -> web.Response:
    sim = _sim(request)
    if await sim.business_by_token(request.headers.get("Authorization")) is None:
        return _graph(
            graph_error(190, "Invalid OAuth access token - Cannot parse access token", http_status=401)
        )
    media_id = request.match_info["media_id"]
    url = request.url.join(request.app.router["lookaside"].url_for(media_id=media_id))
    info = sim.media_info(media_id, str(url))
    if info is None:
        return _graph(
            graph_error(100, "Invalid parameter", f"media {media_id} does not exist", http_status=404)
        )
    return web.json_response(info)


async def graph_download(request: web.Request) -> web.Response:
    sim = _sim(request)
    # Like Meta's lookaside URLs, the download needs the bearer token too.
    if await sim.business_by_token(request.headers.get("Authorization")) is None:
        return web.Response(status=401, text="unauthorized")
    media = sim.media.get(request.match_info["media_id"])
    if media is None:
        return web.Response(status=404, text="not found")
    return web.Response(body=media.data, content_type=media.mime_type)


# -- the phones page ----------------------------------------------------------------------------------


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except ValueError:
        raise web.HTTPBadRequest(text="body is not JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body is not a JSON object")
    return body


async def phone_state(request: web.Request) -> web.Response:
    """Everything the page shows; with ``since`` it waits (long poll, ≤ 25 s) for a change first."""
    sim = _sim(request)
    since = request.query.get("since", "")
    if since.isascii() and since.isdigit():  # "²".isdigit() is true, int("²") fails
        await sim.wait_for_change(int(since), timeout=25.0)
    if sim.closing:
        return web.json_response({"error": "shutting down"}, status=503)
    businesses = await sim.directory.businesses()
    business = request.query.get("business") or (businesses[0].phone_number_id if businesses else "")
    contact = request.query.get("contact", "")
    thread = sim.thread(business, contact) if contact else []
    return web.json_response(
        {
            "version": sim.version,
            "businesses": [
                {
                    "phone_number_id": b.phone_number_id,
                    "display_phone_number": b.display_phone_number,
                    "name": b.name,
                }
                for b in businesses
            ],
            "contacts": [
                {
                    "wa_id": c.wa_id,
                    "name": c.name,
                    "online": c.online,
                    "marketing_stopped": c.marketing_stopped,
                }
                for c in sim.contacts.values()
            ],
            "business": business,
            "messages": [m.view() for m in thread],
            "window_open": bool(contact) and sim.window_open(business, contact),
        }
    )


async def phone_new_contact(request: web.Request) -> web.Response:
    body = await _json(request)
    wa_id = wa_id_of(str(body.get("number", "")))
    if wa_id is None:
        return _bad("not a phone number (write it with the country code, e.g. +5511987654321)")
    name = str(body.get("name") or "").strip()[:80] or None
    contact = _sim(request).contact(wa_id, name)
    return web.json_response({"wa_id": contact.wa_id, "name": contact.name}, status=201)


async def phone_send(request: web.Request) -> web.Response:
    """The contact sends: ``{business, contact, type: text|image|button_reply|button|location, ...}``.

    With ``"wait": true`` it answers once the business's webhook acknowledged (the load generator).
    """
    sim = _sim(request)
    body = await _json(request)
    wa_id = wa_id_of(str(body.get("contact", "")))
    if wa_id is None:
        return _bad("contact must be a phone number")
    kind = str(body.get("type", "text"))
    context = body.get("reply_to") if isinstance(body.get("reply_to"), str) else None
    content: dict[str, Any]
    if kind == "text":
        text = str(body.get("text", ""))
        if not text.strip() or len(text) > 4096:
            return _bad("text must have 1 to 4096 characters")
        content = {"body": text}
    elif kind == "image":
        try:
            data = base64.b64decode(str(body.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            return _bad("image data must be base64")
        if not data or len(data) > MAX_UPLOAD:
            return _bad("image must have 1 byte to 16 MB")
        mime = str(body.get("mime_type") or "image/jpeg")
        media_id = sim.put_media(data, mime)
        content = {"mime_type": mime, "sha256": sim.media[media_id].sha256, "id": media_id}
        if body.get("text"):
            content["caption"] = str(body["text"])
    elif kind == "button_reply":  # tap on an interactive reply button of a business message
        kind, content = (
            "interactive",
            {
                "type": "button_reply",
                "button_reply": {"id": str(body.get("button_id", "")), "title": str(body.get("text", ""))},
            },
        )
    elif kind == "button":  # tap on a template's quick-reply button
        title = str(body.get("text", ""))
        content = {"payload": str(body.get("payload") or title), "text": title}
    elif kind == "location":
        try:
            content = {
                "latitude": float(body.get("latitude", 0)),
                "longitude": float(body.get("longitude", 0)),
            }
        except (TypeError, ValueError):
            return _bad("latitude and longitude must be numbers")
        if body.get("text"):
            content["name"] = str(body["text"])
    else:
        return _bad(f"unknown type {kind!r}")
    name = str(body["name"]) if body.get("name") else None
    try:
        message, delivery = await sim.contact_sends(
            str(body.get("business", "")), wa_id, kind, content, name=name, context=context
        )
    except LookupError as exc:
        return _bad(str(exc), 404)
    answer: dict[str, Any] = {"id": message.wamid}
    if body.get("wait"):
        await delivery.done.wait()
        answer.update(acknowledged=delivery.acknowledged, latency_ms=(delivery.latency or 0) * 1000)
    return web.json_response(answer, status=201)


async def phone_read(request: web.Request) -> web.Response:
    body = await _json(request)
    wa_id = wa_id_of(str(body.get("contact", "")))
    if wa_id is None:
        return _bad("contact must be a phone number")
    count = await _sim(request).read_all(str(body.get("business", "")), wa_id)
    return web.json_response({"read": count})


async def phone_online(request: web.Request) -> web.Response:
    body = await _json(request)
    wa_id = wa_id_of(str(body.get("contact", "")))
    if wa_id is None:
        return _bad("contact must be a phone number")
    await _sim(request).set_online(wa_id, bool(body.get("online", True)))
    return web.json_response({"online": bool(body.get("online", True))})


async def phone_marketing(request: web.Request) -> web.Response:
    body = await _json(request)
    wa_id = wa_id_of(str(body.get("contact", "")))
    if wa_id is None:
        return _bad("contact must be a phone number")
    sim = _sim(request)
    sim.set_marketing_stopped(wa_id, bool(body.get("stopped", True)))
    return web.json_response({"marketing_stopped": sim.contact(wa_id).marketing_stopped})


async def phone_media(request: web.Request) -> web.Response:
    media = _sim(request).media.get(request.match_info["media_id"])
    if media is None:
        return web.Response(status=404, text="not found")
    return web.Response(body=media.data, content_type=media.mime_type)


async def control(request: web.Request) -> web.Response:
    """Test knobs: ``window_mode``, ``duplicate_next``, ``fail_next`` [{http_status, code, message}]."""
    sim = _sim(request)
    body = await _json(request)
    if body.get("window_mode") in ("sync", "status"):
        sim.settings.window_mode = body["window_mode"]
    if isinstance(body.get("duplicate_next"), int):
        sim.duplicate_next = max(0, body["duplicate_next"])
    for forced in body.get("fail_next") or []:
        if isinstance(forced, dict) and isinstance(forced.get("code"), int):
            sim.forced_errors.append(
                ForcedError(
                    int(forced.get("http_status", 400)), forced["code"], str(forced.get("message", "error"))
                )
            )
    return web.json_response(
        {
            "window_mode": sim.settings.window_mode,
            "duplicate_next": sim.duplicate_next,
            "fail_next": len(sim.forced_errors),
        }
    )
