"""Which tenants the app serves: the home tenant (ENTRA_TENANT_ID) always, and every tenant with
a stored configuration, each enabled or not. Dispatch, status and the routes ask here."""

from __future__ import annotations

from sync_core.app.service import SyncService


async def served_tenants(service: SyncService) -> dict[str, bool]:
    """Tenant id -> enabled: ENTRA_TENANT_ID always, and every tenant with a configuration."""
    tenants = {
        tenant.lower(): on for tenant, on in (await service.registry.enabled_by_tenant()).items()
    }
    home = service.settings.tenant_id
    tenants.setdefault(home, True)
    return tenants


async def tenant_enabled(service: SyncService, tenant_id: str) -> bool | None:
    """Whether a served tenant is enabled; None when the app does not serve it."""
    enabled = await service.registry.enabled(tenant_id)
    if enabled is None and tenant_id == service.settings.tenant_id:
        return True
    return enabled
