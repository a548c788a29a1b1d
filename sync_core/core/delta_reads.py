"""What a delta run reads of the Employees table: the rows its round names, never the index.

- An idle round (no one named) reads no row at all: the summary (read with the delta link)
  holds the count and the marks the pass needs.
- Otherwise the named rows are read (point reads, O(round)); the writer opens (fence raised,
  lease checked, summary marked) before the first write, if there is one.
- Reading before the fence is safe while the summary is trusted: a run marks the summary before
  its first write and stores a trusted one only after its last, so a trusted summary means no
  earlier holder can still be writing (core/summary.py).
- Without a summary to trust (none yet, or a run that wrote never stored its own: it may still
  be writing) the writer is opened first and the whole index read, as a full run does; the run
  then stores a fresh summary.
"""

from __future__ import annotations

from dataclasses import replace

from sync_core.core.delta import DeltaChanges
from sync_core.core.lazy_writer import LazyWriter
from sync_core.core.passes import PassContext
from sync_core.core.ports import EmployeeStore, StoredIndex
from sync_core.core.summary import TenantSummary


async def delta_context(
    unread: PassContext,
    changes: DeltaChanges,
    summary: TenantSummary | None,
    employees: EmployeeStore,
    tenant_id: str,
) -> PassContext:
    """The run's context, given the stored rows (and the summary) the delta pass needs."""
    if summary is None:
        return await whole_index(unread, employees, tenant_id)
    named = [*changes.users, *changes.removed]
    index = await employees.stored_rows(tenant_id, named) if named else StoredIndex({}, {})
    return replace(unread, index=index, stored=summary)


async def whole_index(unread: PassContext, employees: EmployeeStore, tenant_id: str) -> PassContext:
    """The whole index, read after the fence went up: whatever a run that held the lease before
    wrote is in it, whatever it writes from now on is refused (a full run without a trusted
    summary, or a delta run rebuilding one)."""
    if isinstance(unread.writer, LazyWriter):
        await unread.writer.open()
    return replace(unread, index=await employees.load_index(tenant_id), stored=None)
