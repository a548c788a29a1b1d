"""The one way a run is closed as failed from outside the engine (the worker, the timer, the
lease keeper, Ctrl-C in the CLI): conditional on the record, so a run that ended meanwhile
keeps its own ending, and logged only by whoever closed it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sync_core.core.ports import Lease
from sync_core.core.report import RunProblem, RunReport, RunStatus
from sync_core.core.run_log import log_run_finished
from sync_core.core.schedule import abandoned
from sync_core.errors import ErrorCode


class UnlessFinal(Protocol):
    async def save_unless_final(self, report: RunReport) -> bool: ...


@dataclass(frozen=True)
class Closed:
    report: RunReport  # the record as this call closed it
    was_open: bool  # the stored record was still open, and this call closed it


async def close_failed(
    runs: UnlessFinal, record: RunReport, problem: RunProblem, now: datetime, **log_fields: Any
) -> Closed:
    final = record.closed_with(problem, now)
    was_open = await runs.save_unless_final(final)
    if was_open:
        log_run_finished(final, **log_fields)
    return Closed(final, was_open)


async def close_abandoned_runs(
    runs: UnlessFinal,
    unfinished: list[RunReport],
    lease: Lease | None,
    now: datetime,
    closed_by: str,
    *,
    keep: str | None = None,
) -> dict[str, RunReport]:
    """Close as failed (`abandoned`) each of `unfinished` that will never end by itself: queued
    with its message lost, or running without a live lease (its process was interrupted,
    killed or crashed). Conditional on the record, in case the run ended meanwhile after all.
    `keep`: the caller's own run. Returns the records closed, by run id."""
    closed: dict[str, RunReport] = {}
    for report in abandoned(unfinished, lease, now):
        if report.run_id == keep:
            continue
        if report.status == RunStatus.RUNNING:
            what = (
                "The run stopped before it finished: its process ended or stalled (interrupted, "
                "killed, its host crashed) and its lease expired."
            )
        else:
            what = "The run never started: its queue message was lost."
        problem = RunProblem(
            ErrorCode.ABANDONED,
            f"{what} Closed by {closed_by}. Rows written before it stopped are correct; "
            "a later run completes the work.",
            "Nothing to do: the schedule requests a new run; Sync Now asks at once.",
        )
        outcome = await close_failed(runs, report, problem, now)
        if outcome.was_open:
            closed[report.run_id] = outcome.report
    return closed
