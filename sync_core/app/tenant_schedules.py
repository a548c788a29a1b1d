"""Where each tenant stands, read from the run index: for the tick, Sync Now, GET /api/status
and the fan-out alike, so they never disagree; and the tick's bounded retention sweep."""

from __future__ import annotations

import logging
from datetime import datetime

from sync_core.app.closing import close_abandoned_runs
from sync_core.app.service import SyncService
from sync_core.core.ports import Lease
from sync_core.core.report import RunReport, RunStatus
from sync_core.core.run_index import RECENT_RUNS, RunIndex
from sync_core.core.schedule import TenantSchedule, plan_tenant
from sync_core.errors import SyncError

log = logging.getLogger("sync_core.app.dispatch")

SWEEPS_PER_TICK = 20  # tenants whose expired run records one tick removes (RunStore.sweep)
ADOPTIONS_PER_TICK = 50  # tenants whose runs in flight from before the index one tick moves


async def adopt_some(service: SyncService, tenants: list[str], indexes: dict[str, RunIndex]) -> int:
    """After the upgrade to the run index, a bounded share of each tick: the tenants whose
    runs in flight from before (in SyncRuns) were not yet moved into the index
    (RunStore.adopt_legacy). A new tenant is looked at once too (its history is empty)."""
    waiting = [t for t in tenants if not indexes.get(t, RunIndex()).adopted]
    moved = 0
    for tenant_id in waiting[:ADOPTIONS_PER_TICK]:
        try:
            moved += await service.runs.adopt_legacy(tenant_id)
        except SyncError:
            log.warning("could not adopt the runs in flight of %s", tenant_id, exc_info=True)
    return moved


async def sweep_some(service: SyncService, indexes: dict[str, RunIndex], now: datetime) -> int:
    """The retention sweep's bounded share of a tick: the SWEEPS_PER_TICK tenants longest
    waiting for theirs, each at most one query and one transaction."""
    waiting = sorted(
        (index.sweep_after, tenant)
        for tenant, index in indexes.items()
        if index.sweep_after is not None and index.sweep_after <= now
    )
    removed = 0
    for _, tenant_id in waiting[:SWEEPS_PER_TICK]:
        try:
            removed += await service.runs.sweep(tenant_id, now)
        except SyncError:
            log.warning("could not sweep the run records of %s", tenant_id, exc_info=True)
    return removed


async def schedule_of(
    service: SyncService,
    tenant_id: str,
    index: RunIndex,
    leases: dict[str, Lease],
    now: datetime,
    *,
    close_abandoned: bool = True,
) -> TenantSchedule:
    """Where a tenant stands, from its run index; runs that will never end by themselves are
    closed first (keyed writes: the index lists them)."""
    history = list(index.runs)
    lease = leases.get(tenant_id)
    if close_abandoned and index.unfinished():
        closed = await close_abandoned_runs(
            service.runs, index.unfinished(), lease, now, "the timer"
        )
        history = [closed.get(report.run_id, report) for report in history]
    return plan_tenant(
        tenant_id,
        history,
        lease,
        now,
        service.settings.sync_interval_min_hours,
        service.settings.sync_interval_max_hours,
    )


async def tenant_schedule(
    service: SyncService,
    tenant_id: str,
    now: datetime,
    history_size: int = RECENT_RUNS,
    *,
    close_abandoned: bool = False,
) -> TenantSchedule:
    """One tenant's schedule: a keyed read of its run index (and of its lease if it runs)."""
    index, _ = await service.runs.index.get(tenant_id)
    lease = await lease_if_running(service, list(index.runs))
    leases = {tenant_id: lease} if lease is not None else {}
    return await schedule_of(
        service, tenant_id, index, leases, now, close_abandoned=close_abandoned
    )


async def lease_if_running(service: SyncService, history: list[RunReport]) -> Lease | None:
    if any(report.status == RunStatus.RUNNING for report in history):
        return await service.leases.get(history[0].tenant_id)
    return None
