"""Ctrl-C during `python -m sync_core sync`: the process exits 130 without a traceback and its
run record is closed, not left `running`. The real CLI in a subprocess, a real SIGINT."""

from __future__ import annotations

import asyncio
import signal

import pytest

from sync_core.app.service import SyncService
from sync_core.core.report import RunReport
from sync_core.settings import load_settings
from tests.integration.sync_process import start_sync

pytestmark = pytest.mark.integration


async def _records(app_env, tenant_id: str) -> list[RunReport]:
    async with SyncService(load_settings(app_env, needs_graph=False)) as service:
        return await service.runs.latest(tenant_id)


@pytest.mark.timeout(120)
def test_ctrl_c_closes_the_run_and_exits_130_without_a_traceback(simulator, tenant, app_env):
    connection = app_env["TABLES_CONNECTION_STRING"]
    simulator.faults.latency(1500)  # every Graph request slow: the run is mid-way for seconds
    try:
        # Interrupted once the run has begun (its record says running).
        process, _ = start_sync(connection, tenant.id)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        simulator.faults.clear()

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert "Interrupted" in stderr
    (record,) = asyncio.run(_records(app_env, tenant.id))
    assert record.status == "failed" and record.finished_at is not None
    assert record.errors[-1].code == "cancelled"
    assert '"code": "cancelled"' in stdout  # --json: one document on stdout, as promised
