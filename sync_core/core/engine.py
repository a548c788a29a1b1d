"""One sync run of one tenant: orchestration only; every decision lives in a pure step."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sync_core.core.config import TenantConfig
from sync_core.core.config_parse import ConfigError
from sync_core.core.dry_run import DryRunWriter
from sync_core.core.limits import clean_text
from sync_core.core.mapping import Mapper
from sync_core.core.pages import Tally, prefetched, scope_and_map
from sync_core.core.plan import expired_without_address, guard_deletions, plan_writes, stale_ids
from sync_core.core.ports import (
    Change,
    ConfigSource,
    EmployeeWriter,
    GraphStats,
    LeaseLost,
    Ports,
    RowStamp,
    StoredIndex,
    UnstorableEmployee,
    UserDirectory,
)
from sync_core.core.report import (
    Counts,
    RunProblem,
    RunReport,
    RunStatus,
    Trigger,
    new_run_id,
    utc_now,
)
from sync_core.core.run_log import log_event, log_run_finished
from sync_core.core.scope import Scope
from sync_core.errors import FatalError, SyncError

log = logging.getLogger("sync_core.run")  # the logger of run_log too

LEASE_LOST = "lease_lost"


@dataclass(frozen=True)
class RunRequest:
    tenant_id: str
    dry_run: bool = False
    allow_deletes: bool = False
    trigger: Trigger = Trigger.CLI
    run_id: str | None = None


async def run_sync(
    request: RunRequest, ports: Ports, *, now: Callable[[], datetime] = utc_now
) -> RunReport:
    started = now()
    report = RunReport.begun(
        request.run_id or new_run_id(started),
        request.tenant_id,
        RunStatus.RUNNING,
        dry_run=request.dry_run,
        trigger=request.trigger,
        at=started,
    )
    await ports.runs.save(report)
    log_event(
        "sync started",
        event="sync_started",
        tenantId=request.tenant_id,
        runId=report.run_id,
        mode=report.mode,
        dryRun=request.dry_run,
        allowDeletes=request.allow_deletes,
        trigger=request.trigger,
    )
    tally = Tally()
    stats = GraphStats()
    status, errors, tenant_name = RunStatus.SUCCEEDED, [], None
    sink: EmployeeWriter | None = None
    try:
        config = await _load_config(ports.configs, request.tenant_id)
        # The fence goes up before the stored index is read: whatever a run that held the
        # lease before wrote is in the index, and whatever it writes from now on is refused.
        sink = (
            DryRunWriter(ports.employees, request.tenant_id)
            if request.dry_run
            else await ports.employees.writer(request.tenant_id, ports.lease)
        )
        # The stored index loads while the secret, the token and the tenant name are fetched.
        stored = asyncio.create_task(ports.employees.load_index(request.tenant_id))
        try:
            directory = await ports.open_directory(request.tenant_id)
            stats = directory.stats
            try:
                tenant_name = await _tenant_name(directory, tally)
                held = await _synchronise(
                    request, report.run_id, config, directory, await stored, sink, tally, now
                )
            finally:
                await directory.close()
        finally:
            # Cancels the load if the run failed first, and retrieves any error it had.
            stored.cancel()
            await asyncio.gather(stored, return_exceptions=True)
        if held:
            status = RunStatus.HELD
    except LeaseLost:
        status = RunStatus.FAILED
        errors.append(_lease_lost(tally.counts, sink))
        log.warning("sync stopped: the lease passed to another run")
    except Exception as error:  # every failure ends in the report, classified
        # The adapters raise SyncError (classified at their boundary); anything else is a bug.
        failure = error if isinstance(error, SyncError) else _internal(error)
        status = RunStatus.FAILED
        errors.append(RunProblem(failure.code, failure.message, failure.fix))
        log.warning("sync failed: %s", failure.message, exc_info=failure is not error)
    tally.warnings.extend(_reading_warnings(stats))
    final = replace(
        report,
        tenant_name=tenant_name,
        status=status,
        finished_at=now(),
        counts=tally.counts,
        excluded_by=dict(tally.excluded_by),
        skipped_no_email=tuple(tally.skipped),
        no_address=tuple(tally.no_address),
        skipped_unstorable=tuple(tally.unstorable),
        graph_requests=stats.requests,
        graph_throttled=stats.throttled,
        errors=tuple(errors),
        warnings=tuple(tally.warnings),
    )
    await ports.runs.save(final)
    log_run_finished(final)
    return final


async def _load_config(configs: ConfigSource, tenant_id: str) -> TenantConfig:
    try:
        config = await configs.get(tenant_id)
    except ConfigError as error:
        raise FatalError(
            "invalid_config",
            f"The stored configuration of this tenant is invalid: {error}",
            "Fix it and store it again with `config set` (or PUT /api/config).",
        ) from None
    return config or TenantConfig()


async def _tenant_name(directory: UserDirectory, tally: Tally) -> str | None:
    organization = await directory.organization()
    if organization is None:
        # Reading /organization may need Organization.Read.All; the sync itself does not.
        tally.warnings.append(
            "The tenant name could not be read (Graph refused /organization); grant "
            "Organization.Read.All to show it. The sync is not affected."
        )
        return None
    return organization.display_name


def _lease_lost(counts: Counts, sink: EmployeeWriter | None) -> RunProblem:
    """The run's lease passed to another run and the fence refused this run's writes: the
    counts become what Table Storage accepted, and the error says so."""
    committed = sink.committed if sink is not None else Counter()
    planned = counts.created + counts.updated + counts.deleted
    counts.created = committed["created"]
    counts.updated = committed["updated"]
    counts.deleted = committed["deleted"]
    refused = planned - (counts.created + counts.updated + counts.deleted)
    return RunProblem(
        LEASE_LOST,
        "The run lost the tenant's lease to a newer run, and Table Storage refused its writes "
        f"from then on (the fence). Written before that: {counts.created} added, "
        f"{counts.updated} updated, {counts.deleted} removed; {refused} planned write(s) were "
        "not made. The newer run's rows stand; nothing of this run overwrote them.",
        "Nothing to repair. If it happens often, a run stalls for longer than the lease "
        "(5 minutes): look for a paused host or a storage outage in the logs.",
    )


async def _synchronise(
    request: RunRequest,
    run_id: str,
    config: TenantConfig,
    directory: UserDirectory,
    index: StoredIndex,
    sink: EmployeeWriter,
    tally: Tally,
    now: Callable[[], datetime],
) -> bool:
    """Read, plan, write; delete last, and only after a complete read. Returns whether
    deletions were held by the guard."""
    mapper = Mapper.from_config(config)
    scope = Scope.from_config(config.filter)
    counts = tally.counts
    stored = index.hashes
    select = mapper.graph_properties | scope.graph_properties
    pages = prefetched(directory.users(select, config.filter.odata))
    try:
        async with contextlib.aclosing(pages):
            async for page in pages:
                employees = await scope_and_map(page, scope, mapper, index, tally)
                plan = plan_writes(employees, stored)
                # Counted when handed to the writer, before the writes land: the counts always
                # add up, and a failed run's errors say where it stopped (a run that lost its
                # lease reports what was committed instead, see _lease_lost).
                counts.unchanged += len(plan.unchanged)
                written_at = now()
                changes = [(e, Change.CREATED) for e in plan.creates]
                changes += [(e, Change.UPDATED) for e in plan.updates]
                for employee, change in changes:
                    stamp = RowStamp(run_id, written_at, tally.marked_since.get(employee.id))
                    try:
                        await sink.upsert(employee, change, stamp)
                    except UnstorableEmployee as refused:
                        # Not written, so tried again next run; still in scope, so clean-up
                        # never removes it for this.
                        counts.skippedUnstorable += 1
                        upn = clean_text(employee.user_principal_name or employee.id)
                        tally.unstorable.append(f"{upn}: {refused.reason}")
                        continue
                    if change is Change.CREATED:
                        counts.created += 1
                    else:
                        counts.updated += 1
        await sink.flush()

        stale = stale_ids(stored.keys(), tally.in_scope_ids)
        grace = timedelta(hours=config.clean_up.email_missing_grace_hours)
        expired = expired_without_address(tally.marked_since, now(), grace)
        decision = guard_deletions(
            tuple(sorted({*stale, *expired})),
            len(stored),
            config.clean_up,
            allow_deletes=request.allow_deletes,
        )
        counts.deleted = len(decision.delete)
        counts.deletesHeld = decision.held
        for employee_id in decision.delete:
            await sink.delete(employee_id)
        await sink.flush()
    finally:
        # A failed or cancelled run stops writing now, not when its batches happen to finish:
        # the lease that protects the tenant is released right after.
        await sink.abort()
    if not config.clean_up.enabled:
        counts.staleKept = len(stale)
    counts.employees = len(stored) + (0 if request.dry_run else counts.created - counts.deleted)
    if decision.reason and decision.held:
        tally.warnings.append(decision.reason)
    removed_without_address = len(set(expired) & set(decision.delete))
    if removed_without_address:
        tally.warnings.append(
            f"{removed_without_address} employee(s) in scope had no email address for more than "
            f"{config.clean_up.email_missing_grace_hours:g} h and were removed by Clean Up."
        )
    shared = sorted(a for a, n in tally.addresses.items() if n > 1)
    if shared:
        tally.warnings.append(
            f"{len(shared)} address(es) belong to more than one employee, "
            f"e.g. {clean_text(', '.join(shared[:5]))}"
        )
    return decision.held > 0


def _reading_warnings(stats: GraphStats) -> list[str]:
    """What the admin should know about how the listing went, even when it went well."""
    warnings: list[str] = list(stats.credential_warnings)
    if stats.listing_restarts:
        warnings.append(
            f"Graph's page token expired during the listing, which restarted from the first "
            f"page {stats.listing_restarts} time(s); users read twice were counted once."
        )
    if stats.advanced_query_refused:
        warnings.append(
            "This tenant refused Graph's advanced queries (as Azure AD B2C tenants do): "
            "filter.odata was sent without ConsistencyLevel and $count."
        )
    return warnings


def _internal(error: Exception) -> FatalError:
    # The text too: the report of a run that hit a bug is what its admin sends the developers.
    return FatalError("internal_error", f"Unexpected error: {type(error).__name__}: {error}")
