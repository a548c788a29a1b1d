"""The Employees table. Employees are written in entity-group
transactions (one partition, at most 100 operations, under 4 MiB as sent), several in flight,
each fenced by the run's lease (tables/write_fence.py: fence rows `~fence-N` in the tenant's
partition, after every Graph object id, so range queries leave them out).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Collection
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from sync_core.adapters.storage_names import EMPLOYEES_TABLE
from sync_core.adapters.tables.boundary import storage_boundary
from sync_core.adapters.tables.continuation import decode_token, encode_token
from sync_core.adapters.tables.employee_rows import (
    EMAIL_MISSING_SINCE,
    MAX_BATCH_BYTES,
    MAX_BATCH_OPERATIONS,
    OPERATION_ENVELOPE_BYTES,
    operation_bytes,
    stamped_entity,
    storable_bound,
    storable_size,
)
from sync_core.adapters.tables.leases import LeaseStore
from sync_core.adapters.tables.write_fence import Fence, NoFence, WriteFence, transact
from sync_core.core.mapping import Employee
from sync_core.core.ports import (
    Change,
    Lease,
    RowStamp,
    StoredIndex,
    Unfenced,
)

BATCHES_IN_FLIGHT = 4
_EMPLOYEE_ROWS = "PartitionKey eq @tenant and RowKey lt '~'"
_SYSTEM = {"PartitionKey", "RowKey", "Timestamp", "etag"}
_INDEX_PROPERTIES = ["RowKey", "SourceHash", EMAIL_MISSING_SINCE]
# Point reads, not `RowKey eq 'a' or RowKey eq 'b'` queries: "using an 'or' to specify a filter
# based on RowKey values results in a partition scan and is not treated as a range query"
# (Design for querying, learn.microsoft.com/azure/storage/tables/table-storage-design-for-query),
# a cost that grows with the tenant; a point query is "the most efficient lookup".
READS_IN_FLIGHT = 16


@storage_boundary
class TableEmployeeStore:
    def __init__(self, service: TableServiceClient):
        self._table: TableClient = service.get_table_client(EMPLOYEES_TABLE)
        self._leases = LeaseStore(service)

    async def load_index(self, tenant_id: str) -> StoredIndex:
        """The stored index of a tenant (id -> source hash, and the rows marked without an
        address): all a run keeps in memory."""
        index = StoredIndex({}, {})
        async for entity in self._table.query_entities(
            _EMPLOYEE_ROWS,
            parameters={"tenant": tenant_id},
            select=_INDEX_PROPERTIES,
            results_per_page=1000,
        ):
            _index_row(index, entity)
        return index

    async def stored_rows(self, tenant_id: str, ids: Collection[str]) -> StoredIndex:
        """The index of these employees only: one point read each (a few in flight), so the
        cost follows `len(ids)`, not the tenant's size."""
        index = StoredIndex({}, {})
        gate = asyncio.Semaphore(READS_IN_FLIGHT)

        async def read(employee_id: str) -> None:
            async with gate:
                try:
                    entity = await self._table.get_entity(
                        tenant_id, employee_id, select=_INDEX_PROPERTIES
                    )
                except ResourceNotFoundError:
                    return  # not stored
            _index_row(index, entity)

        wanted = {i for i in ids if i and not i.startswith("~")}
        await asyncio.gather(*(read(i) for i in sorted(wanted)))
        return index

    async def page(
        self, tenant_id: str, top: int, continuation: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        pages = self._table.query_entities(
            _EMPLOYEE_ROWS, parameters={"tenant": tenant_id}, results_per_page=top
        ).by_page(continuation_token=decode_token(continuation))
        entities: list[dict[str, Any]] = []
        async for page in pages:
            async for entity in page:
                entities.append(dict(entity))
            break
        # by_page's pager has the token; its annotation (AsyncIterator) does not say so.
        return entities, encode_token(pages.continuation_token)  # type: ignore[attr-defined]

    async def all(self, tenant_id: str) -> AsyncIterator[dict[str, Any]]:
        async for entity in self._table.query_entities(
            _EMPLOYEE_ROWS, parameters={"tenant": tenant_id}, results_per_page=1000
        ):
            yield dict(entity)

    async def row(self, tenant_id: str, employee_id: str) -> dict[str, Any] | None:
        """One stored employee by object id (a point read), None when none is stored."""
        try:
            return dict(await self._table.get_entity(tenant_id, employee_id))
        except ResourceNotFoundError:
            return None

    async def count(self, tenant_id: str) -> int:
        """How many employees are stored (keys only): the guard's base for one deletion."""
        rows = self._table.query_entities(
            _EMPLOYEE_ROWS, parameters={"tenant": tenant_id}, select=["RowKey"]
        )
        return sum([1 async for _ in rows])

    def check_storable(self, tenant_id: str, employee: Employee, stamp: RowStamp) -> None:
        storable_size(stamped_entity(tenant_id, employee, stamp))

    async def writer(self, tenant_id: str, lease: Lease | Unfenced) -> TableEmployeeWriter:
        """A writer of the tenant's employees. With the run's lease, the fence is raised first
        (before the run reads the stored index) and every transaction is fenced by it; LeaseLost
        when the lease is no longer this run's. Unfenced (the benchmark's write floor): nothing
        is fenced."""
        if isinstance(lease, Unfenced):
            return TableEmployeeWriter(self._table, tenant_id, NoFence())
        fence = WriteFence(self._table, self._leases, lease, [""] * BATCHES_IN_FLIGHT)
        await fence.raise_slots(range(BATCHES_IN_FLIGHT))
        return TableEmployeeWriter(self._table, tenant_id, fence)


def _index_row(index: StoredIndex, entity: Any) -> None:
    index.hashes[entity["RowKey"]] = entity.get("SourceHash") or ""
    if isinstance(since := entity.get(EMAIL_MISSING_SINCE), datetime):
        index.email_missing_since[entity["RowKey"]] = since


@storage_boundary
class TableEmployeeWriter:
    """Collects operations for one partition and submits them as transactions in the background,
    so reading the next Graph page overlaps with writing the previous one. `committed` counts
    what Table Storage accepted, by the change each operation was submitted as."""

    def __init__(self, table: TableClient, tenant_id: str, fence: Fence):
        self._table = table
        self._tenant_id = tenant_id
        self._fence = fence
        self._pending: list[tuple[tuple[Any, ...], str]] = []
        # Each pending operation's size on the wire, and whether it is exact or a bound.
        self._sizes: list[tuple[int, bool]] = []
        self._pending_bytes = 0
        # Each transaction in flight owns a slot, and with it a fence row no other one touches.
        self._free_slots: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(BATCHES_IN_FLIGHT):
            self._free_slots.put_nowait(slot)
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None
        self.committed: Counter[str] = Counter()

    async def upsert(self, employee: Employee, change: Change, stamp: RowStamp) -> None:
        """Queue the employee's row; UnstorableEmployee (nothing queued) when Table Storage
        cannot hold it."""
        await self.put_entity(stamped_entity(self._tenant_id, employee, stamp), change)

    async def put_entity(self, entity: dict[str, Any], change: str = "written") -> None:
        """Queue a row as it is (the fence tests and the benchmark write prepared rows)."""
        size, exact = storable_bound(entity)
        await self._add((("upsert", entity, {"mode": UpdateMode.REPLACE}), change), size, exact)

    async def put_and_merge(
        self, entity: dict[str, Any], merged: dict[str, Any], change: str = "written"
    ) -> None:
        """Queue a row, and a merge of properties into an existing row of the partition (the
        photo step's, which must not replace or churn the employee's fields), fenced like every
        write and in one transaction: both land or neither (adapters/photo_store.py)."""
        size, exact = storable_bound(entity)
        put = (("upsert", entity, {"mode": UpdateMode.REPLACE}), change)
        merge = (("update", merged, {"mode": UpdateMode.MERGE}), "merged")
        await self._add_together([(put, size, exact), (merge, storable_size(merged), True)])

    async def delete(self, employee_id: str, change: str = "deleted") -> None:
        size = OPERATION_ENVELOPE_BYTES + 3 * len(employee_id.encode())
        operation = ("delete", {"PartitionKey": self._tenant_id, "RowKey": employee_id})
        await self._add((operation, change), size, True)

    async def flush(self) -> None:
        """Submit what is pending and wait for every transaction; raise the first failure."""
        if self._pending:
            await self._submit()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._failure is not None:
            raise self._failure

    async def abort(self) -> None:
        """Stop: drop what is pending and cancel the transactions in flight (no-op after flush)."""
        self._pending, self._sizes, self._pending_bytes = [], [], 0
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _add(self, item: tuple[tuple[Any, ...], str], size: int, exact: bool) -> None:
        await self._add_together([(item, size, exact)])

    async def _add_together(
        self, items: list[tuple[tuple[tuple[Any, ...], str], int, bool]]
    ) -> None:
        """Queue operations that go in the same transaction (a new one when they do not fit)."""
        if self._failure is not None:
            raise self._failure
        room = MAX_BATCH_OPERATIONS - self._fence.extra_operations
        budget = MAX_BATCH_BYTES - self._fence.extra_bytes
        fits = len(self._pending) + len(items) <= room
        if self._pending and fits and self._pending_bytes + _total(items) > budget:
            # Bounds would close the transaction: only now are the rows measured exactly.
            self._measure_pending()
            items = [(i, s, e) if e else (i, operation_bytes(i[0][1]), True) for i, s, e in items]
        if self._pending and (not fits or self._pending_bytes + _total(items) > budget):
            await self._submit()
        for item, size, exact in items:
            self._pending.append(item)
            self._sizes.append((size, exact))
            self._pending_bytes += size

    def _measure_pending(self) -> None:
        for position, (size, exact) in enumerate(self._sizes):
            if not exact:
                exact_size = operation_bytes(self._pending[position][0][1])
                self._sizes[position] = (exact_size, True)
                self._pending_bytes += exact_size - size

    async def _submit(self) -> None:
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        self._sizes = []
        slot = await self._free_slots.get()  # back-pressure: BATCHES_IN_FLIGHT at most
        task = asyncio.create_task(self._run(batch, slot))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[tuple[Any, ...], str]], slot: int) -> None:
        try:
            await self._transact(batch, slot)
        except BaseException as error:  # noqa: BLE001 - kept and raised by flush(), never lost
            if self._failure is None:
                self._failure = error
        finally:
            self._free_slots.put_nowait(slot)

    async def _transact(self, batch: list[tuple[tuple[Any, ...], str]], slot: int) -> None:
        landed = await transact(self._table, self._fence, [op for op, _ in batch], slot)
        self.committed.update(batch[position][1] for position in landed)


def _total(items: list[tuple[tuple[tuple[Any, ...], str], int, bool]]) -> int:
    return sum(size for _, size, _ in items)
