"""The world of the credential tests: the app registration with every kind of credential (a
certificate, one expired, a federated identity and its wrong variants, secrets about to expire)
and the Key Vault secrets that carry them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from simulator import World
from simulator.certs import make_client_certificate
from simulator.generator import GeneratorOptions, generate_world

EXCHANGE = "api://AzureADTokenExchange"
NOW = dt.datetime.now(dt.UTC)
GOOD_CERT = make_client_certificate("sync good")
EXPIRED_CERT = make_client_certificate(
    "sync expired", not_before=NOW - dt.timedelta(days=400), not_after=NOW - dt.timedelta(days=1)
)
STRANGER_CERT = make_client_certificate("not registered")
APPS = ("fic_issuer", "fic_audience", "fic_subject", "no_fic", "expired_secret")
IDS = {name: str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.kinds.test")) for name in APPS}


def pem_secret(certificate: Any, expires: dt.datetime) -> dict[str, Any]:
    return {
        "value": certificate.pem,
        "contentType": "application/x-pem-file",
        "expires": expires.replace(microsecond=0).isoformat(),
    }


def build_world() -> World:
    data = generate_world(GeneratorOptions(users=12, seed=11, tenant_id=str(uuid.uuid4())))
    identity = data["managedIdentity"]
    # The subject of the identity's tokens when the world names no principalId (README).
    subject = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{identity['tenantId']}/{identity['clientId']}"))
    issuer = "{authority}/" + identity["tenantId"] + "/v2.0"
    fic = {"name": "function-app", "issuer": issuer, "subject": subject, "audiences": [EXCHANGE]}
    app = data["apps"][0]
    app["keyCredentials"] = [
        {"key": GOOD_CERT.certificate_pem},
        {"key": EXPIRED_CERT.certificate_pem},
    ]
    app["federatedIdentityCredentials"] = [fic]
    extra = {
        "fic_issuer": {
            "federatedIdentityCredentials": [fic | {"issuer": "https://elsewhere/v2.0"}]
        },
        "fic_audience": {"federatedIdentityCredentials": [fic | {"audiences": ["api://other"]}]},
        "fic_subject": {"federatedIdentityCredentials": [fic | {"subject": str(uuid.uuid4())}]},
        "no_fic": {"secrets": ["some-secret"]},
        "expired_secret": {
            "secrets": [{"value": "old-secret", "endDateTime": "2020-01-01T00:00:00Z"}]
        },
    }
    for name, fields in extra.items():
        data["apps"].append({"clientId": IDS[name], "displayName": name} | fields)
        data["tenants"][0]["consents"][IDS[name]] = ["User.Read.All", "Organization.Read.All"]
    secrets = data["keyVault"]["secrets"]
    secrets["soon-cert"] = pem_secret(GOOD_CERT, NOW + dt.timedelta(days=20))
    secrets["good-cert"] = pem_secret(GOOD_CERT, NOW + dt.timedelta(days=200))
    secrets["stranger-cert"] = pem_secret(STRANGER_CERT, NOW + dt.timedelta(days=200))
    secrets["expired-cert"] = pem_secret(EXPIRED_CERT, NOW + dt.timedelta(days=200))
    secrets["old-secret"] = {"value": "old-secret"}
    secrets["soon-secret"] = {
        "value": app["secrets"][0],
        "expires": (NOW + dt.timedelta(days=3)).replace(microsecond=0).isoformat(),
    }
    return World.from_dict(data)
