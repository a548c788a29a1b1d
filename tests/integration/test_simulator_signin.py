"""The simulator's sign-in (simulator/signin.py): the authorize endpoint, the code redeemed once
with its PKCE verifier for an ID token signed with the keys the discovery document names, the
admin roles it carries, the sign-in that the admin-consent page honours, and the ID token
defects tests plan. Plain HTTP against the shared simulator (tests/conftest.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ssl
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from simulator.signin import GLOBAL_ADMINISTRATOR
from tests.conftest import CA

pytestmark = pytest.mark.integration
CALLBACK = "https://sync.example.com/api/connect/callback"
VERIFIER = "v" * 43
TRUST = ssl.create_default_context(cafile=str(CA.ca_path))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def app(simulator):
    client = simulator.world.apps[0]
    simulator.add_redirect_uri(client.client_id, CALLBACK)
    yield client
    simulator.signin.clear()
    simulator.consent.clear()


def signed_in(simulator, app, http: httpx.Client, tenant_id: str, user_id: str) -> str:
    simulator.signin.plan(tenant_id=tenant_id, user_id=user_id, auto=True)
    answer = http.get(
        f"{simulator.base_url}/organizations/oauth2/v2.0/authorize",
        params={
            "client_id": app.client_id,
            "response_type": "code",
            "redirect_uri": CALLBACK,
            "scope": "openid profile",
            "state": "s-1",
            "nonce": "n-1",
            "code_challenge": b64(hashlib.sha256(VERIFIER.encode()).digest()),
            "code_challenge_method": "S256",
        },
    )
    assert answer.status_code == 302, answer.text
    query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
    assert query["state"] == "s-1" and answer.headers["location"].startswith(CALLBACK + "?")
    return query["code"]


def redeem(simulator, app, code: str, verifier: str = VERIFIER) -> httpx.Response:
    return httpx.post(
        f"{simulator.base_url}/organizations/oauth2/v2.0/token",
        data={
            "grant_type": "authorization_code",
            "client_id": app.client_id,
            "client_secret": app.password_credentials[0].value,
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
        verify=TRUST,
    )


def test_a_code_is_redeemed_once_with_its_verifier_for_a_signed_id_token(simulator, app, tenant):
    user = tenant.users[0]
    simulator.signin.set_roles(tenant.id, user["id"], (GLOBAL_ADMINISTRATOR,))
    with httpx.Client(verify=TRUST) as http:
        wrong = redeem(
            simulator, app, signed_in(simulator, app, http, tenant.id, user["id"]), "x" * 43
        )
        assert wrong.status_code == 400 and wrong.json()["error_codes"] == [501481]
        code = signed_in(simulator, app, http, tenant.id, user["id"])
    answer = redeem(simulator, app, code)
    assert answer.status_code == 200, answer.text
    discovery = httpx.get(
        f"{simulator.base_url}/{tenant.id}/v2.0/.well-known/openid-configuration",
        verify=TRUST,
    ).json()
    keys = httpx.get(discovery["jwks_uri"], verify=TRUST).json()["keys"]
    claims = jwt.decode(
        answer.json()["id_token"],
        key=jwt.PyJWK(keys[0]).key,
        algorithms=["RS256"],
        audience=app.client_id,
        issuer=discovery["issuer"],
    )
    assert claims["tid"] == tenant.id and claims["oid"] == user["id"] and claims["nonce"] == "n-1"
    assert claims["preferred_username"] == user["userPrincipalName"]
    assert claims["wids"] == [GLOBAL_ADMINISTRATOR]
    assert redeem(simulator, app, code).json()["error_codes"] == [54005]  # once


def test_an_admin_of_one_tenant_is_nobody_at_another_tenants_consent(simulator, app, tenant):
    admin = tenant.users[0]["id"]
    simulator.signin.set_roles(tenant.id, admin, (GLOBAL_ADMINISTRATOR,))
    other = simulator.world.tenants[0].id
    with httpx.Client(verify=TRUST) as http:
        signed_in(simulator, app, http, tenant.id, admin)  # the session cookie is kept
        answers = {}
        for target in (other, tenant.id):
            simulator.consent.plan(tenant_id=target, auto=True)
            url = simulator.admin_consent_url(app.client_id, CALLBACK, state="c", tenant=target)
            location = http.get(url).headers["location"]
            answers[target] = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert "AADSTS90094" in answers[other]["error_description"]
    assert answers[tenant.id]["admin_consent"] == "True"


@pytest.mark.parametrize("forgery", ["template_issuer", "alg_none", "hs256", "unknown_kid"])
def test_a_planned_forgery_is_the_next_id_token(simulator, app, tenant, forgery):
    user = tenant.users[0]["id"]
    with httpx.Client(verify=TRUST) as http:
        code = signed_in(simulator, app, http, tenant.id, user)
    simulator.signin.plan(id_token_defect=forgery)
    token = redeem(simulator, app, code).json()["id_token"]
    published = httpx.get(
        f"{simulator.base_url}/{tenant.id}/discovery/v2.0/keys", verify=TRUST
    ).json()["keys"][0]
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["tid"] == tenant.id and claims["aud"] == app.client_id
    body, signature = token.rsplit(".", 1)
    if forgery == "template_issuer":
        assert claims["iss"] == f"{simulator.base_url}/{{tenantid}}/v2.0"
        jwt.decode(
            token, key=jwt.PyJWK(published).key, algorithms=["RS256"], audience=app.client_id
        )
    elif forgery == "alg_none":
        assert header["alg"] == "none" and signature == ""
    elif forgery == "hs256":
        pem = jwt.PyJWK(published).key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        mac = hmac.new(pem, body.encode(), hashlib.sha256).digest()
        assert header["alg"] == "HS256" and signature == b64(mac)
    else:
        assert header["alg"] == "RS256" and header["kid"] != published["kid"]


@pytest.mark.parametrize("defect", ["audience", "nonce", "issuer", "signature", "expired"])
def test_a_planned_defect_is_in_the_next_id_token(simulator, app, tenant, defect):
    user = tenant.users[0]["id"]
    with httpx.Client(verify=TRUST) as http:
        code = signed_in(simulator, app, http, tenant.id, user)
    simulator.signin.plan(id_token_defect=defect)
    token = redeem(simulator, app, code).json()["id_token"]
    keys = httpx.get(f"{simulator.base_url}/{tenant.id}/discovery/v2.0/keys", verify=TRUST).json()[
        "keys"
    ]
    unverified = jwt.decode(token, options={"verify_signature": False})
    expected = {
        "audience": lambda c: c["aud"] != app.client_id,
        "nonce": lambda c: c["nonce"] != "n-1",
        "issuer": lambda c: c["iss"] != f"{simulator.base_url}/{tenant.id}/v2.0",
        "expired": lambda c: c["exp"] < time.time(),
        "signature": lambda c: True,
    }[defect]
    assert expected(unverified)
    if defect == "signature":
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(
                token,
                key=jwt.PyJWK(keys[0]).key,
                algorithms=["RS256"],
                options={"verify_aud": False},
            )
