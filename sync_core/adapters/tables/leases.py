"""The SyncLeases table: one lease per tenant, the right to run its sync.

In partition `lease` the tenant's row also holds its run index (run_index_rows.py): the lease
properties (`Holder`, `ExpiresAt`, `Token`) and the index's are written with MERGE, each side
leaving the other's alone, so a run's release can record its outcome in the same write. A free
lease is a row whose `Holder` is empty.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
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

from sync_core.adapters.storage_names import LEASES_TABLE
from sync_core.adapters.tables.boundary import storage_boundary
from sync_core.adapters.tables.lease_process import this_process
from sync_core.core.ports import Lease, LeaseLost

FREE: dict[str, Any] = {"Holder": "", "Token": ""}
# What to write beside the lease, from the row as read (None: not read / no row).
Beside = Callable[[Any], dict[str, Any]]


def lease_of(entity: Any) -> Lease | None:
    """The lease a row holds; None when it is free."""
    if not entity.get("Holder"):
        return None
    return Lease(
        entity["RowKey"],
        entity["Holder"],
        entity["ExpiresAt"],
        entity.metadata["etag"] or "",
        entity.get("Token") or "",
    )


def _same_holding(a: Lease, b: Lease) -> bool:
    return (a.holder, a.token) == (b.holder, b.token)


@storage_boundary
class LeaseStore:
    """One row per tenant in SyncLeases. Every change is conditional on the ETag the changer
    read, so of two workers racing for a tenant exactly one wins; an expired lease (its worker
    crashed) is taken over the same way. A change of the row by someone else that left the
    holding as it was (the run index written beside it) is looked at again, not taken for a
    lost lease."""

    def __init__(self, service: TableServiceClient, partition: str = "lease"):
        # "lease": the run writing a tenant, beside its run index (run_index_rows.py).
        self._table: TableClient = service.get_table_client(LEASES_TABLE)
        self._partition = partition

    async def get(self, tenant_id: str) -> Lease | None:
        try:
            entity = await self._table.get_entity(self._partition, tenant_id)
        except ResourceNotFoundError:
            return None
        return lease_of(entity)

    async def holder_process(self, tenant_id: str) -> str | None:
        """The process that last wrote the row ("host:pid"), if it says."""
        try:
            entity = await self._table.get_entity(self._partition, tenant_id, select=["Process"])
        except ResourceNotFoundError:
            return None
        return entity.get("Process") or None

    async def acquire(
        self,
        tenant_id: str,
        holder: str,
        now: datetime,
        ttl: timedelta,
        beside: Beside | None = None,
        known: Any = None,
    ) -> Lease | None:
        """The lease for `holder`, or None while another live holder has it. `beside` gives the
        properties to write in the same request, from the row as read (None: no row yet).
        `known`: the row as lately written (claimed_row.py), tried first without reading it:
        the write is conditional on its ETag, so a row changed since is read and decided on."""
        token = secrets.token_hex(16)
        for _ in range(3):
            entity, known = known, None
            if entity is None:
                try:
                    entity = await self._table.get_entity(self._partition, tenant_id)
                except ResourceNotFoundError:
                    entity = None
            extra = beside(entity) if beside is not None else {}
            if entity is None:
                try:
                    created = await self._table.create_entity(
                        self._entity(tenant_id, holder, now + ttl, token) | extra
                    )
                except ResourceExistsError:
                    continue  # created meanwhile: read it
                return Lease(tenant_id, holder, now + ttl, created["etag"], token)
            current = lease_of(entity)
            if current is not None and current.live(now):
                return None
            etag = entity.metadata["etag"] or ""
            taken = await self._write(tenant_id, holder, now + ttl, token, etag, extra)
            if taken is not None:
                return taken
            # Someone wrote the row first: a rival acquirer, or the run index beside it.
        return None

    async def take_over(
        self, current: Lease, holder: str, now: datetime, ttl: timedelta
    ) -> Lease | None:
        """Replace `current` (expired, or known to be over) by `holder`; None when someone
        changed it first."""
        token = secrets.token_hex(16)
        etag = current.etag
        for _ in range(4):
            taken = await self._write(current.tenant_id, holder, now + ttl, token, etag)
            if taken is not None:
                return taken
            now_held = await self.get(current.tenant_id)
            if now_held is None or not _same_holding(now_held, current):
                return None  # another worker took it first
            etag = now_held.etag  # the same holding: only the run index beside it changed
        return None

    async def renew(self, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
        etag = lease.etag
        for _ in range(4):
            renewed = await self._write(lease.tenant_id, lease.holder, now + ttl, lease.token, etag)
            if renewed is not None:
                return renewed
            current = await self.get(lease.tenant_id)
            if current is None or not _same_holding(current, lease):
                break
            etag = current.etag  # still ours: only the run index beside it changed
        raise LeaseLost(f"the lease of tenant {lease.tenant_id} was taken over")

    async def release(self, lease: Lease, beside: Beside | None = None) -> bool:
        """Give the lease back, writing what `beside` gives in the same request (called with
        None first: "from what you know", then with the row when someone else wrote it);
        False when the lease had already passed to someone else."""
        etag, entity = lease.etag, None
        for _ in range(4):
            extra = beside(entity) if beside is not None else {}
            try:
                await self._table.update_entity(
                    {"PartitionKey": self._partition, "RowKey": lease.tenant_id, **FREE} | extra,
                    mode=UpdateMode.MERGE,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except ResourceNotFoundError:
                return False
            except ResourceModifiedError:
                try:
                    entity = await self._table.get_entity(self._partition, lease.tenant_id)
                except ResourceNotFoundError:
                    return False
                current = lease_of(entity)
                if current is None or not _same_holding(current, lease):
                    return False
                etag = current.etag
                continue
            return True
        return False

    async def _write(
        self,
        tenant_id: str,
        holder: str,
        expires_at: datetime,
        token: str,
        etag: str,
        extra: dict[str, Any] | None = None,
    ) -> Lease | None:
        try:
            updated = await self._table.update_entity(
                self._entity(tenant_id, holder, expires_at, token) | (extra or {}),
                mode=UpdateMode.MERGE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        return Lease(tenant_id, holder, expires_at, updated["etag"], token)

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
