"""When each tenant syncs: a fixed interval per tenant, retries with backoff, runs in flight.

Pure: takes run records, a lease and the time, returns decisions. The timer, the status route and
Sync Now all ask the same questions here, so they never disagree about a tenant.

- Each tenant's interval lies between the configured bounds (every tick by default), derived from
  a hash of its id: stable across restarts and deployments, different between tenants, so
  tenants drift apart instead of all syncing at the same tick.
- A tenant is due when its last run was requested an interval ago. After a failed run it is
  retried at the next tick; each further consecutive failure doubles the wait (15 min, 30 min,
  1 h, ...) up to the interval itself, so a broken tenant costs one run per interval at most.
- A tenant with a run queued or running is never due; a queued record older than QUEUED_TTL (its
  message was lost) or a running record without a live lease (its worker died) no longer blocks,
  and counts as a failure.
- Within one tick, due tenants are enqueued with a stable per-tenant delay inside ENQUEUE_SPREAD,
  so that many due tenants do not reach Graph in the same minute.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sync_core.core.ports import Lease
from sync_core.core.report import (
    RunReport,
    RunStatus,
    Trigger,
)
from sync_core.errors import ErrorCode

RETRY_BASE = timedelta(minutes=15)
# A timer tick fires a little after its scheduled second and run ids carry the time the tick ran,
# so "exactly one interval later" would miss the tick it meant by milliseconds.
TICK_SLACK = timedelta(minutes=2)
# Longer than the spread plus the queue's retries (5 attempts, 2 minutes apart; see host.json).
QUEUED_TTL = timedelta(minutes=30)
ENQUEUE_SPREAD = timedelta(minutes=10)
EXPEDITE_MARGIN = timedelta(seconds=15)  # nearly visible anyway: not worth a second message
# A run that found another run of its tenant going records this code and runs nothing; it is
# neither a sync nor a failure of the tenant.


@dataclass(frozen=True)
class TenantSchedule:
    tenant_id: str
    interval: timedelta
    due: bool
    next_due_at: datetime | None  # None: due now (never ran) or a run is in flight
    in_flight: RunReport | None
    last_run: RunReport | None  # the newest run that counts (not a dry run, not superseded)
    last_success: RunReport | None
    consecutive_failures: int
    # The newest counted run that is over (ended, or abandoned): what health speaks of, since a
    # run that waits or runs has said nothing yet.
    last_over: RunReport | None = None


def interval_of(tenant_id: str, min_hours: float, max_hours: float) -> timedelta:
    """The tenant's own interval within [min_hours, max_hours], to the minute."""
    minutes = min_hours * 60 + _fraction("interval", tenant_id) * (max_hours - min_hours) * 60
    return timedelta(minutes=round(minutes))


def enqueue_delay(tenant_id: str, spread: timedelta = ENQUEUE_SPREAD) -> timedelta:
    """The tenant's stable offset within a tick, whole seconds in [0, spread)."""
    return timedelta(seconds=int(_fraction("offset", tenant_id) * spread.total_seconds()))


def retry_delay(consecutive_failures: int, interval: timedelta) -> timedelta:
    """How long after the last failed request the tenant is due again."""
    if consecutive_failures <= 0:
        return interval
    if consecutive_failures == 1:
        return timedelta(0)  # the next tick
    return min(interval, RETRY_BASE * (1 << min(consecutive_failures - 2, 16)))  # doubling


def requested_at(report: RunReport) -> datetime:
    """When the run was asked for: the time in its id (the tick or the press of Sync Now), which
    a retried or restarted run keeps, unlike its start time."""
    try:
        return datetime.strptime(report.run_id[:18], "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
    except ValueError:
        return report.started_at


def is_superseded(report: RunReport) -> bool:
    return any(error.code == ErrorCode.SUPERSEDED for error in report.errors)


def in_flight(report: RunReport, lease: Lease | None, now: datetime) -> bool:
    """A run that is still going to happen or still happening."""
    if report.status == RunStatus.QUEUED:
        return now - report.started_at < QUEUED_TTL
    if report.status == RunStatus.RUNNING:
        return lease is not None and lease.holder == report.run_id and lease.live(now)
    return False


def abandoned(history: Sequence[RunReport], lease: Lease | None, now: datetime) -> list[RunReport]:
    """Runs left queued or running that will never end by themselves: the message was lost, or
    the worker died and its lease expired."""
    return [
        report
        for report in history
        if report.status in (RunStatus.QUEUED, RunStatus.RUNNING)
        and not in_flight(report, lease, now)
    ]


def waiting_for_its_offset(report: RunReport, now: datetime) -> bool:
    """A run the timer queued whose message is still invisible (enqueue_delay): Sync Now sends
    it again at once rather than let an admin wait for the offset."""
    if report.status != RunStatus.QUEUED or report.trigger != Trigger.SCHEDULE:
        return False
    return requested_at(report) + enqueue_delay(report.tenant_id) > now + EXPEDITE_MARGIN


def first_in_flight(
    history: Sequence[RunReport], lease: Lease | None, now: datetime
) -> RunReport | None:
    return next((report for report in history if in_flight(report, lease, now)), None)


def plan_tenant(
    tenant_id: str,
    history: Sequence[RunReport],
    lease: Lease | None,
    now: datetime,
    min_hours: float,
    max_hours: float,
) -> TenantSchedule:
    """Where a tenant stands; `history` is its newest run records first."""
    interval = interval_of(tenant_id, min_hours, max_hours)
    in_flight_run = first_in_flight(history, lease, now)
    # An explain run (one user, on demand) neither postpones nor stands for the tenant's runs.
    counted = [
        r
        for r in history
        if not r.dry_run and not is_superseded(r) and r.trigger != Trigger.EXPLAIN
    ]
    failures = 0
    last_success = None
    for report in counted:
        if report.status in (RunStatus.SUCCEEDED, RunStatus.HELD):
            last_success = report
            break
        if not in_flight(report, lease, now):
            failures += 1  # failed, or queued/running but abandoned
    last_run = counted[0] if counted else None
    if in_flight_run is not None:
        due, next_due_at = False, None
    elif last_run is None:
        due, next_due_at = True, None
    else:
        next_due_at = requested_at(last_run) + retry_delay(failures, interval)
        due = next_due_at <= now + TICK_SLACK
    return TenantSchedule(
        tenant_id=tenant_id,
        interval=interval,
        due=due,
        next_due_at=next_due_at,
        in_flight=in_flight_run,
        last_run=last_run,
        last_success=last_success,
        consecutive_failures=failures,
        last_over=next((r for r in counted if not in_flight(r, lease, now)), None),
    )


def _fraction(purpose: str, tenant_id: str) -> float:
    """A stable number in [0, 1) for this tenant; SHA-256, not hash(), which is salted per
    process."""
    digest = hashlib.sha256(f"{purpose}:{tenant_id.strip().lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
