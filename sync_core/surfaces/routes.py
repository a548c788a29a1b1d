"""The HTTP routes: each parses its request, asks sync_core, and answers JSON.

Documented in docs/api.md and docs/openapi.yaml; ROUTES is the single list function_app.py
registers and the binding tests compare against.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sync_core.adapters.tables.employee_rows import employee_view
from sync_core.app.check import check_connectivity
from sync_core.app.dispatch import request_run
from sync_core.app.status import status_of_tenants
from sync_core.core.config import TenantConfig
from sync_core.core.config_parse import ConfigError, parse_config
from sync_core.core.report import RunStatus, utc_now
from sync_core.errors import ErrorCode
from sync_core.settings import SettingsError, load_settings
from sync_core.surfaces.api import (
    ApiError,
    ApiRequest,
    ApiResponse,
    Route,
    RouteContext,
    absolute_url,
    body_fields,
    config_problems,
    int_param,
    invalid_stored_config,
    json_object,
    ok,
    one_of,
    run_id_param,
    unwrap_token,
    wrap_token,
)
from sync_core.surfaces.connect_routes import (
    connect,
    connect_callback,
    connect_status,
    unlink,
    unlink_params,
)
from sync_core.surfaces.explain_route import explain, explain_params

MAX_EMPLOYEES_PAGE = 1000
MAX_RUNS_PAGE = 100
# Under the 230 s an HTTP answer may take on Azure; a check reads the whole directory.
CHECK_TIMEOUT_SECONDS = 200  # under the 230 s an HTTP answer may take
CHECK_COUNT_SECONDS = 150  # the rest of the check keeps its answer when counting is cut short
POLL_AFTER_SECONDS = "10"


def _sync_body(request: ApiRequest, tenant: str | None) -> dict[str, Any]:
    fields = body_fields(
        json_object(request.body, required=False),
        {"tenantId": str, "dryRun": bool, "allowDeletes": bool, "mode": str},
    )
    one_of(fields, "mode", ("auto", "full"))  # "full": a full run even if delta could
    return fields


async def sync_now(request: ApiRequest, context: RouteContext) -> ApiResponse:
    fields, tenant = context.parsed, context.tenant
    dry_run = fields.get("dryRun", False)
    if not context.enabled and not dry_run:
        raise ApiError(
            409,
            ErrorCode.TENANT_DISABLED,
            f"Tenant {tenant} is disabled in its configuration; only a dry run is allowed.",
            fix='Enable it ("enabled": true) with PUT /api/config/{tenantId}.',
        )
    ticket = await request_run(
        context.service,
        tenant,
        dry_run=dry_run,
        allow_deletes=fields.get("allowDeletes", False),
        now=utc_now(),
        full=one_of(fields, "mode", ("auto", "full")) == "full",
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


def _run_params(request: ApiRequest, tenant: str | None) -> str:
    return run_id_param(request.route_params.get("runId"))


async def get_run(request: ApiRequest, context: RouteContext) -> ApiResponse:
    tenant, run_id = context.tenant, context.parsed
    report = await context.service.runs.get(tenant, run_id)
    if report is None:
        raise ApiError(404, ErrorCode.UNKNOWN_RUN, f"Tenant {tenant} has no run {run_id}.")
    unfinished = report.status in (RunStatus.QUEUED, RunStatus.RUNNING)
    return ok(report.to_json(), headers={"Retry-After": POLL_AFTER_SECONDS} if unfinished else None)


def _runs_params(request: ApiRequest, tenant: str | None) -> tuple[int, bool, str | None]:
    top = int_param(request, "top", 20, 1, MAX_RUNS_PAGE)
    idle = request.params.get("idle") == "true"  # idle delta runs are left out by default
    after = request.params.get("continuation") or None
    if after is not None:
        run_id_param(after, code=ErrorCode.INVALID_CONTINUATION, what="continuation token")
    return top, idle, after


async def list_runs(request: ApiRequest, context: RouteContext) -> ApiResponse:
    tenant, (top, idle, after) = context.tenant, context.parsed
    reports, continuation = await context.service.runs.page(tenant, top, after, idle=idle)
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


async def status(request: ApiRequest, context: RouteContext) -> ApiResponse:
    settings = context.settings
    tenants = await status_of_tenants(context.service, utc_now())
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


def _check_body(request: ApiRequest, tenant: str | None) -> dict[str, Any]:
    return body_fields(json_object(request.body, required=False), {"tenantId": str})


async def check(request: ApiRequest, context: RouteContext) -> ApiResponse:
    tenant = context.tenant
    try:
        graph_settings = load_settings(context.environ, needs_graph=True)
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


def _config_body(request: ApiRequest, tenant: str | None) -> TenantConfig | None:
    if request.method.upper() != "PUT":
        return None
    try:
        return parse_config(json_object(request.body, required=True))
    except ConfigError as error:
        raise ApiError(
            400,
            ErrorCode.INVALID_CONFIG,
            f"The configuration is invalid ({len(error.problems)} problem(s)); nothing was stored.",
            details=config_problems(error),
        ) from None


async def tenant_config(request: ApiRequest, context: RouteContext) -> ApiResponse:
    tenant, service = context.tenant, context.service
    if request.method.upper() == "PUT":
        return await _put_config(request, context, context.parsed)
    try:
        stored = await service.configs.get(tenant)
    except ConfigError as error:
        raise invalid_stored_config(error) from None
    account = await service.configs.account(tenant)  # who linked it (app/linking.py)
    return ok(
        {
            "tenantId": tenant,
            "stored": stored is not None,
            "account": account,
            "config": _config_json(stored),
        }
    )


async def _put_config(
    request: ApiRequest, context: RouteContext, config: TenantConfig
) -> ApiResponse:
    tenant, service = context.tenant, context.service
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


def _employees_params(request: ApiRequest, tenant: str | None) -> tuple[int, str | None]:
    top = int_param(request, "top", 100, 1, MAX_EMPLOYEES_PAGE)
    return top, unwrap_token(request, tenant or "")


async def list_employees(request: ApiRequest, context: RouteContext) -> ApiResponse:
    tenant, service, (top, token) = context.tenant, context.service, context.parsed
    try:
        config = await service.effective_config(tenant)
    except ConfigError as error:
        raise invalid_stored_config(error) from None
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
                "code": ErrorCode.INVALID_SETTINGS,
                "message": problem,
                "fix": "Set it in the function app's settings (README, Settings).",
            }
            for problem in error.problems
        ],
        "warnings": [],
        "passed": [],
    }


# What each route needs, built by api.handle before the handler runs (api.Route says the order).
# fmt: off
ROUTES: dict[str, Route] = {
    route.function: route
    for route in (
        Route("sync_now", "sync", ("POST",), sync_now,
              parse=_sync_body, service=True, tenant="body"),
        Route("get_run", "runs/{tenantId}/{runId}", ("GET",), get_run,
              parse=_run_params, service=True, tenant="path"),
        Route("list_runs", "runs/{tenantId}", ("GET",), list_runs,
              parse=_runs_params, service=True, tenant="path"),
        Route("status", "status", ("GET",), status, service=True),
        # The service stays open through the check, which reads Graph, not the tables.
        Route("check_connectivity", "check", ("POST",), check,
              parse=_check_body, service=True, tenant="body"),
        # PUT may name a tenant not served yet: storing its first configuration registers it.
        Route("tenant_config", "config/{tenantId}", ("GET", "PUT"), tenant_config,
              parse=_config_body, service=True, tenant="path", unserved=("PUT",)),
        Route("list_employees", "employees/{tenantId}", ("GET",), list_employees,
              parse=_employees_params, service=True, tenant="path"),
        # connect and its callback read the Graph settings and open the service themselves:
        # connect checks returnUrl against them, the callback answers a page whatever fails.
        Route("connect", "connect", ("POST",), connect),
        # GET: the admin-consent answer (a query); POST: the sign-in's (response_mode=form_post).
        Route("connect_callback", "connect/callback", ("GET", "POST"), connect_callback),
        Route("connect_status", "connect/{requestId}", ("GET",), connect_status, service=True),
        # DELETE answers unknown_tenant itself (app/unlink.py tells a tenant it does not serve).
        Route("unlink_tenant", "tenants/{tenantId}", ("DELETE",), unlink,
              parse=unlink_params, service=True, tenant="path", unserved=("DELETE",)),
        Route("explain_user", "explain/{tenantId}/{user}", ("GET", "POST"), explain,
              parse=explain_params, service=True, graph=True, tenant="path"),
    )
}
# fmt: on
