"""An idle scheduled delta run end to end, counted as the SDK sends it: the timer's tick claims
the run, the worker (`process_message`, as the queue trigger calls it) takes the lease on the
ETag the claim left and runs it. Issue 19's target: 2 Graph requests, at most 4 table requests,
at most 2 of them writes. And the lease stays a lease: a row written after the claim makes
the worker read it and decide again (a rival holding the lease is never overwritten).
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from typing import Any

import pytest

from devtools.table_requests import TableRequestCounter
from sync_core.adapters.storage_names import CONFIGS_TABLE, EMPLOYEES_TABLE, LEASES_TABLE
from sync_core.app.service import SyncService
from sync_core.app.worker import WorkAction
from sync_core.core.report import utc_now
from sync_core.settings import load_settings
from tests.integration import idle_runs
from tests.integration.idle_runs import synced_then_ticked, work

pytestmark = pytest.mark.integration
own_storage = idle_runs.own_storage  # the fixture: a storage account of its own


def test_an_idle_scheduled_run_makes_two_graph_and_at_most_four_table_requests(tenant, own_storage):
    later = utc_now() + timedelta(minutes=16)  # the next tick: the tenant is due again
    body = synced_then_ticked(tenant.id, later)
    counter = TableRequestCounter()
    outcome = work(body, later, counter)
    report = outcome.report
    assert outcome.action == WorkAction.RAN
    assert (report.mode, report.status, report.idle, report.graph_requests) == (
        "delta", "succeeded", True, 2,
    )  # fmt: skip
    assert counter.total <= 4 and counter.writes <= 2, counter.requests
    # The lease taken on the claim's ETag and given back; the configuration and sync state.
    assert counter.by_table(writes=True) == {LEASES_TABLE: 2}, counter.requests
    assert counter.by_table(writes=False) == {CONFIGS_TABLE: 2}, counter.requests
    assert counter.by_table()[EMPLOYEES_TABLE] == 0


def test_a_lease_taken_after_the_claim_is_not_overwritten_by_the_claimed_run(tenant, own_storage):
    later = utc_now() + timedelta(minutes=16)
    body = synced_then_ticked(tenant.id, later)

    async def rival() -> Any:  # another run takes the tenant between the claim and the worker
        async with SyncService(load_settings(os.environ)) as service:
            return await service.leases.acquire(tenant.id, "rival-run", later, timedelta(minutes=5))

    taken = asyncio.run(rival())
    assert taken is not None
    outcome = work(body, later, TableRequestCounter())
    assert outcome.action == WorkAction.SUPERSEDED, outcome

    async def holder() -> Any:
        async with SyncService(load_settings(os.environ)) as service:
            return await service.leases.get(tenant.id)

    lease = asyncio.run(holder())
    assert lease is not None and (lease.holder, lease.token) == ("rival-run", taken.token)
