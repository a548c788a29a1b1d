"""GET /api/status says each tenant's health, from real runs: a credential about to expire (and
the `credential_expiring` event the alert rule reads), and a tenant failing since its last
success. The CLI runs the syncs, the status handler answers, against the simulator and Azurite."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from simulator import Simulator
from sync_core.surfaces.api import ApiRequest, handle
from sync_core.surfaces.cli import main
from sync_core.surfaces.routes import ROUTES
from tests.integration.credential_world import build_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sim(simulator: Simulator) -> Iterator[Simulator]:
    own = Simulator(build_world(), ca=simulator.ca)  # its vault holds "soon-secret" (3 days)
    own.start()
    yield own
    own.stop()


@pytest.fixture
def env(sim, azurite, monkeypatch) -> dict[str, str]:
    for name in ("ENTRA_CLIENT_SECRET", "TABLES_ENDPOINT", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    values = {
        **sim.environment(),
        "TABLES_CONNECTION_STRING": azurite.connection_string,
        "ENTRA_CREDENTIAL": "secret",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def _health(env: dict[str, str]) -> dict:
    request = ApiRequest("GET", "http://localhost/api/status", {}, {}, b"")
    answer = asyncio.run(handle(ROUTES["status"], request, env))
    assert answer.status == 200, answer.body
    (tenant,) = [t for t in answer.body["tenants"] if t["tenantId"] == env["ENTRA_TENANT_ID"]]
    return tenant["health"]


def test_a_credential_about_to_expire(env, monkeypatch, caplog, capsys):
    monkeypatch.setenv("ENTRA_CLIENT_SECRET_NAME", "soon-secret")
    env = {**env, "ENTRA_CLIENT_SECRET_NAME": "soon-secret"}
    with caplog.at_level(logging.INFO, logger="sync_core"):
        assert main(["-v", "sync"]) == 0
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("credential")]
    event = json.loads(line[line.index("{") :])  # as the alert rule's query reads it
    assert event["event"] == "credential_expiring" and event["tenantId"] == env["ENTRA_TENANT_ID"]
    assert "soon-secret" in event["credential"] and event["daysLeft"] in (2, 3)
    expires = datetime.fromisoformat(event["expiresOn"]).astimezone(UTC).date().isoformat()

    health = _health(env)
    assert health == {"state": "credentialExpiring", "credentialExpiresOn": expires}


def test_a_tenant_failing_since_its_last_success(env, monkeypatch, capsys):
    assert main(["sync", "--json"]) == 0
    succeeded = json.loads(capsys.readouterr().out)
    assert _health(env)["state"] == "ok"
    monkeypatch.setenv("ENTRA_CLIENT_SECRET_NAME", "no-such-secret")
    assert main(["sync"]) == 1
    assert main(["sync"]) == 1

    health = _health(env)
    assert health["state"] == "failing"
    assert health["consecutiveFailures"] == 2 and health["lastErrorCode"] == "secret_not_found"
    assert health["since"] == succeeded["finishedAt"]


def test_a_failing_tenant_stays_failing_while_its_next_run_waits(env, monkeypatch, capsys):
    # The next attempt queued (Sync Now, or the timer's retry) is no answer yet: the dashboard
    # must not flip to "ok" for as long as it waits or runs, every 15 minutes.
    assert main(["sync"]) == 0
    monkeypatch.setenv("ENTRA_CLIENT_SECRET_NAME", "no-such-secret")
    assert main(["sync"]) == 1
    assert _health(env)["state"] == "failing"
    request = ApiRequest("POST", "http://localhost/api/sync", {}, {}, b"")
    answer = asyncio.run(handle(ROUTES["sync_now"], request, env))
    assert answer.status == 202, answer.body

    health = _health(env)
    assert health["state"] == "failing", health
    assert health["consecutiveFailures"] == 1 and health["lastErrorCode"] == "secret_not_found"
