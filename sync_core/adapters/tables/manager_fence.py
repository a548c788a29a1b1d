"""Fencing of the manager index (tables/managers.py), as the employees' writes are fenced
(tables/employees.py): a run that lost its lease must write no index row, or a later delta run
would trust a stale row (a report's old manager, a manager's old values) and write wrong fields.

The index partition holds one fence row per transaction in flight (RowKey `~fence-N`: "~" sorts
after the `e_`, `m_` and `r_` rows). A holder rewrites them before it first reads the index,
then checks the lease is still its own; each of its transactions carries a conditional update
of its slot's row, so once a newer holder rewrote the rows the stale one's are refused whole.
Deletes go in those transactions too (a delete alone could not be fenced).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from sync_core.adapters.tables.leases import LeaseStore
from sync_core.core.ports import Lease, LeaseLost

SLOTS = 4  # the index's transactions in flight (managers.BATCHES_IN_FLIGHT)
FENCE_ROW_PREFIX = "~fence-"
Operation = tuple[Any, ...]


class IndexFence:
    def __init__(self, table: TableClient, leases: LeaseStore, lease: Lease):
        self._table, self._leases, self.lease = table, leases, lease
        self._etags = [""] * SLOTS
        self._free: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(SLOTS):
            self._free.put_nowait(slot)

    async def raise_slots(self, slots: Sequence[int] = range(SLOTS)) -> None:
        """Rewrite the rows, then check the lease (the order of employees._Fence.raise_slots)."""
        tenant_id = self.lease.tenant_id
        written = await asyncio.gather(
            *(self._table.upsert_entity(self._row(s), mode=UpdateMode.REPLACE) for s in slots)
        )
        current = await self._leases.get(tenant_id)
        if current is None or current.token != self.lease.token:
            raise LeaseLost(f"the lease of tenant {tenant_id} passed to another run")
        for slot, result in zip(slots, written, strict=True):
            self._etags[slot] = result["etag"]

    async def submit(self, operations: list[Operation]) -> None:
        """One fenced transaction; a delete of a row already gone (a replay) is dropped."""
        slot = await self._free.get()
        try:
            await self._transact(operations, slot)
        finally:
            self._free.put_nowait(slot)

    async def _transact(self, operations: list[Operation], slot: int) -> None:
        repairs = 0
        while operations:
            try:
                results = await self._table.submit_transaction([*operations, self._update(slot)])
            except TableTransactionError as error:
                if error.index == len(operations) and error.status_code in (404, 412):
                    # The slot's row moved: a newer holder (raising it again finds the lease
                    # gone), or a lost answer to this very transaction (resent, same rows).
                    repairs += 1
                    if repairs > 2:
                        raise LeaseLost(
                            f"the fence of tenant {self.lease.tenant_id} keeps changing hands"
                        ) from None
                    await self.raise_slots([slot])
                    continue
                gone = error.status_code == 404 and 0 <= error.index < len(operations)
                if gone and operations[error.index][0] == "delete":
                    operations = operations[: error.index] + operations[error.index + 1 :]
                    continue
                raise
            self._etags[slot] = results[-1]["etag"]
            return

    def _row(self, slot: int) -> dict[str, Any]:
        return {
            "PartitionKey": self.lease.tenant_id,
            "RowKey": f"{FENCE_ROW_PREFIX}{slot}",
            "Holder": self.lease.holder,
            "LeaseToken": self.lease.token,
        }

    def _update(self, slot: int) -> Operation:
        options = {
            "mode": UpdateMode.REPLACE,
            "etag": self._etags[slot],
            "match_condition": MatchConditions.IfNotModified,
        }
        return ("update", self._row(slot), options)
