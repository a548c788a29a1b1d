"""A tenant's configuration over HTTP: GET /api/config/{tenantId} shows what is stored (or
the defaults), PUT validates and stores it; storing a first configuration registers a tenant."""

from __future__ import annotations

from typing import Any

from sync_core.core.config import TenantConfig
from sync_core.core.config_parse import ConfigError, parse_config
from sync_core.surfaces.api import ApiRequest, ApiResponse, RouteContext, absolute_url, ok
from sync_core.surfaces.api_input import invalid_config, invalid_stored_config, json_object


def config_body(request: ApiRequest, tenant: str | None) -> TenantConfig | None:
    if request.method.upper() != "PUT":
        return None
    try:
        return parse_config(json_object(request.body, required=True))
    except ConfigError as error:
        problems = len(error.problems)
        message = f"The configuration is invalid ({problems} problem(s)); nothing was stored."
        raise invalid_config(error, message) from None


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


def _config_json(config: TenantConfig | None) -> dict[str, Any]:
    return (config or TenantConfig()).to_json()
