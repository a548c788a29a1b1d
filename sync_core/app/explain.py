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
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sync_core.app.closing import close_failed
from sync_core.app.exclusive import (
    LEASE_RENEW_EVERY,
    LEASE_TTL,
    LeaseKeeper,
    acquire_lease,
)
from sync_core.app.explain_judge import Applied, Explanation, judge, shown_row
from sync_core.app.service import SyncService
from sync_core.app.user_lookup import SHOWN as _SHOWN
from sync_core.app.user_lookup import find_user, is_object_id, listed_by_odata
from sync_core.core.config import TenantConfig
from sync_core.core.explain import REASON_ODATA
from sync_core.core.explain_row import jsonable
from sync_core.core.mapping import Mapper
from sync_core.core.ports import Lease, LeaseLost
from sync_core.core.report import (
    RunProblem,
    RunReport,
    RunStatus,
    Trigger,
    new_run_id,
    utc_now,
)
from sync_core.core.run_log import log_run_finished
from sync_core.core.scope import Scope
from sync_core.errors import ErrorCode, FatalError, SyncError

EXPLAIN_MODE = "user"  # the run record's mode: one user, not a full or delta run


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
        try:
            user = await find_user(directory, key, _select(config))
        except FatalError as missing:
            raise await _with_stored_row(service, tenant_id, config, key, missing) from None
        listed = await listed_by_odata(directory, user["id"], config.filter.odata, {"id"})
    finally:
        await directory.close()
    stored = await service.employees.row(tenant_id, user["id"])
    explanation = await judge(service, tenant_id, config, user, stored, None, now, listed=listed)
    if not apply:
        return explanation
    applied, after = await _apply(service, tenant_id, config, user, now, listed)
    return replace(explanation, applied=applied, stored_row=shown_row(after))


async def _with_stored_row(
    service: SyncService, tenant_id: str, config: TenantConfig, key: str, error: FatalError
) -> FatalError:
    """A user Entra ID no longer has, asked for by object id: the row still stored for it is
    the admin's question ("why is this leaver still in the table?"), so the answer names it."""
    if error.code != ErrorCode.USER_NOT_FOUND or not is_object_id(key.strip()):
        return error
    row = await service.employees.row(tenant_id, key.strip().lower())
    if row is None:
        return error
    written = f"Email {row.get('Email')!r}, written {jsonable(row.get('SyncedAt'))} by run "
    fate = (
        "Clean Up removes it in the run that sees the deletion: the next full run removes it "
        "(a delta run too, when the deletion is new)"
        if config.clean_up.enabled
        else "clean-up is off (cleanUp.enabled), so it stays until it is turned on"
    )
    return FatalError(
        error.code,
        f"{error.message} A row is stored for this object id ({written}{row.get('RunId')}): "
        f"{fate}.",
        error.fix,
    )


def _select(config: TenantConfig) -> frozenset[str]:
    """What a run reads of each user (PassContext.select), and what the answer shows."""
    run_reads = Mapper.from_config(config).graph_properties
    return run_reads | Scope.from_config(config.filter).graph_properties | set(_SHOWN)


async def _apply(
    service: SyncService,
    tenant_id: str,
    config: TenantConfig,
    user: dict[str, Any],
    now: Callable[[], datetime],
    listed: bool,
) -> tuple[Applied, dict[str, Any] | None]:
    """Write (or remove) this one row now, under the tenant's lease and its fence."""
    if not config.enabled:
        raise FatalError(
            ErrorCode.TENANT_DISABLED,
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
    try:
        await service.runs.save(report)
        async with keeper:
            final, outcome = await _apply_under_lease(
                service, report, config, user, lease, now, listed
            )
        await service.runs.save(final)
        # The line that ends every run; `trigger: explain` and `mode: user` tell it apart.
        log_run_finished(final)
    except LeaseLost:
        problem = RunProblem(
            ErrorCode.LEASE_LOST,
            "The explain run lost the tenant's lease and stopped; nothing was written.",
        )
        final, outcome = (await close_failed(service.runs, report, problem, now())).report, "failed"
    except SyncError as failure:
        # The record says why (best effort: storage may be what failed); the caller reports it.
        with contextlib.suppress(SyncError):
            problem = RunProblem(failure.code, failure.message, failure.fix)
            await close_failed(service.runs, report, problem, now())
        raise
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
    listed: bool,
) -> tuple[RunReport, str]:
    tenant_id = report.tenant_id
    # Raised before the row is read again: whatever a run wrote before is in the row, and a run
    # that takes the lease later has its writes, not this one's.
    writer = await service.employees.writer(tenant_id, lease)
    try:
        stored = await service.employees.row(tenant_id, user["id"])
        judged = await judge(
            service, tenant_id, config, user, stored, writer, now, report.run_id, listed=listed
        )
    finally:
        await writer.abort()
    reason = judged.scope.reason
    status = RunStatus.HELD if judged.outcome == "held" else RunStatus.SUCCEEDED
    final = replace(
        report,
        status=status,
        finished_at=now(),
        counts=judged.counts,
        # A user outside filter.odata is read by no run, so counted under no reason either.
        excluded_by={reason: 1} if reason and reason != REASON_ODATA else {},
        warnings=tuple(w for w in [_held_warning(judged)] if w),
    )
    return final, judged.outcome


def _held_warning(judged: Explanation) -> str | None:
    if judged.outcome != "held":
        return None
    return f"Removing {judged.user.get('userPrincipalName')} was held: {judged.clean_up.detail}"
