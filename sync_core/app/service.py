"""The composition root: builds the real clients from settings and hands them to the engine.

The CLI and the function app both go through `SyncService`, so a run behaves the same whoever
starts it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.data.tables.aio import TableServiceClient

from sync_core.adapters.tables.address_holders import StoredAddresses
from sync_core.adapters.tables.boundary import ensure_tables, open_tables
from sync_core.adapters.tables.configurations import ConfigStore, TenantRegistry
from sync_core.adapters.tables.connect_requests import ConnectRequests
from sync_core.adapters.tables.employees import TableEmployeeStore
from sync_core.adapters.tables.fenced_state import LinkedSyncState
from sync_core.adapters.tables.group_memberships import GroupMembershipStore
from sync_core.adapters.tables.leases import LeaseStore
from sync_core.adapters.tables.managers import ManagerIndexStore
from sync_core.adapters.tables.runs import RunStore
from sync_core.adapters.tables.sync_state import TableSyncStateStore
from sync_core.app.served_configs import ServedConfigs
from sync_core.core.config import TenantConfig
from sync_core.core.credential_expiry import expiry_warning
from sync_core.core.engine import RunRequest, run_sync
from sync_core.core.ports import ConfigSource, Lease, Ports, Unfenced
from sync_core.core.report import RunReport, utc_now
from sync_core.core.run_log import log_event
from sync_core.settings import Settings

if TYPE_CHECKING:
    from sync_core.adapters.credentials import AppCredential
    from sync_core.adapters.graph import GraphDirectory
    from sync_core.adapters.photo_store import BlobPhotoStore

# msgraph, kiota and azure-identity (with aiohttp) are imported where first needed, not here: the
# Functions host imports function_app on every cold start, and the timer and most routes never
# read Graph (tests/unit/test_layers.py keeps `import function_app` free of them).

_TABLES_READY: set[str] = set()


def open_directory(settings: Settings, tenant_id: str, app: AppCredential) -> GraphDirectory:
    """One tenant's directory, read with the app registration's credential (closed with it).
    A Key Vault credential about to expire is a warning of every run report."""
    from sync_core.adapters.credentials import entra_credential
    from sync_core.adapters.graph import GraphDirectory

    credential = entra_credential(settings, tenant_id, app)
    directory = GraphDirectory(credential, settings.graph_base_url, owns_credential=True)
    now = utc_now()
    warning = expiry_warning(app.described, app.expires_on, now)
    directory.stats.credential_warnings = (warning,) if warning else ()
    if warning and app.expires_on is not None:
        # The alert rule "credential expiring" reads this line (infra/modules/alerts.bicep).
        log_event(
            "credential expiring",
            level=logging.WARNING,
            event="credential_expiring",
            tenantId=tenant_id,
            credential=app.described,  # its name in Key Vault, never its value
            expiresOn=app.expires_on.isoformat(),
            daysLeft=(app.expires_on - now).days,
        )
    return directory


class SyncService:
    """Open with `async with SyncService(settings) as service:`; one per process or request."""

    def __init__(
        self,
        settings: Settings,
        *,
        refuse_disabled: bool = False,
        table_request_hook: Callable[[Any], None] | None = None,
    ):
        self.settings = settings
        # The queue worker's runs (not a dry run) refuse a tenant disabled since they were
        # queued, at the engine's read of its configuration (app/served_configs.py).
        self.refuse_disabled = refuse_disabled
        self._table_request_hook = table_request_hook  # counts requests, in the benches
        self._identity: AsyncTokenCredential | None = None
        self._tables: TableServiceClient | None = None
        self._app_credential: AppCredential | None = None
        self._blobs: Any = None  # azure.storage.blob.aio.BlobServiceClient, opened when needed

    async def __aenter__(self) -> SyncService:
        settings = self.settings
        if settings.tables_endpoint:
            from sync_core.adapters.credentials import azure_identity

            self._identity = azure_identity(settings)
        self._tables = open_tables(
            settings.tables_connection_string,
            settings.tables_endpoint,
            self._identity,
            self._table_request_hook,
        )
        try:
            # Once per process and account: a function app opens a service per invocation.
            if self._tables.url not in _TABLES_READY:
                await ensure_tables(self._tables)
                _TABLES_READY.add(self._tables.url)
        except BaseException:  # ensure_tables raises SyncError, classified at the boundary
            await self.close()
            raise
        self.employees = TableEmployeeStore(self._tables)
        self.runs = RunStore(self._tables, timedelta(days=settings.run_retention_days))
        self.configs = ConfigStore(self._tables)
        self.leases = LeaseStore(self._tables)
        self.registry = TenantRegistry(self._tables)
        self.connect_requests = ConnectRequests(self._tables)
        self.sync_state = TableSyncStateStore(self._tables)
        # A run's delta link lands only while its tenant is linked (fenced_state.py).
        self.run_sync_state = LinkedSyncState(self._tables, settings.tenant_id)
        self.stored_addresses = StoredAddresses(self._tables)  # a delta run's shared addresses
        self.memberships = GroupMembershipStore(self._tables)
        self.managers = ManagerIndexStore(self._tables)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._blobs is not None:
            await self._blobs.close()
        if self._tables is not None:
            await self._tables.close()
        if self._identity is not None:
            await self._identity.close()

    async def open_directory(self, tenant_id: str) -> GraphDirectory:
        return open_directory(self.settings, tenant_id, await self.app_credential())

    async def app_credential(self) -> AppCredential:
        """The app registration's credential, read once per service."""
        if self._app_credential is None:
            from sync_core.adapters.credentials import load_app_credential

            self._app_credential = await load_app_credential(self.settings)
        return self._app_credential

    def photo_store(self) -> BlobPhotoStore | None:
        """Blob Storage for profile photos (the client opens on first use, so runs of tenants
        without photos never load the blob SDK's connection); None when none is configured."""
        from sync_core.adapters.blobs import PhotoBlobs, open_blobs
        from sync_core.adapters.photo_store import BlobPhotoStore

        settings = self.settings
        if self._blobs is None:
            if settings.blobs_endpoint and self._identity is None:
                from sync_core.adapters.credentials import azure_identity

                self._identity = azure_identity(settings)
            self._blobs = open_blobs(
                settings.tables_connection_string, settings.blobs_endpoint, self._identity
            )
        if self._blobs is None or self._tables is None:
            return None
        return BlobPhotoStore(self._tables, PhotoBlobs(self._blobs))

    async def effective_config(self, tenant_id: str) -> TenantConfig:
        """The stored configuration, or the defaults; raises ConfigError when stored invalid."""
        return await self.configs.get(tenant_id) or TenantConfig()

    async def sync(self, request: RunRequest, lease: Lease | Unfenced) -> RunReport:
        """One run; its writes are fenced by `lease` (exclusive.sync_exclusively passes it)."""
        configs: ConfigSource = self.configs
        if self.refuse_disabled and not request.dry_run:
            configs = ServedConfigs(self.configs, self.settings.tenant_id)
        ports = Ports(
            open_directory=self.open_directory,
            employees=self.employees,
            runs=self.runs,
            configs=configs,
            lease=lease,
            sync_state=self.run_sync_state.for_lease(self.leases, lease),
            addresses=self.stored_addresses,
            memberships=self.memberships,
            managers=self.managers,
            photos=self.photo_store(),
        )
        every = timedelta(hours=self.settings.sync_reconcile_hours)
        return await run_sync(replace(request, reconcile_every=every), ports)
