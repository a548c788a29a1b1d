"""GET /api/employees/{tenantId}: the stored employees of a tenant, a page at a time, with the
configured fields in their configured order."""

from __future__ import annotations

from sync_core.adapters.tables.employee_rows import employee_view
from sync_core.core.config_parse import ConfigError
from sync_core.errors import ErrorCode
from sync_core.surfaces.api import (
    ApiError,
    ApiRequest,
    ApiResponse,
    RouteContext,
    next_url,
    ok,
)
from sync_core.surfaces.api_input import (
    int_param,
    invalid_stored_config,
    unwrap_token,
    wrap_token,
)

MAX_EMPLOYEES_PAGE = 1000


def employees_params(request: ApiRequest, tenant: str | None) -> tuple[int, str | None]:
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
            "nextUrl": next_url(request, ("employees", tenant), top, continuation),
        }
    )
