"""The timer's tick against a storage account of its own: exactly the due tenants are enqueued,
once each, disabled ones never, failing ones with backoff; old connect requests are swept."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from azure.functions.timer import TimerRequest
from functions_harness import built_functions

from devtools.azurite import Azurite
from sync_core.adapters.tables.connect_requests import RETENTION, ConnectRequest
from sync_core.app.dispatch import scheduled_tick
from sync_core.app.housekeeping import sweep_connect_requests
from sync_core.app.service import SyncService
from sync_core.core.config import TenantConfig
from sync_core.core.report import (
    RunReport,
    RunStatus,
    utc_now,
)
from sync_core.core.schedule import interval_of
from sync_core.settings import load_settings
from tests.functions.run_messages import report, visible_messages

pytestmark = pytest.mark.integration

HOUR, MINUTE = timedelta(hours=1), timedelta(minutes=1)
HOME = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def environ(own_storage: Azurite) -> dict[str, str]:
    return {
        "ENTRA_TENANT_ID": HOME,
        "TABLES_CONNECTION_STRING": own_storage.connection_string,
        "SYNC_INTERVAL_MIN_HOURS": "2",
        "SYNC_INTERVAL_MAX_HOURS": "4",
    }


def seed(environ: dict[str, str], configs: dict[str, bool], runs: list[RunReport]) -> None:
    async def write() -> None:
        async with SyncService(load_settings(environ, needs_graph=False)) as service:
            for tenant, enabled in configs.items():
                await service.configs.put(tenant, TenantConfig(enabled=enabled))
            for run in runs:
                await service.runs.save(run)

    asyncio.run(write())


def tick(environ: dict[str, str], now: datetime, spread: timedelta = timedelta(0)) -> Any:
    return asyncio.run(
        scheduled_tick(load_settings(environ, needs_graph=False), now, spread=spread)
    )


def test_only_due_tenants_are_enqueued_once_each(environ: dict[str, str], caplog) -> None:
    now = utc_now()
    t = {name: str(uuid.uuid4()) for name in (
        "never", "recent", "old", "disabled", "failed_once", "failing", "queued", "lost_message",
        "dead_worker", "dry_only",
    )}  # fmt: skip
    configs = {tenant: name != "disabled" for name, tenant in t.items()}
    runs = [
        report(t["recent"], now - HOUR, RunStatus.SUCCEEDED),
        report(t["old"], now - 5 * HOUR, RunStatus.SUCCEEDED),
        report(t["failed_once"], now - 20 * MINUTE, RunStatus.FAILED),
        report(t["failed_once"], now - 5 * HOUR, RunStatus.SUCCEEDED),
        *(report(t["failing"], now - (20 + i) * MINUTE, RunStatus.FAILED) for i in range(3)),
        report(t["queued"], now - 5 * MINUTE, RunStatus.QUEUED),
        report(t["lost_message"], now - 2 * HOUR, RunStatus.QUEUED),
        report(t["dead_worker"], now - 3 * HOUR, RunStatus.RUNNING),  # no lease: its worker died
        report(t["dry_only"], now - MINUTE, RunStatus.SUCCEEDED, dry=True),
    ]
    seed(environ, configs, runs)

    result = tick(environ, now)
    expected_due = {HOME, *(t[n] for n in ("never", "old", "failed_once", "lost_message",
                                          "dead_worker", "dry_only"))}  # fmt: skip
    assert set(result.due) == expected_due
    assert result.skipped_disabled == (t["disabled"],)
    assert result.failed == (), caplog.text
    messages = visible_messages(environ)
    assert sorted(m["tenantId"] for m in messages) == sorted(expected_due)  # once each
    assert {m["trigger"] for m in messages} == {"schedule"}
    assert sorted(m["runId"] for m in messages) == sorted(result.enqueued)

    # The next tick: every tenant enqueued above has its run queued, so none is due twice; only
    # the failing tenant's backoff (3 failures: 30 min after the last) has run out.
    assert tick(environ, now + 15 * MINUTE).due == (t["failing"],)
    assert [m["tenantId"] for m in visible_messages(environ)] == [t["failing"]]


def test_failing_tenant_backs_off_and_a_healthy_one_waits_its_interval(environ) -> None:
    now = utc_now()
    failing, healthy = str(uuid.uuid4()), str(uuid.uuid4())
    interval = interval_of(healthy, 2, 4)
    seed(
        environ,
        {failing: True, healthy: True},
        [
            *(report(failing, now - (10 + i) * MINUTE, RunStatus.FAILED) for i in range(2)),
            report(healthy, now - interval + 5 * MINUTE, RunStatus.SUCCEEDED),
        ],
    )
    first = set(tick(environ, now).due)
    assert failing not in first and healthy not in first  # 2 failures: 15 min; interval not up
    later = set(tick(environ, now + 5 * MINUTE).due)
    assert failing in later and healthy in later
    visible_messages(environ)


def test_a_tick_spreads_the_due_tenants_over_minutes(environ) -> None:
    tenants = [str(uuid.uuid4()) for _ in range(4)]
    seed(environ, dict.fromkeys(tenants, True), [])
    visible_messages(environ)
    result = tick(environ, utc_now(), spread=timedelta(minutes=10))
    assert set(tenants) <= set(result.due)
    # Delayed messages stay invisible: at most the few whose offset is under a second show now.
    assert len(visible_messages(environ)) < len(result.enqueued)


def test_the_timer_function_ticks(environ, monkeypatch, caplog) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    newcomer = str(uuid.uuid4())
    seed(environ, {newcomer: True}, [])
    visible_messages(environ)
    caplog.set_level("INFO", logger="sync_core.app.dispatch")
    function = built_functions()["scheduled_sync"].get_user_function()
    assert asyncio.run(function(TimerRequest(past_due=False))) is None
    assert "schedule tick:" in caplog.text

    async def runs_of_newcomer() -> list[RunReport]:
        async with SyncService(load_settings(environ, needs_graph=False)) as service:
            return await service.runs.latest(newcomer)

    (queued,) = asyncio.run(runs_of_newcomer())  # its message waits out the tenant's offset
    assert queued.status == RunStatus.QUEUED and queued.trigger == "schedule"


def seed_connect_requests(environ: dict[str, str], expiries: dict[str, datetime]) -> None:
    async def write() -> None:
        async with SyncService(load_settings(environ, needs_graph=False)) as service:
            for nonce, expires_at in expiries.items():
                request = ConnectRequest(nonce, "digest", expires_at, None, None, account="a")
                await service.connect_requests.add(request)

    asyncio.run(write())


def connect_requests_left(environ: dict[str, str], nonces: list[str]) -> list[str]:
    async def read() -> list[str]:
        async with SyncService(load_settings(environ, needs_graph=False)) as service:
            return [n for n in nonces if await service.connect_requests.get(n) is not None]

    return asyncio.run(read())


def test_old_connect_requests_are_swept_a_bounded_number_per_tick(environ) -> None:
    now = utc_now()
    old = [f"old-{uuid.uuid4().hex}" for _ in range(3)]
    kept = {f"recent-{uuid.uuid4().hex}": now - HOUR, f"live-{uuid.uuid4().hex}": now + MINUTE}
    seed_connect_requests(environ, {**{n: now - 2 * RETENTION for n in old}, **kept})
    settings = load_settings(environ, needs_graph=False)
    assert asyncio.run(sweep_connect_requests(settings, now, limit=2)) == 2
    assert len(connect_requests_left(environ, old)) == 1
    assert asyncio.run(sweep_connect_requests(settings, now, limit=2)) == 1
    assert connect_requests_left(environ, old) == []
    # Consumed or not, a request stays readable for a day after it expires.
    assert connect_requests_left(environ, list(kept)) == list(kept)


def test_the_timer_function_sweeps_old_connect_requests(environ, monkeypatch) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    old = f"old-{uuid.uuid4().hex}"
    seed_connect_requests(environ, {old: utc_now() - 2 * RETENTION})
    function = built_functions()["scheduled_sync"].get_user_function()
    asyncio.run(function(TimerRequest(past_due=False)))
    assert connect_requests_left(environ, [old]) == []
