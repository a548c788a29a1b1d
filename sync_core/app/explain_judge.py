"""Judging one user against its stored row with the engine's own steps: the verdict `explain`
answers, and (through a real writer) what an applied explain writes.

The steps are the run's: pages.scope_and_map and passes.write given a stored index of this one
row, then the deletion guard as passes.finish applies it. Without a writer nothing is written
(the dry-run writer stands in, as in a dry run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sync_core.adapters.tables.employee_rows import EMAIL_MISSING_SINCE, employee_entity
from sync_core.app.service import SyncService
from sync_core.app.user_lookup import SHOWN as _SHOWN
from sync_core.core.config import TenantConfig
from sync_core.core.dry_run import DryRunWriter
from sync_core.core.explain import ScopeVerdict, explain_scope
from sync_core.core.explain_row import (
    AddressVerdict,
    CleanUpVerdict,
    ColumnChange,
    explain_addresses,
    explain_clean_up,
    jsonable,
    row_difference,
)
from sync_core.core.pages import RunTotals, scope_and_map
from sync_core.core.passes import PassContext, write
from sync_core.core.plan import DeletionDecision, expired_without_address, guard_deletions
from sync_core.core.ports import EmployeeWriter, StoredIndex
from sync_core.core.report import (
    Counts,
    RunStatus,
)


@dataclass(frozen=True)
class Applied:
    run_id: str
    status: RunStatus
    outcome: str  # created, updated, unchanged, deleted, held, skipped, excluded

    def to_json(self) -> dict[str, Any]:
        return {"runId": self.run_id, "status": self.status, "outcome": self.outcome}


@dataclass(frozen=True)
class Explanation:
    tenant_id: str
    user: dict[str, Any]
    scope: ScopeVerdict
    addresses: AddressVerdict
    outcome: str  # what a run does with the row: created, updated, unchanged, ... (as Applied)
    new_row: dict[str, Any] | None
    stored_row: dict[str, Any] | None
    changes: tuple[ColumnChange, ...]
    clean_up: CleanUpVerdict
    counts: Counts = field(default_factory=Counts, compare=False)  # the run's, when applied
    applied: Applied | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "tenantId": self.tenant_id,
            "user": self.user,
            "scope": self.scope.to_json(),
            "address": self.addresses.to_json(),
            "outcome": self.outcome,
            "row": {"new": self.new_row, "stored": self.stored_row},
            "changes": [change.to_json() for change in self.changes],
            "cleanUp": self.clean_up.to_json(),
            "applied": self.applied.to_json() if self.applied else None,
        }


async def judge(
    service: SyncService,
    tenant_id: str,
    config: TenantConfig,
    user: dict[str, Any],
    stored: dict[str, Any] | None,
    applying: EmployeeWriter | None,
    now: Callable[[], datetime],
    run_id: str = "explain",
    *,
    listed: bool = True,
) -> Explanation:
    """Run the engine's steps for this user against its stored row: through `applying` when given
    (an applied explain), else through a dry-run writer that writes nothing. A user the run's
    listing does not return (`listed` False: outside filter.odata) is read by no run."""
    case = _Case(tenant_id, config, user, stored, now, run_id, listed)
    return _explanation(case, await _run_steps(service, case, applying))


@dataclass(frozen=True)
class _Case:
    """The user judged, against what: judge's arguments, for its two halves."""

    tenant_id: str
    config: TenantConfig
    user: dict[str, Any]
    stored: dict[str, Any] | None
    now: Callable[[], datetime]
    run_id: str
    listed: bool


@dataclass(frozen=True)
class _Steps:
    """What the run's steps did with the user: their context (tally, mapper, index) and the
    deletion guard's decision (None: Clean Up would not remove the row)."""

    ctx: PassContext
    guard: DeletionDecision | None


async def _run_steps(service: SyncService, case: _Case, applying: EmployeeWriter | None) -> _Steps:
    index = _index_of(case.user["id"], case.stored)
    writer = applying or DryRunWriter(service.employees, case.tenant_id)
    ctx = PassContext(case.run_id, case.config, index, writer, RunTotals(), case.now)
    read = [case.user] if case.listed else []
    employees = await scope_and_map(read, ctx.scope, ctx.mapper, index, ctx.tally)
    await write(ctx, employees)
    await writer.flush()
    guard = await _guard(service, case.tenant_id, case.config, ctx, case.stored, case.now())
    if guard is not None:
        await _delete_if_allowed(guard, applying, ctx.tally)
    return _Steps(ctx, guard)


def _explanation(case: _Case, steps: _Steps) -> Explanation:
    """Each step's verdict in words a person follows (pure but for the clock)."""
    ctx, guard, user, stored, now = steps.ctx, steps.guard, case.user, case.stored, case.now
    verdict = explain_scope(case.config.filter, user, listed=case.listed)
    employee = ctx.mapper.employee(user)
    missing_since = ctx.index.email_missing_since.get(user["id"])
    # The row a run would store: none for a user out of scope, nor for one without an address
    # that is not stored yet (skipped), as pages.scope_and_map decides.
    stays = verdict.in_scope and (employee.email is not None or stored is not None)
    new_row = employee_entity(case.tenant_id, employee, case.run_id, now(), missing_since or now())
    return Explanation(
        tenant_id=case.tenant_id,
        user={name: user.get(name) for name in _SHOWN},
        scope=verdict,
        addresses=explain_addresses(user, case.config.email),
        outcome=_outcome(ctx.tally, guard, case.listed),
        new_row=shown_row(new_row) if stays else None,
        stored_row=shown_row(stored),
        changes=row_difference(new_row if stays else None, stored),
        clean_up=explain_clean_up(
            stored=stored is not None,
            in_scope=verdict.in_scope,
            has_address=employee.email is not None,
            missing_since=missing_since,
            clean_up=case.config.clean_up,
            guard=guard,
            now=now(),
        ),
        counts=ctx.tally.counts,
    )


async def _delete_if_allowed(
    guard: DeletionDecision, applying: EmployeeWriter | None, tally: RunTotals
) -> None:
    """Clean Up's removal of this row, as passes.finish does it (only when applying)."""
    tally.counts.deletesHeld = guard.held
    if guard.delete and applying is not None:
        for employee_id in guard.delete:
            await applying.delete(employee_id)
        await applying.flush()
        tally.counts.deleted = len(guard.delete)


def _index_of(user_id: str, stored: dict[str, Any] | None) -> StoredIndex:
    """The stored index a run would hold, for this one row."""
    if stored is None:
        return StoredIndex({}, {})
    since = stored.get(EMAIL_MISSING_SINCE)
    marked = {user_id: since} if isinstance(since, datetime) else {}
    return StoredIndex({user_id: stored.get("SourceHash") or ""}, marked)


async def _guard(
    service: SyncService,
    tenant_id: str,
    config: TenantConfig,
    ctx: PassContext,
    stored: dict[str, Any] | None,
    now: datetime,
) -> DeletionDecision | None:
    """The deletion guard's decision for this row when Clean Up would remove it (None when it
    is no candidate), with the tenant's stored count as a run has it."""
    if stored is None:
        return None
    user_id = str(stored["RowKey"])
    stale = () if user_id in ctx.tally.in_scope_ids else (user_id,)
    grace = timedelta(hours=config.clean_up.email_missing_grace_hours)
    expired = expired_without_address(ctx.tally.marked_since, now, grace)
    candidates = tuple(sorted({*stale, *expired}))
    if not candidates or not config.clean_up.enabled:
        return None
    count = await service.employees.count(tenant_id)
    return guard_deletions(candidates, count, config.clean_up, allow_deletes=False)


def _outcome(tally: RunTotals, guard: DeletionDecision | None, listed: bool) -> str:
    counts = tally.counts
    if guard is not None and guard.held:
        return "held"
    if guard is not None and guard.delete:
        return "deleted"
    if counts.excluded or not listed:
        return "excluded"
    for name in ("created", "updated", "unchanged", "skippedNoEmail", "skippedUnstorable"):
        if getattr(counts, name):
            return name
    return "unchanged"


def shown_row(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    hidden = {"PartitionKey", "Timestamp", "etag"}
    return {key: jsonable(value) for key, value in row.items() if key not in hidden}
