"""The dev server's queue worker outlives Azurite going away: it says it cannot read the queue,
keeps polling, and works Sync Now once Azurite is back (the same data, the same ports)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import httpx
import pytest

from devtools.azurite import start_azurite
from devtools.devserver import DevServer
from tests.app_settings import app_settings

pytestmark = pytest.mark.integration


@pytest.mark.timeout(420)
def test_the_queue_worker_waits_out_a_stopped_azurite(
    simulator, tenant, monkeypatch, tmp_path: Path, caplog
):
    storage = [start_azurite(location=tmp_path / "azurite")]
    app_settings(simulator, tenant.id, storage[0].connection_string, monkeypatch)
    server = DevServer(dict(os.environ), work_queue=True)
    base = server.start()
    try:
        with caplog.at_level(logging.WARNING, logger="devtools.devserver"):
            storage[0].stop()
            deadline = time.monotonic() + 180
            while "cannot read the sync-requests queue" not in caplog.text:
                assert time.monotonic() < deadline, caplog.text
                time.sleep(0.2)
        first = storage[0]
        ports = (first.table_port, first.queue_port, first.blob_port)
        storage.append(start_azurite(location=first.location, ports=ports))
        with httpx.Client(timeout=60) as http:
            answer = http.post(f"{base}/api/sync", json={"tenantId": tenant.id})
            assert answer.status_code == 202, answer.text
            deadline = time.monotonic() + 180
            while (run := http.get(answer.json()["statusUrl"]).json())["status"] not in (
                "succeeded", "failed", "held",
            ):  # fmt: skip
                assert time.monotonic() < deadline, run
                time.sleep(0.2)
        assert run["status"] == "succeeded", run
    finally:
        server.stop()
        for instance in storage:
            instance.stop()
