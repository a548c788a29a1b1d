"""`sync` when storage failed under the run: the error names the run and carries what the run
did, and says what becomes of its record and lease (the next sync takes them over)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from sync_core.app.exclusive import LEASE_TTL, TenantBusy
from sync_core.core.report import utc_now
from sync_core.core.unrecorded import report_of
from sync_core.errors import ErrorCode, FatalError, SyncError
from sync_core.surfaces.cli_output import write_stdout
from sync_core.surfaces.terminal import json_safe


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
    print(f"error [{failure.code}]: {message}", file=sys.stderr)
    if failure.fix:
        print(f"what to do: {failure.fix}", file=sys.stderr)
    if getattr(args, "json", False):
        error: dict[str, Any] = {
            "code": failure.code,
            "message": message,
            "fix": failure.fix,
            "runId": run_id,
            "leaseLapsesBy": lapses,
        }
        document = {"error": error, "report": report.to_json() if report else None}
        write_stdout(json_safe(json.dumps(document, ensure_ascii=False)))  # Graph's values
    return 1


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
