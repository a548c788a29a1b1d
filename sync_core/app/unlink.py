"""Unlinking a tenant is a run like any other: it holds the tenant's lease and fences its
writes, so a run that started before the unlink writes nothing after it.

A run in progress is cancelled, not waited for: the unlink takes its lease over (ETag-
conditional, as a worker takes over an expired lease) and raises the employees' fence rows, so
the old run's next transaction fails (LeaseLost, tables/employees.py) and its lease keeper stops
it; its delta link cannot land either (tables/fenced_state.py: written only while the tenant's
configuration row exists). Linked again, the tenant has no delta link: its next run is full.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from sync_core.app.exclusive import LEASE_TTL
from sync_core.app.service import SyncService
from sync_core.core.ports import Lease
from sync_core.core.report import utc_now
from sync_core.errors import ErrorCode, RetriableError, SyncError


class HomeTenant(Exception):
    """ENTRA_TENANT_ID is served whether linked or not: unlinking it would not stop that."""


async def unlink_tenant(service: SyncService, tenant_id: str, *, remove_employees: bool) -> int:
    """Stop serving the tenant; its employees are removed only when asked. Returns how many
    were removed. LookupError for a tenant that is not registered, HomeTenant for the home one."""
    if tenant_id == (service.settings.tenant_id or "").lower():
        raise HomeTenant(tenant_id)
    if await service.registry.enabled(tenant_id) is None:
        raise LookupError(tenant_id)
    lease = await _take_lease(service, tenant_id, utc_now())
    try:
        return await forget_tenant(service, lease, remove_employees=remove_employees)
    finally:
        with contextlib.suppress(SyncError):  # an unreleased lease expires by itself
            await service.leases.release(lease)


async def forget_tenant(service: SyncService, lease: Lease, *, remove_employees: bool) -> int:
    """The unlink's writes, under `lease`: the fence goes up first (a stale run's writes fail
    from here on), then the employees when asked, then the configuration and delta link, last,
    in one transaction (tables/configurations.py): an unlink that fails before that leaves the
    tenant registered, and asking again finishes it. One step, so that other stored state of a
    tenant (photos) is removed here too."""
    tenant_id = lease.tenant_id
    writer = await service.employees.writer(tenant_id, lease)
    try:
        removed = 0
        if remove_employees:
            async for entity in service.employees.all(tenant_id):
                await writer.delete(entity["RowKey"])
                removed += 1
            await writer.flush()
            await service.managers.forget(tenant_id)  # manager fields' index (tables/managers.py)
            if (photos := service.photo_store()) is not None:
                await photos.remove_tenant(tenant_id)  # the photo blobs go with the employees
        # Scope groups' stored membership: linked again, the first run is full and reads it anew.
        await service.memberships.prune(tenant_id, keep=None)
        if not await service.configs.remove(tenant_id):
            raise LookupError(tenant_id)
        return removed
    finally:
        await writer.abort()


async def _take_lease(service: SyncService, tenant_id: str, now: datetime) -> Lease:
    holder = f"unlink-{now.strftime('%Y%m%dT%H%M%S%f')}"
    for _ in range(3):
        lease = await service.leases.acquire(tenant_id, holder, now, LEASE_TTL)
        if lease is not None:
            return lease
        current = await service.leases.get(tenant_id)
        if current is None:
            continue
        # A live run holds it: taken over, that run is cancelled (see the module's docstring).
        lease = await service.leases.take_over(current, holder, now, LEASE_TTL)
        if lease is not None:
            return lease
    raise RetriableError(
        ErrorCode.TENANT_BUSY, "The tenant's lease keeps changing hands; try the unlink again."
    )
