"""JSON batching: ``POST /v1.0/$batch`` (learn.microsoft.com/graph/json-batching).

- The body is ``{"requests": [{"id", "method", "url", "headers"?, "body"?}]}``, ``url`` relative
  to the version (``/users/{id}/photo``); at most 20 requests, else the whole batch is a 400.
- The batch answers 200 with ``{"responses": [{"id", "status", "headers", "body"}]}``, in any
  order; each inner response has its own status, and a throttled inner request its own 429 with
  ``Retry-After`` (json-batching "Handling throttling"; concepts/throttling.md). A binary body
  (``$value``) comes base64-encoded, and so may a JSON one (``photos.encode_batched_bodies``).
- The token is the batch's: each inner request is authorised with it.

The simulator serves the photo requests inside a batch (simulator/photos.py); any other inner
URL is answered 501 inside the batch, so a test notices a request the simulator does not model.
Each inner request is logged with surface ``"batch"``.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .context import context_of
from .graph_query import GraphError
from .log import RequestRecord
from .photos import READ_PHOTOS, answer, is_photo_path

MAX_REQUESTS = 20


async def handle(request: web.Request, authenticate: Any, root: str) -> dict[str, Any]:
    """The batch's answer body; GraphError for a batch refused whole."""
    if request.method != "POST":
        raise GraphError(
            405, "Request_BadRequest", "Specified HTTP method is not allowed.", {"Allow": "POST"}
        )
    try:
        body = json.loads(await request.read())
    except ValueError:
        raise GraphError(400, "BadRequest", "Invalid batch payload format.") from None
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise GraphError(400, "BadRequest", "Invalid batch payload format.")
    if len(requests) > MAX_REQUESTS:
        raise GraphError(
            400,
            "BadRequest",
            f"Number of batch request steps exceeds the maximum of {MAX_REQUESTS}.",
        )
    ids = [r.get("id") if isinstance(r, dict) else None for r in requests]
    if any(not isinstance(i, str) or not i for i in ids) or len(set(ids)) != len(ids):
        raise GraphError(400, "BadRequest", "Batch request ids must be unique non-empty strings.")
    grant = authenticate(request)  # the roles are checked per inner request
    return {"responses": [_inner(request, grant, r, root) for r in requests]}


def _inner(request: web.Request, grant: Any, item: dict[str, Any], root: str) -> dict[str, Any]:
    ctx = context_of(request)
    method = str(item.get("method", "")).upper()
    path = urlsplit(str(item.get("url", ""))).path
    segments = [s for s in path.split("/") if s]
    status, headers, body = _answer(ctx, grant, method, segments, root)
    ctx.log.append(
        RequestRecord(
            time=time.time(),
            method=method,
            path="/v1.0/" + "/".join(segments),
            query={},
            surface="batch",
            tenant=grant.tenant_id,
            status=status,
            fault="inner_fault" if status in (429, 503) else None,
            headers={},
        )
    )
    return {"id": item["id"], "status": status, "headers": headers, "body": body}


def _answer(
    ctx: Any, grant: Any, method: str, segments: list[str], root: str
) -> tuple[int, dict[str, str], Any]:
    if method != "GET":
        return _error(405, "Request_BadRequest", "The simulator's batches hold reads only.")
    if not is_photo_path(segments):
        return _error(501, "NotImplemented", "The simulator's $batch serves photo requests.")
    if not READ_PHOTOS.intersection(grant.roles):
        return _error(403, "Authorization_RequestDenied", "Insufficient privileges.")
    fault = ctx.photos.take_inner_fault()
    if fault is not None:
        status, wait = fault
        code = "TooManyRequests" if status == 429 else "ServiceUnavailable"
        status_, headers, body = _error(status, code, "Retry later.")
        if wait is not None:
            headers["Retry-After"] = str(wait)
        return status_, headers, body
    user = ctx.directory.user(grant.tenant_id, segments[1])
    try:
        found = answer(ctx.photos, grant.tenant_id, user, segments[2:], root)
    except GraphError as error:
        return _error(error.status, error.code, error.message)
    if found.content is not None:
        return 200, dict(found.headers), base64.b64encode(found.content).decode()
    if ctx.photos.take_encoded_body():
        return 200, dict(found.headers), base64.b64encode(json.dumps(found.json).encode()).decode()
    return 200, dict(found.headers), found.json


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], Any]:
    return (
        status,
        {"Content-Type": "application/json"},
        {"error": {"code": code, "message": message}},
    )
