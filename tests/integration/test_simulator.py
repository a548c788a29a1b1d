"""The simulator driven by the real SDKs: azure-identity, azure-keyvault-secrets, msgraph-sdk.

If these pass, the app's own clients can rely on the simulator behaving like the Microsoft
endpoints for the paths the app uses.
"""

# Trust must be set before any module imports aiohttp (see simulator/testing.py).
# ruff: noqa: E402
from __future__ import annotations

from simulator.testing import prepare_trust

CA = prepare_trust()

import asyncio
import base64
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.identity import ClientSecretCredential as SyncClientSecretCredential
from azure.identity.aio import ClientSecretCredential, DefaultAzureCredential
from azure.keyvault.secrets.aio import SecretClient
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph_core.authentication import AzureIdentityAuthenticationProvider

from simulator import Simulator, World

pytestmark = pytest.mark.integration

WORLD_FILE = Path(__file__).parents[1] / "fixtures" / "simulator_world.json"
ERROR_MAPPING: dict[str, Any] = {"4XX": ODataError, "5XX": ODataError}
UNKNOWN = "99999999-9999-4999-8999-999999999999"
CONSENTED = ["User.Read.All", "Organization.Read.All"]  # as in the world file
TRUST = ssl.create_default_context(cafile=str(CA.ca_path))


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(World.load(WORLD_FILE), ca=CA)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(autouse=True)
def clean(sim: Simulator) -> Iterator[None]:
    sim.faults.clear()
    sim.clear_requests()
    yield
    sim.faults.clear()


@pytest.fixture
def app(sim: Simulator) -> dict[str, str]:
    env = sim.environment()
    return {
        "tenant": env["ENTRA_TENANT_ID"],
        "client": env["ENTRA_CLIENT_ID"],
        "secret": sim.world.apps[0].secrets[0],
    }


def credential(sim: Simulator, app: dict[str, str], **changes: str) -> ClientSecretCredential:
    values = app | changes
    return ClientSecretCredential(
        values["tenant"], values["client"], values["secret"], authority=sim.base_url
    )


def adapter_for(sim: Simulator, cred: Any) -> GraphRequestAdapter:
    auth = AzureIdentityAuthenticationProvider(
        cred, scopes=[f"{sim.base_url}/.default"], allowed_hosts=["localhost"]
    )
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = f"{sim.base_url}/v1.0"
    return adapter


async def get_json(
    adapter: GraphRequestAdapter, url: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    request = RequestInformation()
    request.http_method = Method.GET
    request.url = url
    for name, value in (headers or {}).items():
        request.headers.try_add(name, value)
    body = await adapter.send_primitive_async(request, "bytes", ERROR_MAPPING)
    return json.loads(body)


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# ----------------------------------------------------------------------------- Entra tokens


def test_client_secret_credential_gets_a_token_with_the_consented_roles(sim, app) -> None:
    async def scenario() -> str:
        async with credential(sim, app) as cred:
            return (await cred.get_token(f"{sim.base_url}/.default")).token

    token = asyncio.run(scenario())
    assert claims(token)["roles"] == ["User.Read.All", "Organization.Read.All"]
    assert claims(token)["tid"] == app["tenant"]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"secret": "not-the-secret"}, "AADSTS7000215"),
        ({"tenant": UNKNOWN}, "AADSTS90002"),
        ({"client": UNKNOWN}, "AADSTS700016"),
    ],
)
def test_token_errors_surface_their_aadsts_code(sim, app, changes, code) -> None:
    async def scenario() -> None:
        async with credential(sim, app, **changes) as cred:
            await cred.get_token(f"{sim.base_url}/.default")

    with pytest.raises(ClientAuthenticationError) as raised:
        asyncio.run(scenario())
    assert code in str(raised.value)
    assert app["secret"] not in json.dumps([r.to_dict() for r in sim.requests])


def test_msal_credential_uses_discovery_on_the_simulator(sim, app) -> None:
    cred = SyncClientSecretCredential(
        app["tenant"],
        app["client"],
        app["secret"],
        authority=sim.base_url,
        disable_instance_discovery=True,
    )
    assert cred.get_token(f"{sim.base_url}/.default").token
    paths = [r.path for r in sim.requests]
    assert f"/{app['tenant']}/v2.0/.well-known/openid-configuration" in paths
    assert f"/{app['tenant']}/oauth2/v2.0/token" in paths


# -------------------------------------------------------------------------------- Key Vault


@pytest.fixture
def managed_identity_env(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in (
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
        "AZURE_FEDERATED_TOKEN_FILE",
        "MSI_ENDPOINT",
        "IMDS_ENDPOINT",
        "AZURE_USERNAME",
    ):
        monkeypatch.delenv(name, raising=False)
    env = sim.environment()
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_CLIENT_ID"):
        monkeypatch.setenv(name, env[name])
    return env


def test_secret_read_with_default_credential_via_managed_identity(
    sim, app, managed_identity_env
) -> None:
    async def scenario() -> tuple[str | None, Exception]:
        async with (
            DefaultAzureCredential() as cred,
            SecretClient(managed_identity_env["KEY_VAULT_URL"], cred) as secrets,
        ):
            value = (await secrets.get_secret("entra-client-secret")).value
            try:
                await secrets.get_secret("no-such-secret")
            except ResourceNotFoundError as error:
                return value, error
        raise AssertionError("an unknown secret was found")

    value, missing = asyncio.run(scenario())
    assert value == app["secret"]
    assert "SecretNotFound" in str(missing)
    msi = [r for r in sim.requests if r.surface == "msi"]
    assert msi and msi[0].query["client_id"] == managed_identity_env["AZURE_CLIENT_ID"]
    assert "X-IDENTITY-HEADER" not in {k.upper() for k in msi[0].headers}
    assert [r.status for r in sim.requests if r.surface == "vault"] == [401, 200, 404]


def test_vault_forbids_an_identity_that_is_not_a_reader(sim, app) -> None:
    async def scenario() -> None:
        async with credential(sim, app) as cred, SecretClient(sim.vault_url, cred) as secrets:
            await secrets.get_secret("entra-client-secret")

    with pytest.raises(HttpResponseError) as raised:
        asyncio.run(scenario())
    assert raised.value.status_code == 403
    assert "not authorized" in str(raised.value)


def test_managed_identity_endpoint_rejects_bad_callers(sim) -> None:
    env = sim.environment()
    params = {
        "api-version": "2019-08-01",
        "resource": sim.base_url,
        "client_id": env["AZURE_CLIENT_ID"],
    }
    with httpx.Client(verify=TRUST) as client:
        url = env["IDENTITY_ENDPOINT"]
        assert client.get(url, params=params).status_code == 400
        wrong = client.get(url, params=params, headers={"X-IDENTITY-HEADER": "wrong"})
        assert wrong.status_code == 401
        good = {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]}
        assert (
            client.get(url, params=params | {"client_id": UNKNOWN}, headers=good).status_code == 400
        )
        token = client.get(url, params=params, headers=good).json()
    assert token["client_id"] == env["AZURE_CLIENT_ID"] and int(token["expires_on"]) > 0


# ------------------------------------------------------------------------------------ Graph


def test_users_are_listed_page_by_page(sim, app) -> None:
    select = "id,displayName,proxyAddresses,onPremisesExtensionAttributes"

    async def scenario() -> list[dict[str, Any]]:
        async with credential(sim, app) as cred:
            adapter = adapter_for(sim, cred)
            pages = []
            url: str | None = f"{sim.base_url}/v1.0/users?$select={select}&$top=2"
            while url:
                page = await get_json(adapter, url)
                pages.append(page)
                url = page.get("@odata.nextLink")
                if url:
                    assert f"$select={select}" in url and "$skiptoken=" in url
            return pages

    pages = asyncio.run(scenario())
    ids = [u["id"] for page in pages for u in page["value"]]
    assert len(pages) == 3 and all(len(p["value"]) == 2 for p in pages)
    assert ids == sorted(ids) and len(set(ids)) == 6
    assert set(pages[0]["value"][0]) == set(select.split(","))
    assert "@odata.nextLink" not in pages[-1]


def test_default_properties_without_select_and_typed_client(sim, app) -> None:
    async def scenario() -> tuple[dict[str, Any], Any, Any]:
        async with credential(sim, app) as cred:
            adapter = adapter_for(sim, cred)
            raw = await get_json(adapter, f"{sim.base_url}/v1.0/users?$top=1")
            client = GraphServiceClient(request_adapter=adapter)
            return raw, await client.organization.get(), await client.users.get()

    raw, organization, users = asyncio.run(scenario())
    assert set(raw["value"][0]) == {
        "businessPhones",
        "displayName",
        "givenName",
        "id",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "userPrincipalName",
    }
    assert organization.value[0].display_name == "Contoso Ltd"
    assert len(users.value) == 6


def test_pages_stay_consistent_when_users_change_between_them(sim, app) -> None:
    tenant = app["tenant"]
    late = {
        "id": "ffffffff-0000-4000-8000-000000000000",
        "userPrincipalName": "late@contoso.com",
        "displayName": "Late Joiner",
    }

    async def scenario() -> list[str]:
        async with credential(sim, app) as cred:
            adapter = adapter_for(sim, cred)
            first = await get_json(adapter, f"{sim.base_url}/v1.0/users?$select=id&$top=3")
            sim.remove_user(tenant, "0a000000-0000-4000-8000-000000000005")
            sim.upsert_user(tenant, late)
            sim.patch_user(tenant, "0a000000-0000-4000-8000-000000000001", {"jobTitle": "CEO"})
            rest = await get_json(adapter, first["@odata.nextLink"])
            return [u["id"] for u in first["value"] + rest["value"]]

    original = sim.world.tenants[0].users
    try:
        ids = asyncio.run(scenario())
    finally:
        sim.remove_user(tenant, late["id"])
        sim.upsert_user(tenant, original[4])
        sim.patch_user(tenant, original[0]["id"], {"jobTitle": original[0]["jobTitle"]})
    assert ids == [u["id"] for u in original if not u["id"].endswith("5")] + [late["id"]]


def test_throttled_request_is_retried_after_retry_after(sim, app) -> None:
    sim.faults.throttle(1, retry_after=1)

    async def scenario() -> dict[str, Any]:
        async with credential(sim, app) as cred:
            return await get_json(adapter_for(sim, cred), f"{sim.base_url}/v1.0/users?$top=1")

    assert len(asyncio.run(scenario())["value"]) == 1
    graph = [(r.status, r.fault) for r in sim.requests if r.surface == "graph"]
    assert graph == [(429, "throttle"), (200, None)]


def test_dropped_connection_outage_and_latency_are_injected_and_logged(sim, app) -> None:
    sim.faults.drop_connection(1)
    sim.faults.unavailable(1, retry_after=2)
    sim.faults.latency(5)
    with httpx.Client(verify=TRUST) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(f"{sim.base_url}/v1.0/users")
        outage = client.get(f"{sim.base_url}/v1.0/users")
        client.get(f"{sim.base_url}/_sim/health")  # the control API is never faulted
    assert outage.status_code == 503 and outage.headers["Retry-After"] == "2"
    assert outage.json()["error"]["code"] == "ServiceUnavailable"
    assert [(r.status, r.fault) for r in sim.requests] == [
        (None, "latency+drop_connection"),
        (503, "latency+unavailable"),
        (200, None),
    ]


@pytest.mark.parametrize(
    ("query", "headers", "status", "code"),
    [
        ("$select=displayName,costCentre", {}, 400, "Request_BadRequest"),
        ("$filter=userType ne 'Guest'", {}, 400, "Request_UnsupportedQuery"),
        ("$select=id,aboutMe", {}, 501, "NotImplemented"),
        ("$top=1000", {}, 400, "Request_BadRequest"),
    ],
)
def test_graph_rejects_queries_like_graph(sim, app, query, headers, status, code) -> None:
    async def scenario() -> None:
        async with credential(sim, app) as cred:
            await get_json(adapter_for(sim, cred), f"{sim.base_url}/v1.0/users?{query}", headers)

    with pytest.raises(ODataError) as raised:
        asyncio.run(scenario())
    assert raised.value.response_status_code == status
    assert raised.value.error.code == code


def test_advanced_query_with_consistency_level_counts(sim, app) -> None:
    async def scenario() -> dict[str, Any]:
        async with credential(sim, app) as cred:
            return await get_json(
                adapter_for(sim, cred),
                f"{sim.base_url}/v1.0/users?$filter=userType ne 'Guest' and "
                "assignedLicenses/$count ne 0&$count=true&$select=id,mail",
                {"ConsistencyLevel": "eventual"},
            )

    page = asyncio.run(scenario())
    assert page["@odata.count"] == 3 == len(page["value"])


def test_missing_consent_is_forbidden(sim, app) -> None:
    sim.set_consent(app["tenant"], app["client"], [])

    async def scenario() -> None:
        async with credential(sim, app) as cred:
            await get_json(adapter_for(sim, cred), f"{sim.base_url}/v1.0/users")

    try:
        with pytest.raises(ODataError) as raised:
            asyncio.run(scenario())
    finally:
        sim.set_consent(app["tenant"], app["client"], CONSENTED)
    assert raised.value.response_status_code == 403
    assert raised.value.error.code == "Authorization_RequestDenied"


def test_bad_tokens_writes_and_control_api(sim, app) -> None:
    async def token() -> str:
        async with credential(sim, app) as cred:
            return (await cred.get_token(f"{sim.base_url}/.default")).token

    bearer = {"Authorization": f"Bearer {asyncio.run(token())}"}
    with httpx.Client(verify=TRUST, base_url=sim.base_url) as client:
        assert (
            client.get("/v1.0/users", headers={"Authorization": "Bearer x.y.z"}).json()["error"][
                "code"
            ]
            == "InvalidAuthenticationToken"
        )
        written = client.patch(
            "/v1.0/users/0a000000-0000-4000-8000-000000000001",
            headers=bearer,
            json={"jobTitle": "x"},
        )
        assert written.status_code == 405
        tampered = client.get("/v1.0/users?$top=1&$skiptoken=AAAA", headers=bearer)
        assert tampered.status_code == 400
        user = client.get(
            "/v1.0/users/sean.o'brien@contoso.com?$select=id,mail", headers=bearer
        ).json()
        assert user["mail"] == "sean.o'brien@contoso.com"
        assert client.post("/_sim/faults", json={"kind": "throttle", "count": 1}).status_code == 204
        assert client.get("/v1.0/users", headers=bearer).status_code == 429
        assert (
            client.put(
                f"/_sim/tenants/{app['tenant']}/users/{UNKNOWN}",
                json={"userPrincipalName": "new@contoso.com"},
            ).status_code
            == 204
        )
        assert client.get(f"/v1.0/users/{UNKNOWN}", headers=bearer).status_code == 200
        assert client.delete(f"/_sim/tenants/{app['tenant']}/users/{UNKNOWN}").status_code == 204
        assert client.delete(f"/_sim/tenants/{app['tenant']}/users/{UNKNOWN}").status_code == 404
        logged = client.get("/_sim/requests").json()["value"]
        sim.expire_tokens()
        expired = client.get("/v1.0/users", headers=bearer).json()["error"]["message"]
    assert "expired" in expired
    assert ("PATCH", 405) in {(r["method"], r["status"]) for r in logged}
    assert bearer["Authorization"] not in json.dumps(logged)


def bearer_for(sim: Simulator, app: dict[str, str], **changes: str) -> dict[str, str]:
    async def token() -> str:
        async with credential(sim, app, **changes) as cred:
            return (await cred.get_token(f"{sim.base_url}/.default")).token

    return {"Authorization": f"Bearer {asyncio.run(token())}"}


def test_malformed_listing_pages_are_served_on_demand(sim, app) -> None:
    bearer = bearer_for(sim, app)
    url = "/v1.0/users?$select=id,mail&$top=2"
    with httpx.Client(verify=TRUST, base_url=sim.base_url, headers=bearer) as client:

        def altered(form: str) -> httpx.Response:
            fault = {"kind": "malformedPage", "form": form}
            assert client.post("/_sim/faults", json=fault).status_code == 204
            return client.get(url)

        empty = altered("empty_body")
        assert (empty.status_code, empty.content) == (200, b"")
        assert altered("no_content").status_code == 204
        no_value = altered("no_value").json()
        assert "value" not in no_value and "@odata.nextLink" in no_value
        assert isinstance(altered("value_not_list").json()["value"], dict)
        assert "id" not in altered("item_without_id").json()["value"][0]
        foreign = altered("foreign_next_link").json()["@odata.nextLink"]
        assert httpx.URL(foreign).host == "graph.example.net" and "$skiptoken=" in foreign
        repeated = altered("repeat_next_link")
        assert repeated.json()["@odata.nextLink"] == str(repeated.request.url)
        assert client.get(url).json()["value"]  # each fault answers once
        refused = client.post("/_sim/faults", json={"kind": "malformedPage", "form": "odd"})
        assert refused.status_code == 400


def test_page_tokens_expire_on_demand_and_with_time(sim, app) -> None:
    bearer = bearer_for(sim, app)
    with httpx.Client(verify=TRUST, base_url=sim.base_url, headers=bearer) as client:
        assert client.post("/_sim/faults", json={"kind": "expiredPageToken"}).status_code == 204
        first = client.get("/v1.0/users?$top=2")  # no page token: the fault waits
        assert first.status_code == 200
        next_link = first.json()["@odata.nextLink"]
        expired = client.get(next_link)
        assert expired.status_code == 400
        assert expired.json()["error"]["code"] == "Directory_ExpiredPageToken"
        assert client.get(next_link).status_code == 200  # one expiry, as asked

        lifetime = {"kind": "pageTokenLifetime", "seconds": 0}
        assert client.post("/_sim/faults", json=lifetime).status_code == 204
        assert client.get("/_sim/faults").json()["pageTokenLifetime"] == 0
        assert client.get(next_link).json()["error"]["code"] == "Directory_ExpiredPageToken"
        forever = {"kind": "pageTokenLifetime", "seconds": None}
        assert client.post("/_sim/faults", json=forever).status_code == 204
        assert client.get(next_link).status_code == 200


def test_organization_needs_organization_read_all(sim, app) -> None:
    sim.set_consent(app["tenant"], app["client"], ["User.Read.All"])
    try:
        bearer = bearer_for(sim, app)
        with httpx.Client(verify=TRUST, base_url=sim.base_url, headers=bearer) as client:
            organization = client.get("/v1.0/organization")
            users = client.get("/v1.0/users?$top=1")
    finally:
        sim.set_consent(app["tenant"], app["client"], CONSENTED)
    assert organization.status_code == 403
    assert organization.json()["error"]["code"] == "Authorization_RequestDenied"
    assert users.status_code == 200


def test_a_b2c_tenant_refuses_advanced_queries(sim, app) -> None:
    b2c = "0b2c0b2c-0000-4000-8000-000000000b2c"
    sim.add_tenant(
        {
            "id": b2c,
            "displayName": "Woodgrove B2C",
            "tenantType": "AADB2C",
            "verifiedDomains": [{"name": "woodgroveb2c.onmicrosoft.com", "isDefault": True}],
            "consents": {app["client"]: CONSENTED},
            "users": [{"id": UNKNOWN, "userPrincipalName": "a@woodgroveb2c.onmicrosoft.com"}],
        }
    )
    bearer = bearer_for(sim, app, tenant=b2c)
    advanced = {**bearer, "ConsistencyLevel": "eventual"}
    query = "/v1.0/users?$filter=userType eq 'Member' or userType eq null"
    with httpx.Client(verify=TRUST, base_url=sim.base_url) as client:
        refused = client.get(query + "&$count=true", headers=advanced)
        counted = client.get("/v1.0/users/$count", headers=bearer)
        default = client.get("/v1.0/users?$filter=startswith(displayName,'a')", headers=bearer)
        organization = client.get("/v1.0/organization", headers=bearer).json()
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "Request_BadRequest"
    assert "not supported by the service" in refused.json()["error"]["message"]
    assert counted.status_code == 400 and "$count" in counted.json()["error"]["message"]
    assert default.status_code == 200
    assert organization["value"][0]["tenantType"] == "AADB2C"


def test_lifecycle_dates_come_back_empty_without_their_permission(sim, app) -> None:
    dated = "0a000000-0000-4000-8000-0000000000d7"
    sim.upsert_user(
        app["tenant"],
        {
            "id": dated,
            "userPrincipalName": "dated@contoso.com",
            "employeeHireDate": "2020-01-01T00:00:00Z",
            "employeeLeaveDateTime": "2030-01-01T00:00:00Z",
        },
    )
    url = f"/v1.0/users/{dated}?$select=id,employeeHireDate,employeeLeaveDateTime"
    try:
        with httpx.Client(verify=TRUST, base_url=sim.base_url) as client:
            hidden = client.get(url, headers=bearer_for(sim, app)).json()
            sim.set_consent(
                app["tenant"], app["client"], [*CONSENTED, "User-LifeCycleInfo.Read.All"]
            )
            shown = client.get(url, headers=bearer_for(sim, app)).json()
    finally:
        sim.set_consent(app["tenant"], app["client"], CONSENTED)
        sim.remove_user(app["tenant"], dated)
    assert hidden["employeeHireDate"] is None and hidden["employeeLeaveDateTime"] is None
    assert shown["employeeHireDate"] == "2020-01-01T00:00:00Z"
    assert shown["employeeLeaveDateTime"] == "2030-01-01T00:00:00Z"
