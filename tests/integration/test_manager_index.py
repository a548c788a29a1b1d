"""The manager index (adapters/tables/managers.py) against Azurite.

- An apply that fails part-way (some of its transactions refused) never leaves a report's `r_`
  row without its edge row. The next run compares with the `r_` rows only (full runs never read
  the edges), so a report whose edge is missing would never again be reached by its manager's
  rename.
- A run that lost its lease writes no index row (tables/write_fence.py): a later delta run
  would trust it (a report's old manager, a manager's old values) and write wrong fields."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from azure.data.tables.aio import TableServiceClient

from sync_core.adapters.tables.boundary import ensure_tables
from sync_core.adapters.tables.managers import ManagerIndexStore
from sync_core.app.service import SyncService
from sync_core.core.manager import IndexChanges
from sync_core.core.ports import LeaseLost
from sync_core.core.report import new_run_id, utc_now
from sync_core.errors import SyncError
from sync_core.settings import load_settings

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


def test_a_run_that_lost_its_lease_writes_no_index_row(tenant, app_env):
    now = utc_now()
    ttl = timedelta(minutes=1)
    moved_away, moved_back = IndexChanges(), IndexChanges()
    moved_away.move("u1", None, "m2")
    moved_away.managers["m2"] = {"Boss": "Stale Boss"}
    moved_back.move("u1", None, "m3")
    moved_back.managers["m3"] = {"Boss": "Newer Boss"}

    async def scenario() -> tuple[dict[str, str], dict[str, Any]]:
        async with SyncService(load_settings(app_env, needs_graph=False)) as service:
            leases, index = service.leases, service.managers
            stale = await leases.acquire(tenant.id, new_run_id(now), now - 2 * ttl, ttl)
            assert stale is not None
            stale_index = await index.fenced(stale)  # raised while it held the lease
            newer = await leases.acquire(tenant.id, new_run_id(now), now, ttl)  # took it over
            assert newer is not None
            await (await index.fenced(newer)).apply(tenant.id, moved_back)
            with pytest.raises(LeaseLost):
                await stale_index.apply(tenant.id, moved_away)
            return (
                await index.reports_of(tenant.id, ["u1"]),
                await index.managers(tenant.id, ["m2", "m3"]),
            )

    reports, managers = asyncio.run(scenario())
    assert reports == {"u1": "m3"}
    assert set(managers) == {"m3"} and managers["m3"][0] == {"Boss": "Newer Boss"}


def test_a_fenced_apply_replayed_after_its_deletes_landed_goes_through(tenant, app_env):
    now = utc_now()
    moved, gone = IndexChanges(), IndexChanges()
    moved.move("u1", None, "m1")
    moved.managers["m1"] = {}
    gone.move("u1", "m1", None)
    gone.managers["m1"] = None

    async def scenario() -> dict[str, str]:
        async with SyncService(load_settings(app_env, needs_graph=False)) as service:
            lease = await service.leases.acquire(tenant.id, new_run_id(now), now, timedelta(1))
            assert lease is not None
            index = await service.managers.fenced(lease)
            await index.apply(tenant.id, moved)
            await index.apply(tenant.id, gone)
            await index.apply(tenant.id, gone)  # the rows are gone already: a replay
            return await index.reports_of(tenant.id, ["u1"])

    assert asyncio.run(scenario()) == {}
