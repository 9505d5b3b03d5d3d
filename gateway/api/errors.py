"""The one error shape: ``{"error": {"code", "message", "details"}}`` with a fitting status."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from inbox.queries import BadCursor

_LOGGER = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def error_response(status: int, code: str, message: str, details: Any = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, "details": details}}, status=status)


def validation_error(exc: ValidationError, where: str = "body") -> ApiError:
    """422 naming every offending field, e.g. ``text: Input should be a valid string``."""
    details = [
        {"field": ".".join(str(p) for p in err["loc"]) or where, "problem": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]
    summary = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
    return ApiError(422, "validation_error", f"invalid {where}: {summary}", details)


def field_error(field: str, problem: str) -> ApiError:
    """422 naming one field of the body, e.g. ``owner_id: user 9 does not exist``."""
    return ApiError(422, "validation_error", f"{field}: {problem}", [{"field": field, "problem": problem}])


def not_found(what: str, ident: object) -> ApiError:
    return ApiError(404, "not_found", f"{what} {ident} does not exist or is not visible to you")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    except BadCursor as exc:
        return error_response(400, "bad_cursor", f"{exc}; start again without a cursor")
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith(("/api/", "/webhooks/")):
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status, "http_error")
        message = exc.reason if exc.status != 404 else f"no such endpoint: {request.method} {request.path}"
        return error_response(exc.status, code, message)
    except Exception:
        _LOGGER.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "the server failed to handle this request")
