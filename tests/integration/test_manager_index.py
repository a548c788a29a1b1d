"""The manager index (adapters/tables/managers.py) against Azurite: an apply that fails part-way
(some of its transactions refused) never leaves a report's `r_` row without its edge row. The
next run compares with the `r_` rows only (full runs never read the edges), so a report whose
edge is missing would never again be reached by its manager's rename."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from azure.data.tables.aio import TableServiceClient

from sync_core.adapters.tables.common import ensure_tables
from sync_core.adapters.tables.managers import ManagerIndexStore
from sync_core.core.manager import IndexChanges
from sync_core.errors import SyncError

pytestmark = pytest.mark.integration


async def _apply_then_rows(connection_string: str, changes: IndexChanges) -> set[str]:
    tenant = str(uuid.uuid4())
    async with TableServiceClient.from_connection_string(connection_string) as service:
        await ensure_tables(service)
        store = ManagerIndexStore(service)
        with pytest.raises(SyncError):
            await store.apply(tenant, changes)
        table = service.get_table_client("EmployeeManagers")
        return {
            row["RowKey"]
            async for row in table.query_entities("PartitionKey eq @t", parameters={"t": tenant})
        }


def test_a_failed_apply_leaves_no_report_row_without_its_edge(azurite):
    # 150 reports move to one manager: more operations than one transaction holds. The last
    # report's id is a key Table Storage refuses ('/'), so the transactions holding its rows
    # fail while the others land: a partial apply, as a transient fault after retries leaves.
    reports = [f"{i:03d}-{uuid.uuid4()}" for i in range(149)] + ["zzz/refused"]
    changes = IndexChanges()
    for report in reports:
        changes.move(report, None, "m1")
    changes.managers["m1"] = {"Boss": "Bea"}
    keys = asyncio.run(_apply_then_rows(azurite.connection_string, changes))
    with_report_row = {k[2:] for k in keys if k.startswith("r_")}
    with_edge = {k[len("e_m1_") :] for k in keys if k.startswith("e_m1_")}
    assert with_report_row <= with_edge, sorted(with_report_row - with_edge)[:3]
