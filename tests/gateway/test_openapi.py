"""The OpenAPI document describes exactly the routes the server has."""

from __future__ import annotations

from tests.harness import Gateway


async def test_openapi_matches_the_routes(gateway: Gateway):
    async with gateway.http.get(f"{gateway.base_url}/api/v1/openapi.json") as resp:
        assert resp.status == 200
        doc = await resp.json()
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    app = gateway.runner.app
    served = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path and path.startswith("/api/v1/") and route.method != "HEAD":
            served.add((route.method, path))
    undocumented_ok = {("GET", "/api/v1/openapi.json"), ("GET", "/api/v1/stream")}
    assert served - undocumented_ok == documented
    for method, path in documented:
        op = doc["paths"][path][method.lower()]
        assert op["summary"] and "4XX" in op["responses"]
    # Every $ref resolves.
    schemas = doc["components"]["schemas"]

    def refs(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    yield v
                else:
                    yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    for ref in refs(doc):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
