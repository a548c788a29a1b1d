"""Asking for runs: Sync Now and the timer's tick (which tenants are served: tenants.py).

A run is requested by saving its record as `queued` first (so its status URL answers at once) and
then sending its message; the worker (worker.py) turns it into `running` and a final report.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sync_core.adapters.queue import RunMessage, RunQueue, ShardMessage
from sync_core.adapters.tables.run_index_rows import TenantRow
from sync_core.app.closing import close_failed
from sync_core.app.run_history import joinable
from sync_core.app.service import SyncService
from sync_core.app.tenant_schedules import (
    adopt_some,
    lease_if_running,
    schedule_of,
    sweep_some,
    tenant_schedule,
)
from sync_core.app.tenants import served_tenants
from sync_core.core.report import (
    RunProblem,
    RunReport,
    RunStatus,
    Trigger,
    new_run_id,
    utc_now,
)
from sync_core.core.run_index import RECENT_RUNS, RunIndex, RunPending
from sync_core.core.schedule import (
    ENQUEUE_SPREAD,
    enqueue_delay,
    first_in_flight,
    waiting_for_its_offset,
)
from sync_core.errors import ErrorCode, RetriableError, SyncError
from sync_core.settings import Settings

log = logging.getLogger("sync_core.app.dispatch")

# Enough history to count failures past the point where the backoff reaches its cap, and to find
# the last success of a tenant that has been failing for a day or two.
SCHEDULE_HISTORY = RECENT_RUNS
TENANTS_IN_PARALLEL = 8
# Due tenants one tick enqueues itself; more are sent in shards of this many, each enqueued by
# a queue invocation (app/fan_out.py), so a tick stays short however many tenants are due.
SHARD_SIZE = 200


@dataclass(frozen=True)
class RunTicket:
    """What Sync Now answers: the run to follow, and whether this request created it."""

    run_id: str
    tenant_id: str
    status: str
    dry_run: bool
    created: bool


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
    index, _ = await service.runs.index.get(tenant_id)  # its runs in flight: one keyed read
    history = list(index.runs)
    lease = await lease_if_running(service, history)
    joined = first_in_flight(joinable(history), lease, now)
    if joined is not None:
        if waiting_for_its_offset(joined, now):
            # The delayed message arrives later, finds the run finished and is ignored.
            message = RunMessage(tenant_id, joined.run_id, joined.dry_run, False, Trigger.SCHEDULE)
            try:
                async with RunQueue(service.settings) as queue:
                    await queue.send(message)
            except Exception as error:  # the queued run still comes at its offset
                raise _queue_unavailable(error) from error
        return RunTicket(joined.run_id, tenant_id, joined.status, joined.dry_run, created=False)
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
    known: TenantRow | None = None,
) -> RunReport:
    """A new run queued for the tenant (its record and its message); RunPending with the run
    that is already queued or running. `known`: the tenant's row as the tick read it."""
    report = RunReport.begun(
        new_run_id(now), tenant_id, RunStatus.QUEUED, dry_run=dry_run, trigger=trigger, at=now
    )
    # One conditional write of the tenant's run index row: the claim and the record at once.
    row = await service.runs.claim(report, now, known)
    message = RunMessage(tenant_id, report.run_id, dry_run, allow_deletes, trigger, full, row)
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
        ErrorCode.QUEUE_UNAVAILABLE,
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
    shards: int = 0  # fan-out messages sent instead of enqueuing here (SHARD_SIZE)
    swept: int = 0  # run records removed by the retention sweep


async def scheduled_tick(
    settings: Settings,
    now: datetime,
    *,
    spread: timedelta = ENQUEUE_SPREAD,
    shard_size: int = SHARD_SIZE,
) -> TickResult:
    """One tick of the timer: enqueue one run for each enabled tenant that is due. The schedule
    of every tenant comes from one query of the run index rows (each with its lease), so a
    tick costs that plus the work of the due tenants; more than SHARD_SIZE due tenants are
    handed to the queue in shards (app/fan_out.py) instead of growing this invocation."""
    async with SyncService(settings) as service, RunQueue(settings) as queue:
        tenants = await served_tenants(service)  # a dict: each tenant once per tick
        disabled = sorted(t for t, on in tenants.items() if not on)
        rows = await service.runs.index.all()  # every tenant's index and lease: one query
        if await adopt_some(service, sorted(tenants), {t: r.index for t, r in rows.items()}):
            rows = await service.runs.index.all()  # runs from before the index: now in it
        indexes = {tenant: row.index for tenant, row in rows.items()}
        enabled = sorted(t for t, on in tenants.items() if on)
        due, failed = await _due_tenants(service, enabled, rows, now)
        shards = [due[i : i + shard_size] for i in range(0, len(due), shard_size)]
        enqueued: list[str] = []
        if len(shards) > 1:
            for shard in shards:
                await queue.send(ShardMessage(tuple(shard)))
        else:
            result = await enqueue_due(service, queue, due, now, spread, rows)
            enqueued, failed = list(result.enqueued), failed + list(result.failed)
        swept = await sweep_some(service, indexes, now)
    result = TickResult(
        tuple(enqueued),
        tuple(due),
        tuple(disabled),
        tuple(failed),
        len(shards) if len(shards) > 1 else 0,
        swept,
    )
    _log_tick(result, served=len(tenants))
    return result


async def _due_tenants(
    service: SyncService, tenant_ids: list[str], rows: dict[str, TenantRow], now: datetime
) -> tuple[list[str], list[str]]:
    """Which of `tenant_ids` are due, and which could not be scheduled (logged)."""
    leases = {tenant: row.lease for tenant, row in rows.items() if row.lease is not None}
    due: list[str] = []
    failed: list[str] = []
    for tenant_id in tenant_ids:
        index = rows[tenant_id].index if tenant_id in rows else RunIndex()
        try:
            plan = await schedule_of(service, tenant_id, index, leases, now)
        except Exception:  # one tenant's trouble must not stop the others
            failed.append(tenant_id)
            log.exception("could not schedule tenant %s", tenant_id)
            continue
        if plan.due:
            due.append(tenant_id)
    return due, failed


def _log_tick(result: TickResult, *, served: int) -> None:
    log.info(
        "schedule tick: %d tenant(s) served, %d due, %d enqueued, %d failed, %d shard(s)",
        served,
        len(result.due),
        len(result.enqueued),
        len(result.failed),
        result.shards,
        extra={
            "event": "schedule_tick",
            "tenants": served,
            "due": len(result.due),
            "enqueued": len(result.enqueued),
            "failed": len(result.failed),
            "shards": result.shards,
            "swept": result.swept,
        },
    )


async def enqueue_due(
    service: SyncService,
    queue: RunQueue,
    tenant_ids: list[str],
    now: datetime,
    spread: timedelta = ENQUEUE_SPREAD,
    known: dict[str, TenantRow] | None = None,
) -> TickResult:
    """Enqueue one scheduled run for each of `tenant_ids` (found due), a few at a time;
    `known`: their rows as the tick read them (a row changed since is read again)."""
    enqueued: list[str] = []
    failed: list[str] = []
    slots = asyncio.Semaphore(TENANTS_IN_PARALLEL)

    async def one(tenant_id: str) -> None:
        async with slots:
            try:
                report = await enqueue_run(
                    service,
                    queue,
                    tenant_id,
                    dry_run=False,
                    allow_deletes=False,
                    trigger=Trigger.SCHEDULE,
                    now=now,
                    delay=enqueue_delay(tenant_id, spread),
                    known=(known or {}).get(tenant_id),
                )
                enqueued.append(report.run_id)
            except RunPending:
                pass  # a Sync Now press queued one a moment ago: that run serves
            except Exception:  # one tenant's trouble must not stop the others
                failed.append(tenant_id)
                log.exception("could not schedule tenant %s", tenant_id)

    await asyncio.gather(*(one(t) for t in tenant_ids))
    return TickResult(tuple(enqueued), tuple(tenant_ids), (), tuple(sorted(failed)))


__all__ = ["lease_if_running", "scheduled_tick", "tenant_schedule"]
