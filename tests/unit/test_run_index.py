"""The run index (core/run_index.py): what a tenant's row keeps of its runs, and how idle delta
runs become a count on the latest record instead of records of their own."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from sync_core.core.report import Counts, RunProblem, RunReport, RunStatus, new_run_id
from sync_core.core.run_index import RECENT_RUNS, RunIndex, finished, with_run, without_run
from sync_core.core.schedule import plan_tenant
from sync_core.errors import ErrorCode

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
TENANT = "11111111-2222-4333-8444-555555555555"


def run(minutes: int, status: str = RunStatus.SUCCEEDED, **changes) -> RunReport:
    at = T0 + timedelta(minutes=minutes)
    report = RunReport.begun(
        new_run_id(at), TENANT, RunStatus.RUNNING, dry_run=False, trigger="schedule", at=at
    )
    finished_at = None if status in (RunStatus.QUEUED, RunStatus.RUNNING) else at
    return replace(report, status=status, finished_at=finished_at, **changes)


def idle(minutes: int) -> RunReport:
    return run(minutes, mode="delta", changes_read=0)


def test_an_idle_check_is_a_delta_run_that_read_no_change_and_wrote_nothing() -> None:
    assert idle(0).idle
    assert not run(0, mode="delta", changes_read=2).idle  # e.g. two removals, kept
    assert not run(0, mode="delta", changes_read=0, counts=Counts(updated=1)).idle
    assert not run(0, mode="full").idle
    assert not run(0, RunStatus.FAILED, mode="delta", changes_read=0).idle


def test_idle_checks_count_on_the_latest_record_and_are_handed_back_when_a_run_writes() -> None:
    index, flush = finished(RunIndex(), first := run(0, mode="full"))
    assert flush is None and index.latest_recorded == first.run_id
    for minutes in (15, 30, 45):
        index, flush = finished(index, idle(minutes))
        assert flush is None
    assert index.idle is not None and index.idle.after == first.run_id
    checks = index.idle.checks
    assert (checks.count, checks.first, checks.last) == (
        3,
        idle(15).started_at,
        idle(45).started_at,
    )
    assert index.idle.report.started_at == idle(45).started_at
    index, flush = finished(index, writer := run(60, mode="delta", changes_read=1))
    assert flush is not None and flush.after == first.run_id and flush.checks.count == 3
    assert index.idle is None and index.latest_recorded == writer.run_id


def test_a_record_saved_late_leaves_the_streak_with_the_newest() -> None:
    index, _ = finished(RunIndex(), newest := run(60, mode="full"))
    index, _ = finished(index, idle(75))
    index, flush = finished(index, run(0, mode="full"))
    assert flush is None and index.latest_recorded == newest.run_id and index.idle is not None


def test_runs_in_flight_are_kept_until_they_end_however_many_runs_follow() -> None:
    index = with_run(RunIndex(), dead := run(0, RunStatus.RUNNING))
    for minutes in range(1, 3 * RECENT_RUNS):
        index, _ = finished(index, run(minutes, RunStatus.FAILED))
    assert [r.run_id for r in index.unfinished()] == [dead.run_id]
    assert len(index.runs) == RECENT_RUNS + 1
    assert without_run(index, dead.run_id).unfinished() == []


@pytest.mark.parametrize(
    "history",
    [
        pytest.param([run(0), run(10, RunStatus.FAILED), run(20, RunStatus.FAILED)], id="2-fail"),
        pytest.param([run(0), run(5, dry_run=True), run(10, RunStatus.FAILED)], id="dry-run"),
        pytest.param(
            [run(0, RunStatus.FAILED), run(10, errors=(RunProblem(ErrorCode.SUPERSEDED, "x"),))],
            id="superseded",
        ),
        pytest.param([run(0, RunStatus.HELD), idle(10), run(20, RunStatus.QUEUED)], id="queued"),
        pytest.param([run(m, RunStatus.FAILED) for m in range(15)], id="15-failures"),
    ],
)
def test_the_schedule_decides_from_the_index_as_from_the_whole_history(history) -> None:
    """What the index keeps (down to the newest success, RECENT_RUNS finished runs at most)
    decides exactly what the schedule decided from the newest RECENT_RUNS records."""
    index = RunIndex()
    for report in history:
        index = (
            with_run(index, report) if report.finished_at is None else finished(index, report)[0]
        )
    newest = sorted(history, key=lambda r: r.started_at, reverse=True)[:RECENT_RUNS]
    now = T0 + timedelta(hours=1)
    expected = plan_tenant(TENANT, newest, None, now, 2, 4)
    planned = plan_tenant(TENANT, list(index.runs), None, now, 2, 4)
    assert (planned.due, planned.next_due_at, planned.consecutive_failures) == (
        expected.due,
        expected.next_due_at,
        expected.consecutive_failures,
    )
    assert planned.last_run == (expected.last_run and replace(expected.last_run))


def test_dry_runs_in_a_row_do_not_push_the_last_sync_out_of_the_index() -> None:
    """An admin trying a filter with a dozen dry runs: the schedule and GET /api/status still
    see the tenant's last sync (dry runs are left out of every decision: core/schedule.py),
    and the index stays bounded however many dry runs follow."""
    history = [run(0), *(run(m, dry_run=True) for m in range(1, 3 * RECENT_RUNS))]
    index = RunIndex()
    for report in history:
        index, _ = finished(index, report)
    assert index.last_success() == replace(history[0])
    assert index.runs[0].run_id == history[-1].run_id  # the last run shown is the newest
    assert len(index.runs) <= 2 * RECENT_RUNS + 1
    now = T0 + timedelta(hours=1)
    expected = plan_tenant(TENANT, sorted(history, key=lambda r: r.started_at, reverse=True),
                           None, now, 2, 4)  # fmt: skip
    planned = plan_tenant(TENANT, list(index.runs), None, now, 2, 4)
    assert (planned.due, planned.next_due_at, planned.last_success) == (
        expected.due,
        expected.next_due_at,
        expected.last_success,
    )
