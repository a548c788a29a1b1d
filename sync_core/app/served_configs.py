"""The worker's configuration source: a tenant disabled (or no longer served) after its run was
queued is refused at the run's first read, the configuration the engine reads anyway, before
anything is written: no read of its own for every run."""

from __future__ import annotations

from sync_core.core.config import TenantConfig
from sync_core.core.ports import ConfigSource
from sync_core.errors import ErrorCode, FatalError


def tenant_disabled() -> FatalError:
    return FatalError(
        ErrorCode.TENANT_DISABLED,
        "The tenant was disabled or is no longer served, so this run did nothing.",
        'Set "enabled": true in its configuration (PUT /api/config), then Sync Now.',
    )


class ServedConfigs:
    def __init__(self, configs: ConfigSource, home_tenant: str):
        self._configs, self._home = configs, home_tenant

    async def get(self, tenant_id: str) -> TenantConfig | None:
        config = await self._configs.get(tenant_id)
        if config is None and tenant_id != self._home:
            raise tenant_disabled()  # its configuration was removed: no longer served
        if config is not None and not config.enabled:
            raise tenant_disabled()
        return config
