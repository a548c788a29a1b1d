"""`python -m sync_core sync --json` in a real subprocess, and the tenant's runs as storage holds
them: for the tests that interrupt a running CLI (Ctrl-C, storage stopped, the process killed)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableServiceClient

from sync_core.adapters.storage_names import LEASES_TABLE, RUNS_TABLE
from sync_core.adapters.tables.run_index_rows import PARTITION, index_of

ROOT = Path(__file__).resolve().parents[2]


def run_statuses(connection_string: str, tenant_id: str) -> dict[str, str]:
    """run id -> status: a run in flight is kept in its run index row (SyncLeases, partition
    `lease`), a finished one in SyncRuns."""
    service = TableServiceClient.from_connection_string(connection_string)
    try:
        rows = service.get_table_client(RUNS_TABLE).query_entities(
            "PartitionKey eq @t", parameters={"t": tenant_id}
        )
        statuses = {row["RunId"]: row["Status"] for row in rows}
        index = service.get_table_client(LEASES_TABLE).get_entity(PARTITION, tenant_id)
    except ResourceNotFoundError:  # the CLI has not created its tables (or the row) yet
        return {}
    return {**statuses, **{run.run_id: str(run.status) for run in index_of(index).runs}}


def start_sync(connection_string: str, tenant_id: str) -> tuple[subprocess.Popen[str], str]:
    """`sync --json` in a subprocess, returned with its run id once its record says `running`
    (not after a guessed sleep)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sync_core", "sync", "--json"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while True:
        statuses = run_statuses(connection_string, tenant_id)
        running = [run for run, status in statuses.items() if status == "running"]
        if running:
            return process, running[0]
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
