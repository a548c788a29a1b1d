"""What a delta run reads of the Employees table: the rows its round names, never the index.

- An idle round (no one named) reads no row at all: the summary (read with the delta link)
  holds the count and the marks the pass needs.
- Otherwise the named rows are read (keyed queries, O(round)), the round is planned on a scratch
  tally, and only if it would write or delete is the writer opened (fence raised, lease checked,
  summary marked) and the named rows read again: what the pass plans from is then read after
  the fence went up, as in a full run, so a run that lost its lease before cannot have slipped
  a write between this run's read and its writes.
- Without a summary to trust (none yet, or a run failed before storing its own) the whole index
  is read once, after the fence, as a full run reads it; the run then stores a fresh summary.
"""

from __future__ import annotations

from dataclasses import replace

from sync_core.core.delta import DeltaChanges
from sync_core.core.lazy_writer import LazyWriter
from sync_core.core.pages import Tally, scope_and_map
from sync_core.core.passes import PassContext
from sync_core.core.plan import plan_writes
from sync_core.core.ports import EmployeeStore, StoredIndex
from sync_core.core.summary import TenantSummary


async def delta_context(
    base: PassContext,
    changes: DeltaChanges,
    summary: TenantSummary | None,
    employees: EmployeeStore,
    tenant_id: str,
) -> PassContext:
    """`base` with the stored rows (and the summary) the delta pass needs."""
    sink = base.sink
    if summary is None:
        if isinstance(sink, LazyWriter):
            await sink.open()
        return replace(base, index=await employees.load_index(tenant_id), stored=None)
    named = [*changes.users, *changes.removed]
    if not named:
        return replace(base, index=StoredIndex({}, {}), stored=summary)
    ctx = replace(base, index=await employees.stored_rows(tenant_id, named), stored=summary)
    if isinstance(sink, LazyWriter) and await would_write(ctx, changes):
        await sink.open()
        ctx = replace(ctx, index=await employees.stored_rows(tenant_id, named))
    return ctx


async def would_write(ctx: PassContext, changes: DeltaChanges) -> bool:
    """Whether applying the round writes or deletes a named row (planned on a scratch tally,
    so the run's counts are untouched). Deletions of rows the round does not name (marks past
    their grace) open the writer when they come."""
    scratch = Tally()
    users = list(changes.users.values())
    mapped = await scope_and_map(users, ctx.scope, ctx.mapper, ctx.index, scratch)
    plan = plan_writes(mapped, ctx.index.hashes)
    if plan.creates or plan.updates:
        return True
    if not ctx.config.clean_up.enabled:
        return False
    left_scope = {i for i in changes.users if i not in scratch.in_scope_ids}
    return any(i in ctx.index.hashes for i in left_scope | set(changes.removed))
