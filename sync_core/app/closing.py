"""The one way a run is closed as failed from outside the engine (the worker, the timer, the
lease keeper, Ctrl-C in the CLI): conditional on the record, so a run that ended meanwhile
keeps its own ending, and logged only by whoever closed it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sync_core.core.report import RunProblem, RunReport
from sync_core.core.run_log import log_run_finished


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
