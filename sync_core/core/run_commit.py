"""What a run stores last, once its writes and deletes are done: the tenant's sync state (the
delta link) and its summary, each only when it changed. Pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sync_core.core.delta import (
    DeltaChanges,
    FullReason,
    ModeDecision,
    RunMode,
    SyncState,
    config_hash,
    keeps_stored_link,
)
from sync_core.core.passes import PassContext
from sync_core.core.summary import TenantSummary, after_run

_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def next_state(
    ctx: PassContext,
    mode: ModeDecision,
    state: SyncState | None,
    link: str | None,
    changes: DeltaChanges | None,
    *,
    held: bool,
    wrote: bool,
    link_taken_at: datetime,
) -> SyncState | None:
    """The sync state to store; None to leave the stored one as it is."""
    full = mode.mode is RunMode.FULL
    if held:
        # A held full run may have found rows no delta round will mention: the run the guard
        # asks for next (--allow-deletes) must be full too, so reconciliation is due.
        return replace(state, last_full_at=_LONG_AGO) if full and state else None
    if mode.reason is FullReason.ODATA_FILTER:
        return None
    now = ctx.now()
    idle = changes is not None and state is not None and not wrote
    if idle and keeps_stored_link(state, changes, now):  # type: ignore[arg-type]
        return None  # an idle round: the stored link serves the next run as well
    last_full = now if full or state is None else state.last_full_at
    taken_at = link_taken_at if link is not None else now
    return SyncState(link, config_hash(ctx.config), taken_at, last_full)


def next_summary(
    ctx: PassContext, stored: TenantSummary | None, *, wrote: bool
) -> TenantSummary | None:
    """The summary to store; None to leave the stored one (as it is, or marked as being
    written when there were too many marks to keep)."""
    tally = ctx.tally
    summary = after_run(ctx.table, tally.row_marks, tally.counts.created, tally.removed)
    if summary == stored and not wrote:
        return None  # as stored: nothing to write
    return summary
