"""The run index of every tenant: in SyncLeases, partition `lease`, the tenant's lease row.

One query of the partition reads every tenant's schedule facts and lease (the timer, GET
/api/status); one point read finds a tenant's runs in flight. Each change is conditional on the
ETag read, so two savers never lose each other's change, and written with MERGE, so the lease
properties beside it (leases.py) stay as they are (core/run_index.py: what the index holds).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from sync_core.adapters.storage_names import LEASES_TABLE
from sync_core.adapters.tables.boundary import storage_boundary
from sync_core.adapters.tables.leases import lease_of
from sync_core.adapters.tables.long_text import CHUNK_UNITS, utf16_chunks
from sync_core.core.ports import Lease
from sync_core.core.report import IdleChecks, RunReport
from sync_core.core.run_index import IdleStreak, RunIndex
from sync_core.errors import ErrorCode, RetriableError

PARTITION = "lease"  # the lease rows: a run's release records its outcome in the same write
T = TypeVar("T")


@storage_boundary
class RunIndexRows:
    def __init__(self, service: TableServiceClient):
        self._table: TableClient = service.get_table_client(LEASES_TABLE)

    async def get(self, tenant_id: str) -> tuple[RunIndex, str | None]:
        """The tenant's index and its ETag (None: no row yet)."""
        row = await self.get_row(tenant_id)
        return row.index, row.etag

    async def get_row(self, tenant_id: str) -> TenantRow:
        try:
            entity = await self._table.get_entity(PARTITION, tenant_id)
        except ResourceNotFoundError:
            return TenantRow(RunIndex(), None, None)
        return _row_of(entity)

    async def all(self) -> dict[str, TenantRow]:
        """Every tenant's index and lease: one query, a page per 1,000 tenants."""
        return {
            entity["RowKey"]: _row_of(entity)
            async for entity in self._table.query_entities(
                "PartitionKey eq @p", parameters={"p": PARTITION}
            )
        }

    async def put_if(self, tenant_id: str, index: RunIndex, etag: str | None) -> str | None:
        """Write `index` unless the row changed since it was read with `etag`: the row's new
        ETag, None when it had changed."""
        entity = index_properties(index) | {"PartitionKey": PARTITION, "RowKey": tenant_id}
        try:
            if etag is None:
                written = await self._table.create_entity(entity)
            else:
                written = await self._table.update_entity(
                    entity,
                    mode=UpdateMode.MERGE,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            return None
        return str(written["etag"])

    async def change(self, tenant_id: str, change: Callable[[RunIndex], tuple[RunIndex, T]]) -> T:
        """Apply `change` on the row as read and write it on that ETag; again when someone
        wrote first."""
        return await self.change_row(tenant_id, lambda row: change(row.index))

    async def change_row(
        self,
        tenant_id: str,
        change: Callable[[TenantRow], tuple[RunIndex, T]],
        known: TenantRow | None = None,
        written: Callable[[TenantRow], None] | None = None,
    ) -> T:
        """`change` given the lease too; `known`: the row as lately read (the tick's query),
        tried first without reading it again; `written`: told the row as this change left it
        (not when nothing changed)."""
        for _ in range(8):
            row = known if known is not None else await self.get_row(tenant_id)
            known = None
            updated, result = change(row)
            if updated == row.index:
                return result
            etag = await self.put_if(tenant_id, updated, row.etag)
            if etag is not None:
                if written is not None:
                    written(TenantRow(updated, row.lease, etag))
                return result
        raise RetriableError(
            ErrorCode.RUN_INDEX_CONTENDED,
            f"The run index of tenant {tenant_id} kept changing while it was written.",
            "Nothing to do: the next attempt writes it.",
        )


def index_of(entity: dict[str, Any]) -> RunIndex:
    runs = tuple(RunReport.from_json(r) for r in json.loads(_joined(entity, "Runs") or "[]"))
    idle = None
    if entity.get("IdleCount"):
        report = RunReport.from_json(json.loads(_joined(entity, "IdleReport")))
        checks = IdleChecks(entity["IdleCount"], entity["IdleFirst"], entity["IdleLast"])
        idle = IdleStreak(entity.get("IdleAfter") or None, checks, report)
    return RunIndex(
        runs=runs,
        latest_recorded=entity.get("LatestRecorded") or None,
        idle=idle,
        sweep_after=entity.get("SweepAfter"),
        adopted=bool(entity.get("Adopted")),
    )


@dataclass(frozen=True)
class TenantRow:
    index: RunIndex
    lease: Lease | None  # the run holding the tenant (live or expired), None when free
    etag: str | None  # None: no row yet


def _row_of(entity: Any) -> TenantRow:
    return TenantRow(index_of(entity), lease_of(entity), entity.metadata["etag"])


def index_properties(index: RunIndex) -> dict[str, Any]:
    """The index's properties of the row, every one written each time (MERGE keeps what is
    not written: an ended streak is a count of 0, not an absent one)."""
    entity: dict[str, Any] = {"LatestRecorded": index.latest_recorded or "", "IdleCount": 0}
    _chunked(entity, "Runs", json.dumps([_slim_json(r) for r in index.runs], ensure_ascii=False))
    if index.sweep_after is not None:
        entity["SweepAfter"] = index.sweep_after
    if index.adopted:
        entity["Adopted"] = True
    if index.idle is not None:
        checks = index.idle.checks
        entity.update(IdleCount=checks.count, IdleFirst=checks.first, IdleLast=checks.last)
        entity["IdleAfter"] = index.idle.after or ""
        _chunked(entity, "IdleReport", json.dumps(index.idle.report.to_json()))
    return entity


def _slim_json(report: RunReport) -> dict[str, Any]:
    data = report.to_json()
    for key in ("skippedNoEmail", "noAddress", "skippedUnstorable", "excludedBy", "tenantName"):
        data.pop(key, None)
    return data


def _chunked(entity: dict[str, Any], name: str, text: str) -> None:
    chunks = utf16_chunks(text, CHUNK_UNITS)
    entity[f"{name}Chunks"] = len(chunks)
    entity.update({f"{name}{i}": chunk for i, chunk in enumerate(chunks)})


def _joined(entity: dict[str, Any], name: str) -> str:
    return "".join(entity.get(f"{name}{i}", "") for i in range(int(entity.get(f"{name}Chunks", 0))))
