"""Ctrl-C during `python -m sync_core sync`: the process exits 130 without a traceback and its
run record is closed, not left `running`. The real CLI in a subprocess, a real SIGINT."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableServiceClient

from sync_core.adapters.storage_names import LEASES_TABLE, RUNS_TABLE
from sync_core.adapters.tables.run_index_rows import PARTITION, index_of
from sync_core.app.service import SyncService
from sync_core.core.report import RunReport, RunStatus
from sync_core.settings import load_settings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _statuses(connection_string: str, tenant_id: str) -> list[str]:
    """The statuses of the tenant's runs: a run in flight is kept in its run index row
    (SyncLeases, partition `lease`), a finished one in SyncRuns."""
    service = TableServiceClient.from_connection_string(connection_string)
    try:
        rows = service.get_table_client(RUNS_TABLE).query_entities(
            "PartitionKey eq @t", parameters={"t": tenant_id}
        )
        statuses = [row["Status"] for row in rows]
        index = service.get_table_client(LEASES_TABLE).get_entity(PARTITION, tenant_id)
    except ResourceNotFoundError:  # the CLI has not created its tables (or the row) yet
        return []
    return statuses + [run.status for run in index_of(index).runs]


async def _records(app_env, tenant_id: str) -> list[RunReport]:
    async with SyncService(load_settings(app_env, needs_graph=False)) as service:
        return await service.runs.latest(tenant_id)


@pytest.mark.timeout(120)
def test_ctrl_c_closes_the_run_and_exits_130_without_a_traceback(simulator, tenant, app_env):
    connection = app_env["TABLES_CONNECTION_STRING"]
    simulator.faults.latency(1500)  # every Graph request slow: the run is mid-way for seconds
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "sync_core", "sync", "--json"],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Interrupt once the run has begun (its record says running), not after a guessed sleep.
        while RunStatus.RUNNING not in _statuses(connection, tenant.id):
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
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
