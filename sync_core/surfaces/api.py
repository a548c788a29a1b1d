"""The HTTP API's plumbing: requests and answers as plain data, errors, what a route declares
and how `handle` prepares it, URLs. What a caller may send is checked in api_input.py.

function_app.py turns the Functions host's request into an `ApiRequest`, calls `handle`, and
turns the `ApiResponse` back. Errors are always `{"error": {"code", "message", ...}}`; no stack
trace or setting value beyond what an admin typed ever reaches a caller.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

from sync_core.app.service import SyncService
from sync_core.app.tenants import tenant_enabled
from sync_core.errors import ErrorCode, SyncError
from sync_core.settings import (
    TENANT_ID_RULE,
    Settings,
    SettingsError,
    is_tenant_id,
    load_settings,
)

log = logging.getLogger("sync_core.surfaces.api")

ROUTE_PREFIX = "api"  # host.json extensions.http.routePrefix (the default)


@dataclass(frozen=True)
class ApiRequest:
    method: str
    url: str
    route_params: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"  # text/html for the consent callback's page

    def text(self) -> str:
        if isinstance(self.body, str) and self.content_type != "application/json":
            return self.body
        return json.dumps(self.body, ensure_ascii=False)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: ErrorCode,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        fix: str | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.fix, self.headers = details, fix, headers or {}

    def response(self) -> ApiResponse:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fix:
            error["fix"] = self.fix
        if self.details is not None:
            error["details"] = self.details
        return ApiResponse(self.status, {"error": error}, self.headers)


@dataclass(frozen=True)
class RouteContext:
    """What `handle` prepared for a handler, as its route declared: the parsed request, and
    with `service` the settings, the open service and the tenant (served, unless the method
    may name one that is not)."""

    environ: Mapping[str, str]
    parsed: Any = None
    tenant_id: str | None = None
    enabled: bool | None = None  # the tenant's "enabled"; None when not served or not asked
    _settings: Settings | None = None
    _service: SyncService | None = None

    @property
    def settings(self) -> Settings:
        assert self._settings is not None, "the route declares no service"
        return self._settings

    @property
    def service(self) -> SyncService:
        assert self._service is not None, "the route declares no service"
        return self._service

    @property
    def tenant(self) -> str:
        assert self.tenant_id is not None, "the route declares no tenant"
        return self.tenant_id


Handler = Callable[[ApiRequest, RouteContext], Awaitable[ApiResponse]]
Parser = Callable[[ApiRequest, str | None], Any]


@dataclass(frozen=True)
class Route:
    """One endpoint and what it needs, which `handle` builds before calling the handler, in
    this order: the path's tenantId (`tenant="path"`), then `parse` (every 400 of the request
    comes before the settings are read), then with `service` the settings (storage only unless
    `graph`: the API works before the app registration exists, a fresh deployment) and an open
    `SyncService`; `tenant="body"` takes the parsed body's tenantId or
    ENTRA_TENANT_ID. A tenant not served answers unknown_tenant, except for `unserved` methods
    (storing a first configuration registers a tenant; unlinking says so itself)."""

    function: str  # the function's name in function_app.py
    template: str  # under /api
    methods: tuple[str, ...]
    handler: Handler
    parse: Parser | None = None
    service: bool = False
    graph: bool = False
    tenant: Literal["path", "body"] | None = None
    unserved: tuple[str, ...] = ()


async def _call(route: Route, request: ApiRequest, environ: Mapping[str, str]) -> ApiResponse:
    tenant = tenant_param(request) if route.tenant == "path" else None
    parsed = route.parse(request, tenant) if route.parse else None
    if not route.service:
        return await route.handler(request, RouteContext(environ, parsed, tenant))
    settings = load_settings(environ, needs_graph=route.graph)
    if route.tenant == "body":
        body: Mapping[str, Any] = parsed if isinstance(parsed, Mapping) else {}
        tenant = (body.get("tenantId") or settings.tenant_id).lower()
    async with SyncService(settings) as service:
        enabled = None
        if tenant is not None and request.method.upper() not in route.unserved:
            enabled = await tenant_enabled(service, tenant)
            if enabled is None:
                raise unknown_tenant(tenant)
        context = RouteContext(environ, parsed, tenant, enabled, settings, service)
        return await route.handler(request, context)


async def handle(route: Route, request: ApiRequest, environ: Mapping[str, str]) -> ApiResponse:
    """Answer one request; every failure becomes a JSON error, never an exception."""
    if request.method.upper() not in route.methods:
        allowed = ", ".join(route.methods)
        return ApiError(
            405,
            ErrorCode.METHOD_NOT_ALLOWED,
            f"{request.method.upper()} is not allowed here; use {allowed}.",
            headers={"Allow": allowed},
        ).response()
    try:
        return await _call(route, request, environ)
    except ApiError as error:
        return error.response()
    except SettingsError as error:
        log.error("the app's settings are invalid: %s", "; ".join(error.problems))
        return ApiError(
            500,
            ErrorCode.INVALID_SETTINGS,
            f"The app's settings are invalid ({len(error.problems)} problem(s)); the function "
            "log lists them.",
            fix="Fix the function app's settings (README, Settings).",
        ).response()
    except SyncError as failure:  # classified by the adapter that met it
        log.warning("%s failed: %s", route.function, failure.message, exc_info=True)
        return ApiError(
            503 if failure.retriable else 500, failure.code, failure.message, fix=failure.fix
        ).response()
    except Exception:
        log.exception("%s failed", route.function)
        return ApiError(
            500, ErrorCode.INTERNAL_ERROR, "Unexpected error; the function log has the details."
        ).response()


# --- the route's tenant -------------------------------------------------------------------------


def tenant_param(request: ApiRequest) -> str:
    tenant = (request.route_params.get("tenantId") or "").strip()
    if not is_tenant_id(tenant):
        raise ApiError(
            400,
            ErrorCode.INVALID_TENANT_ID,
            f"{tenant!r} {TENANT_ID_RULE}.",
        )
    return tenant.lower()


def unknown_tenant(tenant_id: str) -> ApiError:
    return ApiError(
        404,
        ErrorCode.UNKNOWN_TENANT,
        f"This app does not serve tenant {tenant_id}.",
        fix="Register it by storing a configuration: PUT /api/config/{tenantId}.",
    )


# --- answers ------------------------------------------------------------------------------------


def absolute_url(
    request: ApiRequest, path: Sequence[str], query: Mapping[str, Any] | None = None
) -> str:
    """A URL of this API. Built from the scheme and host only: the caller's `code` (function key)
    must never be echoed back."""
    parts = urlsplit(request.url)
    base = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    url = f"{base}/{ROUTE_PREFIX}/" + "/".join(quote(segment, safe="") for segment in path)
    wanted = {k: v for k, v in (query or {}).items() if v is not None}
    return f"{url}?{urlencode(wanted)}" if wanted else url


def ok(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> ApiResponse:
    return ApiResponse(status, body, headers or {})


def next_url(
    request: ApiRequest, path: tuple[str, ...], top: int, continuation: str | None
) -> str | None:
    """The next page of a listing (runs, employees), or None on the last."""
    if continuation is None:
        return None
    return absolute_url(request, path, {"top": top, "continuation": continuation})
