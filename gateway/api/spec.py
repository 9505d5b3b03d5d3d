"""Declaring API operations once: the route, its models, and from them the OpenAPI document.

Each API module has an ``ApiRoutes`` table (like aiohttp's ``RouteTableDef``); handlers receive the
request plus the validated body and query models, and return a pydantic model or a ``web.Response``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway.api.errors import ApiError, validation_error

Handler = Callable[..., Awaitable[Any]]
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list. Pass ``next_cursor`` back as ``cursor`` for the next page."""

    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: Any
    status: int
    public: bool
    body_required: bool = True


class ApiRoutes:
    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: Any = None,
        status: int = 200,
        public: bool = False,
        body_required: bool = True,
    ) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.operations.append(
                Operation(
                    method, path, handler, summary, body, query, response, status, public, body_required
                )
            )
            return handler

        return decorate


async def parse_body(request: web.Request, model: type[M], required: bool = True) -> M:
    raw = await request.read()
    if not raw and not required:
        raw = b"{}"
    if not raw:
        raise ApiError(400, "invalid_json", "the request body is empty; expected a JSON object")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from exc


def parse_query(request: web.Request, model: type[M]) -> M:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise validation_error(exc, where="query") from exc


def _wrap(op: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        kwargs: dict[str, Any] = {}
        if op.body is not None:
            kwargs["body"] = await parse_body(request, op.body, op.body_required)
        if op.query is not None:
            kwargs["query"] = parse_query(request, op.query)
        result = await op.handler(request, **kwargs)
        if isinstance(result, web.StreamResponse):
            return result
        if isinstance(result, BaseModel):
            return web.json_response(text=result.model_dump_json(), status=op.status)
        if result is None:
            return web.Response(status=204)
        return web.json_response(result, status=op.status)

    return handle


def register(app: web.Application, tables: Iterable[ApiRoutes], prefix: str) -> list[Operation]:
    ops: list[Operation] = []
    for table in tables:
        for op in table.operations:
            app.router.add_route(op.method, prefix + op.path, _wrap(op))
            ops.append(op)
    return ops


def openapi_document(ops: Iterable[Operation], prefix: str) -> dict[str, Any]:
    """OpenAPI 3.1 from the declared operations; schemas come from the pydantic models."""
    schemas: dict[str, Any] = {"Error": _ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}

    def ref(model: Any) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            schemas[name] = sub
        name = _schema_name(model)
        schemas[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}

    for op in ops:
        entry: dict[str, Any] = {
            "summary": op.summary,
            "operationId": op.handler.__name__,
            "responses": {
                "4XX": {
                    "description": "error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
            },
        }
        if not op.public:
            entry["security"] = [{"bearer": []}]
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
            for name in _path_params(op.path)
        ]
        if op.query is not None:
            qschema = op.query.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(qschema.pop("$defs", {}))
            for name, prop in qschema.get("properties", {}).items():
                params.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": name in qschema.get("required", []),
                        "schema": prop,
                    }
                )
        if params:
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {
                "required": op.body_required,
                "content": {"application/json": {"schema": ref(op.body)}},
            }
        if op.response is not None:
            entry["responses"][str(op.status)] = {
                "description": "ok",
                "content": {"application/json": {"schema": ref(op.response)}},
            }
        else:
            entry["responses"][str(op.status)] = {"description": "ok"}
        paths.setdefault(prefix + op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "Switchboard API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _schema_name(model: Any) -> str:
    return str(model.__name__).replace("[", "_").replace("]", "").replace(",", "_").replace(" ", "")


def _path_params(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
        }
    },
}
