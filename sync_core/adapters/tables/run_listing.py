"""How SyncRuns rows read back as reports, and a tenant's runs listed newest first: its
records, its runs in flight (from the run index) and its idle checks, each in its place."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from sync_core.adapters.tables.common import CHUNK_UNITS
from sync_core.core.report import IdleChecks, RunReport
from sync_core.core.run_index import IdleStreak, RunIndex, order_key, slim


def report_of(entity: dict[str, Any]) -> RunReport:
    document = "".join(entity.get(f"Report{i}", "") for i in range(int(entity.get("Chunks", 0))))
    report = RunReport.from_json(json.loads(document))
    if entity.get("IdleCount"):
        checks = IdleChecks(entity["IdleCount"], entity["IdleFirst"], entity["IdleLast"])
        report = replace(report, idle_checks=checks)
    return report


def _idle_report_of(entity: dict[str, Any]) -> RunReport | None:
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


async def listing(
    index: RunIndex, records: AsyncIterator[dict[str, Any]], *, include_idle: bool
) -> AsyncIterator[RunReport]:
    """The tenant's runs newest first: its records, the runs in flight of its index and (with
    `include_idle`) the latest idle check of each streak, each in its place."""
    extra = list(index.unfinished())
    if include_idle and index.idle is not None:
        extra.append(index.idle.report)
    extra.sort(key=order_key, reverse=True)
    seen: set[str] = set()
    async for entity in records:
        report = report_of(entity)
        if report.run_id == index.latest_recorded and index.idle is not None:
            report = replace(report, idle_checks=index.idle.checks)
        idle_check = _idle_report_of(entity) if include_idle else None
        for item in ([idle_check] if idle_check else []) + [report]:
            while extra and order_key(extra[0]) > order_key(item):
                yield extra.pop(0)
            seen.add(item.run_id)
            yield item
    for item in extra:
        if item.run_id not in seen:  # a record ended but still listed in flight: the record
            yield item
