"""The structured lines that start and end every run (Application Insights reads them)."""

from __future__ import annotations

import json
import logging
from typing import Any

from sync_core.core.report import RunReport, RunStatus

log = logging.getLogger("sync_core.run")


def log_run_finished(report: RunReport, **more: Any) -> None:
    """The one line that ends every run, whoever ended it (the engine, or the worker for a
    request that never reached it)."""
    log_event(
        "sync finished",
        level=logging.WARNING if report.status == RunStatus.FAILED else logging.INFO,
        event="sync_finished",
        tenantId=report.tenant_id,
        runId=report.run_id,
        mode=report.mode,
        dryRun=report.dry_run,
        trigger=report.trigger,
        status=report.status,
        counts=report.to_json()["counts"],
        durationSeconds=report.duration_seconds,
        errors=[error.code for error in report.errors],
        **more,
    )


def log_event(message: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """One structured line: the fields as JSON in the text (the Functions host forwards the text
    of a record to Application Insights) and as `extra` (for log handlers that read them)."""
    log.log(level, "%s %s", message, json.dumps(fields, ensure_ascii=False), extra=fields)
