"""One run per tenant at a time, whoever starts it: the lease in Azurite, and workers racing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from sync_core.adapters.storage_names import EMPLOYEES_TABLE, LEASES_TABLE
from sync_core.adapters.tables.leases import LeaseStore
from sync_core.app.exclusive import RunBusy, sync_exclusively
from sync_core.app.worker import WorkOutcome, process_message
from sync_core.core.engine import RunRequest
from sync_core.core.ports import LeaseLost
from sync_core.core.report import RunReport, RunStatus, new_run_id, utc_now
from tests.functions.run_messages import queue_run, with_service

pytestmark = pytest.mark.integration

TTL = timedelta(minutes=5)


def stored_rows(connection_string: str, tenant_id: str) -> list[dict[str, Any]]:
    table = TableServiceClient.from_connection_string(connection_string).get_table_client(
        EMPLOYEES_TABLE
    )
    # Employees only: the fence rows (RowKey `~fence-N`) sort after every object id.
    employees = "PartitionKey eq @t and RowKey lt '~'"
    return list(table.query_entities(employees, parameters={"t": tenant_id}))


async def gather_outcomes(*attempts: Awaitable[WorkOutcome]) -> list[Any]:
    return list(await asyncio.gather(*attempts, return_exceptions=True))


# --- the lease store ----------------------------------------------------------------------------


def test_exactly_one_of_many_racing_workers_gets_the_lease(app_env, tenant) -> None:
    now = utc_now()

    async def race(service: Any) -> list[Any]:
        holders = [f"run-{i}" for i in range(12)]
        return await asyncio.gather(
            *(service.leases.acquire(tenant.id, h, now, TTL) for h in holders)
        )

    leases = with_service(app_env, race)
    winners = [lease for lease in leases if lease is not None]
    assert len(winners) == 1
    assert with_service(app_env, lambda b: b.leases.get(tenant.id)).holder == winners[0].holder


def test_lease_release_renewal_and_expiry(app_env, tenant) -> None:
    now = utc_now()

    async def scenario(service: Any) -> None:
        leases: LeaseStore = service.leases
        first = await leases.acquire(tenant.id, "a", now, TTL)
        assert first is not None
        assert await leases.acquire(tenant.id, "b", now + TTL / 2, TTL) is None  # live
        renewed = await leases.renew(first, now + TTL / 2, TTL)
        assert renewed.expires_at > first.expires_at
        assert await leases.acquire(tenant.id, "b", now + TTL, TTL) is None  # renewed: still live
        # The holder stalls; once its lease has expired another run takes it over...
        taken = await leases.acquire(tenant.id, "b", now + 2 * TTL, TTL)
        assert taken is not None and taken.holder == "b"
        # ...and the stalled holder can neither renew nor release it.
        with pytest.raises(LeaseLost):
            await leases.renew(renewed, now + 2 * TTL, TTL)
        assert await leases.release(renewed) is False
        assert (await leases.get(tenant.id)).holder == "b"
        assert await leases.release(taken) is True
        assert await leases.get(tenant.id) is None

    with_service(app_env, scenario)


# --- workers --------------------------------------------------------------------------------------


def test_two_workers_for_one_tenant_make_one_run_and_no_duplicate_writes(
    app_env, tenant, simulator
) -> None:
    first, second = queue_run(app_env, tenant.id), queue_run(app_env, tenant.id)
    simulator.faults.latency(150)  # keep the first run going while the second one starts
    try:
        outcomes = asyncio.run(
            gather_outcomes(process_message(app_env, first), process_message(app_env, second))
        )
    finally:
        simulator.faults.clear()
    assert sorted(o.action for o in outcomes) == ["ran", "superseded"]
    ran = next(o for o in outcomes if o.action == "ran")
    skipped = next(o for o in outcomes if o.action == "superseded")
    assert ran.report.status == "succeeded"
    assert skipped.report.status == "failed" and skipped.report.graph_requests == 0
    assert skipped.report.writes == 0
    assert ran.run_id in skipped.report.errors[0].message

    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert len(rows) == ran.report.counts.created
    assert {row["RunId"] for row in rows} == {ran.run_id}
    assert with_service(app_env, lambda b: b.leases.get(tenant.id)) is None  # released

    # The superseded run neither counts as a failure nor blocks the tenant.
    status = with_service(app_env, lambda b: b.runs.get(tenant.id, skipped.run_id))
    assert status.errors[0].code == "superseded"


def test_the_same_message_twice_at_once_runs_once(app_env, tenant, simulator) -> None:
    message = queue_run(app_env, tenant.id)
    simulator.faults.latency(150)
    try:
        outcomes = asyncio.run(
            gather_outcomes(process_message(app_env, message), process_message(app_env, message))
        )
    finally:
        simulator.faults.clear()
    ran = [o for o in outcomes if isinstance(o, WorkOutcome)]
    busy = [o for o in outcomes if isinstance(o, RunBusy)]
    assert [o.action for o in ran] == ["ran"] and len(busy) == 1  # the host retries the other
    report = with_service(app_env, lambda b: b.runs.get(tenant.id, ran[0].run_id))
    assert report.status == "succeeded" and report.errors == ()  # the busy attempt noted nothing

    # The retry arrives after the run finished: nothing runs again.
    again = asyncio.run(process_message(app_env, message, 2))
    assert again.action == "already_finished"


def test_a_crashed_workers_expired_lease_is_taken_over(app_env, tenant) -> None:
    dead_run = new_run_id(utc_now() - timedelta(hours=1))
    with_service(
        app_env,
        lambda b: b.leases.acquire(tenant.id, dead_run, utc_now() - timedelta(hours=1), TTL),
    )
    outcome = asyncio.run(process_message(app_env, queue_run(app_env, tenant.id)))
    assert outcome.action == "ran" and outcome.report.status == "succeeded"


def test_the_lease_is_renewed_during_a_long_run(app_env, tenant, simulator) -> None:
    ttl, every = timedelta(seconds=0.6), timedelta(seconds=0.15)
    first, second = queue_run(app_env, tenant.id), queue_run(app_env, tenant.id)

    async def scenario() -> list[Any]:
        running = asyncio.create_task(
            process_message(app_env, first, lease_ttl=ttl, renew_every=every)
        )
        await asyncio.sleep(1.0)  # beyond the TTL: without renewal the lease would be gone
        assert not running.done(), "the first run ended too soon to prove anything"
        late = await process_message(app_env, second, lease_ttl=ttl, renew_every=every)
        return [await running, late]

    simulator.faults.latency(700)  # each Graph request: the run takes 1.4 s or more
    try:
        ran, late = asyncio.run(scenario())
    finally:
        simulator.faults.clear()
    assert ran.action == "ran" and ran.report.status == "succeeded"
    assert late.action == "superseded"


def test_a_run_that_loses_its_lease_stops_and_says_so(app_env, tenant, simulator) -> None:
    message = queue_run(app_env, tenant.id)
    leases = TableServiceClient.from_connection_string(
        app_env["TABLES_CONNECTION_STRING"]
    ).get_table_client(LEASES_TABLE)

    async def scenario() -> WorkOutcome:
        running = asyncio.create_task(
            process_message(
                app_env, message, lease_ttl=timedelta(seconds=5), renew_every=timedelta(seconds=0.2)
            )
        )
        await asyncio.sleep(0.5)
        # Another worker took the lease over (as after renewals failed for a whole TTL).
        await asyncio.to_thread(
            leases.upsert_entity,
            {"PartitionKey": "lease", "RowKey": tenant.id, "Holder": "thief",
             "ExpiresAt": utc_now() + timedelta(minutes=5)},
        )  # fmt: skip
        return await running

    simulator.faults.latency(300)
    try:
        outcome = asyncio.run(scenario())
    finally:
        simulator.faults.clear()
    assert outcome.action == "lease_lost"
    assert outcome.report.status == "failed" and outcome.report.errors[-1].code == "lease_lost"
    assert json.loads(json.dumps(outcome.report.to_json()))["status"] == "failed"
    thief = with_service(app_env, lambda b: b.leases.get(tenant.id))
    assert thief.holder == "thief"  # the loser did not release someone else's lease


class LeasesTakenOverAtTheEnd:
    """The real lease store, except that the first renewal after the run's sync has returned
    waits until the body is over, then finds the lease taken over by another worker: the renewal
    in flight as the run finishes (issue 7 rule 5), made deterministic."""

    def __init__(self, real: LeaseStore):
        self._real = real
        self.synced, self.renewing, self.body_done = (asyncio.Event() for _ in range(3))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    async def renew(self, lease: Any, now: Any, ttl: timedelta) -> Any:
        if self.synced.is_set():
            self.renewing.set()
            await self.body_done.wait()
            assert await self._real.take_over(lease, "thief", utc_now(), TTL) is not None
        return await self._real.renew(lease, now, ttl)


def test_a_lease_lost_as_the_run_finishes_leaves_the_runs_true_report(app_env, tenant) -> None:
    """Without the fix, the renewal's cancellation reached sync_exclusively after the body had
    returned and CancelledError escaped instead of a report."""

    async def scenario(service: Any) -> tuple[RunReport, RunReport | None, Any]:
        leases = LeasesTakenOverAtTheEnd(service.leases)
        sync = service.sync

        async def body(request: RunRequest, lease: Any = None) -> RunReport:
            report = await sync(request, lease)
            leases.synced.set()
            await leases.renewing.wait()
            leases.body_done.set()  # no await after this: the owner goes on to __aexit__
            return report

        service.sync, service.leases = body, leases
        report = await sync_exclusively(
            service,
            RunRequest(tenant.id, trigger="cli"),
            ttl=timedelta(seconds=30),
            # Bounds each renewal too: room for the takeover and the renewal in Azurite.
            renew_every=timedelta(seconds=1),
        )
        record = await service.runs.get(tenant.id, report.run_id)
        return report, record, await service.leases.get(tenant.id)

    report, record, lease = with_service(app_env, scenario)
    # Every write went through under the fence before the takeover: the run's report is true.
    assert report.status == RunStatus.SUCCEEDED, report.to_json()
    assert record is not None and record.status == RunStatus.SUCCEEDED
    assert report.counts.created > 0
    assert lease is not None and lease.holder == "thief"  # not released by the loser
