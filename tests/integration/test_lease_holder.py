"""A lease whose holder is over is taken over at once; one whose holder may be alive answers
`tenant_busy` with the time its lease runs until. Through the CLI, against Azurite."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from sync_core.app.service import SyncService
from sync_core.core.report import RunReport, RunStatus, Trigger, new_run_id, utc_now
from sync_core.settings import load_settings

pytestmark = pytest.mark.integration


async def _hold(app_env, tenant_id: str, status: RunStatus | None) -> str:
    """A lease held by a run of this (live) process, whose record says `status`."""
    run_id = new_run_id(utc_now())
    async with SyncService(load_settings(app_env, needs_graph=False)) as service:
        if status is not None:
            record = RunReport.begun(
                run_id,
                tenant_id,
                RunStatus.RUNNING,
                dry_run=False,
                trigger=Trigger.CLI,
                at=utc_now(),
            )
            await service.runs.save(replace(record, status=status, finished_at=utc_now()))
        lease = await service.leases.acquire(tenant_id, run_id, utc_now(), timedelta(minutes=5))
        assert lease is not None
    return run_id


def test_a_live_holder_answers_busy_with_when_its_lease_runs_out(cli, app_env, tenant):
    holder = asyncio.run(_hold(app_env, tenant.id, None))
    result = cli("sync")
    assert result.exit_code == 1
    assert "error [tenant_busy]" in result.stderr and holder in result.stderr
    assert "Its lease runs until" in result.stderr and "renewed every minute" in result.stderr


@pytest.mark.parametrize("status", [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.HELD])
def test_a_holder_whose_record_is_final_is_taken_over(cli, app_env, tenant, status, caplog):
    holder = asyncio.run(_hold(app_env, tenant.id, status))
    result = cli("sync", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json["status"] == "succeeded"
    assert f"run {holder}" in caplog.text and "without releasing its lease" in caplog.text
