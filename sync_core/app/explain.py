"""`explain`: one user read from Graph, judged by the run's own rules, compared with its stored
row; with `apply`, that one row written (or removed) now, as a run of its own.

The decision goes through the engine's steps (pages.scope_and_map, passes.write, the deletion
guard), given a stored index of this one row: what explain says is what a run does. An applied
explain holds the tenant's lease (exclusive.py) and writes through the fenced writer, so it
never writes beside a running sync; it is recorded as a small run (`trigger: explain`) that the
schedule leaves out (core/schedule.py).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sync_core.adapters.tables.employee_rows import EMAIL_MISSING_SINCE, employee_entity
from sync_core.app.closing import close_failed
from sync_core.app.exclusive import (
    LEASE_LOST,
    LEASE_RENEW_EVERY,
    LEASE_TTL,
    LeaseKeeper,
    acquire_lease,
)
from sync_core.app.service import SyncService
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
from sync_core.core.mapping import Mapper
from sync_core.core.pages import Tally, scope_and_map
from sync_core.core.passes import PassContext, write
from sync_core.core.plan import DeletionDecision, expired_without_address, guard_deletions
from sync_core.core.ports import EmployeeWriter, Lease, LeaseLost, StoredIndex
from sync_core.core.report import (
    Counts,
    RunProblem,
    RunReport,
    RunStatus,
    Trigger,
    new_run_id,
    utc_now,
)
from sync_core.core.scope import Scope
from sync_core.errors import FatalError

if TYPE_CHECKING:  # msgraph loads only when a user is read (function_app's cold start)
    from sync_core.adapters.graph import GraphDirectory

MAX_MATCHES = 10  # a UPN or address names one user; more than this is listed as "10 or more"
EXPLAIN_MODE = "user"  # the run record's mode: one user, not a full or delta run
_SHOWN = ("id", "userPrincipalName", "displayName", "mail", "userType", "accountEnabled")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class AmbiguousUser(FatalError):
    """A UPN or address that names several users: they are listed, none is chosen."""

    def __init__(self, key: str, matches: list[dict[str, Any]]):
        more = " or more" if len(matches) >= MAX_MATCHES else ""
        super().__init__(
            "user_ambiguous",
            f"{len(matches)}{more} users match {key!r}: "
            + "; ".join(f"{m.get('userPrincipalName')} ({m['id']})" for m in matches),
            "Explain one of them by its object id.",
        )
        self.matches = [{name: m.get(name) for name in _SHOWN} for m in matches]


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


async def explain_user(
    service: SyncService,
    tenant_id: str,
    key: str,
    *,
    apply: bool = False,
    now: Callable[[], datetime] = utc_now,
) -> Explanation:
    """The explanation of the user `key` (object id, UPN or address); FatalError when no user or
    several match; TenantBusy when `apply` meets a run holding the tenant's lease."""
    config = await service.effective_config(tenant_id)
    directory = await service.open_directory(tenant_id)
    try:
        user = await find_user(directory, key, _select(config))
    finally:
        await directory.close()
    stored = await service.employees.row(tenant_id, user["id"])
    explanation = await _judge(service, tenant_id, config, user, stored, None, now)
    if not apply:
        return explanation
    applied, after = await _apply(service, tenant_id, config, user, now)
    return replace(explanation, applied=applied, stored_row=_shown_row(after))


async def find_user(directory: GraphDirectory, key: str, select: Iterable[str]) -> dict[str, Any]:
    """The one user `key` names: by id with GET /users/{id}, else by UPN or address with a
    $filter (learn.microsoft.com/graph/api/user-list, "Use $filter": userPrincipalName, mail,
    otherMails and proxyAddresses support `eq`, the collections with `any`)."""
    key = key.strip()
    if not key:
        raise FatalError("invalid_user", "--user is empty.", "Give an object id, UPN or address.")
    if _GUID.match(key):
        found = await directory.user(key, select)
        matches = [found] if found is not None else []
    else:
        literal = key.replace("'", "''")  # OData doubles a quote inside a string literal
        odata = (
            f"userPrincipalName eq '{literal}' or mail eq '{literal}' or "
            f"otherMails/any(a:a eq '{literal}') or proxyAddresses/any(p:p eq 'smtp:{literal}')"
        )
        matches = []
        pages = directory.users(select, odata, page_size=MAX_MATCHES)
        async with contextlib.aclosing(pages):  # type: ignore[type-var]
            async for page in pages:
                matches = page[:MAX_MATCHES]
                break
    if not matches:
        raise FatalError(
            "user_not_found",
            f"No user of this tenant has the object id, UPN or address {key!r}.",
            "Check the spelling (a guest's UPN has the #EXT# form); the user may also have "
            "been deleted.",
        )
    if len(matches) > 1:
        raise AmbiguousUser(key, matches)
    return matches[0]


def _select(config: TenantConfig) -> frozenset[str]:
    """What a run reads of each user (PassContext.select), and what the answer shows."""
    run_reads = Mapper.from_config(config).graph_properties
    return run_reads | Scope.from_config(config.filter).graph_properties | set(_SHOWN)


async def _judge(
    service: SyncService,
    tenant_id: str,
    config: TenantConfig,
    user: dict[str, Any],
    stored: dict[str, Any] | None,
    sink: EmployeeWriter | None,
    now: Callable[[], datetime],
    run_id: str = "explain",
) -> Explanation:
    """Run the engine's steps for this user against its stored row: through `sink` when given
    (an applied explain), else through a dry-run writer that writes nothing."""
    index = _index_of(user["id"], stored)
    writer = sink or DryRunWriter(service.employees, tenant_id)
    ctx = PassContext(run_id, config, index, writer, Tally(), now)
    employees = await scope_and_map([user], ctx.scope, ctx.mapper, index, ctx.tally)
    await write(ctx, employees)
    await writer.flush()
    verdict = explain_scope(config.filter, user)
    addresses = explain_addresses(user, config.email)
    employee = ctx.mapper.employee(user)
    missing_since = index.email_missing_since.get(user["id"])
    guard = await _guard(service, tenant_id, config, ctx, stored, now())
    if guard is not None and guard.delete and sink is not None:
        await sink.delete(user["id"])
        await sink.flush()
        ctx.tally.counts.deleted = 1
    if guard is not None and guard.held:
        ctx.tally.counts.deletesHeld = guard.held
    new_row = (
        employee_entity(tenant_id, employee, run_id, now(), missing_since or now())
        if verdict.in_scope and (employee.email is not None or stored is not None)
        else None
    )
    return Explanation(
        tenant_id=tenant_id,
        user={name: user.get(name) for name in _SHOWN},
        scope=verdict,
        addresses=addresses,
        outcome=_outcome(ctx.tally, guard),
        new_row=_shown_row(new_row),
        stored_row=_shown_row(stored),
        changes=row_difference(new_row, stored),
        clean_up=explain_clean_up(
            stored=stored is not None,
            in_scope=verdict.in_scope,
            has_address=employee.email is not None,
            missing_since=missing_since,
            clean_up=config.clean_up,
            guard=guard,
            now=now(),
        ),
        counts=ctx.tally.counts,
    )


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


def _outcome(tally: Tally, guard: DeletionDecision | None) -> str:
    counts = tally.counts
    if guard is not None and guard.held:
        return "held"
    if guard is not None and guard.delete:
        return "deleted"
    if counts.excluded:
        return "excluded"
    for name in ("created", "updated", "unchanged", "skippedNoEmail", "skippedUnstorable"):
        if getattr(counts, name):
            return name
    return "unchanged"


def _shown_row(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    hidden = {"PartitionKey", "Timestamp", "etag"}
    return {key: jsonable(value) for key, value in row.items() if key not in hidden}


async def _apply(
    service: SyncService,
    tenant_id: str,
    config: TenantConfig,
    user: dict[str, Any],
    now: Callable[[], datetime],
) -> tuple[Applied, dict[str, Any] | None]:
    """Write (or remove) this one row now, under the tenant's lease and its fence."""
    if not config.enabled:
        raise FatalError(
            "tenant_disabled",
            f"Tenant {tenant_id} is disabled in its configuration; explain writes nothing.",
            'Enable it ("enabled": true) first, or explain without --apply.',
        )
    run_id = new_run_id(now())
    lease = await acquire_lease(service.leases, tenant_id, run_id, now(), LEASE_TTL)  # TenantBusy
    keeper = LeaseKeeper(service.leases, lease, LEASE_TTL, LEASE_RENEW_EVERY, now)
    report = replace(
        RunReport.begun(
            run_id, tenant_id, RunStatus.RUNNING, dry_run=False, trigger=Trigger.EXPLAIN, at=now()
        ),
        mode=EXPLAIN_MODE,
    )
    await service.runs.save(report)
    try:
        async with keeper:
            final, outcome = await _apply_under_lease(service, report, config, user, lease, now)
        await service.runs.save(final)
    except LeaseLost:
        problem = RunProblem(
            LEASE_LOST, "The explain run lost the tenant's lease and stopped; nothing was written."
        )
        final, outcome = (await close_failed(service.runs, report, problem, now())).report, "failed"
    finally:
        with contextlib.suppress(Exception):  # an unreleased lease expires by itself
            await service.leases.release(keeper.lease)
    after = await service.employees.row(tenant_id, user["id"])
    return Applied(run_id, final.status, outcome), after


async def _apply_under_lease(
    service: SyncService,
    report: RunReport,
    config: TenantConfig,
    user: dict[str, Any],
    lease: Lease,
    now: Callable[[], datetime],
) -> tuple[RunReport, str]:
    tenant_id = report.tenant_id
    # Raised before the row is read again: whatever a run wrote before is in the row, and a run
    # that takes the lease later has its writes, not this one's.
    sink = await service.employees.writer(tenant_id, lease)
    try:
        stored = await service.employees.row(tenant_id, user["id"])
        judged = await _judge(service, tenant_id, config, user, stored, sink, now, report.run_id)
    finally:
        await sink.abort()
    status = RunStatus.HELD if judged.outcome == "held" else RunStatus.SUCCEEDED
    final = replace(
        report,
        status=status,
        finished_at=now(),
        counts=judged.counts,
        excluded_by={judged.scope.reason: 1} if judged.scope.reason else {},
        warnings=tuple(w for w in [_held_warning(judged)] if w),
    )
    return final, judged.outcome


def _held_warning(judged: Explanation) -> str | None:
    if judged.outcome != "held":
        return None
    return f"Removing {judged.user.get('userPrincipalName')} was held: {judged.clean_up.detail}"
