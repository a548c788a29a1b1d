"""The composition root: builds the real clients from settings and hands them to the engine.

The CLI and the function app both go through `SyncService`, so a run behaves the same whoever
starts it.
"""

from __future__ import annotations

from types import TracebackType

from azure.core.credentials_async import AsyncTokenCredential
from azure.data.tables.aio import TableServiceClient

from .config import TenantConfig
from .credentials import azure_identity, entra_credential, read_client_secret
from .engine import Ports, RunRequest, run_sync
from .errors import classify_storage_error
from .graph import GraphDirectory
from .report import RunReport
from .settings import Settings
from .store import ConfigStore, EmployeeStore, RunStore, ensure_tables, open_tables


class _OwnedDirectory(GraphDirectory):
    """A directory that also closes the credential it was built with."""

    def __init__(self, credential: AsyncTokenCredential, graph_base_url: str):
        super().__init__(credential, graph_base_url)
        self._credential = credential

    async def close(self) -> None:
        await super().close()
        await self._credential.close()


class SyncService:
    """Open with `async with SyncService(settings) as service:`; one per process or request."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._identity: AsyncTokenCredential | None = None
        self._tables: TableServiceClient | None = None
        self._client_secret: str | None = None

    async def __aenter__(self) -> SyncService:
        settings = self.settings
        if settings.tables_endpoint:
            self._identity = azure_identity(settings)
        self._tables = open_tables(
            settings.tables_connection_string, settings.tables_endpoint, self._identity
        )
        try:
            await ensure_tables(self._tables)
        except Exception as error:  # classified for the admin, then raised
            await self.close()
            raise classify_storage_error(error) from error
        self.employees = EmployeeStore(self._tables)
        self.runs = RunStore(self._tables)
        self.configs = ConfigStore(self._tables)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._tables is not None:
            await self._tables.close()
        if self._identity is not None:
            await self._identity.close()

    async def open_directory(self, tenant_id: str) -> GraphDirectory:
        if self._client_secret is None:
            self._client_secret = await read_client_secret(self.settings)
        credential = entra_credential(self.settings, tenant_id, self._client_secret)
        return _OwnedDirectory(credential, self.settings.graph_base_url)

    async def effective_config(self, tenant_id: str) -> TenantConfig:
        """The stored configuration, or the defaults; raises ConfigError when stored invalid."""
        return await self.configs.get(tenant_id) or TenantConfig()

    async def sync(self, request: RunRequest) -> RunReport:
        ports = Ports(
            open_directory=self.open_directory,
            employees=self.employees,
            runs=self.runs,
            configs=self.configs,
        )
        return await run_sync(request, ports)
