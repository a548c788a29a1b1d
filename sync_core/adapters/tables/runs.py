"""The SyncRuns table: one row per run, its report split into properties."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from sync_core.adapters.names import RUNS_TABLE
from sync_core.adapters.tables.common import CHUNK_UNITS, storage_boundary, utf16_chunks
from sync_core.core.report import FINAL_STATUSES, RunProblem, RunReport


@storage_boundary
class RunStore:
    """Run records, newest first: RowKey = inverted start time + run id."""

    def __init__(self, service: TableServiceClient):
        self._table: TableClient = service.get_table_client(RUNS_TABLE)

    async def save(self, report: RunReport) -> None:
        """Write the record as it is: for the run that holds the tenant's lease."""
        await self._table.upsert_entity(_run_entity(report), mode=UpdateMode.REPLACE)

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
        """Apply `change` to the stored record (None: there is none yet) and write it, on the
        ETag read, unless the record has ended; re-read and re-apply when someone wrote first."""
        row_key = run_row_key(run_id)
        for _ in range(3):
            try:
                current = await self._table.get_entity(tenant_id, row_key)
            except ResourceNotFoundError:
                current = None
            if current is not None and current.get("Status") in FINAL_STATUSES:
                return False
            entity = _run_entity(change(None if current is None else _report_of(current)))
            try:
                if current is None:
                    await self._table.create_entity(entity)
                else:
                    await self._table.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=current.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                continue  # written meanwhile: look again
            return True
        return False

    async def page(
        self, tenant_id: str, top: int, after_run_id: str | None, *, idle: bool = True
    ) -> tuple[list[RunReport], str | None]:
        """Runs newest first, `top` at a time; the cursor is the last run id of a page.
        `idle=False` leaves out delta runs that found nothing to do (RunReport.idle)."""
        query, parameters = "PartitionKey eq @tenant", {"tenant": tenant_id}
        if after_run_id:
            query += " and RowKey gt @after"
            parameters["after"] = run_row_key(after_run_id)  # ValueError: not a run id
        reports: list[RunReport] = []
        async for entity in self._table.query_entities(
            query, parameters=parameters, results_per_page=top + 1
        ):
            if len(reports) == top:
                return reports, reports[-1].run_id
            report = _report_of(entity)
            if idle or not report.idle:
                reports.append(report)
        return reports, None

    async def get(self, tenant_id: str, run_id: str) -> RunReport | None:
        try:
            row_key = run_row_key(run_id)
        except ValueError:
            return None
        try:
            entity = await self._table.get_entity(tenant_id, row_key)
        except ResourceNotFoundError:
            return None
        return _report_of(entity)

    async def unfinished(self, tenant_id: str) -> list[RunReport]:
        """Every run of the tenant still recorded queued or running, newest first, however old
        and however many runs came after it (a run whose process died stays so until closed)."""
        return [
            _report_of(entity)
            async for entity in self._table.query_entities(
                # Spaced: the SDK substitutes @names split on whitespace, so none touches a ")".
                "PartitionKey eq @tenant and ( Status eq @queued or Status eq @running )",
                parameters={"tenant": tenant_id, "queued": "queued", "running": "running"},
            )
        ]

    async def latest(self, tenant_id: str, top: int = 20) -> list[RunReport]:
        reports: list[RunReport] = []
        async for entity in self._table.query_entities(
            "PartitionKey eq @tenant", parameters={"tenant": tenant_id}, results_per_page=top
        ):
            reports.append(_report_of(entity))
            if len(reports) >= top:
                break
        return reports


def run_row_key(run_id: str) -> str:
    started = datetime.strptime(run_id[:18], "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
    millis = int(started.timestamp() * 1000)
    return f"{9_999_999_999_999 - millis:013d}_{run_id}"


def _report_of(entity: dict[str, Any]) -> RunReport:
    document = "".join(entity.get(f"Report{i}", "") for i in range(int(entity.get("Chunks", 0))))
    return RunReport.from_json(json.loads(document))


def _run_entity(report: RunReport) -> dict[str, Any]:
    """The row RunStore.save writes for a report (same layout, for conditional writes)."""
    document = json.dumps(report.to_json(), ensure_ascii=False)
    # Counted in UTF-16 units: a report full of emoji must still fit each property.
    chunks = utf16_chunks(document, CHUNK_UNITS)
    entity: dict[str, Any] = {
        "PartitionKey": report.tenant_id,
        "RowKey": run_row_key(report.run_id),
        "RunId": report.run_id,
        "Status": report.status,
        "StartedAt": report.started_at,
        "Chunks": len(chunks),
    }
    if report.finished_at:
        entity["FinishedAt"] = report.finished_at
    entity.update({f"Report{i}": chunk for i, chunk in enumerate(chunks)})
    return entity
