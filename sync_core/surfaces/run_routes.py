"""The runs of a tenant over HTTP: Sync Now (POST /api/sync) puts a run on the queue and
answers 202 with where to poll; GET /api/runs/{tenantId}[/{runId}] reads the reports."""

from __future__ import annotations

from typing import Any

from sync_core.app.dispatch import request_run
from sync_core.core.report import RunStatus, utc_now
from sync_core.errors import ErrorCode
from sync_core.surfaces.api import (
    ApiError,
    ApiRequest,
    ApiResponse,
    RouteContext,
    absolute_url,
    next_url,
    ok,
)
from sync_core.surfaces.api_input import (
    body_fields,
    int_param,
    json_object,
    one_of,
    run_id_param,
)

MAX_RUNS_PAGE = 100
POLL_AFTER_SECONDS = "10"


def sync_body(request: ApiRequest, tenant: str | None) -> dict[str, Any]:
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


def run_params(request: ApiRequest, tenant: str | None) -> str:
    return run_id_param(request.route_params.get("runId"))


async def get_run(request: ApiRequest, context: RouteContext) -> ApiResponse:
    tenant, run_id = context.tenant, context.parsed
    report = await context.service.runs.get(tenant, run_id)
    if report is None:
        raise ApiError(404, ErrorCode.UNKNOWN_RUN, f"Tenant {tenant} has no run {run_id}.")
    unfinished = report.status in (RunStatus.QUEUED, RunStatus.RUNNING)
    return ok(report.to_json(), headers={"Retry-After": POLL_AFTER_SECONDS} if unfinished else None)


def runs_params(request: ApiRequest, tenant: str | None) -> tuple[int, bool, str | None]:
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
            "nextUrl": next_url(request, ("runs", tenant), top, continuation),
        }
    )
