"""A tenant's recent run history as the schedule reads it: `top` runs that count, read past the
explain runs between them.

Each `explain --apply` records a run of its own (trigger `explain`) that the schedule leaves out
(core/schedule.plan_tenant). An admin applying a dozen users one after another would otherwise
fill the window the timer and `GET /api/status` read: the tenant's last sync falls out of it, so
the tenant looks as if it never ran (due at once, no last success, no employee count).
"""

from __future__ import annotations

from collections.abc import Sequence

from sync_core.adapters.tables.runs import RunStore
from sync_core.core.report import RunReport, Trigger

# Read no further than this many records whatever fills them: one read of a partition's newest
# rows, bounded (an admin explaining hundreds of users in a row gets the old behaviour back).
MAX_HISTORY_READ = 200


async def schedule_history(runs: RunStore, tenant_id: str, top: int) -> list[RunReport]:
    """The newest runs of the tenant, newest first, holding `top` that are no explain run (or
    every run there is, or MAX_HISTORY_READ records)."""
    size = top
    while True:
        history = await runs.latest(tenant_id, top=size)
        explains = sum(1 for report in history if report.trigger == Trigger.EXPLAIN)
        if len(history) < size or len(history) - explains >= top or size >= MAX_HISTORY_READ:
            return history
        size = min(MAX_HISTORY_READ, top + explains * 2)


def joinable(history: Sequence[RunReport]) -> list[RunReport]:
    """The runs a Sync Now may join instead of queueing its own: an explain run syncs one user,
    so a press while it applies is a sync of its own (queued; its worker waits for the lease)."""
    return [report for report in history if report.trigger != Trigger.EXPLAIN]


async def held_by_explain(runs: RunStore, tenant_id: str, holder: str) -> bool:
    """Whether the lease a worker met is an applied explain's: it ends within seconds and syncs
    one user, so the worker's run is retried, not closed as superseded by it."""
    record = await runs.get(tenant_id, holder)
    return record is not None and record.trigger == Trigger.EXPLAIN
