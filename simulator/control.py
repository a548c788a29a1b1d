"""The control API under ``/_sim/``: what the Python API offers, over HTTP, for a standalone
simulator (``python -m simulator serve``) driven from a shell or another process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from aiohttp import web

from .context import context_of
from .directory import UnknownTenantError
from .faults import USERS_PREFIX
from .world import Tenant, WorldError


def routes() -> list[web.RouteDef]:
    return [
        web.get("/_sim/health", health),
        web.get("/_sim/requests", list_requests),
        web.delete("/_sim/requests", clear_requests),
        web.get("/_sim/faults", list_faults),
        web.post("/_sim/faults", add_fault),
        web.delete("/_sim/faults", clear_faults),
        web.post("/_sim/tokens/expire", expire_tokens),
        web.get("/_sim/consent", get_consent),
        web.put("/_sim/consent", plan_consent),
        web.delete("/_sim/consent", clear_consent),
        web.post("/_sim/apps/{client}/redirectUris", add_redirect_uri),
        web.post("/_sim/tenants", add_tenant),
        web.put("/_sim/tenants/{tenant}/consents/{client}", set_consent),
        web.put("/_sim/tenants/{tenant}/users/{user}", put_user),
        web.patch("/_sim/tenants/{tenant}/users/{user}", patch_user),
        web.delete("/_sim/tenants/{tenant}/users/{user}", delete_user),
        web.post("/_sim/tenants/{tenant}/users/{user}/restore", restore_user),
        web.put("/_sim/tenants/{tenant}/groups/{group}", put_group),
        web.delete("/_sim/tenants/{tenant}/groups/{group}", delete_group),
        web.post("/_sim/tenants/{tenant}/groups/{group}/members", add_member),
        web.delete("/_sim/tenants/{tenant}/groups/{group}/members/{member}", remove_member),
        web.get("/_sim/delta", list_delta),
        web.post("/_sim/delta", add_delta),
        web.delete("/_sim/delta", clear_delta),
    ]


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", **asdict(context_of(request).endpoints)})


async def list_requests(request: web.Request) -> web.Response:
    records = context_of(request).log.snapshot()
    return web.json_response({"value": [r.to_dict() for r in records]})


async def clear_requests(request: web.Request) -> web.Response:
    context_of(request).log.clear()
    return web.Response(status=204)


async def list_faults(request: web.Request) -> web.Response:
    return web.json_response(context_of(request).faults.describe())


async def add_fault(request: web.Request) -> web.Response:
    """Body: ``{"kind": "throttle"|"unavailable"|"dropConnection"|"latency"|"malformedPage"|
    "expiredPageToken"|"pageTokenLifetime", "count": 2, "retryAfter": 1, "pathPrefix": "/v1.0/",
    "after": 0, "ms": 250, "form": "no_value", "seconds": 30}``. ``form`` is one of
    ``faults.MALFORMED_FORMS``; ``seconds`` null makes page tokens last forever again."""
    faults = context_of(request).faults
    body = await _body(request)
    kind = body.get("kind")
    listing = kind in ("malformedPage", "expiredPageToken")
    prefix = body.get("pathPrefix", USERS_PREFIX if listing else "/v1.0/")
    try:
        count, after = int(body.get("count", 1)), int(body.get("after", 0))
        if kind == "throttle":
            faults.throttle(count, int(body.get("retryAfter", 1)), prefix, after)
        elif kind == "unavailable":
            retry_after = body.get("retryAfter")
            faults.unavailable(
                count, None if retry_after is None else int(retry_after), prefix, after
            )
        elif kind == "dropConnection":
            faults.drop_connection(count, prefix, after)
        elif kind == "latency":
            faults.latency(int(body.get("ms", 0)), prefix)
        elif kind == "malformedPage":
            faults.malformed_page(str(body.get("form")), count, prefix, after)
        elif kind == "expiredPageToken":
            faults.expire_page_tokens(count, prefix, after)
        elif kind == "pageTokenLifetime":
            seconds = body.get("seconds")
            faults.page_token_lifetime(None if seconds is None else float(seconds))
        else:
            raise ValueError(
                f"unknown fault kind {kind!r}: use throttle, unavailable, dropConnection, "
                "latency, malformedPage, expiredPageToken or pageTokenLifetime"
            )
    except (TypeError, ValueError) as error:
        raise _bad_request(str(error)) from None
    return web.Response(status=204)


async def clear_faults(request: web.Request) -> web.Response:
    context_of(request).faults.clear()
    return web.Response(status=204)


async def expire_tokens(request: web.Request) -> web.Response:
    context_of(request).issuer.expire_all()
    return web.Response(status=204)


async def get_consent(request: web.Request) -> web.Response:
    return web.json_response(context_of(request).consent.describe())


async def plan_consent(request: web.Request) -> web.Response:
    """Body: ``{"tenant": "<id>", "outcome": "accept"|"cancel"|"not_admin"|"app_blocked",
    "replicationDelay": 5, "replicationEffect": "token"|"graph", "auto": false}``."""
    body = await _body(request)
    try:
        context_of(request).consent.plan(
            tenant_id=body.get("tenant"),
            outcome=str(body.get("outcome", "accept")),
            replication_delay=float(body.get("replicationDelay", 0)),
            replication_effect=str(body.get("replicationEffect", "token")),
            auto=bool(body.get("auto", False)),
        )
    except (TypeError, ValueError) as error:
        raise _bad_request(str(error)) from None
    return web.Response(status=204)


async def clear_consent(request: web.Request) -> web.Response:
    context_of(request).consent.clear()
    return web.Response(status=204)


async def add_redirect_uri(request: web.Request) -> web.Response:
    """Body: ``{"uri": "https://..."}``: registered on the app for admin consent."""
    ctx = context_of(request)
    client = request.match_info["client"]
    if ctx.world.app(client) is None:
        raise _not_found(f"no app {client!r}")
    try:
        ctx.consent.add_redirect_uri(client, str((await _body(request)).get("uri", "")))
    except ValueError as error:
        raise _bad_request(str(error)) from None
    return web.Response(status=204)


async def add_tenant(request: web.Request) -> web.Response:
    try:
        context_of(request).directory.add_tenant(Tenant.from_dict(await _body(request)))
    except WorldError as error:
        raise _bad_request(str(error)) from None
    return web.Response(status=201)


async def set_consent(request: web.Request) -> web.Response:
    roles = (await _body(request)).get("roles")
    with _directory_errors():
        context_of(request).directory.set_consent(
            request.match_info["tenant"], request.match_info["client"], roles
        )
    return web.Response(status=204)


async def put_user(request: web.Request) -> web.Response:
    user = await _body(request) | {"id": request.match_info["user"]}
    with _directory_errors():
        context_of(request).directory.upsert_user(request.match_info["tenant"], user)
    return web.Response(status=204)


async def patch_user(request: web.Request) -> web.Response:
    changes = await _body(request)
    with _directory_errors():
        context_of(request).directory.patch_user(
            request.match_info["tenant"], request.match_info["user"], changes
        )
    return web.Response(status=204)


async def delete_user(request: web.Request) -> web.Response:
    """Soft delete (restorable); ``?permanent=true``: hard delete."""
    permanent = request.query.get("permanent", "false").lower()
    if permanent not in ("true", "false"):
        raise _bad_request(f"permanent must be true or false, not {permanent!r}")
    with _directory_errors():
        context_of(request).directory.remove_user(
            request.match_info["tenant"], request.match_info["user"], permanent=permanent == "true"
        )
    return web.Response(status=204)


async def restore_user(request: web.Request) -> web.Response:
    with _directory_errors():
        context_of(request).directory.restore_user(
            request.match_info["tenant"], request.match_info["user"]
        )
    return web.Response(status=204)


async def put_group(request: web.Request) -> web.Response:
    """Body: ``{"displayName": "Sales", "members": ["<user or group id>"], "hiddenMembership":
    false, "unified": false}`` (simulator/group_store.py; unified: a Microsoft 365 group)."""
    body = await _body(request)
    members = body.get("members") or []
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise _bad_request("members must be a list of ids")
    context_of(request).groups.put_group(
        request.match_info["tenant"],
        request.match_info["group"],
        str(body.get("displayName") or ""),
        members,
        hidden_membership=bool(body.get("hiddenMembership", False)),
        unified=bool(body.get("unified", False)),
    )
    return web.Response(status=204)


async def delete_group(request: web.Request) -> web.Response:
    with _directory_errors():
        context_of(request).groups.delete_group(
            request.match_info["tenant"], request.match_info["group"]
        )
    return web.Response(status=204)


async def add_member(request: web.Request) -> web.Response:
    """Body: ``{"id": "<user or group id>"}``."""
    member = (await _body(request)).get("id")
    if not isinstance(member, str) or not member:
        raise _bad_request("id must be a user or group id")
    with _directory_errors():
        context_of(request).groups.add_member(
            request.match_info["tenant"], request.match_info["group"], member
        )
    return web.Response(status=204)


async def remove_member(request: web.Request) -> web.Response:
    with _directory_errors():
        context_of(request).groups.remove_member(
            request.match_info["tenant"], request.match_info["group"], request.match_info["member"]
        )
    return web.Response(status=204)


async def list_delta(request: web.Request) -> web.Response:
    return web.json_response(context_of(request).delta.describe())


async def add_delta(request: web.Request) -> web.Response:
    """Body: ``{"kind": "expireTokens", "count": 1, "status": 410|400}``,
    ``{"kind": "emptyPages", "count": 2}``, ``{"kind": "repeat", "userId": "...", "times": 1}``,
    ``{"kind": "pageSize", "size": 10}`` or ``{"kind": "advanceClock", "seconds": 604800}``."""
    plan = context_of(request).delta
    body = await _body(request)
    kind = body.get("kind")
    try:
        if kind == "expireTokens":
            plan.expire_tokens(int(body.get("count", 1)), int(body.get("status", 410)))
        elif kind == "emptyPages":
            plan.empty_pages(int(body.get("count", 1)))
        elif kind == "repeat":
            plan.repeat(str(body.get("userId") or ""), int(body.get("times", 1)))
        elif kind == "pageSize":
            plan.page_size(int(body["size"]))
        elif kind == "advanceClock":
            plan.advance_clock(float(body["seconds"]))
        else:
            raise ValueError(
                f"unknown delta kind {kind!r}: use expireTokens, emptyPages, repeat, pageSize "
                "or advanceClock"
            )
    except KeyError as error:
        raise _bad_request(f"{kind} needs the field {error.args[0]!r}") from None
    except (TypeError, ValueError) as error:
        raise _bad_request(str(error)) from None
    return web.Response(status=204)


async def clear_delta(request: web.Request) -> web.Response:
    context_of(request).delta.clear()
    return web.Response(status=204)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except json.JSONDecodeError as error:
        raise _bad_request(f"the body is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise _bad_request("the body must be a JSON object")
    return body


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


@contextmanager
def _directory_errors() -> Iterator[None]:
    """Turns the directory's lookup and validation errors into 404s and 400s."""
    try:
        yield
    except UnknownTenantError as error:
        raise _not_found(f"no tenant {error.args[0]!r}") from None
    except KeyError as error:
        raise _not_found(str(error.args[0])) from None
    except WorldError as error:
        raise _bad_request(str(error)) from None


def _not_found(message: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=json.dumps({"error": message}), content_type="application/json")
