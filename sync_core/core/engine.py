"""One sync run of one tenant: orchestration only; every decision lives in a pure step."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sync_core.core.config import TenantConfig
from sync_core.core.config_parse import ConfigError
from sync_core.core.delta import (
    DEFAULT_RECONCILE_EVERY,
    DeltaChanges,
    FullReason,
    SyncState,
)
from sync_core.core.delta_reads import delta_context, whole_index
from sync_core.core.dry_run import DryRunWriter
from sync_core.core.group_run import GroupStep
from sync_core.core.lazy_writer import LazyWriter
from sync_core.core.limits import clean_text
from sync_core.core.manager_pass import ManagerSync
from sync_core.core.pages import RunTotals
from sync_core.core.passes import PassContext, delta_pass, finish, full_pass
from sync_core.core.photo_run import refresh_photos
from sync_core.core.ports import (
    ConfigSource,
    EmployeeWriter,
    GraphStats,
    LeaseLost,
    Ports,
    StoredIndex,
    TenantDirectory,
    TenantState,
    Unfenced,
    UserDirectory,
)
from sync_core.core.report import (
    RunProblem,
    RunReport,
    RunStatus,
    Trigger,
    new_run_id,
    utc_now,
)
from sync_core.core.run_commit import next_state, next_summary
from sync_core.core.run_log import log_event, log_run_finished
from sync_core.core.run_mode import RunModeStep
from sync_core.core.run_notes import TENANT_NAME_UNREADABLE, lease_lost_problem, reading_warnings
from sync_core.core.shared_addresses import count_stored_holders
from sync_core.core.summary import TenantSummary
from sync_core.core.unrecorded import with_report
from sync_core.errors import ErrorCode, FatalError, SyncError, internal_error

log = logging.getLogger("sync_core.run")  # the logger of run_log too
# A dry run writes nothing, so what it reads (the manager index) is not fenced either.
_DRY_RUN = Unfenced("dry run")


@dataclass(frozen=True)
class RunRequest:
    tenant_id: str
    dry_run: bool = False
    allow_deletes: bool = False
    trigger: Trigger = Trigger.CLI
    run_id: str | None = None
    full: bool = False  # a full run even when a delta run could do (Sync Now `mode: "full"`)
    reconcile_every: timedelta = DEFAULT_RECONCILE_EVERY


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
        dryRun=request.dry_run,
        allowDeletes=request.allow_deletes,
        fullRequested=request.full,
        trigger=request.trigger,
    )
    run = _RunProgress(request, report.run_id, ports, now)
    status, errors = await run.attempt()
    final = replace(report, status=status, finished_at=now(), errors=tuple(errors), **run.result())
    try:
        await ports.runs.save(final)
    except SyncError as error:  # storage gone: the record stays `running`, the caller says so
        log_run_finished(final, recorded=False)
        raise with_report(error, final) from None
    log_run_finished(final)
    return final


class _RunProgress:
    """One run's progress: what the report is made of, whatever the run got to."""

    def __init__(self, request: RunRequest, run_id: str, ports: Ports, now: Callable[[], datetime]):
        self.request, self.run_id, self.ports, self.now = request, run_id, ports, now
        self.tally = RunTotals()
        self.stats = GraphStats()
        self.tenant_name: str | None = None
        self.writer: EmployeeWriter | None = None  # the run's employee writer, once made
        self.mode = RunModeStep(now, self.tally)
        self._summary_etag: str | None = None
        self.groups: GroupStep | None = None  # scope by group (core/group_run.py)

    async def attempt(self) -> tuple[RunStatus, list[RunProblem]]:
        try:
            held = await self._execute()
        except LeaseLost:
            log.warning("sync stopped: the lease passed to another run")
            return RunStatus.FAILED, [lease_lost_problem(self.tally.counts, self.writer)]
        except Exception as error:  # every failure ends in the report, classified
            # The adapters raise SyncError (classified at their boundary); anything else is a bug.
            failure = error if isinstance(error, SyncError) else internal_error(error)
            log.warning("sync failed: %s", failure.message, exc_info=failure is not error)
            return RunStatus.FAILED, [RunProblem(failure.code, failure.message, failure.fix)]
        return (RunStatus.HELD if held else RunStatus.SUCCEEDED), []

    async def _execute(self) -> bool:
        request, ports = self.request, self.ports
        config = await _load_config(ports.configs, request.tenant_id)
        # Opened before the first write only (lazy_writer.py): an idle run moves no fence row.
        writer: EmployeeWriter = (
            DryRunWriter(ports.employees, request.tenant_id)
            if request.dry_run
            else LazyWriter(
                lambda: ports.employees.writer(request.tenant_id, ports.lease), self._mark_writing
            )
        )
        self.writer = writer
        # The delta link and the summary are read while the secret, the token and the tenant
        # name are fetched.
        tenant_state = asyncio.create_task(self._read_state())
        try:
            directory = await ports.open_directory(request.tenant_id)
            self.stats = directory.stats
            try:
                self.tenant_name = await _tenant_name(directory, self.tally)
                lease = _DRY_RUN if request.dry_run else ports.lease
                managers = ManagerSync(request.tenant_id, config, ports.managers, lease)
                unread = PassContext(
                    self.run_id, config, StoredIndex({}, {}), writer, self.tally, self.now,
                    managers=managers,
                )  # fmt: skip
                return await self._synchronise(unread, await tenant_state, directory)
            finally:
                await directory.close()
        finally:
            # Cancels the read if the run failed first, and retrieves any error it had.
            tenant_state.cancel()
            await asyncio.gather(tenant_state, return_exceptions=True)

    async def _read_state(self) -> TenantState:
        return await self.ports.sync_state.read(self.request.tenant_id)

    async def _mark_writing(self) -> None:
        store = self.ports.sync_state
        self._summary_etag = await store.mark_writing(self.request.tenant_id, self.run_id)

    async def _synchronise(
        self, unread: PassContext, tenant_state: TenantState, directory: TenantDirectory
    ) -> bool:
        """Read (delta when it can), write, delete last; then, only when all of it succeeded
        and nothing was held, store the new delta link. Returns whether deletions were held.
        `unread`: the run's context before any stored row is read."""
        request, stored = self.request, tenant_state.summary.summary
        state, self._summary_etag = tenant_state.sync, tenant_state.summary.etag
        self.mode.choose(
            state,
            unread.config,
            tenant_id=request.tenant_id,
            dry_run=request.dry_run,
            force_full=request.full,
            reconcile_every=request.reconcile_every,
        )
        self.groups = GroupStep(unread.config, request.tenant_id, self.ports.memberships)
        try:
            changes = await self._read_changes(unread, state, directory)
            if changes is None:
                ctx = await self._full_context(unread, stored, directory)
                await self.mode.take_link(directory, _managers(ctx).delta_select(ctx.select))
                candidates = await full_pass(ctx, directory)
            else:
                employees = self.ports.employees
                ctx = await delta_context(unread, changes, stored, employees, request.tenant_id)
                candidates = await delta_pass(ctx, changes)
            held = await finish(ctx, candidates, allow_deletes=request.allow_deletes)
            await self._after_writes(ctx, changes, directory)
        finally:
            # A failed or cancelled run stops writing now, not when its batches happen to
            # finish: the lease that protects the tenant is released right after.
            await unread.writer.abort()
        self._sum_up(ctx)
        await self._commit(ctx, tenant_state, changes, held=held)
        return held

    async def _read_changes(
        self, unread: PassContext, state: SyncState | None, directory: TenantDirectory
    ) -> DeltaChanges | None:
        """The round since the stored link, ready for the delta pass; None: the run is full."""
        changes = await self.mode.read_round(directory, state)
        if changes is None or state is None:
            return None
        groups = self._groups
        if groups.active:
            followed = await groups.delta(directory, state, changes, unread.select, self.tally)
            if followed is None:  # the stored groups state cannot be followed
                self.mode.run_full(FullReason.SYNC_STATE_LOST)
                return None
            changes = followed
        # Managers first: the reports of a changed manager join the round, and the point reads
        # of the delta pass cover them too (delta_reads.py).
        select = frozenset(unread.select)
        changes = await _managers(unread).prepare_round(changes, directory, select)
        return groups.annotated(changes)

    async def _full_context(
        self, unread: PassContext, stored: TenantSummary | None, directory: TenantDirectory
    ) -> PassContext:
        """What a full listing compares with: the whole index, and each user's groups."""
        employees, tenant_id = self.ports.employees, self.request.tenant_id
        # With a trusted summary no earlier holder can still be writing: the fence goes up
        # before the first write only (delta_reads.py says why).
        ctx = (
            await whole_index(unread, employees, tenant_id)
            if stored is None
            else replace(unread, index=await employees.load_index(tenant_id))
        )
        if self._groups.active:
            ctx = replace(ctx, groups=await self._groups.full(directory))
        return ctx

    async def _after_writes(
        self, ctx: PassContext, changes: DeltaChanges | None, directory: TenantDirectory
    ) -> None:
        """What follows the employees' writes: the manager index, who else holds the round's
        addresses, the photos."""
        request = self.request
        if not request.dry_run:
            await _managers(ctx).commit()  # after the employees' writes: see manager.py
        if changes is not None:
            await count_stored_holders(self.ports.addresses, request.tenant_id, ctx.tally, changes)
        await refresh_photos(
            ctx,
            request.tenant_id,
            directory,
            self.ports.photos,
            full=changes is None,
            dry_run=request.dry_run,
        )

    @property
    def _groups(self) -> GroupStep:
        assert self.groups is not None  # set by _synchronise
        return self.groups

    def _sum_up(self, ctx: PassContext) -> None:
        counts, tally = self.tally.counts, self.tally
        stored = ctx.table.employees
        counts.employees = stored + (0 if self.request.dry_run else counts.created - counts.deleted)
        shared = sorted(a for a, n in tally.addresses.items() if n > 1)
        if shared:
            tally.warnings.append(
                f"{len(shared)} address(es) belong to more than one employee, "
                f"e.g. {clean_text(', '.join(shared[:5]))}"
            )

    async def _commit(
        self,
        ctx: PassContext,
        tenant_state: TenantState,
        changes: DeltaChanges | None,
        *,
        held: bool,
    ) -> None:
        """Last: every write and delete of the run succeeded (or were held). A run that failed
        before this keeps the old link, so the next run replays the same changes (applying one
        is idempotent), and leaves its summary marked, so the next run rebuilds it."""
        store = self.ports.sync_state
        if self.request.dry_run:
            return
        wrote = isinstance(self.writer, LazyWriter) and self.writer.opened
        mode = self.mode
        summary = next_summary(ctx, tenant_state.summary.summary, wrote=wrote)
        state = next_state(ctx, mode.decision, tenant_state.sync, mode.link, changes, held=held,
                           wrote=wrote, link_taken_at=mode.link_taken_at)  # fmt: skip
        # With the group links and, first, the membership graph they follow (group_run.py).
        await self._groups.commit(
            store, state, tenant_state.sync, self.run_id, summary, self._summary_etag, held=held
        )

    def result(self) -> dict[str, Any]:
        """The report's fields this run filled in, whatever it got to."""
        tally = self.tally
        tally.warnings.extend(reading_warnings(self.stats))
        return {
            "tenant_name": self.tenant_name,
            **self.mode.report(),
            "counts": tally.counts,
            "excluded_by": dict(tally.excluded_by),
            "skipped_no_email": tuple(tally.skipped),
            "no_address": tuple(tally.no_address),
            "skipped_unstorable": tuple(tally.unstorable),
            "graph_requests": self.stats.requests,
            "graph_throttled": self.stats.throttled,
            "warnings": tuple(tally.warnings),
            "groups": self.groups.report() if self.groups else (),
        }


def _managers(ctx: PassContext) -> ManagerSync:
    assert ctx.managers is not None  # the engine always gives one
    return ctx.managers


async def _load_config(configs: ConfigSource, tenant_id: str) -> TenantConfig:
    try:
        config = await configs.get(tenant_id)
    except ConfigError as error:
        raise FatalError(
            ErrorCode.INVALID_CONFIG,
            f"The stored configuration of this tenant is invalid: {error}",
            "Fix it and store it again with `config set` (or PUT /api/config).",
        ) from None
    return config or TenantConfig()


async def _tenant_name(directory: UserDirectory, tally: RunTotals) -> str | None:
    organization = await directory.organization()
    if organization is None:
        tally.warnings.append(TENANT_NAME_UNREADABLE)
        return None
    return organization.display_name
