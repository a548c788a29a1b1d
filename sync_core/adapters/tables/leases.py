"""The SyncLeases table: one lease per tenant, the right to run its sync."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from sync_core.adapters.names import LEASES_TABLE
from sync_core.adapters.tables.common import storage_boundary
from sync_core.adapters.tables.lease_process import this_process
from sync_core.core.ports import Lease, LeaseLost


@storage_boundary
class LeaseStore:
    """One row per tenant in SyncLeases. Every change after the first is conditional on the ETag
    the changer read, so of two workers racing for a tenant exactly one wins; an expired lease
    (its worker crashed) is taken over the same way."""

    def __init__(self, service: TableServiceClient, partition: str = "lease"):
        # "lease": the run writing a tenant; "pending": the run queued for it (dispatch.py).
        self._table: TableClient = service.get_table_client(LEASES_TABLE)
        self._partition = partition

    async def get(self, tenant_id: str) -> Lease | None:
        try:
            entity = await self._table.get_entity(self._partition, tenant_id)
        except ResourceNotFoundError:
            return None
        return Lease(
            tenant_id,
            entity["Holder"],
            entity["ExpiresAt"],
            entity.metadata["etag"] or "",
            entity.get("Token") or "",
        )

    async def holder_process(self, tenant_id: str) -> str | None:
        """The process that last wrote the row ("host:pid"), if it says."""
        try:
            entity = await self._table.get_entity(self._partition, tenant_id, select=["Process"])
        except ResourceNotFoundError:
            return None
        return entity.get("Process") or None

    async def acquire(
        self, tenant_id: str, holder: str, now: datetime, ttl: timedelta
    ) -> Lease | None:
        """The lease for `holder`, or None while another live holder has it."""
        token = secrets.token_hex(16)
        entity = self._entity(tenant_id, holder, now + ttl, token)
        for _ in range(2):  # a second try only when the row vanished between create and read
            try:
                created = await self._table.create_entity(entity)
            except ResourceExistsError:
                pass
            else:
                return Lease(tenant_id, holder, now + ttl, created["etag"], token)
            current = await self.get(tenant_id)
            if current is None:
                continue
            if current.live(now):
                return None
            return await self.take_over(current, holder, now, ttl)
        return None

    async def take_over(
        self, current: Lease, holder: str, now: datetime, ttl: timedelta
    ) -> Lease | None:
        """Replace `current` (expired, or known to be over) by `holder`; None when someone
        changed it first."""
        token = secrets.token_hex(16)
        try:
            updated = await self._table.update_entity(
                self._entity(current.tenant_id, holder, now + ttl, token),
                mode=UpdateMode.REPLACE,
                etag=current.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None  # another worker took it first
        return Lease(current.tenant_id, holder, now + ttl, updated["etag"], token)

    async def renew(self, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
        try:
            updated = await self._table.update_entity(
                self._entity(lease.tenant_id, lease.holder, now + ttl, lease.token),
                mode=UpdateMode.REPLACE,
                etag=lease.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise LeaseLost(f"the lease of tenant {lease.tenant_id} was taken over") from None
        return Lease(lease.tenant_id, lease.holder, now + ttl, updated["etag"], lease.token)

    async def release(self, lease: Lease) -> bool:
        """Give the lease back; False when it had already passed to someone else."""
        try:
            await self._table.delete_entity(
                self._partition,
                lease.tenant_id,
                etag=lease.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            return False
        return True

    def _entity(
        self, tenant_id: str, holder: str, expires_at: datetime, token: str
    ) -> dict[str, Any]:
        return {
            "PartitionKey": self._partition,
            "RowKey": tenant_id,
            "Holder": holder,
            "ExpiresAt": expires_at,
            "Token": token,
            "Process": this_process(),  # who wrote it: lease_process.process_gone reads it
        }
