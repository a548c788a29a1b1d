"""A tenant's delta link, written only while the tenant is linked.

An unlink (app/unlink.py) deletes the tenant's configuration row and its `syncState` row. A run
that started before would otherwise write its delta link after that, and a tenant linked again
would resume deltas from a link of before. So the run's write is one transaction in the tenant's
partition of TenantConfigs: the `syncState` upsert and a MERGE of the configuration row, which
Table Storage refuses when that row no longer exists ("Merge Entity": 404 ResourceNotFound).
Before the unlink's delete, the write lands and is then deleted; after it, it fails. Both ways
no link outlives the unlink. The home tenant (ENTRA_TENANT_ID) is served without a row and is
never unlinked: its link is written as before.

The configuration row alone cannot tell the link a run started under from a new one: unlinked
and linked again while a run of before still reads its round (one with nothing to write meets
no fenced employee write), the row exists again and that run's link of before would land. So a
run's store (`for_lease`) also checks, right before the write, that the run still holds its
lease: the unlink took it over, and a new link takes no lease.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from sync_core.adapters.storage_names import CONFIGS_TABLE
from sync_core.adapters.tables.boundary import storage_boundary
from sync_core.adapters.tables.leases import LeaseStore
from sync_core.adapters.tables.sync_state import TableSyncStateStore, state_entity
from sync_core.core.delta import SyncState
from sync_core.core.ports import Lease, LeaseLost, Unfenced

# The service's own store, from which each run's is made (`for_lease`): it checks no lease.
_NOT_A_RUN = Unfenced("the service's store, not a run's")


@storage_boundary
class LinkedSyncState(TableSyncStateStore):
    def __init__(
        self,
        service: TableServiceClient,
        home_tenant: str | None,
        leases: LeaseStore | None = None,
        lease: Lease | Unfenced = _NOT_A_RUN,
    ):
        super().__init__(service)
        self._service = service
        self._configs: TableClient = service.get_table_client(CONFIGS_TABLE)
        self._home = (home_tenant or "").lower()
        self._leases, self._lease = leases, lease

    def for_lease(self, leases: LeaseStore, lease: Lease | Unfenced) -> LinkedSyncState:
        """The store of one run: its link lands only while `lease` is still the run's."""
        return LinkedSyncState(self._service, self._home, leases, lease)

    async def put(self, tenant_id: str, state: SyncState) -> None:
        operation = ("upsert", state_entity(tenant_id, state), {"mode": UpdateMode.REPLACE})
        await self._submit(tenant_id, [operation])

    async def _submit(self, tenant_id: str, operations: list[Any]) -> list[Any]:
        """Every write of a run here (the link, the summary and its `Writing` mark) lands only
        while the run still holds its lease, and carries the guard: a MERGE of the
        configuration row, refused once an unlink deleted it."""
        await self._check_lease(tenant_id)
        return await self._guarded(tenant_id, operations)

    async def _submit_mark(self, tenant_id: str, operations: list[Any]) -> list[Any]:
        """The mark is written first and the lease checked after, as the fence rows are
        (tables/write_fence.py): a newer holder that read the summary as trusted, and so read
        the table before raising its fence (core/delta_reads.py), took the lease before this
        check, which then stops the run before its first write. Checked first, a mark sent
        late (a host frozen between the check and the send) would land after that read, and
        the run's rows with it."""
        written = await self._guarded(tenant_id, operations)
        await self._check_lease(tenant_id)
        return written

    async def _check_lease(self, tenant_id: str) -> None:
        if self._leases is not None and isinstance(self._lease, Lease):
            current = await self._leases.get(tenant_id)
            if current is None or (current.holder, current.token) != (
                self._lease.holder,
                self._lease.token,
            ):
                raise LeaseLost(f"the lease of tenant {tenant_id} passed on while the run went on")

    async def _guarded(self, tenant_id: str, operations: list[Any]) -> list[Any]:
        if tenant_id == self._home:
            return await super()._submit(tenant_id, operations)
        guard = (
            "update",
            {"PartitionKey": tenant_id, "RowKey": "config"},
            {"mode": UpdateMode.MERGE},
        )
        try:
            return (await super()._submit(tenant_id, [*operations, guard]))[: len(operations)]
        except TableTransactionError as error:
            if error.status_code == 404 and not await self._linked(tenant_id):
                raise LeaseLost(f"tenant {tenant_id} was unlinked while the run went on") from None
            raise

    async def _linked(self, tenant_id: str) -> bool:
        try:
            await self._configs.get_entity(tenant_id, "config", select=["PartitionKey"])
        except ResourceNotFoundError:
            return False
        return True
