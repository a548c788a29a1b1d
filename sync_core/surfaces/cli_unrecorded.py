"""`sync` when storage failed under the run: the error names the run and carries what the run
did, and says what becomes of its record and lease (the next sync takes them over)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from sync_core.app.exclusive import LEASE_TTL, TenantBusy
from sync_core.core.report import utc_now
from sync_core.core.unrecorded import report_of
from sync_core.errors import ErrorCode, FatalError, SyncError
from sync_core.surfaces.cli_output import EXIT_FAILED, write_error


def run_not_recorded(args: argparse.Namespace, run_id: str, failure: SyncError) -> int:
    """Exit 1 with the run id, the error and (with --json) the report as far as the run got."""
    report = report_of(failure)
    # Renewed at most a minute ago, the lease lapses within a TTL from now: an upper bound.
    lapses = _iso(utc_now() + LEASE_TTL)
    what = (
        f"Run {run_id} stopped: {failure.message} Its end could not be stored, so its record "
        "still says `running`"
        if report is not None
        else f"Run {run_id} did not complete: {failure.message} If it had started, its record "
        "may still say `running`"
    )
    message = (
        f"{what}: the next sync on this machine takes over its lease at once and closes it "
        f"(from another machine, once the lease lapses, by {lapses} at the latest)."
    )
    # Graph's values are in the report, the storage error's text in the message.
    write_error(
        args,
        failure.code,
        message,
        failure.fix,
        details={"runId": run_id, "leaseLapsesBy": lapses},
        beside={"report": report.to_json() if report else None},
    )
    return EXIT_FAILED


def busy_error(busy: TenantBusy, now: datetime) -> FatalError:
    """tenant_busy, saying until when the holder keeps the tenant if it stops renewing."""
    until = ""
    if busy.expires_at is not None:
        at = busy.expires_at.astimezone(UTC)
        seconds = max(0, int((at - now).total_seconds()))
        until = (
            f" Its lease runs until {_iso(at)} "
            f"(in {seconds} s) and is renewed every minute while that run is alive."
        )
    return FatalError(
        ErrorCode.TENANT_BUSY,
        f"Another run of this tenant ({busy.holder}) is in progress.{until}",
        "Wait for it to finish (`runs` shows it), then sync again. If that run's process was "
        "stopped on another machine, its lease lapses at the time above and the next sync runs.",
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
