"""The run history stays small and its queries keyed (issue 19, part 2): idle delta runs leave no
record of their own, only a count on the tenant's latest record; records past the retention
period are swept by the timer; more due tenants than one tick should handle fan out in shards."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from functions_harness import deliver

from devtools.azurite import Azurite
from sync_core.adapters.storage_names import RUNS_TABLE
from sync_core.app.dispatch import scheduled_tick
from sync_core.app.exclusive import sync_exclusively
from sync_core.app.service import SyncService
from sync_core.core.config import TenantConfig
from sync_core.core.engine import RunRequest
from sync_core.core.report import RunProblem, RunReport, RunStatus, Trigger, utc_now
from sync_core.errors import ErrorCode
from sync_core.settings import load_settings
from tests.functions.run_messages import report, visible_messages

pytestmark = pytest.mark.integration

DAY = timedelta(days=1)
HOME = "11111111-2222-4333-8444-555555555555"


def stored_run_rows(connection_string: str, tenant_id: str) -> list[dict[str, Any]]:
    table = TableServiceClient.from_connection_string(connection_string).get_table_client(
        RUNS_TABLE
    )
    return list(table.query_entities("PartitionKey eq @t", parameters={"t": tenant_id}))


def test_idle_delta_runs_leave_one_record_that_counts_them(app_env, tenant) -> None:
    async def runs() -> list[RunReport]:
        async with SyncService(load_settings(app_env)) as service:
            return [
                await sync_exclusively(service, RunRequest(tenant.id, trigger="cli"))
                for _ in range(4)
            ]

    first, *idle = asyncio.run(runs())
    assert first.mode == "full" and first.changes_read is None
    assert [r.idle for r in idle] == [True, True, True]
    assert {r.changes_read for r in idle} == {0} and {r.mode for r in idle} == {"delta"}
    rows = stored_run_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert [row["RunId"] for row in rows] == [first.run_id]  # one row for the four runs

    async def listed() -> tuple[list[RunReport], list[RunReport], RunReport | None]:
        async with SyncService(load_settings(app_env, needs_graph=False)) as service:
            plain, _ = await service.runs.page(tenant.id, 10, None, idle=False)
            everything, _ = await service.runs.page(tenant.id, 10, None, idle=True)
            return plain, everything, await service.runs.get(tenant.id, idle[-1].run_id)

    plain, everything, last_check = asyncio.run(listed())
    assert [r.run_id for r in plain] == [first.run_id]
    checks = plain[0].idle_checks
    assert checks is not None and checks.count == 3
    assert (checks.first, checks.last) == (idle[0].started_at, idle[-1].started_at)
    assert plain[0].to_json()["idleChecks"]["count"] == 3
    # Listed with idle=true: the latest check where it ran; its status URL still answers.
    assert [r.run_id for r in everything] == [idle[-1].run_id, first.run_id]
    assert last_check is not None and last_check.status == RunStatus.SUCCEEDED


def test_a_run_that_writes_keeps_the_idle_count_on_the_record_before_it(app_env, tenant) -> None:
    async def runs() -> tuple[RunReport, RunReport]:
        async with SyncService(load_settings(app_env)) as service:
            first = await sync_exclusively(service, RunRequest(tenant.id, trigger="cli"))
            for _ in range(2):
                await sync_exclusively(service, RunRequest(tenant.id, trigger="cli"))
            full = await sync_exclusively(service, RunRequest(tenant.id, trigger="cli", full=True))
            return first, full

    first, full = asyncio.run(runs())
    rows = stored_run_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert [row["RunId"] for row in rows] == [full.run_id, first.run_id]
    assert rows[1]["IdleCount"] == 2 and "IdleCount" not in rows[0]


@pytest.fixture
def environ(own_storage: Azurite) -> dict[str, str]:
    return {
        "ENTRA_TENANT_ID": HOME,
        "TABLES_CONNECTION_STRING": own_storage.connection_string,
        "RUN_RETENTION_DAYS": "90",
    }


def seed(environ: dict[str, str], configs: list[str], runs: list[RunReport]) -> None:
    async def write() -> None:
        async with SyncService(load_settings(environ, needs_graph=False)) as service:
            for tenant in configs:
                await service.configs.put(tenant, TenantConfig())
            for run in runs:
                await service.runs.save(run)

    asyncio.run(write())


def ended(tenant: str, at: datetime, status: str) -> RunReport:
    return replace(report(tenant, at, status), mode="full")


def test_the_tick_sweeps_records_past_the_retention_period(environ) -> None:
    now = utc_now()
    healed, failing = str(uuid.uuid4()), str(uuid.uuid4())
    runs = [
        ended(healed, now - 100 * DAY, RunStatus.SUCCEEDED),
        ended(healed, now - 95 * DAY, RunStatus.FAILED),  # a later run succeeded: goes
        ended(healed, now - 94 * DAY, RunStatus.HELD),  # likewise
        ended(healed, now - 30 * DAY, RunStatus.SUCCEEDED),
        ended(healed, now - DAY, RunStatus.SUCCEEDED),
        ended(failing, now - 100 * DAY, RunStatus.SUCCEEDED),
        ended(failing, now - 95 * DAY, RunStatus.FAILED),  # nothing succeeded since: stays
        ended(failing, now - DAY, RunStatus.FAILED),
    ]
    seed(environ, [healed, failing], runs)
    result = asyncio.run(scheduled_tick(load_settings(environ, needs_graph=False), now))
    assert result.swept == 4
    connection = environ["TABLES_CONNECTION_STRING"]
    kept = {t: [row["RunId"] for row in stored_run_rows(connection, t)] for t in (healed, failing)}
    assert kept[healed] == [runs[4].run_id, runs[3].run_id]
    assert kept[failing] == [runs[7].run_id, runs[6].run_id]
    # Swept clean: the next tick has nothing to remove and reads no tenant's history again.
    again = asyncio.run(scheduled_tick(load_settings(environ, needs_graph=False), now))
    assert again.swept == 0
    visible_messages(environ)


def test_many_due_tenants_fan_out_in_shards_each_enqueued_once(environ, monkeypatch) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)  # the queue function reads the app's settings
    tenants = sorted(str(uuid.uuid4()) for _ in range(5))
    seed(environ, tenants, [])
    now = utc_now()
    settings = load_settings(environ, needs_graph=False)
    result = asyncio.run(scheduled_tick(settings, now, spread=timedelta(0), shard_size=2))
    assert set(tenants) <= set(result.due) and result.enqueued == ()
    shards = visible_messages(environ)
    assert len(shards) == result.shards == -(-len(result.due) // 2)
    assert sorted(t for s in shards for t in s["shard"]) == sorted(result.due)

    async def queued_runs() -> dict[str, list[str]]:
        async with SyncService(settings) as service:
            return {
                t: [r.run_id for r in await service.runs.latest(t) if r.status == "queued"]
                for t in result.due
            }

    for shard in shards:
        deliver(json.dumps(shard))
    queued = asyncio.run(queued_runs())
    assert all(len(runs) == 1 for runs in queued.values()), queued  # one run each
    for shard in shards:  # delivered again: every tenant has its run queued, nothing more
        deliver(json.dumps(shard))
    assert asyncio.run(queued_runs()) == queued


def test_runs_in_flight_from_before_the_run_index_are_adopted_and_closed(environ) -> None:
    """A record SyncRuns held as `running` when the app was upgraded (runs in flight were kept
    there): the tick moves it into the tenant's run index, where it is closed as abandoned."""
    from sync_core.adapters.tables.run_record_rows import run_entity

    now = utc_now()
    tenant = str(uuid.uuid4())
    seed(environ, [tenant], [])
    dead = report(tenant, now - 3 * DAY, RunStatus.RUNNING)
    table = TableServiceClient.from_connection_string(
        environ["TABLES_CONNECTION_STRING"]
    ).get_table_client(RUNS_TABLE)
    table.create_entity(run_entity(dead))  # the layout before the run index
    asyncio.run(scheduled_tick(load_settings(environ, needs_graph=False), now))

    async def record() -> RunReport | None:
        async with SyncService(load_settings(environ, needs_graph=False)) as service:
            return await service.runs.get(tenant, dead.run_id)

    closed = asyncio.run(record())
    assert closed is not None and closed.status == "failed"
    assert closed.errors[-1].code == "abandoned"
    statuses = [
        row["Status"] for row in stored_run_rows(environ["TABLES_CONNECTION_STRING"], tenant)
    ]
    assert statuses == ["failed"]
    visible_messages(environ)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ('{"shard": ["not a tenant id"]}', "not a tenant id"),
        ('{"shard": "x"}', "shard: a list"),
        ('{"shard": [], "extra": 1}', "exactly one key"),
    ],
)
def test_a_malformed_shard_is_dropped_not_retried(app_env, body, why, caplog) -> None:
    deliver(body)  # returns: the host deletes the message instead of retrying it
    assert "malformed" in caplog.text and why in caplog.text


def test_a_held_run_does_not_let_the_sweep_remove_the_failed_and_held_runs_before_it(
    environ,
) -> None:
    """Held is not succeeded: a held or failed run stays until a later run succeeded."""
    now = utc_now()
    tenant = str(uuid.uuid4())
    runs = [
        ended(tenant, now - 100 * DAY, RunStatus.SUCCEEDED),  # nothing keeps it: goes
        ended(tenant, now - 95 * DAY, RunStatus.FAILED),  # only held runs since: stays
        ended(tenant, now - 94 * DAY, RunStatus.HELD),  # likewise
        ended(tenant, now - DAY, RunStatus.HELD),  # the latest record
    ]
    seed(environ, [tenant], runs)
    result = asyncio.run(scheduled_tick(load_settings(environ, needs_graph=False), now))
    kept = [row["RunId"] for row in stored_run_rows(environ["TABLES_CONNECTION_STRING"], tenant)]
    assert kept == [runs[3].run_id, runs[2].run_id, runs[1].run_id]
    assert result.swept == 1
    visible_messages(environ)


def test_an_explain_run_does_not_become_the_latest_record_the_sweep_keeps(environ) -> None:
    """An applied explain syncs one user and is left out of the schedule: the tenant's latest
    sync record stays the one the sweep keeps (and the one idle checks are counted on)."""
    now = utc_now()
    tenant = str(uuid.uuid4())
    synced = ended(tenant, now - 100 * DAY, RunStatus.SUCCEEDED)
    explained = replace(
        ended(tenant, now - 10 * DAY, RunStatus.SUCCEEDED), trigger=Trigger.EXPLAIN, mode="user"
    )
    seed(environ, [tenant], [synced, explained])
    asyncio.run(scheduled_tick(load_settings(environ, needs_graph=False), now))
    kept = [row["RunId"] for row in stored_run_rows(environ["TABLES_CONNECTION_STRING"], tenant)]
    assert kept == [explained.run_id, synced.run_id]
    visible_messages(environ)


def test_a_superseded_request_does_not_become_the_latest_record_the_sweep_keeps(environ) -> None:
    """A request that found another run in progress did nothing: the tenant's latest sync
    record stays the one the sweep keeps."""
    now = utc_now()
    tenant = str(uuid.uuid4())
    synced = ended(tenant, now - 100 * DAY, RunStatus.SUCCEEDED)
    superseded = replace(
        ended(tenant, now - 10 * DAY, RunStatus.FAILED),
        errors=(RunProblem(ErrorCode.SUPERSEDED, "Another run of this tenant was in progress."),),
    )
    seed(environ, [tenant], [synced, superseded])
    asyncio.run(scheduled_tick(load_settings(environ, needs_graph=False), now))
    kept = [row["RunId"] for row in stored_run_rows(environ["TABLES_CONNECTION_STRING"], tenant)]
    assert kept == [superseded.run_id, synced.run_id]
    visible_messages(environ)
