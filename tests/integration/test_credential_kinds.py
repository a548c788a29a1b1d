"""Each ENTRA_CREDENTIAL kind syncs the simulator's tenant end to end, and each of their failures
is diagnosed by Check Connectivity in plain words with the fix.

Real parts only: azure-identity's CertificateCredential, ClientAssertionCredential fed by
ManagedIdentityCredential, SecretClient, msgraph-sdk, all against the simulator (whose checks
follow Microsoft's AADSTS codes, simulator/README.md), and Azurite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from simulator import Simulator
from sync_core.app.check import check_connectivity
from sync_core.app.service import SyncService
from sync_core.core.engine import RunRequest
from sync_core.core.ports import Unfenced
from sync_core.core.report import RunStatus
from sync_core.settings import load_settings
from tests.integration.credential_world import IDS, build_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sim(simulator: Simulator) -> Iterator[Simulator]:
    # The session simulator's CA: the one the process already trusts (tests/conftest.py).
    own = Simulator(build_world(), ca=simulator.ca)
    own.start()
    yield own
    own.stop()


@pytest.fixture
def environment(sim, azurite, monkeypatch):
    """The app's settings, in os.environ (azure-identity reads the identity endpoint there)."""
    for name in (
        "ENTRA_CLIENT_SECRET",
        "TABLES_ENDPOINT",
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    env = {**sim.environment(), "TABLES_CONNECTION_STRING": azurite.connection_string}

    def settings(**overrides: str):
        for name, value in {**env, **overrides}.items():
            monkeypatch.setenv(name, value)
        return load_settings({**env, **overrides})

    return settings


async def sync_once(settings) -> Any:
    async with SyncService(settings) as service:
        return await service.sync(RunRequest(settings.tenant_id), Unfenced("no other run here"))


@pytest.mark.parametrize(
    ("overrides", "warned"),
    [
        ({"ENTRA_CREDENTIAL": "secret"}, None),
        ({"ENTRA_CREDENTIAL": "secret", "ENTRA_CLIENT_SECRET_NAME": "soon-secret"}, "soon-secret"),
        ({"ENTRA_CREDENTIAL": "certificate", "ENTRA_CERTIFICATE_NAME": "good-cert"}, None),
        ({"ENTRA_CREDENTIAL": "certificate", "ENTRA_CERTIFICATE_NAME": "soon-cert"}, "soon-cert"),
        ({"ENTRA_CREDENTIAL": "federated"}, None),
    ],
    ids=["secret", "secret-expiring", "certificate", "certificate-expiring", "federated"],
)
def test_each_credential_kind_syncs_the_tenant(sim, environment, overrides, warned) -> None:
    settings = environment(**overrides)
    sim.clear_requests()
    report = asyncio.run(sync_once(settings))
    assert report.status == RunStatus.SUCCEEDED, report.errors
    assert report.tenant_name == "Contoso Ltd" and report.counts.employees > 0
    expiring = [w for w in report.warnings if "expires on" in w]
    if warned:
        assert len(expiring) == 1 and repr(warned) in expiring[0]
        result = asyncio.run(check_connectivity(settings, settings.tenant_id))
        assert result.ok and any(repr(warned) in w for w in result.warnings)
    else:
        assert not expiring
    token_requests = [r for r in sim.requests if r.surface == "token"]
    assert token_requests
    if overrides["ENTRA_CREDENTIAL"] == "federated":
        # No secret anywhere: the vault was not read, the identity's token was exchanged.
        assert not [r for r in sim.requests if r.surface == "vault"]
        assert any(
            r.surface == "msi" and "AzureADTokenExchange" in str(r.query) for r in sim.requests
        )


@pytest.mark.parametrize(
    ("overrides", "code", "words"),
    [
        ({"ENTRA_CREDENTIAL": "federated", "ENTRA_CLIENT_ID": IDS["no_fic"]},
         "federated_credential_missing", "no federated credential"),
        ({"ENTRA_CREDENTIAL": "federated", "ENTRA_CLIENT_ID": IDS["fic_issuer"]},
         "federated_issuer_mismatch", "another issuer"),
        ({"ENTRA_CREDENTIAL": "federated", "ENTRA_CLIENT_ID": IDS["fic_audience"]},
         "federated_audience_mismatch", "another audience"),
        ({"ENTRA_CREDENTIAL": "federated", "ENTRA_CLIENT_ID": IDS["fic_subject"]},
         "federated_subject_mismatch", "another subject"),
        ({"ENTRA_CREDENTIAL": "certificate", "ENTRA_CERTIFICATE_NAME": "stranger-cert"},
         "certificate_not_registered", "not registered"),
        ({"ENTRA_CREDENTIAL": "certificate", "ENTRA_CERTIFICATE_NAME": "expired-cert"},
         "certificate_expired", "has expired"),
        ({"ENTRA_CREDENTIAL": "secret", "ENTRA_CLIENT_ID": IDS["expired_secret"],
          "ENTRA_CLIENT_SECRET_NAME": "old-secret"}, "expired_secret", "has expired"),
        ({"ENTRA_CREDENTIAL": "certificate", "ENTRA_CERTIFICATE_NAME": "missing-cert"},
         "secret_not_found", "no secret named"),
    ],
    ids=["fic-missing", "fic-issuer", "fic-audience", "fic-subject", "cert-unregistered",
         "cert-expired", "secret-expired", "cert-missing"],
)  # fmt: skip
def test_each_credential_failure_is_diagnosed_with_its_fix(environment, overrides, code, words):
    settings = environment(**overrides)
    result = asyncio.run(check_connectivity(settings, settings.tenant_id))
    assert [p.code for p in result.problems] == [code], result.problems
    problem = result.problems[0]
    assert words in problem.message and problem.fix
    report = asyncio.run(sync_once(settings))  # a run fails the same way, deleting nothing
    assert report.status == RunStatus.FAILED and report.errors[0].code == code
