"""A small Graph API client over one ``aiohttp.ClientSession`` (opened by the adapter's ``start``)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from channels.whatsapp.config import WhatsAppConfig
from channels.whatsapp.errors import error_for_response
from inbox.model import ChannelError, PermanentChannelError, Reason, TransientChannelError

MAX_MEDIA_BYTES = 25 * 1024 * 1024


class GraphClient:
    def __init__(self, config: WhatsAppConfig, session: aiohttp.ClientSession) -> None:
        self._config = config
        self._session = session

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._config.access_token}"}

    async def post_message(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /{phone-number-id}/messages``; raises Transient/PermanentChannelError on failure."""
        url = f"{self._config.graph}/{self._config.phone_number_id}/messages"
        return await self._call("POST", url, json_body=body)

    async def upload_media(self, data: bytes, content_type: str, filename: str) -> str:
        """``POST /{phone-number-id}/media`` (multipart); returns the media id to send by."""
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", content_type)
        form.add_field("file", data, filename=filename, content_type=content_type)
        url = f"{self._config.graph}/{self._config.phone_number_id}/media"
        answer = await self._call("POST", url, data=form)
        media_id = answer.get("id")
        if not isinstance(media_id, str):
            raise TransientChannelError("media upload answered without an id")
        return media_id

    async def get(self, path: str) -> dict[str, Any]:
        """``GET /{path}`` on the Graph API (e.g. ``{waba-id}/message_templates``)."""
        return await self._call("GET", f"{self._config.graph}/{path}")

    async def media_info(self, media_id: str) -> dict[str, Any]:
        """``GET /{media-id}``: a short-lived download URL, mime type, sha256 and size."""
        return await self._call("GET", f"{self._config.graph}/{media_id}")

    async def download(self, url: str) -> bytes:
        """The media bytes; the download URL needs the same bearer token."""
        try:
            async with self._session.get(url, headers=self._auth) as resp:
                if resp.status >= 400:
                    raise error_for_response(resp.status, await _json_or_none(resp))
                if (resp.content_length or 0) > MAX_MEDIA_BYTES:
                    raise PermanentChannelError(Reason.CHANNEL_ERROR, "media is over 25 MB")
                data = await resp.content.read(MAX_MEDIA_BYTES + 1)
                if len(data) > MAX_MEDIA_BYTES:
                    raise PermanentChannelError(Reason.CHANNEL_ERROR, "media is over 25 MB")
                return data
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransientChannelError(f"media download failed: {type(exc).__name__}") from exc

    async def _call(
        self, method: str, url: str, *, json_body: Any = None, data: Any = None
    ) -> dict[str, Any]:
        try:
            async with self._session.request(
                method, url, json=json_body, data=data, headers=self._auth
            ) as resp:
                body = await _json_or_none(resp)
                if resp.status >= 400:
                    raise error_for_response(resp.status, body, _retry_after(resp))
                if not isinstance(body, dict):
                    raise TransientChannelError(f"HTTP {resp.status} without a JSON object")
                return body
        except ChannelError:
            raise
        except (TimeoutError, aiohttp.ClientError) as exc:
            # Connection refused, reset, timeout: nothing says the message went; try again later.
            raise TransientChannelError(f"{method} {url.split('?')[0]}: {type(exc).__name__}") from exc


async def _json_or_none(resp: aiohttp.ClientResponse) -> Any:
    try:
        return json.loads(await resp.read())
    except ValueError:
        return None


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    value = resp.headers.get("Retry-After", "")
    return float(value) if value.isascii() and value.isdigit() else None  # "²".isdigit()
