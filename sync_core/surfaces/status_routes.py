"""How the app is doing: GET /api/status (every tenant's schedule and health) and POST
/api/check (Check Connectivity of one tenant, bounded by what an HTTP answer may take)."""

from __future__ import annotations

import asyncio
from typing import Any

from sync_core.app.check import check_connectivity
from sync_core.app.status import status_of_tenants
from sync_core.core.report import utc_now
from sync_core.errors import ErrorCode
from sync_core.settings import SettingsError, load_settings
from sync_core.surfaces.api import (
    ApiError,
    ApiRequest,
    ApiResponse,
    RouteContext,
    ok,
)
from sync_core.surfaces.api_input import (
    body_fields,
    json_object,
)

# Under the 230 s an HTTP answer may take on Azure; a check reads the whole directory.
CHECK_TIMEOUT_SECONDS = 200
CHECK_COUNT_SECONDS = 150  # the rest of the check keeps its answer when counting is cut short


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


def check_body(request: ApiRequest, tenant: str | None) -> dict[str, Any]:
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
