"""The schedule's decisions, table-driven: intervals, backoff, runs in flight, due or not."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from sync_core.core.ports import Lease
from sync_core.core.report import (
    RunProblem,
    RunReport,
    RunStatus,
    new_run_id,
)
from sync_core.core.schedule import (
    ENQUEUE_SPREAD,
    QUEUED_TTL,
    enqueue_delay,
    in_flight,
    interval_of,
    plan_tenant,
    requested_at,
    retry_delay,
    waiting_for_its_offset,
)
from sync_core.errors import ErrorCode

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TENANT = "0b6f3c2e-5a4d-4e1f-9c8b-7a6d5e4f3a2b"
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
INTERVAL = 3 * HOUR  # min = max = 3 hours in the plan tests below


def tenant_ids(count: int) -> list[str]:
    return [
        str(uuid.UUID(int=((i + 1) * 0x9E3779B97F4A7C15F39CC0605CEDC835) % 2**128))
        for i in range(count)
    ]


def run(
    ago: timedelta, status: str = RunStatus.SUCCEEDED, *, dry: bool = False, code: str = ""
) -> RunReport:
    at = NOW - ago
    return RunReport(
        run_id=new_run_id(at),
        tenant_id=TENANT,
        tenant_name=None,
        mode="full",
        dry_run=dry,
        status=status,
        started_at=at,
        finished_at=None if status in (RunStatus.QUEUED, RunStatus.RUNNING) else at + MINUTE,
        errors=(RunProblem(code, "x"),) if code else (),
    )


# --- interval and spread ------------------------------------------------------------------------


def test_interval_is_within_bounds_stable_and_spread_across_tenants() -> None:
    intervals = [interval_of(t, 2, 4) for t in tenant_ids(500)]
    assert all(2 * HOUR <= i <= 4 * HOUR for i in intervals)
    assert intervals == [interval_of(t, 2, 4) for t in tenant_ids(500)]  # same after "restart"
    assert min(intervals) < 2.2 * HOUR and max(intervals) > 3.8 * HOUR
    assert len(set(intervals)) > 100  # to the minute, tenants rarely share one


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(2, 2, 2 * HOUR), (3, 3, 3 * HOUR), (0.25, 0.25, 15 * MINUTE)],
)
def test_interval_with_equal_bounds_is_the_bound(
    low: float, high: float, expected: timedelta
) -> None:
    assert interval_of(TENANT, low, high) == expected


def test_interval_ignores_case_and_whitespace_of_the_tenant_id() -> None:
    assert interval_of(TENANT.upper(), 2, 4) == interval_of(f" {TENANT} ", 2, 4)


def test_enqueue_delay_is_stable_within_the_spread_and_spread_out() -> None:
    delays = [enqueue_delay(t) for t in tenant_ids(500)]
    assert all(timedelta(0) <= d < ENQUEUE_SPREAD for d in delays)
    assert delays == [enqueue_delay(t) for t in tenant_ids(500)]
    assert len({d.total_seconds() // 60 for d in delays}) == 10  # every minute of the spread used
    assert enqueue_delay(TENANT, timedelta(0)) == timedelta(0)


# --- backoff ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "interval", "expected"),
    [
        (0, 3 * HOUR, 3 * HOUR),  # healthy: the interval
        (1, 3 * HOUR, timedelta(0)),  # first failure: the next tick
        (2, 3 * HOUR, 15 * MINUTE),
        (3, 3 * HOUR, 30 * MINUTE),
        (4, 3 * HOUR, 60 * MINUTE),
        (5, 3 * HOUR, 120 * MINUTE),
        (6, 3 * HOUR, 3 * HOUR),  # capped at the interval
        (7, 2 * HOUR, 2 * HOUR),
        (500, 4 * HOUR, 4 * HOUR),
    ],
)
def test_retry_delay(failures: int, interval: timedelta, expected: timedelta) -> None:
    assert retry_delay(failures, interval) == expected


# --- in flight ----------------------------------------------------------------------------------


def lease_for(report: RunReport, expires_in: timedelta) -> Lease:
    return Lease(TENANT, report.run_id, NOW + expires_in, "etag")


QUEUED_FRESH = run(5 * MINUTE, RunStatus.QUEUED)
QUEUED_STALE = run(QUEUED_TTL + MINUTE, RunStatus.QUEUED)
RUNNING = run(10 * MINUTE, RunStatus.RUNNING)


@pytest.mark.parametrize(
    ("report", "lease", "expected"),
    [
        (QUEUED_FRESH, None, True),
        (QUEUED_STALE, None, False),  # its message was lost
        (RUNNING, lease_for(RUNNING, 3 * MINUTE), True),
        (RUNNING, lease_for(RUNNING, -MINUTE), False),  # its worker died
        (RUNNING, None, False),
        (RUNNING, Lease(TENANT, "20261126T115000000Z-abcdef", NOW + HOUR, "e"), False),
        (run(HOUR), None, False),
        (run(HOUR, RunStatus.FAILED), None, False),
    ],
)
def test_in_flight(report: RunReport, lease: Lease | None, expected: bool) -> None:
    assert in_flight(report, lease, NOW) is expected


def test_requested_at_is_the_time_in_the_run_id_not_the_start() -> None:
    report = replace(run(HOUR), started_at=NOW)  # the worker started it later
    assert requested_at(report) == NOW - HOUR
    assert requested_at(replace(report, run_id="not-a-run-id")) == NOW


# --- due or not ---------------------------------------------------------------------------------

# (history newest first, lease holder index or None, lease alive, due, failures, next due after)
CASES = {
    "never ran": ([], None, False, True, 0, None),
    "succeeded an hour ago": ([run(HOUR)], None, False, False, 0, 2 * HOUR),
    "succeeded an interval ago": ([run(INTERVAL)], None, False, True, 0, timedelta(0)),
    "tick slack": ([run(INTERVAL - MINUTE)], None, False, True, 0, MINUTE),
    "beyond the slack": ([run(INTERVAL - 3 * MINUTE)], None, False, False, 0, 3 * MINUTE),
    "held counts as synced": ([run(HOUR, RunStatus.HELD)], None, False, False, 0, 2 * HOUR),
    "one failure: next tick": ([run(MINUTE, RunStatus.FAILED)], None, False, True, 1, -MINUTE),
    "two failures wait 15 min": (
        [run(10 * MINUTE, RunStatus.FAILED), run(HOUR, RunStatus.FAILED)],
        None, False, False, 2, 5 * MINUTE,
    ),
    "two failures after 15 min": (
        [run(15 * MINUTE, RunStatus.FAILED), run(HOUR, RunStatus.FAILED)],
        None, False, True, 2, timedelta(0),
    ),
    "three failures wait 30 min": (
        [run(20 * MINUTE, RunStatus.FAILED)] * 3, None, False, False, 3, 10 * MINUTE,
    ),
    "many failures wait the interval": (
        [run(2 * HOUR, RunStatus.FAILED)] * 9, None, False, False, 9, HOUR,
    ),
    "failures end at the last success": (
        [run(MINUTE, RunStatus.FAILED), run(HOUR), run(2 * HOUR, RunStatus.FAILED)],
        None, False, True, 1, -MINUTE,
    ),
    "dry runs do not count": ([run(MINUTE, dry=True), run(5 * HOUR)], None, False, True, 0, -2 * HOUR),
    "superseded does not count": (
        [run(MINUTE, RunStatus.FAILED, code=ErrorCode.SUPERSEDED), run(HOUR)], None, False, False, 0, 2 * HOUR,
    ),
    "queued: in flight": ([QUEUED_FRESH, run(5 * HOUR)], None, False, False, 0, None),
    "queued dry run: in flight too": (
        [run(MINUTE, RunStatus.QUEUED, dry=True), run(5 * HOUR)], None, False, False, 0, None,
    ),
    "stale queued counts as a failure": (
        [QUEUED_STALE, run(5 * HOUR)], None, False, True, 1, -QUEUED_TTL - MINUTE,
    ),
    "running with its live lease": ([RUNNING, run(5 * HOUR)], 0, True, False, 0, None),
    "running, lease expired": ([RUNNING, run(5 * HOUR)], 0, False, True, 1, -10 * MINUTE),
    "running, no lease": ([RUNNING], None, False, True, 1, -10 * MINUTE),
}  # fmt: skip


@pytest.mark.parametrize(
    ("history", "holder", "alive", "due", "failures", "next_in"), CASES.values(), ids=CASES.keys()
)
def test_plan_tenant(
    history: list[RunReport],
    holder: int | None,
    alive: bool,
    due: bool,
    failures: int,
    next_in: timedelta | None,
) -> None:
    lease = None
    if holder is not None:
        lease = lease_for(history[holder], MINUTE if alive else -MINUTE)
    plan = plan_tenant(TENANT, history, lease, NOW, 3, 3)
    assert plan.due is due
    assert plan.consecutive_failures == failures
    assert plan.interval == INTERVAL
    if next_in is None:
        assert plan.next_due_at is None
    else:
        assert plan.next_due_at == NOW + next_in
    assert (plan.in_flight is not None) == (next_in is None and bool(history))


def test_last_run_and_last_success_skip_dry_and_superseded_runs() -> None:
    success = run(3 * HOUR)
    failed = run(HOUR, RunStatus.FAILED)
    history = [
        run(MINUTE, dry=True),
        run(2 * MINUTE, RunStatus.FAILED, code=ErrorCode.SUPERSEDED),
        failed,
        success,
    ]
    plan = plan_tenant(TENANT, history, None, NOW, 2, 4)
    assert plan.last_run == failed and plan.last_success == success


def test_a_scheduled_run_still_waiting_for_its_offset_can_be_expedited() -> None:
    tenant = next(t for t in tenant_ids(50) if enqueue_delay(t) > 2 * MINUTE)
    scheduled = replace(run(MINUTE, RunStatus.QUEUED), tenant_id=tenant, trigger="schedule")
    assert waiting_for_its_offset(scheduled, NOW)
    assert not waiting_for_its_offset(scheduled, NOW + enqueue_delay(tenant))  # visible by now
    assert not waiting_for_its_offset(replace(scheduled, trigger="api"), NOW)  # never delayed
    assert not waiting_for_its_offset(replace(scheduled, status=RunStatus.RUNNING), NOW)
