"""Files agents attach to replies: upload first (``POST /uploads``), then reference the upload's id.

The type is what the file's own bytes say (``channels.media.sniff``), never the browser's claim; each
channel's limits (``MediaLimits``) are checked before the reply is stored, so a file the channel would
refuse is a 422 naming the limit and nothing is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from aiohttp import BodyPartReader, web
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.email.outbound import MEDIA_LIMITS as EMAIL_LIMITS
from channels.media import ANY_TYPE, OCTET_STREAM, MediaLimits, sniff
from channels.telegram.adapter import MEDIA_LIMITS as TELEGRAM_LIMITS
from channels.webchat.config import WebchatConfig
from channels.webchat.uploads import safe_filename
from channels.whatsapp.payloads import MEDIA_LIMITS as WHATSAPP_LIMITS
from gateway.api.context import container_of, user_of
from gateway.api.errors import ApiError, field_error
from gateway.api.spec import ApiRoutes
from inbox import tables as t
from inbox.model import Attachment, ChannelKind

api = ApiRoutes()

MAX_FILES = 10  # per reply, on any channel


class UploadView(BaseModel):
    id: int
    content_type: str  # sniffed from the bytes; application/octet-stream when unrecognized
    filename: str
    size: int
    created_at: datetime


def media_limits(channel: t.Channel) -> MediaLimits:
    """What one outgoing message on this channel may carry."""
    kind = ChannelKind(channel.kind)
    if kind == ChannelKind.WHATSAPP:
        return WHATSAPP_LIMITS
    if kind == ChannelKind.TELEGRAM:
        return TELEGRAM_LIMITS
    if kind == ChannelKind.EMAIL:
        return EMAIL_LIMITS
    if kind == ChannelKind.WEBCHAT:
        return WebchatConfig.of(channel.config or {}).media_limits()
    return MediaLimits(channel.name, max_files=MAX_FILES, sizes={ANY_TYPE: 2**62})


@api.route(
    "POST",
    "/uploads",
    summary="Upload a file (multipart/form-data, field `file`) to attach to a reply by its id",
    response=UploadView,
    status=201,
)
async def create_upload(request: web.Request) -> UploadView:
    user = user_of(request)
    c = container_of(request)
    limit = c.media.max_bytes
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):
        raise field_error("file", "send the file as multipart/form-data in the field 'file'") from None
    data: bytes | None = None
    filename: str | None = None
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name != "file":
            continue
        filename = part.filename
        buf = bytearray()
        while chunk := await part.read_chunk(64 * 1024):
            buf.extend(chunk)
            if len(buf) > limit:  # stop reading: the rest is not needed to refuse it
                raise ApiError(
                    422,
                    "file_too_large",
                    f"file: files may be at most {limit // (1024 * 1024)} MB",
                    [{"field": "file", "problem": f"over {limit} bytes"}],
                )
        data = bytes(buf)
        break
    if not data:
        raise field_error("file", "no file, or an empty one, in the field 'file'")
    key = await c.media.put(data)
    now = c.clock()
    row = t.Upload(
        account_id=user.account_id,
        user_id=user.id,
        media_key=key,
        content_type=sniff(data) or OCTET_STREAM,
        filename=safe_filename(filename),
        size=len(data),
        created_at=now,
    )
    async with c.db.write() as session:
        session.add(row)
        await session.flush()
        return UploadView(
            id=row.id, content_type=row.content_type, filename=row.filename, size=row.size, created_at=now
        )


async def reply_attachments(
    session: AsyncSession, user: t.User, channel: t.Channel | None, upload_ids: Sequence[int]
) -> tuple[Attachment, ...]:
    """The uploads as attachments, checked against the channel's limits (None: a private note).

    422 naming ``attachments[i]`` for an unknown upload, or the channel's limit a file breaks.
    """
    if not upload_ids:
        return ()
    rows = {
        u.id: u
        for u in await session.scalars(
            select(t.Upload).where(t.Upload.id.in_(set(upload_ids)), t.Upload.user_id == user.id)
        )
    }
    uploads = []
    for i, upload_id in enumerate(upload_ids):
        row = rows.get(upload_id)
        if row is None:
            raise field_error(f"attachments[{i}]", f"upload {upload_id} does not exist or is not yours")
        uploads.append(row)
    if channel is not None:
        problem = media_limits(channel).problem([(u.content_type, u.size) for u in uploads])
        if problem is not None:
            details = [{"field": "attachments", "problem": problem}]
            raise ApiError(422, "attachment_refused", f"attachments: {problem}", details)
    return tuple(
        Attachment(content_type=u.content_type, filename=u.filename, size=u.size, media_key=u.media_key)
        for u in uploads
    )
