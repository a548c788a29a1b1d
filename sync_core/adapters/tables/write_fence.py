"""The write fence: a run writes a tenant's rows only while it holds the tenant's lease, and Table
Storage enforces it. The Employees table (tables/employees.py) and the manager index
(tables/managers.py) are fenced alike: a run that lost its lease must write no employee, and no
index row a later delta run would trust (a report's old manager, a manager's old values).

The tenant's partition of the table holds one fence row per transaction in flight (RowKey
`~fence-N`: "~" sorts after every character of a Graph object id and after the index's `e_`,
`m_` and `r_` rows, so range queries leave them out). A run that takes the lease rewrites every
fence row, then checks the lease is still its own; each of its transactions carries a
conditional update (ETag, IfNotModified) of its slot's fence row. Once a newer holder has
rewritten the rows, a stale writer's transaction is refused whole (`UpdateConditionNotSatisfied`)
and none of its rows is written. Deletes go in those transactions too (a delete alone could not
be fenced).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from sync_core.adapters.tables.employee_rows import FENCE_OPERATION_BYTES
from sync_core.adapters.tables.leases import LeaseStore
from sync_core.core.ports import Lease, LeaseLost

FENCE_ROW_PREFIX = "~fence-"
Operation = tuple[Any, ...]


class Fence(Protocol):
    extra_operations: int  # what the fence adds to each transaction, beside its rows
    extra_bytes: int

    def updates(self, slot: int) -> list[Operation]: ...

    def refused(self, error: TableTransactionError, batch_size: int) -> bool: ...

    async def raise_slots(self, slots: Sequence[int]) -> None: ...

    def landed(self, slot: int, results: list[Any]) -> None: ...


class NoFence:
    """Where no lease is held (the benchmark's write floor): transactions go as they are, with
    room for one more operation each."""

    extra_operations, extra_bytes = 0, 0

    def updates(self, slot: int) -> list[Operation]:
        return []

    def refused(self, error: TableTransactionError, batch_size: int) -> bool:
        return False

    async def raise_slots(self, slots: Sequence[int]) -> None:
        return None

    def landed(self, slot: int, results: list[Any]) -> None:
        return None


@dataclass
class WriteFence:
    """The fence rows a lease holder raised in `table`, with the ETag each had after its last
    change (one per slot: each transaction in flight owns a slot, and with it a fence row no
    other one touches)."""

    table: TableClient
    leases: LeaseStore
    lease: Lease
    etags: list[str]
    extra_operations, extra_bytes = 1, FENCE_OPERATION_BYTES  # the fence update of each transaction

    def updates(self, slot: int) -> list[Operation]:
        """The transaction's last operation: the slot's row, only if unchanged since."""
        return [
            (
                "update",
                fence_row(self.lease.tenant_id, slot, self.lease),
                {
                    "mode": UpdateMode.REPLACE,
                    "etag": self.etags[slot],
                    "match_condition": MatchConditions.IfNotModified,
                },
            )
        ]

    def refused(self, error: TableTransactionError, batch_size: int) -> bool:
        """The fence update (the operation after the batch) was refused: the slot's row moved."""
        return error.index == batch_size and error.status_code in (404, 412)

    def landed(self, slot: int, results: list[Any]) -> None:
        self.etags[slot] = results[-1]["etag"]

    async def raise_slots(self, slots: Sequence[int]) -> None:
        """Rewrite these slots' rows as this holder's, then check the lease is still its own
        (LeaseLost if not). In this order: a holder that took the lease after the check
        rewrites the rows after these writes, so this one's transactions are refused from
        then on; checking first would leave a gap between check and rewrite."""
        tenant_id = self.lease.tenant_id
        rows = [fence_row(tenant_id, slot, self.lease) for slot in slots]
        written = await asyncio.gather(
            *(self.table.upsert_entity(row, mode=UpdateMode.REPLACE) for row in rows)
        )
        current = await self.leases.get(tenant_id)
        if current is None or current.token != self.lease.token:
            raise LeaseLost(f"the lease of tenant {tenant_id} passed to another run")
        for slot, result in zip(slots, written, strict=True):
            self.etags[slot] = result["etag"]


def fence_row(tenant_id: str, slot: int, lease: Lease) -> dict[str, Any]:
    return {
        "PartitionKey": tenant_id,
        "RowKey": f"{FENCE_ROW_PREFIX}{slot}",
        "Holder": lease.holder,
        "LeaseToken": lease.token,
    }


async def transact(
    table: TableClient, fence: Fence, operations: Sequence[Operation], slot: int
) -> list[int]:
    """One transaction of one partition's `operations`, fenced by the slot's row; the positions
    (in `operations`) of those that landed."""
    landing = list(range(len(operations)))
    repairs = 0
    while landing:
        batch = [operations[position] for position in landing]
        try:
            results = await table.submit_transaction([*batch, *fence.updates(slot)])
        except TableTransactionError as error:
            if fence.refused(error, len(batch)):
                # The slot's row moved: a newer holder rewrote it (raising it again then
                # finds the lease gone: LeaseLost); or a stale holder did, before failing
                # its own check; or this very transaction landed and its answer was lost
                # (the SDK resends a POST answered 500/503/504). In the last two cases the
                # lease is still this run's: the row is raised again and the transaction
                # resent, which writes the same rows again.
                repairs += 1
                if repairs > 2:
                    tenant_id = batch[0][1]["PartitionKey"]
                    raise LeaseLost(
                        f"the fence of tenant {tenant_id} keeps changing hands"
                    ) from None
                await fence.raise_slots([slot])
                continue
            # A transaction is atomic: one already-deleted row (a retried request whose
            # answer was lost, or a row removed by hand) fails it whole. Deletes are
            # idempotent in intent: drop that one and send the rest again, still fenced.
            if (
                error.status_code == 404
                and 0 <= error.index < len(batch)
                and batch[error.index][0] == "delete"
            ):
                del landing[error.index]
                continue
            raise
        fence.landed(slot, results)
        break
    return landing
