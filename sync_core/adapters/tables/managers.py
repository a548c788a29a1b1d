"""The manager index of manager fields (core/manager.py): table EmployeeManagers, one partition
per tenant, three kinds of row (object ids are GUIDs, so `_` separates safely):

- `r_{report}`: the report's manager (`ManagerId`), for a delta round's users (point reads);
- `m_{manager}`: the manager's field values (`Values`, JSON, split over properties when long)
  and their digest (`ValuesHash`), to tell whether a manager in a round changed;
- `e_{manager}_{report}`: one edge per report, so a manager's reports are one range query.

Delta runs read it by key and by one manager's range, never the whole partition; full runs read
the partition (they read the whole directory anyway) and write only the rows that differ.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from sync_core.adapters.storage_names import MANAGERS_TABLE
from sync_core.adapters.tables.boundary import storage_boundary
from sync_core.adapters.tables.leases import LeaseStore
from sync_core.adapters.tables.long_text import CHUNK_UNITS, utf16_chunks
from sync_core.adapters.tables.write_fence import WriteFence, transact
from sync_core.core.manager import IndexChanges, ManagerValues, StoredIndexRows, values_hash
from sync_core.core.ports import Lease

BATCH_OPERATIONS = 100  # an entity-group transaction's limit
READS_IN_FLIGHT = 16
BATCHES_IN_FLIGHT = 4  # as the employees' writer (tables/employees.py); a fence row each
_REPORT, _MANAGER, _EDGE = "r_", "m_", "e_"


@storage_boundary
class ManagerIndexStore:
    def __init__(self, service: TableServiceClient, fence: WriteFence | None = None):
        self._service = service
        self._table: TableClient = service.get_table_client(MANAGERS_TABLE)
        self._fence = fence
        # Each fenced transaction in flight owns a slot, and with it a fence row.
        self._free_slots: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(BATCHES_IN_FLIGHT):
            self._free_slots.put_nowait(slot)

    async def fenced(self, lease: Lease) -> ManagerIndexStore:
        """The index as `lease`'s holder writes it (tables/write_fence.py): raised before the
        run first reads the index; LeaseLost when the lease is no longer the holder's."""
        fence = WriteFence(self._table, LeaseStore(self._service), lease, [""] * BATCHES_IN_FLIGHT)
        await fence.raise_slots(range(BATCHES_IN_FLIGHT))
        return ManagerIndexStore(self._service, fence)

    async def reports_of(self, tenant_id: str, ids: Iterable[str]) -> dict[str, str]:
        rows = await self._point_reads(tenant_id, [_REPORT + i for i in sorted(set(ids))])
        return {key[len(_REPORT) :]: str(row["ManagerId"]) for key, row in rows.items()}

    async def managers(
        self, tenant_id: str, ids: Iterable[str]
    ) -> dict[str, tuple[ManagerValues, str]]:
        rows = await self._point_reads(tenant_id, [_MANAGER + i for i in sorted(set(ids))])
        return {
            key[len(_MANAGER) :]: (_values(row), str(row["ValuesHash"]))
            for key, row in rows.items()
        }

    async def report_ids(self, tenant_id: str, manager_id: str) -> list[str]:
        prefix = f"{_EDGE}{manager_id}_"
        query = "PartitionKey eq @t and RowKey ge @low and RowKey lt @high"
        # '`' follows '_' in ASCII: the range holds exactly the keys that start with the prefix.
        parameters = {"t": tenant_id, "low": prefix, "high": prefix[:-1] + "`"}
        return [
            row["RowKey"][len(prefix) :]
            async for row in self._table.query_entities(
                query, parameters=parameters, select=["RowKey"], results_per_page=1000
            )
        ]

    async def load(self, tenant_id: str) -> StoredIndexRows:
        reports: dict[str, str] = {}
        hashes: dict[str, str] = {}
        edges: set[tuple[str, str]] = set()
        async for row in self._table.query_entities(
            # The e_, m_ and r_ rows; not the `~fence-` rows (write_fence.py).
            "PartitionKey eq @t and RowKey ge 'e' and RowKey lt 's'",
            parameters={"t": tenant_id},
            select=["RowKey", "ManagerId", "ValuesHash"],
            results_per_page=1000,
        ):
            key = row["RowKey"]
            if key.startswith(_REPORT):
                reports[key[len(_REPORT) :]] = str(row.get("ManagerId"))
            elif key.startswith(_MANAGER):
                hashes[key[len(_MANAGER) :]] = str(row.get("ValuesHash"))
            elif key.startswith(_EDGE):
                manager, _, report = key[len(_EDGE) :].partition("_")
                edges.add((manager, report))
        return StoredIndexRows(reports, hashes, frozenset(edges))

    async def apply(self, tenant_id: str, changes: IndexChanges) -> None:
        """In three steps, each after the previous one landed, so an apply that fails part-way
        leaves only what the replay repairs or never reads: the edges and the managers' values
        first, then the reports' `r_` rows, then the deletes. A report row whose edge was lost
        would stay so: the next runs compare with the `r_` rows and never write the edge."""
        edges = [_row(tenant_id, f"{_EDGE}{m}_{r}") for m, r in sorted(changes.edges_added)]
        managers = [
            _manager_row(tenant_id, manager, values)
            for manager, values in sorted(changes.managers.items())
            if values is not None
        ]
        reports = [
            _row(tenant_id, _REPORT + report, ManagerId=manager)
            for report, manager in sorted(changes.reports.items())
            if manager is not None
        ]
        await self._upsert([*edges, *managers])
        await self._upsert(reports)
        # A report's row goes before its edge: an edge left behind only costs a read.
        deletes = [_REPORT + r for r, m in sorted(changes.reports.items()) if m is None]
        await self._delete_all(tenant_id, deletes)
        deletes = [f"{_EDGE}{m}_{r}" for m, r in sorted(changes.edges_dropped)]
        deletes += [_MANAGER + m for m, v in sorted(changes.managers.items()) if v is None]
        await self._delete_all(tenant_id, deletes)

    async def _upsert(self, rows: list[dict[str, Any]]) -> None:
        await self._transact([("upsert", row, {"mode": UpdateMode.REPLACE}) for row in rows])

    async def _delete_all(self, tenant_id: str, keys: list[str]) -> None:
        if self._fence is not None:  # in fenced transactions (write_fence.py)
            rows = [_row(tenant_id, key) for key in keys]
            await self._transact([("delete", row) for row in rows])
            return
        # One by one: a transaction fails whole on a row already gone (a replayed run).
        await _bounded(self._delete(tenant_id, key) for key in keys)

    async def _transact(self, operations: list[tuple[Any, ...]]) -> None:
        size = BATCH_OPERATIONS - (1 if self._fence else 0)  # the fence update is one
        batches = [operations[i : i + size] for i in range(0, len(operations), size)]
        fence = self._fence
        if fence is None:
            await _bounded((self._table.submit_transaction(b) for b in batches), BATCHES_IN_FLIGHT)
            return

        async def fenced(batch: list[tuple[Any, ...]]) -> None:
            slot = await self._free_slots.get()
            try:  # a delete of a row already gone (a replay) is dropped (write_fence.transact)
                await transact(self._table, fence, batch, slot)
            finally:
                self._free_slots.put_nowait(slot)

        await _bounded((fenced(batch) for batch in batches), BATCHES_IN_FLIGHT)

    async def forget(self, tenant_id: str) -> None:
        """Every row of the tenant (unlinked with its employees removed): the index holds
        managers' names and addresses, which must not outlive the employees."""
        keys = [
            row["RowKey"]
            async for row in self._table.query_entities(
                "PartitionKey eq @t", parameters={"t": tenant_id}, select=["RowKey"]
            )
        ]
        await _bounded((self._delete(tenant_id, key) for key in keys), BATCHES_IN_FLIGHT)

    async def _delete(self, tenant_id: str, key: str) -> None:
        try:
            await self._table.delete_entity(tenant_id, key)
        except ResourceNotFoundError:
            pass

    async def _point_reads(self, tenant_id: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        async def read(key: str) -> dict[str, Any] | None:
            try:
                return dict(await self._table.get_entity(tenant_id, key))
            except ResourceNotFoundError:
                return None

        found = await _bounded(read(key) for key in keys)
        return {key: row for key, row in zip(keys, found, strict=True) if row is not None}


def _row(tenant_id: str, key: str, **properties: Any) -> dict[str, Any]:
    return {"PartitionKey": tenant_id, "RowKey": key, **properties}


def _manager_row(tenant_id: str, manager: str, values: ManagerValues) -> dict[str, Any]:
    text = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    chunks = utf16_chunks(text, CHUNK_UNITS)  # a field value can be long; a property is not
    properties = {f"Values{i}": chunk for i, chunk in enumerate(chunks)}
    return _row(tenant_id, _MANAGER + manager, ValuesHash=values_hash(values), **properties)


def _values(row: dict[str, Any]) -> ManagerValues:
    parts, index = [], 0
    while f"Values{index}" in row:
        parts.append(str(row[f"Values{index}"]))
        index += 1
    values = json.loads("".join(parts)) if parts else {}
    return values if isinstance(values, dict) else {}


async def _bounded(calls: Iterable[Any], limit_to: int = READS_IN_FLIGHT) -> list[Any]:
    limit = asyncio.Semaphore(limit_to)

    async def one(call: Any) -> Any:
        async with limit:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls)))
