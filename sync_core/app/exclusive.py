"""One run per tenant at a time, whatever starts it: the queue worker and the CLI alike.

A run holds the tenant's lease (store.LeaseStore, ETag-guarded) for as long as it writes, renewing
it in the background; a worker that dies frees its tenant when the lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from sync_core.adapters.tables.claimed_row import ClaimedRow
from sync_core.adapters.tables.leases import Beside, LeaseStore
from sync_core.app.closing import close_abandoned_runs, close_failed
from sync_core.app.lease_holder import HolderOver, holder_is_over
from sync_core.app.leased_run import IdleEnding, RunningMark
from sync_core.app.service import SyncService
from sync_core.core.engine import RunRequest
from sync_core.core.ports import Lease, LeaseLost
from sync_core.core.report import FINAL_STATUSES, RunProblem, RunReport, new_run_id, utc_now
from sync_core.errors import ErrorCode, SyncError

log = logging.getLogger("sync_core.app.exclusive")

# Renewed every minute, a lease outlives a stalled renewal by four more tries; a worker that
# died frees its tenant within five minutes.
LEASE_TTL = timedelta(minutes=5)
LEASE_RENEW_EVERY = timedelta(minutes=1)


class TenantBusy(Exception):
    """Another run holds the tenant's lease (until `expires_at`, unless it renews it)."""

    def __init__(self, tenant_id: str, holder: str, expires_at: datetime | None = None):
        super().__init__(f"run {holder} of tenant {tenant_id} is in progress")
        self.tenant_id = tenant_id
        self.holder = holder
        self.expires_at = expires_at


class RunBusy(Exception):
    """An earlier attempt of the same run still holds the tenant's lease: retry later."""


class RunAlreadyFinished(Exception):
    """Another delivery of the same run finished it while this one waited for the lease."""

    def __init__(self, record: RunReport):
        super().__init__(f"run {record.run_id} already {record.status}")
        self.record = record


async def sync_exclusively(
    service: SyncService,
    request: RunRequest,
    *,
    now: Callable[[], datetime] = utc_now,
    ttl: timedelta = LEASE_TTL,
    renew_every: timedelta = LEASE_RENEW_EVERY,
    claimed: ClaimedRow | None = None,
) -> RunReport:
    """Run the sync while holding the tenant's lease (taken on `claimed`'s ETag first, the
    row as the run's claim left it, when the message carries it).

    Raises TenantBusy when another run holds it, RunBusy when an earlier attempt of this run
    does. A run whose lease is taken over (renewals failed for a whole TTL) is stopped before it
    writes more and comes back failed with code `lease_lost`.
    """
    run_id = request.run_id or new_run_id(now())
    if request.run_id is None:
        request = dataclasses.replace(request, run_id=run_id)
    mark = RunningMark(run_id, now())
    lease = await acquire_lease(
        service.leases,
        request.tenant_id,
        run_id,
        now(),
        ttl,
        mark,
        holder_over=holder_is_over(service),
        known=claimed.entity(request.tenant_id) if claimed is not None else None,
    )
    keeper = LeaseKeeper(service.leases, lease, ttl, renew_every, now)
    leased = service.runs.leased(run_id, marked=mark.marked)
    ending: RunReport | None = None
    try:
        with leased as held:
            await _refuse_if_finished(service, request.tenant_id, run_id, mark)
            async with keeper:
                await _close_dead_runs(service, request.tenant_id, lease, run_id, now(), mark)
                # The lease fences the run's writes too: once another run takes it over, Table
                # Storage refuses whatever this one still sends (fence rows: tables/write_fence.py).
                report = await service.sync(request, lease)
            ending = held.idle_ending
            return report
    except LeaseLost:
        closed = await _close_lease_lost(service, request.tenant_id, run_id, ttl, now)
        if closed is None:
            raise
        return closed
    finally:
        await _release(service, keeper.lease, mark, ending)


async def _refuse_if_finished(
    service: SyncService, tenant_id: str, run_id: str, mark: RunningMark
) -> None:
    """RunAlreadyFinished when the run has ended. Looked at again under the lease: a
    redelivered message may have been run to the end by another worker between the caller's
    first look and this lease. The row read for the lease tells, unless the run is one its
    index does not know."""
    ended = mark.ended()
    record = None if ended is False else await service.runs.get(tenant_id, run_id)
    if record is not None and record.status in FINAL_STATUSES:
        raise RunAlreadyFinished(record)


async def _close_lease_lost(
    service: SyncService,
    tenant_id: str,
    run_id: str,
    ttl: timedelta,
    now: Callable[[], datetime],
) -> RunReport | None:
    """The run's record closed as failed with `lease_lost`; None when it has no record."""
    record = await service.runs.get(tenant_id, run_id)
    if record is None:
        return None
    problem = RunProblem(
        ErrorCode.LEASE_LOST,
        "The run lost the tenant's lease (its renewal failed for longer than "
        f"{int(ttl.total_seconds())} s) and stopped so that two runs never write at "
        "once. Rows written so far are correct; the next run completes the work.",
    )
    return (await close_failed(service.runs, record, problem, now())).report


async def _release(
    service: SyncService, lease: Lease, mark: RunningMark, ending: RunReport | None
) -> None:
    """Give the lease back; an idle run's ending is recorded in the same write (or, if the
    lease is gone by now, saved the ordinary way)."""
    beside = IdleEnding(mark.index, ending) if ending is not None else None
    released = False
    with contextlib.suppress(SyncError):  # an unreleased lease expires by itself
        released = await service.leases.release(lease, beside)
    if ending is not None and not released:
        try:
            await service.runs.save(ending)
        except SyncError:
            log.warning("could not record the idle run %s", ending.run_id, exc_info=True)


async def _close_dead_runs(
    service: SyncService,
    tenant_id: str,
    lease: Lease,
    run_id: str,
    now: datetime,
    mark: RunningMark,
) -> None:
    """Holding the lease, no other run of the tenant can be running: any record that says so
    belongs to a process that died. Best effort: the timer closes them too. The row read for
    the lease lists them."""
    try:
        others = [r for r in mark.index.unfinished() if r.run_id != run_id]
        unfinished = others if mark.read else await service.runs.unfinished(tenant_id)
        await close_abandoned_runs(
            service.runs, unfinished, lease, now, f"run {run_id}", keep=run_id
        )
    except SyncError:
        log.warning("could not close the abandoned runs of %s", tenant_id, exc_info=True)


async def acquire_lease(
    leases: LeaseStore,
    tenant_id: str,
    run_id: str,
    now: datetime,
    ttl: timedelta,
    beside: Beside | None = None,
    holder_over: HolderOver | None = None,
    known: Any = None,
) -> Lease:
    """The lease for `run_id`; TenantBusy or RunBusy when a live holder has it. A holder that
    `holder_over` says is over (lease_holder.py) is taken over at once. `known`: the row as
    the run's claim left it (LeaseStore.acquire)."""
    for _ in range(2):
        lease = await leases.acquire(tenant_id, run_id, now, ttl, beside, known)
        known = None
        if lease is not None:
            return lease
        holder = await leases.get(tenant_id)
        if holder is None or not holder.live(now):
            continue  # released or expired in between: try once more
        if holder.holder == run_id:
            raise RunBusy(
                f"an earlier attempt of run {run_id} holds the lease of tenant {tenant_id} "
                f"until {holder.expires_at.isoformat()}; retrying later"
            )
        if holder_over is not None and await holder_over(holder):
            taken = await leases.take_over(holder, run_id, now, ttl)
            if taken is not None:
                return taken
            continue  # someone else changed it first: look again
        raise TenantBusy(tenant_id, holder.holder, holder.expires_at)
    raise RunBusy(f"the lease of tenant {tenant_id} keeps changing hands; retrying later")


class LeaseKeeper:
    """Renews the lease in the background while the run goes on. If the lease is lost (taken
    over after renewals failed for a whole TTL), the run is cancelled and LeaseLost raised."""

    def __init__(
        self,
        leases: LeaseStore,
        lease: Lease,
        ttl: timedelta,
        every: timedelta,
        now: Callable[[], datetime],
    ):
        self.lease = lease
        self._leases, self._ttl, self._every, self._now = leases, ttl, every, now
        self._lost = False
        self._stop = asyncio.Event()
        self._owner: asyncio.Task[Any] | None = None
        self._renewal: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LeaseKeeper:
        self._owner = asyncio.current_task()
        self._renewal = asyncio.create_task(self._renew())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        assert self._renewal is not None and self._owner is not None
        # Stopped, not cancelled: a renewal cut off mid-request may still land, leaving the
        # release below with an outdated ETag and the tenant locked for a whole TTL.
        self._stop.set()
        ours = False  # the renewal's cancellation reached the owner here, after the body
        try:
            await self._renewal
        except asyncio.CancelledError:
            # The renewal in flight as the body ended found the lease gone and cancelled the
            # owner, which was waiting here: that cancellation is ours, not the caller's.
            if not self._lost:
                raise
            ours = True
        if self._lost and (ours or kind is asyncio.CancelledError):
            if self._owner.uncancel() > 0:
                raise asyncio.CancelledError  # cancelled from outside as well: let it through
            if kind is asyncio.CancelledError:
                raise LeaseLost(f"the lease of tenant {self.lease.tenant_id} was lost") from None
        # Lost after a body that completed: each of its writes went through under the fence
        # (tables/employees.py), so its report is true and stands.

    async def _renew(self) -> None:
        every = self._every.total_seconds()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), every)
            if self._stop.is_set():
                return
            try:
                # Bounded: a renewal hanging in the SDK's own retries must not outlive the lease.
                renewed = self._leases.renew(self.lease, self._now(), self._ttl)
                self.lease = await asyncio.wait_for(renewed, every)
            except LeaseLost:
                self._give_up()
                return
            except Exception:  # transient: the lease keeps the rest of its TTL
                log.warning("renewing the lease of %s failed", self.lease.tenant_id, exc_info=True)
            # Renewals kept failing and the lease is about to lapse: stop before another worker
            # may take it over, rather than find out after both have written.
            if self._now() + self._every >= self.lease.expires_at:
                self._give_up()
                return

    def _give_up(self) -> None:
        self._lost = True
        assert self._owner is not None
        self._owner.cancel()
