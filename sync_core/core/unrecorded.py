"""A run whose end could not be stored: the error carries the report, so the caller can still
show what the run did (the CLI prints it with the run id instead of a bare error)."""

from __future__ import annotations

from sync_core.core.report import RunReport
from sync_core.errors import SyncError

_ATTRIBUTE = "unrecorded_report"


def with_report(error: SyncError, report: RunReport) -> SyncError:
    setattr(error, _ATTRIBUTE, report)
    return error


def report_of(error: SyncError) -> RunReport | None:
    report = getattr(error, _ATTRIBUTE, None)
    return report if isinstance(report, RunReport) else None
