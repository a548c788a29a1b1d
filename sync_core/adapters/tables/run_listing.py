"""A tenant's runs listed newest first: its records (run_record_rows.py), its runs in flight
(from the run index) and its idle checks, each in its place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from sync_core.adapters.tables.run_record_rows import idle_report_of, report_of
from sync_core.core.report import RunReport
from sync_core.core.run_index import RunIndex, order_key


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
        idle_check = idle_report_of(entity) if include_idle else None
        for item in ([idle_check] if idle_check else []) + [report]:
            while extra and order_key(extra[0]) > order_key(item):
                yield extra.pop(0)
            seen.add(item.run_id)
            yield item
    for item in extra:
        if item.run_id not in seen:  # a record ended but still listed in flight: the record
            yield item
