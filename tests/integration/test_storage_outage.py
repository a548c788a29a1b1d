"""Storage stopped under a running `sync`, and a killed `sync`: the CLI says which run and what
became of it, and the next sync runs at once instead of answering `tenant_busy` for minutes.
Real processes: the CLI in a subprocess, Azurite really stopped and started again on its data."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.azurite import Azurite, start_azurite
from sync_core.surfaces.cli import main
from tests.app_settings import app_settings
from tests.integration.sync_process import run_statuses, start_sync

pytestmark = pytest.mark.integration


@pytest.fixture
def own_storage(tmp_path: Path) -> Iterator[list[Azurite]]:
    """An Azurite of this test's own, its data on disk, so it can be stopped and restarted."""
    instances = [start_azurite(location=tmp_path / "azurite")]
    yield instances
    for instance in instances:
        instance.stop()


@pytest.fixture
def env(simulator, tenant, own_storage, monkeypatch) -> dict[str, str]:
    values = app_settings(simulator, tenant.id, own_storage[0].connection_string, monkeypatch)
    return values


@pytest.mark.timeout(240)
def test_storage_stopped_mid_run_names_the_run_and_the_next_sync_takes_over(
    simulator, tenant, env, own_storage, capsys, caplog
):
    storage = own_storage[0]
    simulator.faults.latency(1500)  # every Graph request slow: the run is mid-way for seconds
    try:
        process, run_id = start_sync(storage.connection_string, tenant.id)
        storage.stop()
        stdout, stderr = process.communicate(timeout=180)
    finally:
        simulator.faults.clear()

    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    document = json.loads(stdout)
    assert document["error"]["code"] == "storage_unreachable"
    assert document["error"]["runId"] == run_id
    assert document["error"]["leaseLapsesBy"].endswith("Z")
    assert run_id in stderr and "takes over its lease" in stderr
    assert "the lease lapses, by 20" in stderr  # when, at the latest, elsewhere
    report = document["report"]
    assert report["runId"] == run_id and report["status"] == "failed"
    assert report["errors"][-1]["code"] == "storage_unreachable"

    # Storage back, on the same data: the record still says running, the lease is still held.
    ports = (storage.table_port, storage.queue_port, storage.blob_port)
    own_storage.append(start_azurite(location=storage.location, ports=ports))
    assert run_statuses(storage.connection_string, tenant.id) == {run_id: "running"}
    capsys.readouterr()
    assert main(["sync", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "succeeded"
    # The takeover says why (a warning: on stderr from a shell; pytest captures the log).
    assert f"run {run_id}" in caplog.text and "is gone" in caplog.text
    statuses = run_statuses(storage.connection_string, tenant.id)
    assert statuses[run_id] == "failed"  # closed (abandoned) by the run that took over


@pytest.mark.timeout(240)
def test_a_killed_sync_does_not_keep_the_tenant_busy(
    simulator, tenant, env, own_storage, capsys, caplog
):
    storage = own_storage[0]
    simulator.faults.latency(1500)
    try:
        process, run_id = start_sync(storage.connection_string, tenant.id)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)  # reaped: the process no longer exists
    finally:
        simulator.faults.clear()

    capsys.readouterr()
    assert main(["sync", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "succeeded"
    assert f"run {run_id}" in caplog.text and "is gone" in caplog.text
    assert run_statuses(storage.connection_string, tenant.id)[run_id] == "failed"
