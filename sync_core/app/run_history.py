"""How an applied explain's run (trigger `explain`) stands among a tenant's runs.

Each `explain --apply` records a run of its own that syncs one user. The schedule leaves such
runs out (core/schedule.plan_tenant, and core/run_index keeps none of them among the recent
runs), and so do Sync Now and the queue worker: a press while an explain applies is a sync of
its own, and a worker that meets an explain's lease waits for it instead of giving up.
"""

from __future__ import annotations

from collections.abc import Sequence

from sync_core.adapters.tables.runs import RunStore
from sync_core.core.report import RunReport, Trigger


def joinable(history: Sequence[RunReport]) -> list[RunReport]:
    """The runs a Sync Now may join instead of queueing its own: an explain run syncs one user,
    so a press while it applies is a sync of its own (queued; its worker waits for the lease)."""
    return [report for report in history if report.trigger != Trigger.EXPLAIN]


async def held_by_explain(runs: RunStore, tenant_id: str, holder: str) -> bool:
    """Whether the lease a worker met is an applied explain's: it ends within seconds and syncs
    one user, so the worker's run is retried, not closed as superseded by it."""
    record = await runs.get(tenant_id, holder)
    return record is not None and record.trigger == Trigger.EXPLAIN
