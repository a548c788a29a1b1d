"""How a run's record is laid out in SyncRuns: RowKey = inverted start time + run id (newest
first), the report as JSON split over properties (`Report0`.., `Chunks`), the idle streak that
followed it (`Idle*`), and how they read back."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sync_core.adapters.tables.long_text import CHUNK_UNITS, utf16_chunks
from sync_core.core.report import IdleChecks, RunReport
from sync_core.core.run_index import IdleStreak, slim


def cutoff_key(moment: datetime) -> str:
    """Every row key of a run started before `moment` sorts after this one."""
    return f"{9_999_999_999_999 - int(moment.timestamp() * 1000):013d}_~"


def run_row_key(run_id: str) -> str:
    started = datetime.strptime(run_id[:18], "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
    millis = int(started.timestamp() * 1000)
    return f"{9_999_999_999_999 - millis:013d}_{run_id}"


def run_entity(report: RunReport) -> dict[str, Any]:
    """The row RunStore.save writes for a report (same layout, for conditional writes)."""
    document = json.dumps(report.to_json(), ensure_ascii=False)
    # Counted in UTF-16 units: a report full of emoji must still fit each property.
    chunks = utf16_chunks(document, CHUNK_UNITS)
    entity: dict[str, Any] = {
        "PartitionKey": report.tenant_id,
        "RowKey": run_row_key(report.run_id),
        "RunId": report.run_id,
        "Status": report.status,
        "StartedAt": report.started_at,
        "Chunks": len(chunks),
    }
    if report.finished_at:
        entity["FinishedAt"] = report.finished_at
    entity.update({f"Report{i}": chunk for i, chunk in enumerate(chunks)})
    return entity


def report_of(entity: dict[str, Any]) -> RunReport:
    document = "".join(entity.get(f"Report{i}", "") for i in range(int(entity.get("Chunks", 0))))
    report = RunReport.from_json(json.loads(document))
    if entity.get("IdleCount"):
        checks = IdleChecks(entity["IdleCount"], entity["IdleFirst"], entity["IdleLast"])
        report = replace(report, idle_checks=checks)
    return report


def idle_report_of(entity: dict[str, Any]) -> RunReport | None:
    """The latest idle check after this record (written when the streak ended)."""
    text = entity.get("IdleReport")
    return RunReport.from_json(json.loads(text)) if text else None


def idle_properties(streak: IdleStreak) -> dict[str, Any]:
    checks = streak.checks
    document = json.dumps(slim(streak.report).to_json(), ensure_ascii=False)
    idle: dict[str, Any] = dict(IdleCount=checks.count, IdleFirst=checks.first)
    idle.update(IdleLast=checks.last)
    if len(document) < CHUNK_UNITS // 2:  # an idle check's report is small; else not listed
        idle["IdleReport"] = document
    return idle
