"""Asking for runs: which tenants the app serves, Sync Now, the timer's tick, the status view.

A run is requested by saving its record as `queued` first (so its status URL answers at once) and
then sending its message; the worker (worker.py) turns it into `running` and a final report.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sync_core.adapters.queue import RunMessage, RunQueue
from sync_core.app.closing import close_abandoned_runs, close_failed
from sync_core.app.run_history import joinable, schedule_history
from sync_core.app.service import SyncService
from sync_core.core.ports import Lease
from sync_core.core.report import (
    FINAL_STATUSES,
    RunProblem,
    RunReport,
    RunStatus,
    Trigger,
    new_run_id,
    utc_now,
)
from sync_core.core.schedule import (
    ENQUEUE_SPREAD,
    QUEUED_TTL,
    TenantSchedule,
    enqueue_delay,
    first_in_flight,
    plan_tenant,
    waiting_for_its_offset,
)
from sync_core.errors import RetriableError, SyncError
from sync_core.settings import Settings

log = logging.getLogger("sync_core.app.dispatch")

# Enough history to count failures past the point where the backoff reaches its cap, and to find
# the last success of a tenant that has been failing for a day or two.
SCHEDULE_HISTORY = 10
TENANTS_IN_PARALLEL = 8


@dataclass(frozen=True)
class RunTicket:
    """What Sync Now answers: the run to follow, and whether this request created it."""

    run_id: str
    tenant_id: str
    status: str
    dry_run: bool
    created: bool


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


async def request_run(
    service: SyncService,
    tenant_id: str,
    *,
    dry_run: bool,
    allow_deletes: bool,
    now: datetime,
    full: bool = False,
) -> RunTicket:
    """Sync Now: the run already queued or running for the tenant, or a new one. A run the timer
    queued with a delay is sent again without one, so pressing Sync Now never means waiting."""
    history = await service.runs.latest(tenant_id, top=5)
    lease = await lease_if_running(service, history)
    going = first_in_flight(joinable(history), lease, now)
    if going is not None:
        if waiting_for_its_offset(going, now):
            # The delayed message arrives later, finds the run finished and is ignored.
            message = RunMessage(tenant_id, going.run_id, going.dry_run, False, Trigger.SCHEDULE)
            try:
                async with RunQueue(service.settings) as queue:
                    await queue.send(message)
            except Exception as error:  # the queued run still comes at its offset
                raise _queue_unavailable(error) from error
        return RunTicket(going.run_id, tenant_id, going.status, going.dry_run, created=False)
    try:
        async with RunQueue(service.settings) as queue:
            report = await enqueue_run(
                service,
                queue,
                tenant_id,
                dry_run=dry_run,
                allow_deletes=allow_deletes,
                trigger=Trigger.API,
                now=now,
                full=full,
            )
    except RunPending as pending:  # another press or the timer got there first
        record = await service.runs.get(tenant_id, pending.run_id)
        status = record.status if record else RunStatus.QUEUED
        return RunTicket(pending.run_id, tenant_id, status, bool(record and record.dry_run), False)
    return RunTicket(report.run_id, tenant_id, report.status, dry_run, created=True)


class RunPending(Exception):
    """The tenant already has a run queued or running."""

    def __init__(self, run_id: str):
        super().__init__(f"run {run_id} is pending")
        self.run_id = run_id


async def claim_pending(service: SyncService, tenant_id: str, run_id: str, now: datetime) -> None:
    """Make `run_id` the tenant's one pending run, or raise RunPending with the one that is.

    Reading the history and then queueing is not enough when two requests (two presses, a
    press and a tick) race: this claim, created or taken over on its ETag, lets one win."""
    for _ in range(3):
        if await service.pending.acquire(tenant_id, run_id, now, QUEUED_TTL) is not None:
            return
        current = await service.pending.get(tenant_id)
        if current is None:
            continue  # released meanwhile: try again
        record = await service.runs.get(tenant_id, current.holder)
        # No record yet: its requester is between claim and save.
        if record is None or record.status not in FINAL_STATUSES:
            raise RunPending(current.holder)
        if await service.pending.take_over(current, run_id, now, QUEUED_TTL) is not None:
            return
    raise RunPending(current.holder if current else run_id)


async def enqueue_run(
    service: SyncService,
    queue: RunQueue,
    tenant_id: str,
    *,
    dry_run: bool,
    allow_deletes: bool,
    trigger: Trigger,
    now: datetime,
    delay: timedelta = timedelta(0),
    full: bool = False,
) -> RunReport:
    report = RunReport.begun(
        new_run_id(now), tenant_id, RunStatus.QUEUED, dry_run=dry_run, trigger=trigger, at=now
    )
    await claim_pending(service, tenant_id, report.run_id, now)
    await service.runs.save(report)
    message = RunMessage(tenant_id, report.run_id, dry_run, allow_deletes, trigger, full)
    try:
        await queue.send(message, delay)
    except Exception as error:  # recorded on the run, then raised classified
        failure = _queue_unavailable(error)
        problem = RunProblem(failure.code, failure.message, failure.fix)
        await close_failed(service.runs, report, problem, utc_now())
        raise failure from error
    return report


def _queue_unavailable(error: Exception) -> SyncError:
    return RetriableError(
        "queue_unavailable",
        f"The run could not be queued: {type(error).__name__}.",
        "Check QUEUES_ENDPOINT and the identity's Storage Queue Data Contributor role; "
        "then ask again.",
    )


@dataclass(frozen=True)
class TickResult:
    enqueued: tuple[str, ...]  # run ids
    due: tuple[str, ...]  # tenant ids
    skipped_disabled: tuple[str, ...]
    failed: tuple[str, ...]  # tenants whose request could not be made


async def scheduled_tick(
    settings: Settings, now: datetime, *, spread: timedelta = ENQUEUE_SPREAD
) -> TickResult:
    """One tick of the timer: enqueue one run for each enabled tenant that is due."""
    enqueued: list[str] = []
    due: list[str] = []
    failed: list[str] = []
    async with SyncService(settings) as service, RunQueue(settings) as queue:
        tenants = await served_tenants(service)  # a dict: each tenant once per tick
        disabled = sorted(t for t, on in tenants.items() if not on)
        slots = asyncio.Semaphore(TENANTS_IN_PARALLEL)

        async def consider(tenant_id: str) -> None:
            async with slots:
                try:
                    plan = await tenant_schedule(
                        service, tenant_id, now, SCHEDULE_HISTORY, close_abandoned=True
                    )
                    if not plan.due:
                        return
                    due.append(tenant_id)
                    report = await enqueue_run(
                        service,
                        queue,
                        tenant_id,
                        dry_run=False,
                        allow_deletes=False,
                        trigger=Trigger.SCHEDULE,
                        now=now,
                        delay=enqueue_delay(tenant_id, spread),
                    )
                    enqueued.append(report.run_id)
                except RunPending:
                    pass  # a Sync Now press queued one a moment ago: that run serves
                except Exception:  # one tenant's trouble must not stop the others
                    failed.append(tenant_id)
                    log.exception("could not schedule tenant %s", tenant_id)

        await asyncio.gather(*(consider(t) for t, on in sorted(tenants.items()) if on))
    result = TickResult(tuple(enqueued), tuple(sorted(due)), tuple(disabled), tuple(failed))
    log.info(
        "schedule tick: %d tenant(s) served, %d due, %d enqueued, %d failed",
        len(tenants),
        len(due),
        len(enqueued),
        len(failed),
        extra={
            "event": "schedule_tick",
            "tenants": len(tenants),
            "due": len(due),
            "enqueued": len(enqueued),
            "failed": len(failed),
        },
    )
    return result


async def tenant_schedule(
    service: SyncService,
    tenant_id: str,
    now: datetime,
    history_size: int,
    *,
    close_abandoned: bool = False,
) -> TenantSchedule:
    history = await schedule_history(service.runs, tenant_id, history_size)
    if close_abandoned:
        # Not only the recent history: a run whose process died long ago, buried under later
        # runs, would otherwise say `running` forever.
        unfinished = await service.runs.unfinished(tenant_id)
        lease = await lease_if_running(service, [*history, *unfinished])
        closed = await close_abandoned_runs(service.runs, unfinished, lease, now, "the timer")
        history = [closed.get(report.run_id, report) for report in history]
    else:
        lease = await lease_if_running(service, history)
    return plan_tenant(
        tenant_id,
        history,
        lease,
        now,
        service.settings.sync_interval_min_hours,
        service.settings.sync_interval_max_hours,
    )


async def lease_if_running(service: SyncService, history: list[RunReport]) -> Lease | None:
    if any(report.status == RunStatus.RUNNING for report in history):
        return await service.leases.get(history[0].tenant_id)
    return None
