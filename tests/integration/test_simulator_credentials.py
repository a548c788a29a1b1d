"""The simulator's credentials and onboarding, driven by azure-identity's real credentials and
plain HTTP: certificate and federated client assertions, secret expiry, certificates in Key Vault
and the admin-consent endpoint. Each failure must carry the AADSTS code Entra sends."""

# Trust must be set before any module imports aiohttp (see simulator/testing.py).
# ruff: noqa: E402
from __future__ import annotations

from simulator.testing import prepare_trust

CA = prepare_trust()

import asyncio
import base64
import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential as SyncCertificateCredential
from azure.identity import ManagedIdentityCredential
from azure.identity.aio import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
)
from azure.keyvault.secrets.aio import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from simulator import Simulator, World
from simulator.certs import ClientCertificate
from tests.integration.credential_world import (
    EXCHANGE,
    EXPIRED_CERT,
    GOOD_CERT,
    NOW,
    STRANGER_CERT,
)

pytestmark = pytest.mark.integration

WORLD_FILE = Path(__file__).parents[1] / "fixtures" / "simulator_world.json"
CALLBACK = "https://sync.example.com/api/connect/callback"
VAULT_CERT_EXPIRES = (NOW + dt.timedelta(days=20)).replace(microsecond=0)

APP_NAMES = ("expired_secret", "fic_issuer", "fic_audience", "fic_subject", "no_fic", "fresh")
IDS = {name: str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.sim.test")) for name in APP_NAMES}
OTHER_TENANT = "22222222-3333-4444-8555-666666666666"


def build_world() -> World:
    data = json.loads(WORLD_FILE.read_text(encoding="utf-8"))
    identity = data["managedIdentity"]
    mi_subject = str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"{identity['tenantId']}/{identity['clientId']}")
    )
    issuer = "{authority}/" + identity["tenantId"] + "/v2.0"
    app = data["apps"][0]
    app["keyCredentials"] = [
        {"key": GOOD_CERT.certificate_pem},
        {"key": EXPIRED_CERT.certificate_pem},
    ]
    app["federatedIdentityCredentials"] = [
        {"name": "function-app", "issuer": issuer, "subject": mi_subject, "audiences": [EXCHANGE]}
    ]
    app["redirectUris"] = [CALLBACK]
    fic = {"name": "x", "issuer": issuer, "subject": mi_subject, "audiences": [EXCHANGE]}
    extra = {
        "expired_secret": {
            "secrets": [{"value": "old-secret", "endDateTime": "2020-01-01T00:00:00Z"}]
        },
        "fic_issuer": {
            "federatedIdentityCredentials": [fic | {"issuer": "https://elsewhere/v2.0"}]
        },
        "fic_audience": {"federatedIdentityCredentials": [fic | {"audiences": ["api://other"]}]},
        "fic_subject": {"federatedIdentityCredentials": [fic | {"subject": str(uuid.uuid4())}]},
        "no_fic": {"secrets": ["some-secret"]},
        "fresh": {"secrets": ["fresh-secret"], "redirectUris": [CALLBACK]},
    }
    for name, fields in extra.items():
        data["apps"].append({"clientId": IDS[name], "displayName": name} | fields)
        if name != "fresh":  # "fresh" is consented only through the admin-consent page
            data["tenants"][0]["consents"][IDS[name]] = ["User.Read.All"]
    data["keyVault"]["secrets"]["sync-certificate"] = {
        "value": GOOD_CERT.pem,
        "contentType": "application/x-pem-file",
        "expires": VAULT_CERT_EXPIRES.isoformat(),
    }
    other = {"id": OTHER_TENANT, "displayName": "Fabrikam", "consents": {}, "users": []}
    other["verifiedDomains"] = [{"name": "fabrikam.com", "isDefault": True}]
    data["tenants"].append(other)
    return World.from_dict(data)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(build_world(), ca=CA)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(autouse=True)
def clean(sim: Simulator) -> Iterator[None]:
    sim.consent.clear()
    yield
    sim.consent.clear()


def tenant_of(sim: Simulator) -> str:
    return sim.world.tenants[0].id


def client_of(sim: Simulator) -> str:
    return sim.world.apps[0].client_id


def graph_scope(sim: Simulator) -> str:
    return f"{sim.base_url}/.default"


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def token_of(credential: Any, scope: str) -> str:
    async with credential:
        return (await credential.get_token(scope)).token


def refused(sim: Simulator, credential: Any) -> str:
    with pytest.raises(ClientAuthenticationError) as raised:
        asyncio.run(token_of(credential, graph_scope(sim)))
    return str(raised.value)


# ------------------------------------------------------------------------------- secrets


def test_an_expired_client_secret_is_refused_with_7000222(sim) -> None:
    cred = ClientSecretCredential(
        tenant_of(sim), IDS["expired_secret"], "old-secret", authority=sim.base_url
    )
    text = refused(sim, cred)
    assert "AADSTS7000222" in text and "are expired" in text
    # A wrong secret is still a wrong secret, not an expired one.
    cred = ClientSecretCredential(
        tenant_of(sim), IDS["expired_secret"], "other", authority=sim.base_url
    )
    assert "AADSTS7000215" in refused(sim, cred)


# ---------------------------------------------------------------------------- certificates


def test_certificate_credential_gets_a_token_async_and_with_msal(sim) -> None:
    cred = CertificateCredential(
        tenant_of(sim),
        client_of(sim),
        certificate_data=GOOD_CERT.pem.encode(),
        authority=sim.base_url,
    )
    token = asyncio.run(token_of(cred, graph_scope(sim)))
    assert claims(token)["appid"] == client_of(sim)
    assert "User.Read.All" in claims(token)["roles"]
    sync = SyncCertificateCredential(
        tenant_of(sim),
        client_of(sim),
        certificate_data=GOOD_CERT.pem.encode(),
        authority=sim.base_url,
        disable_instance_discovery=True,
    )
    assert claims(sync.get_token(graph_scope(sim)).token)["tid"] == tenant_of(sim)


@pytest.mark.parametrize(
    ("certificate", "reason"),
    [(STRANGER_CERT, "The key was not found"), (EXPIRED_CERT, "The key used is expired")],
    ids=["not-registered", "expired"],
)
def test_a_certificate_not_registered_or_expired_is_refused_with_700027(
    sim, certificate: ClientCertificate, reason: str
) -> None:
    cred = CertificateCredential(
        tenant_of(sim),
        client_of(sim),
        certificate_data=certificate.pem.encode(),
        authority=sim.base_url,
    )
    text = refused(sim, cred)
    assert "AADSTS700027" in text and reason in text


def assertion(
    certificate: ClientCertificate, header: dict[str, Any], body: dict[str, Any], alg: str = "RS256"
) -> str:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    cert = x509.load_pem_x509_certificate(certificate.certificate_pem.encode())
    thumb = b64(cert.fingerprint(hashes.SHA1()))
    head = {"alg": alg, "typ": "JWT", "x5t": thumb} | header
    signing_input = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(body).encode())}"
    key = serialization.load_pem_private_key(certificate.private_key_pem.encode(), None)
    pad = (
        padding.PKCS1v15()
        if alg == "RS256"
        else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    )
    signature = key.sign(signing_input.encode(), pad, hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def post_token(sim: Simulator, client_id: str, **form: str) -> httpx.Response:
    body = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "scope": graph_scope(sim),
    } | form
    return httpx.post(
        f"{sim.base_url}/{tenant_of(sim)}/oauth2/v2.0/token", data=body, verify=str(CA.ca_path)
    )


def test_hand_made_assertions_are_checked_claim_by_claim(sim) -> None:
    client = client_of(sim)
    endpoint = f"{sim.base_url}/{tenant_of(sim)}/oauth2/v2.0/token"
    now = int(time.time())
    good = {"aud": endpoint, "iss": client, "sub": client, "jti": "1", "nbf": now, "exp": now + 600}

    def send(text: str, kind: str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"):
        answer = post_token(sim, client, client_assertion=text, client_assertion_type=kind)
        return answer.status_code, answer.json().get("error_codes", [None])[0]

    assert send(assertion(GOOD_CERT, {}, good))[0] == 200
    assert send(assertion(GOOD_CERT, {}, good, alg="PS256"))[0] == 200
    assert send(assertion(GOOD_CERT, {}, good | {"aud": "https://elsewhere/token"})) == (
        401,
        700023,
    )
    assert send(assertion(GOOD_CERT, {}, good | {"exp": now - 3600, "nbf": now - 7200})) == (
        401,
        700024,
    )
    assert send(assertion(GOOD_CERT, {}, good | {"sub": str(uuid.uuid4())})) == (401, 700021)
    # The registered certificate's thumbprint on a signature made with another key.
    registered = json.loads(
        base64.urlsafe_b64decode(assertion(GOOD_CERT, {}, good).split(".")[0] + "==")
    )["x5t"]
    assert send(assertion(STRANGER_CERT, {"x5t": registered}, good)) == (401, 700027)
    assert send(assertion(GOOD_CERT, {}, good), kind="bearer") == (400, 700026)
    assert send("not.a-jwt") == (400, 50027)


# ------------------------------------------------------------------------- federated credential


@pytest.fixture
def identity_env(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = sim.environment()
    for name in ("AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "MSI_ENDPOINT", "MSI_SECRET"):
        monkeypatch.delenv(name, raising=False)
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_CLIENT_ID"):
        monkeypatch.setenv(name, env[name])
    return env


def exchange_credential(sim: Simulator, client_id: str, env: dict[str, str]) -> Any:
    identity = ManagedIdentityCredential(client_id=env["AZURE_CLIENT_ID"])

    def managed_identity_token() -> str:
        return identity.get_token(f"{EXCHANGE}/.default").token

    return ClientAssertionCredential(
        tenant_of(sim), client_id, managed_identity_token, authority=sim.base_url
    )


def test_a_managed_identity_token_is_exchanged_for_a_graph_token(sim, identity_env) -> None:
    cred = exchange_credential(sim, client_of(sim), identity_env)
    token = asyncio.run(token_of(cred, graph_scope(sim)))
    assert claims(token)["appid"] == client_of(sim)
    answer = httpx.get(
        f"{sim.base_url}/v1.0/organization",
        headers={"Authorization": f"Bearer {token}"},
        verify=str(CA.ca_path),
    )
    assert answer.status_code == 200
    assert answer.json()["value"][0]["displayName"] == "Contoso Ltd"
    # The exchange token names the identity, for the audience a federated credential trusts.
    mi = ManagedIdentityCredential(client_id=identity_env["AZURE_CLIENT_ID"])
    exchange = claims(mi.get_token(f"{EXCHANGE}/.default").token)
    assert exchange["aud"] == EXCHANGE
    assert exchange["iss"] == sim.token_exchange_issuer()
    assert exchange["sub"] == sim.world.managed_identity.subject


@pytest.mark.parametrize(
    ("app", "code"),
    [("fic_issuer", 700211), ("fic_audience", 700212), ("fic_subject", 700213), ("no_fic", 70021)],
)
def test_a_federated_credential_that_does_not_match_is_refused(
    sim, identity_env, app: str, code: int
) -> None:
    text = refused(sim, exchange_credential(sim, IDS[app], identity_env))
    assert f"AADSTS{code}" in text


def test_a_managed_identity_token_for_another_audience_is_not_exchanged(sim, identity_env) -> None:
    mi = ManagedIdentityCredential(client_id=identity_env["AZURE_CLIENT_ID"])
    graph_token = mi.get_token(graph_scope(sim)).token
    answer = post_token(
        sim,
        client_of(sim),
        client_assertion=graph_token,
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    )
    assert answer.json()["error_codes"] == [700212]


# ------------------------------------------------------------------------------ Key Vault


def test_a_certificate_in_key_vault_is_a_pem_secret_with_its_expiry(sim, identity_env) -> None:
    async def scenario() -> Any:
        async with DefaultAzureCredential() as cred, SecretClient(sim.vault_url, cred) as vault:
            return await vault.get_secret("sync-certificate")

    secret = asyncio.run(scenario())
    assert secret.properties.content_type == "application/x-pem-file"
    assert secret.properties.expires_on == VAULT_CERT_EXPIRES
    cred = CertificateCredential(
        tenant_of(sim),
        client_of(sim),
        certificate_data=secret.value.encode(),
        authority=sim.base_url,
    )
    assert asyncio.run(token_of(cred, graph_scope(sim)))


# --------------------------------------------------------------------------- admin consent


def browser() -> httpx.Client:
    return httpx.Client(verify=str(CA.ca_path), follow_redirects=False)


def redirect_query(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(CALLBACK + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def secret_token(sim: Simulator, tenant: str) -> httpx.Response:
    return httpx.post(
        f"{sim.base_url}/{tenant}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": IDS["fresh"],
            "client_secret": "fresh-secret",
            "scope": graph_scope(sim),
        },
        verify=str(CA.ca_path),
    )


def test_accepting_the_consent_page_redirects_back_and_consents(sim) -> None:
    sim.set_consent(OTHER_TENANT, IDS["fresh"], None)
    assert secret_token(sim, OTHER_TENANT).json()["error_codes"] == [700016]
    url = sim.admin_consent_url(IDS["fresh"], CALLBACK, state="s-123")
    with browser() as client:
        page = client.get(url)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        for fragment in ('id="accept"', 'id="cancel"', OTHER_TENANT, "Fabrikam", "User.Read.All"):
            assert fragment in page.text
        form = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        answer = client.post(
            url.split("?")[0],
            data=form | {"tenant": OTHER_TENANT, "account": "admin", "action": "accept"},
        )
    assert redirect_query(answer) == {
        "tenant": OTHER_TENANT,
        "admin_consent": "True",
        "state": "s-123",
        "scope": graph_scope(sim),
    }
    token = secret_token(sim, OTHER_TENANT)
    assert token.status_code == 200
    assert sorted(claims(token.json()["access_token"])["roles"]) == [
        "Organization.Read.All",
        "User.Read.All",
    ]


def test_cancel_and_planned_failures_redirect_with_the_error(sim) -> None:
    url = sim.admin_consent_url(IDS["fresh"], CALLBACK, state="s-9")
    form = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    with browser() as client:
        cancel = redirect_query(client.post(url.split("?")[0], data=form | {"action": "cancel"}))
        non_admin = redirect_query(
            client.post(
                url.split("?")[0],
                data=form | {"action": "accept", "tenant": OTHER_TENANT, "account": "user"},
            )
        )
        sim.consent.plan(outcome="app_blocked", auto=True, tenant_id=OTHER_TENANT)
        blocked = redirect_query(client.get(url))
    assert cancel["error"] == "access_denied" and cancel["error_subcode"] == "cancel"
    assert cancel["state"] == "s-9" and cancel["error_description"].startswith("AADSTS65004")
    assert non_admin["error"] == "access_denied"
    assert non_admin["error_description"].startswith("AADSTS90094")
    assert blocked["error"] == "unauthorized_client"
    assert blocked["error_description"].startswith("AADSTS7000112")
    assert [h.outcome for h in sim.consent.history] == ["cancel", "not_admin", "app_blocked"]


def test_an_unregistered_redirect_uri_shows_an_error_page_and_goes_nowhere(sim) -> None:
    with browser() as client:
        answer = client.get(sim.admin_consent_url(IDS["fresh"], "https://evil.example/cb"))
        unknown_app = client.get(sim.admin_consent_url(str(uuid.uuid4()), CALLBACK))
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert "AADSTS50011" in answer.text
    assert unknown_app.status_code == 400 and "AADSTS700016" in unknown_app.text


@pytest.mark.parametrize("effect", ["token", "graph"])
def test_a_new_consent_replicates_after_a_delay(sim, effect: str) -> None:
    sim.set_consent(OTHER_TENANT, IDS["fresh"], None)
    # Driven over the control API, as a standalone simulator would be.
    with browser() as client:
        planned = client.put(
            f"{sim.base_url}/_sim/consent",
            json={
                "tenant": OTHER_TENANT,
                "auto": True,
                "replicationDelay": 1.5,
                "replicationEffect": effect,
            },
        )
        assert planned.status_code == 204
        answer = client.get(sim.admin_consent_url(IDS["fresh"], CALLBACK, state="x"))
        assert redirect_query(answer)["tenant"] == OTHER_TENANT

    def graph_status() -> int:
        token = secret_token(sim, OTHER_TENANT)
        if token.status_code != 200:
            return token.json()["error_codes"][0]
        return httpx.get(
            f"{sim.base_url}/v1.0/users",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            verify=str(CA.ca_path),
        ).status_code

    assert graph_status() == (700016 if effect == "token" else 403)
    deadline = time.monotonic() + 15
    while graph_status() != 200:
        assert time.monotonic() < deadline, "the consent never replicated"
        time.sleep(0.2)


def test_redirect_uris_and_plans_can_be_set_over_the_control_api(sim) -> None:
    local = "http://localhost:7071/api/connect/callback"
    url = sim.admin_consent_url(IDS["fresh"], local, state="z")
    with browser() as client:
        assert client.get(url).status_code == 400  # not registered yet
        added = client.post(
            f"{sim.base_url}/_sim/apps/{IDS['fresh']}/redirectUris", json={"uri": local}
        )
        assert added.status_code == 204
        assert client.get(url).status_code == 200
        refused = client.post(
            f"{sim.base_url}/_sim/apps/{IDS['fresh']}/redirectUris", json={"uri": "http://x/cb"}
        )
        assert refused.status_code == 400 and "https" in refused.json()["error"]
        bad_plan = client.put(f"{sim.base_url}/_sim/consent", json={"outcome": "maybe"})
        assert bad_plan.status_code == 400 and "maybe" in bad_plan.json()["error"]
        sim.consent.plan(auto=True, outcome="cancel")
        answer = client.get(url)
    assert answer.headers["Location"].startswith(local + "?error=access_denied")
    assert client_history(sim) == ["cancel"]


def client_history(sim: Simulator) -> list[str]:
    with browser() as client:
        return [h["outcome"] for h in client.get(f"{sim.base_url}/_sim/consent").json()["history"]]
