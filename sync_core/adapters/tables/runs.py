"""The SyncRuns table: one row per run, its report split into properties (run_record_rows.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from azure.core.exceptions import (
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from sync_core.adapters.storage_names import RUNS_TABLE
from sync_core.adapters.tables.boundary import storage_boundary
from sync_core.adapters.tables.claimed_row import ClaimedRow
from sync_core.adapters.tables.run_index_rows import RunIndexRows, TenantRow
from sync_core.adapters.tables.run_listing import listing
from sync_core.adapters.tables.run_record_rows import (
    cutoff_key,
    idle_properties,
    report_of,
    run_entity,
    run_row_key,
)
from sync_core.core.report import FINAL_STATUSES, RunProblem, RunReport, RunStatus
from sync_core.core.run_index import (
    IdleStreak,
    RunIndex,
    claimed,
    finished,
    with_run,
    without_run,
)


@dataclass
class LeasedRun:
    marked: bool  # its `running` state was written with the lease
    idle_ending: RunReport | None = None  # kept back for the release


RETENTION = timedelta(days=90)  # RUN_RETENTION_DAYS
SWEEP_LIMIT = 100  # records one sweep of one tenant removes at most (one transaction)
# A tenant swept clean is looked at again this much later: its records expire one a day, so a
# sweep removes a week of them at once, and no record outlives the retention by more than this.
SWEEP_SLACK = timedelta(days=7)


@storage_boundary
class RunStore:
    """Run records, newest first: RowKey = inverted start time + run id. A run in flight (queued,
    running) is kept in the tenant's run index row (run_index_rows.py), not here; an idle delta
    run leaves no record, only a count on the tenant's latest one (core/run_index.py)."""

    def __init__(self, service: TableServiceClient, retention: timedelta = RETENTION):
        self._table: TableClient = service.get_table_client(RUNS_TABLE)
        self.index = RunIndexRows(service)
        self.retention = retention
        self._leased: dict[str, LeasedRun] = {}

    @contextlib.contextmanager
    def leased(self, run_id: str, *, marked: bool) -> Iterator[LeasedRun]:
        """While the run holds the tenant's lease (exclusive.sync_exclusively): its `running`
        state was written with the lease (`marked`), and its idle ending is kept back, to be
        written with the release; anything else is saved as usual."""
        run = LeasedRun(marked)
        self._leased[run_id] = run
        try:
            yield run
        finally:
            self._leased.pop(run_id, None)

    async def save(self, report: RunReport) -> None:
        """Write the record as it is: for the run that holds the tenant's lease."""
        leased = self._leased.get(report.run_id)
        if leased is not None:
            if report.status == RunStatus.RUNNING and leased.marked:
                return
            if report.idle:
                leased.idle_ending = report
                return
        if report.status not in FINAL_STATUSES:
            await self.index.change(report.tenant_id, lambda ix: (with_run(ix, report), None))
            return
        if not report.idle:
            await self._table.upsert_entity(run_entity(report), mode=UpdateMode.REPLACE)
        await self._finished(report)

    async def _finished(self, report: RunReport) -> None:
        """The index after a final record: out of the runs in flight; the idle streak it ended
        written onto the record it followed (gone by retention: nothing to write)."""

        def ended(index: RunIndex) -> tuple[RunIndex, IdleStreak | None]:
            updated, streak = finished(index, report)
            if updated.sweep_after is None and not report.idle:  # its first record
                updated = replace(updated, sweep_after=report.started_at + self.retention)
            return updated, streak

        streak = await self.index.change(report.tenant_id, ended)
        if streak is None or streak.after is None:
            return
        entity = {"PartitionKey": report.tenant_id, "RowKey": run_row_key(streak.after)}
        entity.update(idle_properties(streak))
        with contextlib.suppress(ResourceNotFoundError):
            await self._table.update_entity(entity, mode=UpdateMode.MERGE)

    async def claim(
        self, report: RunReport, now: datetime, known: TenantRow | None = None
    ) -> ClaimedRow | None:
        """Save `report` (queued) as the tenant's one run in flight: RunPending with the run
        that already is (core/run_index.claimed). `known`: the tenant's row as lately read.
        The row as the claim left it, when its lease was free (claimed_row.py)."""
        left: list[ClaimedRow] = []

        def written(row: TenantRow) -> None:
            if row.lease is None and row.etag is not None:
                left.append(ClaimedRow.of(row.etag, row.index))

        await self.index.change_row(
            report.tenant_id,
            lambda row: (claimed(row.index, row.lease, report, now), None),
            known,
            written,
        )
        return left[-1] if left else None

    async def save_unless_final(self, report: RunReport) -> bool:
        """Write the record unless the stored one has already ended: for writers that do not
        hold the lease (a superseded request, the poison handler), which must never rewrite a
        run that finished meanwhile. False when the stored record had ended."""
        return await self.change_unless_final(report.tenant_id, report.run_id, lambda _: report)

    async def note(self, report_if_absent: RunReport, error: RunProblem, replaces: str) -> bool:
        """Add `error` to a run that has not ended, replacing its earlier errors of code
        `replaces` (the cause of a failed attempt, for the poison handler and the status URL)."""

        def noted(current: RunReport | None) -> RunReport:
            report = current or report_if_absent
            kept = tuple(e for e in report.errors if e.code != replaces)
            return replace(report, errors=(*kept, error))

        return await self.change_unless_final(
            report_if_absent.tenant_id, report_if_absent.run_id, noted
        )

    async def change_unless_final(
        self, tenant_id: str, run_id: str, change: Callable[[RunReport | None], RunReport]
    ) -> bool:
        """Apply `change` to the run as stored (None: nowhere yet) and save it, unless the run has
        ended; a final result is created in SyncRuns only if no record is there (one writer
        wins), an unfinished one goes to the index on its ETag."""
        for _ in range(4):
            status = await self._recorded(tenant_id, run_id)
            if status in FINAL_STATUSES:
                # Ended (and maybe still listed in flight, if its saver stopped in between).
                await self.index.change(tenant_id, lambda ix: (without_run(ix, run_id), None))
                return False
            index, etag = await self.index.get(tenant_id)
            current = index.find(run_id)
            idle = index.idle
            if (current and current.status in FINAL_STATUSES) or (
                idle is not None and idle.report.run_id == run_id
            ):
                return False  # ended idle: it has no record of its own
            result = change(current)
            if result.status in FINAL_STATUSES:
                try:
                    if status is None:
                        await self._table.create_entity(run_entity(result))
                    else:  # its record from before the run index, still unfinished
                        await self._table.upsert_entity(run_entity(result), mode=UpdateMode.REPLACE)
                except ResourceExistsError:
                    continue  # ended meanwhile: look again
                await self._finished(result)
                return True
            if await self.index.put_if(tenant_id, with_run(index, result), etag):
                return True
        return False

    async def _recorded(self, tenant_id: str, run_id: str) -> str | None:
        """The status of the run's record in SyncRuns; None when it has none."""
        try:
            entity = await self._table.get_entity(tenant_id, run_row_key(run_id), select=["Status"])
        except ResourceNotFoundError:
            return None
        return str(entity.get("Status"))

    async def adopt_legacy(self, tenant_id: str) -> int:
        """Once per tenant, after the upgrade to the run index: the records SyncRuns still holds
        as queued or running (written before, when runs in flight were kept there) move into the
        index, where the next run or the timer closes them. The one history scan left."""
        legacy = [
            report_of(entity)
            async for entity in self._table.query_entities(
                # Spaced: the SDK substitutes @names split on whitespace, so none touches a ")".
                "PartitionKey eq @tenant and ( Status eq @queued or Status eq @running )",
                parameters={"tenant": tenant_id, "queued": "queued", "running": "running"},
            )
        ]

        def adopted(index: RunIndex) -> tuple[RunIndex, None]:
            for report in legacy:
                if index.find(report.run_id) is None:
                    index = with_run(index, report)
            return replace(index, adopted=True), None

        await self.index.change(tenant_id, adopted)
        for report in legacy:
            with contextlib.suppress(ResourceNotFoundError):
                await self._table.delete_entity(tenant_id, run_row_key(report.run_id))
        return len(legacy)

    async def page(
        self, tenant_id: str, top: int, after_run_id: str | None, *, idle: bool = True
    ) -> tuple[list[RunReport], str | None]:
        """Runs newest first, `top` at a time; the cursor is the last run id of a page.
        `idle=False` leaves out delta runs that found nothing to do (RunReport.idle): with
        `idle=True` the latest check of each idle streak is listed where it ran."""
        query, parameters = "PartitionKey eq @tenant", {"tenant": tenant_id}
        after_key = run_row_key(after_run_id) if after_run_id else None  # ValueError: not a run id
        if after_key:
            query += " and RowKey gt @after"
            parameters["after"] = after_key
        index, _ = await self.index.get(tenant_id)
        records = self._table.query_entities(query, parameters=parameters, results_per_page=top + 1)
        listed = listing(index, records, include_idle=idle)
        reports: list[RunReport] = []
        async for report in listed:
            if after_key and run_row_key(report.run_id) <= after_key:
                continue
            if len(reports) == top:
                return reports, reports[-1].run_id
            if idle or not report.idle:
                reports.append(report)
        return reports, None

    async def get(self, tenant_id: str, run_id: str) -> RunReport | None:
        try:
            row_key = run_row_key(run_id)
        except ValueError:
            return None
        # The index first: a run in flight is only there (one read), an idle one too.
        index, _ = await self.index.get(tenant_id)
        if index.idle is not None and index.idle.report.run_id == run_id:
            return index.idle.report
        indexed = index.find(run_id)
        if indexed is not None and indexed.status not in FINAL_STATUSES:
            return indexed
        try:
            entity = await self._table.get_entity(tenant_id, row_key)
        except ResourceNotFoundError:
            return indexed  # ended idle and since left the index's window: None
        return report_of(entity)

    async def unfinished(self, tenant_id: str) -> list[RunReport]:
        """Every run of the tenant still recorded queued or running, newest first, however old
        and however many runs came after it: one keyed read of its index row."""
        index, _ = await self.index.get(tenant_id)
        return index.unfinished()

    async def sweep(self, tenant_id: str, now: datetime) -> int:
        """Remove up to SWEEP_LIMIT records older than the retention period, never the latest
        record nor a held or failed run that no later run succeeded; returns how many. The
        index's `sweep_after` says when to come back (at once if the limit was reached)."""
        index, _ = await self.index.get(tenant_id)
        cutoff = now - self.retention
        success = index.last_succeeded()
        expired = self._table.query_entities(
            "PartitionKey eq @tenant and RowKey gt @cutoff",
            parameters={"tenant": tenant_id, "cutoff": cutoff_key(cutoff)},
            select=["RowKey", "RunId", "Status", "StartedAt"],
            results_per_page=SWEEP_LIMIT,
        )
        doomed, seen = [], 0
        async for entity in expired:
            seen += 1
            kept_until_success = entity.get("Status") in ("failed", "held") and (
                success is None or entity["StartedAt"] >= success.started_at
            )
            if entity.get("RunId") != index.latest_recorded and not kept_until_success:
                doomed.append(("delete", {"PartitionKey": tenant_id, "RowKey": entity["RowKey"]}))
            if seen == SWEEP_LIMIT:
                break
        for start in range(0, len(doomed), 100):  # one transaction per 100 (one partition)
            await self._table.submit_transaction(doomed[start : start + 100])
        more = seen == SWEEP_LIMIT and bool(doomed)
        after = now if more else now + SWEEP_SLACK
        await self.index.change(tenant_id, lambda ix: (replace(ix, sweep_after=after), None))
        return len(doomed)

    async def latest(self, tenant_id: str, top: int = 20) -> list[RunReport]:
        return (await self.page(tenant_id, top, None))[0]
