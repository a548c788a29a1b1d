"""One sync run of one tenant: orchestration only; every decision lives in a pure step."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sync_core.core.config import ConfigError, TenantConfig
from sync_core.core.limits import clean_text
from sync_core.core.mapping import Employee, Mapper
from sync_core.core.plan import expired_without_address, guard_deletions, plan_writes, stale_ids
from sync_core.core.ports import (
    Change,
    ConfigSource,
    EmployeeStore,
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
from sync_core.core.scope import Scope
from sync_core.errors import FatalError, SyncError

log = logging.getLogger("sync_core.run")

LEASE_LOST = "lease_lost"

# Scope rules (RE2: linear in the value) and mapping cost a bounded time per user; handing the
# event loop back every so many users keeps the lease renewal (exclusive.LeaseKeeper, a task on
# the same loop) and the writer's batches going however large the page and heavy the rules.
USERS_BETWEEN_YIELDS = 32


@dataclass(frozen=True)
class RunRequest:
    tenant_id: str
    dry_run: bool = False
    allow_deletes: bool = False
    trigger: Trigger = Trigger.CLI
    run_id: str | None = None


class DryRunWriter:
    """Stands in for the writer in a dry run: the plan is computed and counted, nothing written
    (a row the store could not hold is reported as the real run would)."""

    def __init__(self, store: EmployeeStore, tenant_id: str) -> None:
        self._store = store
        self._tenant_id = tenant_id
        self.committed: Counter[str] = Counter()

    async def upsert(self, employee: Employee, change: Change, stamp: RowStamp) -> None:
        self._store.check_storable(self._tenant_id, employee, stamp)

    async def delete(self, employee_id: str) -> None:
        pass

    async def flush(self) -> None:
        pass

    async def abort(self) -> None:
        pass


class Tally:
    """The run's running totals; turned into the frozen report at the end."""

    def __init__(self) -> None:
        self.counts = Counts()
        self.excluded_by: Counter[str] = Counter()
        self.skipped: list[str] = []
        self.no_address: list[str] = []
        # In scope without an address and already marked by an earlier run: id -> since when.
        self.marked_since: dict[str, datetime] = {}
        self.unstorable: list[str] = []
        self.warnings: list[str] = []
        self.read_ids: set[str] = set()
        self.in_scope_ids: set[str] = set()
        self.addresses: dict[str, int] = Counter()


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
    _log_event(
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


def log_run_finished(report: RunReport, **more: Any) -> None:
    """The one line that ends every run, whoever ended it (the engine, or the worker for a
    request that never reached it)."""
    _log_event(
        "sync finished",
        level=logging.WARNING if report.status == RunStatus.FAILED else logging.INFO,
        event="sync_finished",
        tenantId=report.tenant_id,
        runId=report.run_id,
        mode=report.mode,
        dryRun=report.dry_run,
        trigger=report.trigger,
        status=report.status,
        counts=report.to_json()["counts"],
        durationSeconds=report.duration_seconds,
        errors=[error.code for error in report.errors],
        **more,
    )


def _log_event(message: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """One structured line: the fields as JSON in the text (the Functions host forwards the text
    of a record to Application Insights) and as `extra` (for log handlers that read them)."""
    log.log(level, "%s %s", message, json.dumps(fields, ensure_ascii=False), extra=fields)


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
    pages = _prefetched(directory.users(select, config.filter.odata))
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
    warnings: list[str] = []
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


async def scope_and_map(
    page: list[dict[str, Any]], scope: Scope, mapper: Mapper, index: StoredIndex, tally: Tally
) -> list[Employee]:
    employees: list[Employee] = []
    counts = tally.counts
    for position, user in enumerate(page):
        if position % USERS_BETWEEN_YIELDS == USERS_BETWEEN_YIELDS - 1:
            await asyncio.sleep(0)
        user_id = user.get("id")
        # Paging over a changing directory can repeat a user; the first sighting counts.
        if not user_id or user_id in tally.read_ids:
            continue
        tally.read_ids.add(user_id)
        counts.read += 1
        reason = scope.exclusion_reason(user)
        if reason is not None:
            counts.excluded += 1
            tally.excluded_by[reason] += 1
            continue
        counts.inScope += 1
        # In scope without an address still counts as present: clean-up must not remove an
        # employee because a mailbox property was briefly empty.
        tally.in_scope_ids.add(user_id)
        employee = mapper.employee(user)
        if employee.email is None:
            if user_id not in index.hashes:
                counts.skippedNoEmail += 1
                # Cleaned: a lone surrogate in a UPN must not break the report's JSON or text.
                tally.skipped.append(clean_text(user.get("userPrincipalName") or user_id))
                continue
            # Stored, but its address is gone: the row stays (marked, its fields kept current)
            # until it has had no address for the grace period; see docs/configuration.md.
            counts.noAddress += 1
            tally.no_address.append(clean_text(user.get("userPrincipalName") or user_id))
            if user_id in index.email_missing_since:
                tally.marked_since[user_id] = index.email_missing_since[user_id]
        else:
            tally.addresses[employee.email] += 1
        employees.append(employee)
    return employees


_END = object()


async def _prefetched(
    pages: AsyncIterator[list[dict[str, Any]]],
) -> AsyncGenerator[list[dict[str, Any]], None]:
    """Read the next page while the current one is mapped and written; one page ahead at most."""
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)

    async def produce() -> None:
        try:
            async for page in pages:
                await queue.put(page)
        except Exception as error:  # noqa: BLE001 - re-raised by the consumer
            await queue.put(error)
        else:
            await queue.put(_END)

    producer = asyncio.create_task(produce())
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        producer.cancel()
        try:
            await producer
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the consumer has its error
            pass


def _internal(error: Exception) -> FatalError:
    # The text too: the report of a run that hit a bug is what its admin sends the developers.
    return FatalError("internal_error", f"Unexpected error: {type(error).__name__}: {error}")
