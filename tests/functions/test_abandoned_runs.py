"""Runs never stay `running` forever: a run whose process died is closed as failed, with its
cause, by the next run of its tenant or by the timer, however old and however deep in the
history it is."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from sync_core.app.dispatch import SCHEDULE_HISTORY, scheduled_tick
from sync_core.app.exclusive import sync_exclusively
from sync_core.app.service import SyncService
from sync_core.app.status import STATUS_HISTORY
from sync_core.core.engine import RunRequest
from sync_core.core.report import (
    RunReport,
    RunStatus,
    new_run_id,
    utc_now,
)
from sync_core.settings import load_settings

pytestmark = pytest.mark.integration

LATER_RUNS = max(SCHEDULE_HISTORY, STATUS_HISTORY) + 5


async def _bury_a_dead_run(app_env, tenant_id: str) -> RunReport:
    """A `running` record 40 days old (its worker was killed; no lease), then more finished
    runs after it than any history window reads."""
    now = utc_now()
    dead_at = now - timedelta(days=40)
    dead = RunReport.begun(
        new_run_id(dead_at), tenant_id, RunStatus.RUNNING, dry_run=False, trigger="schedule",
        at=dead_at,
    )  # fmt: skip
    async with SyncService(load_settings(app_env, needs_graph=False)) as service:
        await service.runs.save(dead)
        for day in range(LATER_RUNS):
            at = now - timedelta(days=39) + timedelta(days=day)
            later = RunReport.begun(
                new_run_id(at), tenant_id, RunStatus.RUNNING, dry_run=False, trigger="schedule",
                at=at,
            )  # fmt: skip
            await service.runs.save(
                replace(later, status=RunStatus.SUCCEEDED, finished_at=at + timedelta(minutes=1))
            )
    return dead


async def _record(app_env, tenant_id: str, run_id: str) -> RunReport:
    async with SyncService(load_settings(app_env, needs_graph=False)) as service:
        record = await service.runs.get(tenant_id, run_id)
    assert record is not None
    return record


def test_the_timer_closes_a_dead_run_buried_under_later_runs(app_env, tenant, sync_queue):
    dead = asyncio.run(_bury_a_dead_run(app_env, tenant.id))
    asyncio.run(scheduled_tick(load_settings(app_env, needs_graph=False), utc_now()))
    closed = asyncio.run(_record(app_env, tenant.id, dead.run_id))
    assert closed.status == "failed" and closed.finished_at is not None
    assert closed.errors[-1].code == "abandoned"
    assert "process ended" in closed.errors[-1].message and "the timer" in closed.errors[-1].message


def test_the_next_run_of_the_tenant_closes_a_dead_run(app_env, tenant):
    dead = asyncio.run(_bury_a_dead_run(app_env, tenant.id))

    async def next_run() -> RunReport:
        settings = load_settings(app_env, needs_graph=True)
        async with SyncService(settings) as service:
            return await sync_exclusively(service, RunRequest(tenant.id, trigger="cli"))

    report = asyncio.run(next_run())
    assert report.status == RunStatus.SUCCEEDED
    closed = asyncio.run(_record(app_env, tenant.id, dead.run_id))
    assert closed.status == "failed" and closed.errors[-1].code == "abandoned"
    assert f"run {report.run_id}" in closed.errors[-1].message
