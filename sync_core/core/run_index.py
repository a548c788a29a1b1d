"""What a tenant's schedule and its runs in flight need, kept in one small row per tenant.

Pure: the adapter (adapters/tables/run_index_rows.py) stores a RunIndex per tenant and applies
these functions on every save of a run record, so the timer reads one row per tenant (all of
them in one query) instead of each tenant's history.

- `runs`: the runs in flight (queued, running: their records live here only, found by one keyed
  read) and the recent finished runs the schedule counts: newest first, down to the newest
  counted success (nothing older changes a decision of core/schedule.plan_tenant), at most
  RECENT_RUNS finished ones. Dry runs and superseded requests, which decide nothing, are kept
  only while newer than every counted run, at most RECENT_RUNS of them: a dozen dry runs in a
  row leave the last sync where the schedule and the status find it.
- An idle delta run (RunReport.idle) leaves no record of its own in SyncRuns: it becomes the
  `idle` streak of the tenant's latest record (how many checks, the first and last, the last
  check's report). When the next run that did something is recorded, the streak is handed back
  to be written onto the record it follows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sync_core.core.ports import Lease
from sync_core.core.report import FINAL_STATUSES, IdleChecks, RunReport, RunStatus, Trigger
from sync_core.core.schedule import first_in_flight, is_superseded
from sync_core.errors import RunPending as RunPending

RECENT_RUNS = 10  # finished runs kept for the backoff: past the point where it reaches its cap


@dataclass(frozen=True)
class IdleStreak:
    after: str | None  # the run id of the recorded run these checks follow
    checks: IdleChecks
    report: RunReport  # the latest idle check, as its run reported it


@dataclass(frozen=True)
class RunIndex:
    runs: tuple[RunReport, ...] = ()
    latest_recorded: str | None = None  # newest run with a record in SyncRuns
    idle: IdleStreak | None = None
    sweep_after: datetime | None = None  # when the retention sweep next finds work
    # Its runs in flight from before the run index (kept in SyncRuns then) were moved here.
    adopted: bool = False

    def unfinished(self) -> list[RunReport]:
        return [r for r in self.runs if r.status not in FINAL_STATUSES]

    def find(self, run_id: str) -> RunReport | None:
        return next((r for r in self.runs if r.run_id == run_id), None)

    def last_success(self) -> RunReport | None:
        return next((r for r in self.runs if _counted(r) and _success(r)), None)

    def last_succeeded(self) -> RunReport | None:
        """The newest counted run that succeeded (a held run did not: the retention sweep keeps
        failed and held runs until one did). None also when the index kept none."""
        return next((r for r in self.runs if _counted(r) and r.status == RunStatus.SUCCEEDED), None)


def claimed(index: RunIndex, lease: Lease | None, report: RunReport, now: datetime) -> RunIndex:
    """The index with `report` (queued) as the tenant's one run in flight; RunPending with the
    run that already is. Written on the ETag read, this is what lets one of two requests that
    race (two presses, a press and a tick) win."""
    # An applied explain syncs one user: a run queued beside it waits for the lease.
    going = first_in_flight([r for r in index.runs if r.trigger != Trigger.EXPLAIN], lease, now)
    if going is not None:
        raise RunPending(going.run_id)
    return with_run(index, report)


def order_key(report: RunReport) -> tuple[datetime, str]:
    """Newest first sorts by this, descending: the order of SyncRuns' row keys."""
    return report.started_at, report.run_id


def with_run(index: RunIndex, report: RunReport) -> RunIndex:
    """The index with `report` in place of any earlier state of the same run."""
    others = [r for r in index.runs if r.run_id != report.run_id]
    runs = sorted([*others, slim(report)], key=order_key, reverse=True)
    return replace(index, runs=_trimmed(runs))


def without_run(index: RunIndex, run_id: str) -> RunIndex:
    return replace(index, runs=tuple(r for r in index.runs if r.run_id != run_id))


def finished(index: RunIndex, report: RunReport) -> tuple[RunIndex, IdleStreak | None]:
    """The index after `report` (final) was saved, and the idle streak to write onto the record
    it followed (when `report` is recorded and ends a streak)."""
    updated = with_run(index, report)
    if report.idle:
        streak = index.idle
        if streak is not None and streak.after == index.latest_recorded:
            first = min(streak.checks.first, report.started_at)
            last = max(streak.checks.last, report.started_at)
            newest = report if report.started_at >= streak.report.started_at else streak.report
            checks = IdleChecks(streak.checks.count + 1, first, last)
        else:
            newest, checks = report, IdleChecks(1, report.started_at, report.started_at)
        return replace(updated, idle=IdleStreak(index.latest_recorded, checks, newest)), None
    if index.latest_recorded is not None and report.run_id < index.latest_recorded:
        return updated, None  # an older record saved late: the streak follows the newest
    if report.trigger == Trigger.EXPLAIN or is_superseded(report):
        # One user synced, or a request that did nothing, both left out of the schedule: the
        # latest sync record stays the one the retention sweep keeps and the idle checks are
        # counted on.
        return updated, None
    flush = index.idle if index.idle is not None and index.idle.after is not None else None
    return replace(updated, latest_recorded=report.run_id, idle=None), flush


def slim(report: RunReport) -> RunReport:
    """What the index keeps of a run: no user lists (the record in SyncRuns has them)."""
    return replace(
        report, skipped_no_email=(), no_address=(), skipped_unstorable=(), excluded_by={}
    )


def _counted(report: RunReport) -> bool:
    return not report.dry_run and not is_superseded(report)


def _success(report: RunReport) -> bool:
    return report.status in (RunStatus.SUCCEEDED, RunStatus.HELD)


def _trimmed(runs: list[RunReport]) -> tuple[RunReport, ...]:
    kept: list[RunReport] = []
    finals = uncounted = 0
    success_seen = False
    for report in runs:
        if report.status not in FINAL_STATUSES:
            kept.append(report)  # in flight or abandoned: kept until closed
            continue
        if report.trigger == Trigger.EXPLAIN:
            # The schedule leaves `explain --apply` runs out (core/schedule.plan_tenant): a
            # dozen of them in a row must not push the tenant's last sync out of the index.
            continue
        if not _counted(report):
            # Dry runs and superseded requests decide nothing either: the newest few are kept
            # (up to the newest counted run), and they take no counted run's place.
            if finals == 0 and uncounted < RECENT_RUNS:
                kept.append(report)
                uncounted += 1
            continue
        if success_seen or finals >= RECENT_RUNS:
            continue
        kept.append(report)
        finals += 1
        success_seen = _success(report)
    return tuple(kept)
