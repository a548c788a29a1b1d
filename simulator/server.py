"""The aiohttp application: every surface's routes behind one middleware that injects faults and
records each request."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web

from . import control, graph, identity, vault
from .context import CONTEXT, Context, request_id, utc_now
from .faults import EXPIRED_PAGE_TOKEN, MALFORMED_FORMS, Fault
from .graph_query import expired_page_token
from .log import RequestRecord, safe_headers, safe_query
from .tokens import TokenError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_application(ctx: Context) -> web.Application:
    app = web.Application(middlewares=[_observe])
    app[CONTEXT] = ctx
    # Graph, vault and control first: their literal prefixes must win over "/{tenant}/...".
    app.add_routes(control.routes() + graph.routes() + vault.routes() + identity.routes())
    return app


def surface_of(path: str) -> str:
    if path.startswith("/_sim/"):
        return "control"
    if path.startswith("/v1.0/") or path == "/v1.0":
        return "graph"
    if path.startswith("/secrets/"):
        return "vault"
    if path.startswith("/msi/"):
        return "msi"
    return "token"


@web.middleware
async def _observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    surface = surface_of(request.path)
    injected: list[str] = []
    status: int | None = None
    try:
        if surface != "control":
            delay = ctx.faults.delay_ms(request.path)
            if delay:
                injected.append("latency")
                await asyncio.sleep(delay / 1000)
            follows_next_link = any(key.lower() == "$skiptoken" for key in request.query)
            fault = ctx.faults.take(request.path, follows_next_link=follows_next_link)
            if fault is not None:
                injected.append(fault.kind)
                if fault.kind in MALFORMED_FORMS:
                    response = _malformed(request, fault.kind, await handler(request))
                    status = response.status
                    return response
                if fault.kind == EXPIRED_PAGE_TOKEN:
                    response = graph.graph_error(request, expired_page_token())
                    status = response.status
                    return response
                if fault.kind == "drop_connection":
                    if request.transport is not None:
                        request.transport.abort()
                    return web.Response(status=499)  # never reaches the client
                if fault.kind == "cut_body":
                    return await _cut_body(request, await handler(request))
                response: web.StreamResponse = _fault_response(request, fault)
                status = response.status
                return response
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        ctx.log.append(
            RequestRecord(
                time=time.time(),
                method=request.method,
                path=request.path,
                query=safe_query(request.query),
                surface=surface,
                tenant=_tenant_of(request, ctx, surface),
                status=status,
                fault="+".join(injected) or None,
                headers=safe_headers(request.headers),
            )
        )


async def _cut_body(request: web.Request, answer: web.StreamResponse) -> web.StreamResponse:
    body = (
        answer.body if isinstance(answer, web.Response) and isinstance(answer.body, bytes) else b""
    )
    stream = web.StreamResponse(
        status=answer.status,
        headers={"Content-Type": answer.content_type, "Content-Length": str(len(body))},
    )
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.abort()
    return stream


# Where a foreign next link points: a host the app never asked for (RFC 2606 reserved name).
FOREIGN_HOST = "graph.example.net"


def _malformed(request: web.Request, form: str, answer: web.StreamResponse) -> web.Response:
    """The real answer altered into one of the forms a proxy or a faulty gateway can send."""
    headers = {"request-id": request_id(request)}
    if form == "empty_body":
        return web.Response(status=200, headers=headers, content_type="application/json")
    if form == "no_content":
        return web.Response(status=204, headers=headers)
    raw = answer.body if isinstance(answer, web.Response) else None
    if answer.status != 200 or not isinstance(raw, bytes):
        return answer  # an error stays an error: only a page can be malformed
    body = json.loads(raw)
    if form == "no_value":
        body.pop("value", None)
    elif form == "value_not_list":
        body["value"] = {user["id"]: user for user in body.get("value", [])}
    elif form == "item_without_id" and body.get("value"):
        body["value"][0].pop("id", None)
    elif form == "member_without_id":
        carrying = [g for g in body.get("value", []) if g.get("members@delta")]
        if carrying:
            carrying[0]["members@delta"][0].pop("id", None)
    elif form == "foreign_next_link":
        link = urlsplit(body.get("@odata.nextLink") or str(request.url))
        port = f":{link.port}" if link.port else ""
        body["@odata.nextLink"] = urlunsplit(link._replace(netloc=FOREIGN_HOST + port))
    elif form == "repeat_next_link":
        body["@odata.nextLink"] = str(request.url)
    elif form == "responses_not_list":
        body["responses"] = len(body.get("responses", []))
    return web.json_response(body, headers=headers)


def _fault_response(request: web.Request, fault: Fault) -> web.Response:
    if fault.kind == "bad_gateway":
        page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
        return web.Response(status=502, text=page, content_type="text/html")
    if fault.kind == "throttle":
        status, code, message = 429, "TooManyRequests", "Too many requests. Retry later."
    else:
        status, code = 503, "ServiceUnavailable"
        message = "The service is temporarily unavailable. Retry later."
    headers = {"request-id": request_id(request)}
    if fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": utc_now().strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id(request),
                "client-request-id": request.headers.get("client-request-id", request_id(request)),
            },
        }
    }
    return web.json_response(body, status=status, headers=headers)


def _tenant_of(request: web.Request, ctx: Context, surface: str) -> str | None:
    if surface == "token":
        name = request.path.strip("/").split("/", 1)[0]
        found = ctx.directory.find_tenant(name) if name else None
        return found.id if found else name or None
    if surface == "msi":
        identity_ = ctx.world.managed_identity
        return identity_.tenant_id if identity_ else None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        try:
            return ctx.issuer.verify(token.strip()).tenant_id
        except TokenError:
            return None
    return None
