"""`sync`: one run under the tenant's lease, as the queue worker runs it, and what the command
line adds: its exit code says how the run ended, and Ctrl-C closes the run's record instead of
leaving it `running`."""

from __future__ import annotations

import argparse
import asyncio

from sync_core.app.closing import close_failed
from sync_core.app.exclusive import TenantBusy, sync_exclusively
from sync_core.app.service import SyncService
from sync_core.core.engine import RunRequest
from sync_core.core.report import (
    FINAL_STATUSES,
    RunProblem,
    RunReport,
    RunStatus,
    Trigger,
    new_run_id,
    utc_now,
)
from sync_core.core.report_text import render_text
from sync_core.errors import ErrorCode, SyncError
from sync_core.surfaces.cli_output import EXIT_FAILED, EXIT_HELD, EXIT_OK, EXIT_USAGE, emit
from sync_core.surfaces.cli_unrecorded import busy_error, run_not_recorded


class Interrupted(Exception):
    """Ctrl-C stopped a sync; its run record has been closed (when storage allowed)."""

    def __init__(self, run_id: str, closed: bool):
        super().__init__(run_id)
        self.run_id = run_id
        self.closed = closed


async def sync_command(args: argparse.Namespace, service: SyncService, tenant_id: str) -> int:
    request = RunRequest(
        tenant_id,
        dry_run=args.dry_run,
        allow_deletes=args.allow_deletes,
        full=args.full,
        trigger=Trigger.CLI,
        run_id=new_run_id(utc_now()),  # known here, to close the run on Ctrl-C
    )
    try:
        # The same lease as the queue worker: never two runs of one tenant at once.
        report = await sync_exclusively(service, request)
    except asyncio.CancelledError:
        # Ctrl-C: asyncio.run cancels this task; the run has stopped writing and released
        # its lease on the way out. Close its record rather than leave it `running`.
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        assert request.run_id is not None
        closed = await close_interrupted(service, tenant_id, request.run_id)
        raise Interrupted(request.run_id, closed) from None
    except TenantBusy as busy:
        raise busy_error(busy, utc_now()) from None
    except SyncError as failure:  # storage failed under the run: name it, show it
        return run_not_recorded(args, request.run_id or "", failure)
    emit(args, report.to_json(), render_text(report))
    return _exit_code(report)


def _exit_code(report: RunReport) -> int:
    if report.status == RunStatus.FAILED and report.errors[0].code == ErrorCode.INVALID_CONFIG:
        return EXIT_USAGE  # a configuration problem, like `config set` rejecting one
    return {RunStatus.FAILED: EXIT_FAILED, RunStatus.HELD: EXIT_HELD}.get(report.status, EXIT_OK)


async def close_interrupted(service: SyncService, tenant_id: str, run_id: str) -> bool:
    try:
        record = await service.runs.get(tenant_id, run_id)
        if record is None or record.status in FINAL_STATUSES:
            return record is not None
        problem = RunProblem(
            ErrorCode.CANCELLED,
            "The run was interrupted (Ctrl-C) before it finished. Rows written so far are "
            "correct; nothing was deleted unless the run had reached its clean-up.",
            "Sync again; the next run completes the work.",
        )
        return (await close_failed(service.runs, record, problem, utc_now())).was_open
    except SyncError:  # the record stays `running` until the timer or the next run closes it
        return False
