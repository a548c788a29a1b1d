"""Each tenant's delta link, beside its configuration: row `syncState` of the TenantConfigs
table (the tenant's partition). Written only by a run that finished every write and delete
(the engine commits it last), so a failed run leaves the previous link in place.

Beside it, row `summary`: the tenant's summary (core/summary.py), read with the link in one
request, so an idle delta run costs one read here whatever the tenant's size."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from sync_core.adapters.storage_names import CONFIGS_TABLE
from sync_core.adapters.tables.boundary import storage_boundary
from sync_core.adapters.tables.long_text import CHUNK_UNITS, utf16_chunks
from sync_core.core.delta import SyncState
from sync_core.core.ports import TenantState
from sync_core.core.summary import StoredSummary, TenantSummary

SYNC_STATE_ROW = "syncState"
SUMMARY_ROW = "summary"
_BOTH_ROWS = (
    f"PartitionKey eq @tenant and (RowKey eq '{SYNC_STATE_ROW}' or RowKey eq '{SUMMARY_ROW}')"
)


@storage_boundary
class TableSyncStateStore:
    def __init__(self, service: TableServiceClient):
        self._table: TableClient = service.get_table_client(CONFIGS_TABLE)

    async def get(self, tenant_id: str) -> SyncState | None:
        try:
            entity = await self._table.get_entity(tenant_id, SYNC_STATE_ROW)
        except ResourceNotFoundError:
            return None
        return _state(entity)

    async def put(self, tenant_id: str, state: SyncState) -> None:
        await self._table.upsert_entity(state_entity(tenant_id, state), mode=UpdateMode.REPLACE)

    async def read(self, tenant_id: str) -> TenantState:
        state, summary = None, StoredSummary(None)
        async for entity in self._table.query_entities(
            _BOTH_ROWS, parameters={"tenant": tenant_id}
        ):
            if entity["RowKey"] == SYNC_STATE_ROW:
                state = _state(entity)
            else:
                summary = StoredSummary(_summary(entity), entity.metadata["etag"])
        return TenantState(state, summary)

    async def mark_writing(self, tenant_id: str, run_id: str) -> str:
        # MERGE: the last summary stays readable (for an operator), but `Writing` makes it
        # untrusted until a run stores a new one.
        operation = ("upsert", _writing(tenant_id, run_id), {"mode": UpdateMode.MERGE})
        written = await self._submit_mark(tenant_id, [operation])
        return str(written[0]["etag"])

    async def _submit_mark(self, tenant_id: str, operations: list[Any]) -> list[Any]:
        """The `Writing` mark's transaction (a run's store checks its lease after it)."""
        return await self._submit(tenant_id, operations)

    async def save(
        self,
        tenant_id: str,
        state: SyncState | None,
        summary: TenantSummary | None,
        summary_etag: str | None,
    ) -> None:
        operations: list[Any] = []
        if state is not None:
            operations.append(
                ("upsert", state_entity(tenant_id, state), {"mode": UpdateMode.REPLACE})
            )
        if summary is not None:
            row = _summary_entity(tenant_id, summary)
            if summary_etag is None:
                operations.append(("create", row))
            else:
                condition = {"etag": summary_etag, "match_condition": MatchConditions.IfNotModified}
                operations.append(("update", row, {"mode": UpdateMode.REPLACE, **condition}))
        if not operations:
            return
        try:
            await self._submit(tenant_id, operations)
        except TableTransactionError as error:
            if summary is None or error.status_code not in (404, 409, 412):
                raise
            # Another run changed the summary since this one read it: neither is sure to be
            # right, so none is trusted; the next run rebuilds it from the table.
            operations[-1] = ("upsert", _writing(tenant_id, "conflict"), {"mode": UpdateMode.MERGE})
            await self._submit(tenant_id, operations)

    async def _submit(self, tenant_id: str, operations: list[Any]) -> list[Any]:
        """One transaction in the tenant's partition (tables/fenced_state.py adds its guard)."""
        return list(await self._table.submit_transaction(operations))


def state_entity(tenant_id: str, state: SyncState) -> dict[str, Any]:
    return {
        "PartitionKey": tenant_id,
        "RowKey": SYNC_STATE_ROW,
        # A delta link is a URL of a few hundred characters, far under a property's 64 KiB.
        "DeltaLink": state.delta_link or "",
        "ConfigHash": state.config_hash,
        "TakenAt": state.taken_at,
        "LastFullAt": state.last_full_at,
        # At most a few links of a few hundred characters each (50 groups per link).
        "GroupDeltaLinks": json.dumps(list(state.group_links)),
        "GroupsGeneration": state.groups_generation or "",
    }


def _state(entity: Any) -> SyncState:
    return SyncState(
        delta_link=entity.get("DeltaLink") or None,
        config_hash=str(entity.get("ConfigHash", "")),
        taken_at=_moment(entity["TakenAt"]),
        last_full_at=_moment(entity["LastFullAt"]),
        group_links=tuple(json.loads(entity.get("GroupDeltaLinks") or "[]")),
        groups_generation=entity.get("GroupsGeneration") or None,
    )


def _writing(tenant_id: str, run_id: str) -> dict[str, Any]:
    return {"PartitionKey": tenant_id, "RowKey": SUMMARY_ROW, "Writing": run_id}


def _summary_entity(tenant_id: str, summary: TenantSummary) -> dict[str, Any]:
    """The summary row; the marks (id -> since, as JSON) are split over properties Marks0..N
    (summary.MAX_MARKS keeps the whole under the entity's 1 MiB)."""
    marks = {i: s.isoformat() for i, s in sorted(summary.email_missing_since.items())}
    chunks = utf16_chunks(json.dumps(marks, separators=(",", ":")), CHUNK_UNITS)
    entity: dict[str, Any] = {
        "PartitionKey": tenant_id,
        "RowKey": SUMMARY_ROW,
        "Employees": summary.employees,
        "Writing": "",
        "MarkChunks": len(chunks),
    }
    entity.update({f"Marks{i}": chunk for i, chunk in enumerate(chunks)})
    return entity


def _summary(entity: Any) -> TenantSummary | None:
    """None when no run may trust it: marked as being written, or not one this version wrote."""
    if entity.get("Writing") or not isinstance(entity.get("Employees"), int):
        return None
    try:
        text = "".join(entity[f"Marks{i}"] for i in range(int(entity["MarkChunks"])))
        marks = {i: _moment(datetime.fromisoformat(s)) for i, s in json.loads(text).items()}
    except (KeyError, TypeError, ValueError):
        return None
    return TenantSummary(entity["Employees"], marks)


def _moment(value: Any) -> datetime:
    # The SDK returns a TablesEntityDatetime (a datetime subclass); keep a plain datetime.
    return datetime.fromisoformat(value.isoformat()) if isinstance(value, datetime) else value
