"""The two ways a run reads and writes, full and delta, and the deletions both end with.

Each pass writes what it read and returns the deletion candidates; deletions come only after
the whole read and every write succeeded (`finish`), as the architecture's "delete last" rule
says. A delta pass decides exactly as a full run would for the users it saw: scoped and mapped
again, out of scope or `@removed` -> a candidate for Clean Up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from sync_core.core.config import TenantConfig
from sync_core.core.delta import DeltaChanges
from sync_core.core.groups import Memberships
from sync_core.core.limits import clean_text
from sync_core.core.manager_pass import ManagerSync
from sync_core.core.mapping import Employee, Mapper
from sync_core.core.pages import RunTotals, prefetched, scope_and_map
from sync_core.core.plan import expired_without_address, guard_deletions, plan_writes, stale_ids
from sync_core.core.ports import (
    Change,
    EmployeeWriter,
    RowStamp,
    StoredIndex,
    UnstorableEmployee,
    UserDirectory,
)
from sync_core.core.scope import Scope
from sync_core.core.summary import TenantSummary, summary_of


@dataclass(frozen=True)
class PassContext:
    run_id: str
    config: TenantConfig
    index: StoredIndex
    writer: EmployeeWriter  # the run's employee writer (or a dry run's stand-in)
    tally: RunTotals
    now: Callable[[], datetime]
    # The whole table as the run began (count, marks): from the summary in a delta run, whose
    # `index` holds only the rows its round names; None: the index is the whole table.
    stored: TenantSummary | None = None
    # Scope by group: each listed user's memberships, set before a full listing (group_run.py).
    groups: Memberships | None = None

    @cached_property
    def table(self) -> TenantSummary:
        return self.stored if self.stored is not None else summary_of(self.index)

    managers: ManagerSync | None = None  # manager fields (manager_pass.py); None: none read

    @cached_property
    def mapper(self) -> Mapper:
        return Mapper.from_config(self.config)

    @cached_property
    def scope(self) -> Scope:
        return Scope.from_config(self.config.filter)

    @property
    def select(self) -> frozenset[str]:
        """What the run reads of each user; a delta link is taken with the same `$select`."""
        managers = self.managers.mapping.graph_properties if self.managers else frozenset()
        return self.mapper.graph_properties | self.scope.graph_properties | managers


@dataclass(frozen=True)
class Candidates:
    """What Clean Up may remove: stored employees no longer in scope, and employees in scope
    without an address since `missing_since` (id -> since when)."""

    stale: tuple[str, ...]
    missing_since: Mapping[str, datetime]


async def full_pass(ctx: PassContext, directory: UserDirectory) -> Candidates:
    mapper, scope, managers = ctx.mapper, ctx.scope, ctx.managers
    odata = ctx.config.filter.odata
    select = ctx.select
    listing = managers.listing(directory, select, odata) if managers else None
    pages = prefetched(directory.users(select, odata) if listing is None else listing)
    async with contextlib.aclosing(pages):
        async for page in pages:
            if ctx.groups is not None:
                page = [ctx.groups.annotate(user) for user in page]
            if managers:
                page = await managers.annotate_listing(page, directory)
            await write(ctx, await scope_and_map(page, scope, mapper, ctx.index, ctx.tally))
    return Candidates(
        stale_ids(ctx.index.hashes.keys(), ctx.tally.in_scope_ids), ctx.tally.marked_since
    )


async def delta_pass(ctx: PassContext, changes: DeltaChanges) -> Candidates:
    users = list(changes.users.values())
    await write(ctx, await scope_and_map(users, ctx.scope, ctx.mapper, ctx.index, ctx.tally))
    stored = ctx.index.hashes
    left_scope = {i for i in changes.users if i not in ctx.tally.in_scope_ids}
    stale = tuple(sorted(i for i in left_scope | set(changes.removed) if i in stored))
    # A marked employee the round did not mention has not changed: still without an address.
    unchanged_marks = {
        i: since
        for i, since in ctx.table.email_missing_since.items()
        if i not in changes.users and i not in changes.removed
    }
    return Candidates(stale, {**unchanged_marks, **ctx.tally.marked_since})


async def write(ctx: PassContext, employees: list[Employee]) -> None:
    counts, tally = ctx.tally.counts, ctx.tally
    plan = plan_writes(employees, ctx.index.hashes)
    # Counted when handed to the writer, before the writes land: the counts always add up, and
    # a failed run's errors say where it stopped (a run that lost its lease reports what was
    # committed instead, see run_notes.lease_lost_problem).
    counts.unchanged += len(plan.unchanged)
    tally.placed_ids.update(plan.unchanged)
    written_at = ctx.now()
    changes = [(e, Change.CREATED) for e in plan.creates]
    changes += [(e, Change.UPDATED) for e in plan.updates]
    for employee, change in changes:
        stamp = RowStamp(ctx.run_id, written_at, tally.marked_since.get(employee.id))
        try:
            await ctx.writer.upsert(employee, change, stamp)
        except UnstorableEmployee as refused:
            # Not written, so tried again next run; still in scope, so clean-up never
            # removes it for this.
            counts.skippedUnstorable += 1
            upn = clean_text(employee.user_principal_name or employee.id)
            tally.unstorable.append(f"{upn}: {refused.reason}")
            continue
        # The row's mark as written (employee_rows.employee_entity): what the summary keeps.
        tally.row_marks[employee.id] = (
            None if employee.email else (stamp.email_missing_since or written_at)
        )
        tally.placed_ids.add(employee.id)
        tally.rewritten_ids.add(employee.id)
        if change is Change.CREATED:
            counts.created += 1
        else:
            counts.updated += 1


async def finish(ctx: PassContext, candidates: Candidates, *, allow_deletes: bool) -> bool:
    """Flush the writes, then delete what Clean Up and the guard allow; True when held. The
    guard compares with the stored count in delta runs too: a mass disable is held like a mass
    disappearance."""
    writer, counts, clean_up = ctx.writer, ctx.tally.counts, ctx.config.clean_up
    await writer.flush()
    grace = timedelta(hours=clean_up.email_missing_grace_hours)
    expired = expired_without_address(candidates.missing_since, ctx.now(), grace)
    decision = guard_deletions(
        tuple(sorted({*candidates.stale, *expired})),
        ctx.table.employees,
        clean_up,
        allow_deletes=allow_deletes,
    )
    counts.deleted = len(decision.delete)
    ctx.tally.removed.extend(decision.delete)
    ctx.tally.deleted_ids = decision.delete
    counts.deletesHeld = decision.held
    for employee_id in decision.delete:
        await writer.delete(employee_id)
    await writer.flush()
    if not clean_up.enabled:
        counts.staleKept = len(candidates.stale)
    if decision.reason and decision.held:
        ctx.tally.warnings.append(decision.reason)
    removed_without_address = len(set(expired) & set(decision.delete))
    if removed_without_address:
        ctx.tally.warnings.append(
            f"{removed_without_address} employee(s) in scope had no email address for more than "
            f"{clean_up.email_missing_grace_hours:g} h and were removed by Clean Up."
        )
    return decision.held > 0
