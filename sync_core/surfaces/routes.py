"""The HTTP routes: each parses its request, asks sync_core, and answers JSON.

Documented in docs/api.md and docs/openapi.yaml; ROUTES is the single list function_app.py
registers and the binding tests compare against.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from sync_core.adapters.tables.employee_rows import employee_view
from sync_core.app.check import check_connectivity
from sync_core.app.dispatch import request_run
from sync_core.app.service import SyncService
from sync_core.app.status import status_of_tenants
from sync_core.app.tenants import tenant_enabled
from sync_core.core.config import TenantConfig
from sync_core.core.config_parse import ConfigError, parse_config
from sync_core.core.report import RunStatus, utc_now
from sync_core.errors import ErrorCode
from sync_core.settings import Settings, SettingsError, load_settings
from sync_core.surfaces.api import (
    ApiError,
    ApiRequest,
    ApiResponse,
    Route,
    absolute_url,
    body_fields,
    config_problems,
    int_param,
    json_object,
    ok,
    one_of,
    run_id_param,
    tenant_param,
    unknown_tenant,
    unwrap_token,
    wrap_token,
)
from sync_core.surfaces.connect_routes import connect, connect_callback, connect_status, unlink
from sync_core.surfaces.explain_route import explain

MAX_EMPLOYEES_PAGE = 1000
MAX_RUNS_PAGE = 100
# Under the 230 s an HTTP answer may take on Azure; a check reads the whole directory.
CHECK_TIMEOUT_SECONDS = 200  # under the 230 s an HTTP answer may take
CHECK_COUNT_SECONDS = 150  # the rest of the check keeps its answer when counting is cut short
POLL_AFTER_SECONDS = "10"


def _settings(environ: Mapping[str, str]) -> Settings:
    # Storage only: the API works before the app registration exists (a fresh deployment).
    return load_settings(environ, needs_graph=False)


async def _require_served(service: SyncService, tenant_id: str) -> bool:
    enabled = await tenant_enabled(service, tenant_id)
    if enabled is None:
        raise unknown_tenant(tenant_id)
    return enabled


async def sync_now(request: ApiRequest, environ: Mapping[str, str]) -> ApiResponse:
    fields = body_fields(
        json_object(request.body, required=False),
        {"tenantId": str, "dryRun": bool, "allowDeletes": bool, "mode": str},
    )
    mode = one_of(fields, "mode", ("auto", "full"))  # "full": a full run even if delta could
    settings = _settings(environ)
    tenant = (fields.get("tenantId") or settings.tenant_id).lower()
    dry_run = fields.get("dryRun", False)
    async with SyncService(settings) as service:
        if not await _require_served(service, tenant) and not dry_run:
            raise ApiError(
                409,
                ErrorCode.TENANT_DISABLED,
                f"Tenant {tenant} is disabled in its configuration; only a dry run is allowed.",
                fix='Enable it ("enabled": true) with PUT /api/config/{tenantId}.',
            )
        ticket = await request_run(
            service,
            tenant,
            dry_run=dry_run,
            allow_deletes=fields.get("allowDeletes", False),
            now=utc_now(),
            full=mode == "full",
        )
    status_url = absolute_url(request, ("runs", tenant, ticket.run_id))
    return ok(
        {
            "runId": ticket.run_id,
            "tenantId": tenant,
            "status": ticket.status,
            "dryRun": ticket.dry_run,
            "created": ticket.created,
            "statusUrl": status_url,
        },
        202,
        {"Location": status_url, "Retry-After": POLL_AFTER_SECONDS},
    )


async def get_run(request: ApiRequest, environ: Mapping[str, str]) -> ApiResponse:
    tenant = tenant_param(request)
    run_id = run_id_param(request.route_params.get("runId"))
    async with SyncService(_settings(environ)) as service:
        await _require_served(service, tenant)
        report = await service.runs.get(tenant, run_id)
    if report is None:
        raise ApiError(404, ErrorCode.UNKNOWN_RUN, f"Tenant {tenant} has no run {run_id}.")
    unfinished = report.status in (RunStatus.QUEUED, RunStatus.RUNNING)
    return ok(report.to_json(), headers={"Retry-After": POLL_AFTER_SECONDS} if unfinished else None)


async def list_runs(request: ApiRequest, environ: Mapping[str, str]) -> ApiResponse:
    tenant = tenant_param(request)
    top = int_param(request, "top", 20, 1, MAX_RUNS_PAGE)
    idle = request.params.get("idle") == "true"  # idle delta runs are left out by default
    after = request.params.get("continuation") or None
    if after is not None:
        run_id_param(after, code=ErrorCode.INVALID_CONTINUATION, what="continuation token")
    async with SyncService(_settings(environ)) as service:
        await _require_served(service, tenant)
        reports, continuation = await service.runs.page(tenant, top, after, idle=idle)
    runs = []
    for report in reports:
        summary = report.to_json()
        # The lists are on GET /api/runs/{tenantId}/{runId}.
        del summary["skippedNoEmail"], summary["noAddress"], summary["skippedUnstorable"]
        runs.append(summary)
    return ok(
        {
            "tenantId": tenant,
            "runs": runs,
            "continuation": continuation,
            "nextUrl": _next_url(request, ("runs", tenant), top, continuation),
        }
    )


async def status(request: ApiRequest, environ: Mapping[str, str]) -> ApiResponse:
    settings = _settings(environ)
    async with SyncService(settings) as service:
        tenants = await status_of_tenants(service, utc_now())
    return ok(
        {
            "schedule": settings.sync_schedule,
            "intervalHours": {
                "min": settings.sync_interval_min_hours,
                "max": settings.sync_interval_max_hours,
            },
            "tenants": tenants,
        }
    )


async def check(request: ApiRequest, environ: Mapping[str, str]) -> ApiResponse:
    fields = body_fields(json_object(request.body, required=False), {"tenantId": str})
    settings = _settings(environ)
    tenant = (fields.get("tenantId") or settings.tenant_id).lower()
    async with SyncService(settings) as service:
        await _require_served(service, tenant)
    try:
        graph_settings = load_settings(environ, needs_graph=True)
    except SettingsError as error:
        # The check exists to say what is wrong; missing Graph settings are a finding.
        return ok(_settings_findings(tenant, error))
    try:
        result = await asyncio.wait_for(
            check_connectivity(graph_settings, tenant, count_budget_seconds=CHECK_COUNT_SECONDS),
            CHECK_TIMEOUT_SECONDS,
        )
    except TimeoutError:
        raise ApiError(
            504,
            ErrorCode.CHECK_TIMEOUT,
            f"The check did not finish within {CHECK_TIMEOUT_SECONDS} s (it reads the whole "
            "directory).",
            fix="Run `python -m sync_core check` from a shell for very large tenants.",
        ) from None
    return ok(result.to_json())


async def tenant_config(request: ApiRequest, environ: Mapping[str, str]) -> ApiResponse:
    tenant = tenant_param(request)
    if request.method.upper() == "PUT":
        return await _put_config(request, environ, tenant)
    async with SyncService(_settings(environ)) as service:
        await _require_served(service, tenant)
        try:
            stored = await service.configs.get(tenant)
        except ConfigError as error:
            raise ApiError(
                409,
                ErrorCode.INVALID_STORED_CONFIG,
                "The stored configuration is no longer valid.",
                details=config_problems(error),
                fix="Store a valid one with PUT /api/config/{tenantId}.",
            ) from None
        account = await service.configs.account(tenant)  # who linked it (app/linking.py)
    return ok(
        {
            "tenantId": tenant,
            "stored": stored is not None,
            "account": account,
            "config": _config_json(stored),
        }
    )


async def _put_config(request: ApiRequest, environ: Mapping[str, str], tenant: str) -> ApiResponse:
    try:
        config = parse_config(json_object(request.body, required=True))
    except ConfigError as error:
        raise ApiError(
            400,
            ErrorCode.INVALID_CONFIG,
            f"The configuration is invalid ({len(error.problems)} problem(s)); nothing was stored.",
            details=config_problems(error),
        ) from None
    async with SyncService(_settings(environ)) as service:
        created = await service.registry.enabled(tenant) is None
        await service.configs.put(tenant, config)
    # Storing the first configuration of a tenant other than ENTRA_TENANT_ID registers it.
    registered = created and tenant != service.settings.tenant_id
    url = absolute_url(request, ("config", tenant))
    return ok(
        {"tenantId": tenant, "stored": True, "registered": registered, "config": config.to_json()},
        201 if created else 200,
        {"Location": url} if created else None,
    )


async def list_employees(request: ApiRequest, environ: Mapping[str, str]) -> ApiResponse:
    tenant = tenant_param(request)
    top = int_param(request, "top", 100, 1, MAX_EMPLOYEES_PAGE)
    token = unwrap_token(request, tenant)
    async with SyncService(_settings(environ)) as service:
        await _require_served(service, tenant)
        try:
            config = await service.effective_config(tenant)
        except ConfigError as error:
            raise ApiError(
                409,
                ErrorCode.INVALID_STORED_CONFIG,
                "The stored configuration is invalid, so the field order is unknown.",
                details=config_problems(error),
            ) from None
        try:
            entities, next_token = await service.employees.page(tenant, top, token)
        except ValueError:
            raise ApiError(
                400,
                ErrorCode.INVALID_CONTINUATION,
                "The continuation token is not one this API issued.",
            ) from None
    names = [mapping.name for mapping in config.fields]
    continuation = wrap_token(tenant, next_token)
    return ok(
        {
            "tenantId": tenant,
            "fields": ["Email", *names, "Aliases"],
            "employees": [employee_view(entity, names) for entity in entities],
            "continuation": continuation,
            "nextUrl": _next_url(request, ("employees", tenant), top, continuation),
        }
    )


def _next_url(
    request: ApiRequest, path: tuple[str, ...], top: int, continuation: str | None
) -> str | None:
    if continuation is None:
        return None
    return absolute_url(request, path, {"top": top, "continuation": continuation})


def _config_json(config: TenantConfig | None) -> dict[str, Any]:
    return (config or TenantConfig()).to_json()


def _settings_findings(tenant: str, error: SettingsError) -> dict[str, Any]:
    return {
        "ok": False,
        "tenantId": tenant,
        "tenantName": None,
        "usersInScope": None,
        "usersRead": None,
        "usersImportable": None,
        "problems": [
            {
                "code": "invalid_settings",
                "message": problem,
                "fix": "Set it in the function app's settings (README, Settings).",
            }
            for problem in error.problems
        ],
        "warnings": [],
        "passed": [],
    }


ROUTES: dict[str, Route] = {
    route.function: route
    for route in (
        Route("sync_now", "sync", ("POST",), sync_now),
        Route("get_run", "runs/{tenantId}/{runId}", ("GET",), get_run),
        Route("list_runs", "runs/{tenantId}", ("GET",), list_runs),
        Route("status", "status", ("GET",), status),
        Route("check_connectivity", "check", ("POST",), check),
        Route("tenant_config", "config/{tenantId}", ("GET", "PUT"), tenant_config),
        Route("list_employees", "employees/{tenantId}", ("GET",), list_employees),
        Route("connect", "connect", ("POST",), connect),
        # GET: the admin-consent answer (a query); POST: the sign-in's (response_mode=form_post).
        Route("connect_callback", "connect/callback", ("GET", "POST"), connect_callback),
        Route("connect_status", "connect/{requestId}", ("GET",), connect_status),
        Route("unlink_tenant", "tenants/{tenantId}", ("DELETE",), unlink),
        Route("explain_user", "explain/{tenantId}/{user}", ("GET", "POST"), explain),
    )
}
