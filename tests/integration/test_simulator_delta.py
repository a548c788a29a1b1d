"""The simulator's ``/users/delta`` through plain HTTP and through msgraph-sdk's request adapter.

What Graph documents (user-delta.md, delta-query-overview.md, delta-query-users.md; summed up in
PLATFORM-NOTES "Microsoft Graph: delta") is what these tests hold the simulator to.
"""

# Trust must be set before any module imports aiohttp (see simulator/testing.py).
# ruff: noqa: E402
from __future__ import annotations

from simulator.testing import prepare_trust

CA = prepare_trust()

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.identity import ClientSecretCredential as SyncClientSecretCredential
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.api_client_builder import register_default_deserializer
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from msgraph import GraphRequestAdapter
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph_core.authentication import AzureIdentityAuthenticationProvider

from simulator import Simulator, World
from simulator.delta_plan import TOKEN_LIFETIME_SECONDS
from simulator.generator import GeneratorOptions, generate_world
from tests.integration import simulator_http
from tests.integration.simulator_http import SELECT, TRUST, fresh_user, latest, one_round

pytestmark = pytest.mark.integration
client = simulator_http.client  # the token-bearing HTTP client, on this module's simulator

ERROR_MAPPING: dict[str, Any] = {"4XX": ODataError, "5XX": ODataError}


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(World.from_dict(generate_world(GeneratorOptions(12, seed=77))), ca=CA)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(autouse=True)
def clean(sim: Simulator) -> Iterator[None]:
    sim.delta.clear()
    sim.faults.clear()
    yield
    sim.delta.clear()


@pytest.fixture(scope="module")
def tenant(sim: Simulator) -> str:
    return sim.world.tenants[0].id


def listed_ids(client: httpx.Client) -> list[str]:
    body = client.get("/v1.0/users?$top=999&$select=id").json()
    assert "@odata.nextLink" not in body
    return sorted(u["id"] for u in body["value"])


def test_latest_answers_no_users_and_a_link_that_reports_only_later_changes(
    sim, tenant, client
) -> None:
    link = latest(client)
    items, _, link = one_round(client, link)
    assert items == []

    user_id = sim.world.tenants[0].users[3]["id"]
    sim.patch_user(tenant, user_id, {"department": "Moved"})
    items, _, link = one_round(client, link)
    assert [i["id"] for i in items] == [user_id]
    assert one_round(client, link)[0] == []


def test_initial_round_pages_through_every_user_once(sim, tenant, client) -> None:
    sim.delta.page_size(5)
    sim.delta.empty_pages(1)
    items, pages, link = one_round(client, f"/v1.0/users/delta?$select={SELECT}")
    ids = listed_ids(client)
    assert sorted(i["id"] for i in items) == ids
    assert pages == 1 + -(-len(ids) // 5)  # an empty page with a nextLink, then pages of 5
    assert all(set(i) == {"id", "displayName", "department", "accountEnabled"} for i in items)
    assert "$deltatoken=" in link
    assert one_round(client, link)[0] == []


def test_updates_carry_every_selected_property_and_unselected_changes_are_silent(
    sim, tenant, client
) -> None:
    link = latest(client)
    user = sim.world.tenants[0].users[4]
    sim.patch_user(tenant, user["id"], {"jobTitle": "Not selected", "mobilePhone": "+1 555"})
    items, _, link = one_round(client, link)
    assert items == []

    sim.patch_user(tenant, user["id"], {"department": "Finance"})
    added = fresh_user(sim, tenant)
    items, _, link = one_round(client, link)
    by_id = {i["id"]: i for i in items}
    assert set(by_id) == {user["id"], added}
    assert by_id[user["id"]] == {
        "id": user["id"],
        "displayName": user["displayName"],
        "department": "Finance",
        "accountEnabled": user["accountEnabled"],
    }
    assert "@removed" not in by_id[added]

    sim.patch_user(tenant, added, {"department": None, "displayName": "Renamed"})
    items, _, link = one_round(client, link)
    # A property never set (or cleared) is omitted from an updated item, not sent as null.
    assert items == [{"id": added, "displayName": "Renamed", "accountEnabled": True}]


def test_soft_delete_restore_and_hard_delete(sim, tenant, client) -> None:
    soft, hard = fresh_user(sim, tenant), fresh_user(sim, tenant)
    link = latest(client)
    sim.remove_user(tenant, soft)
    sim.remove_user(tenant, hard, permanent=True)
    items, _, link = one_round(client, link)
    assert sorted(items, key=lambda i: i["id"] != soft) == [
        {"id": soft, "@removed": {"reason": "changed"}},
        {"id": hard, "@removed": {"reason": "deleted"}},
    ]
    assert client.get(f"/v1.0/users/{soft}").status_code == 404

    sim.restore_user(tenant, soft)
    items, _, link = one_round(client, link)
    assert len(items) == 1 and items[0]["id"] == soft and "@removed" not in items[0]
    assert items[0]["displayName"] == "New Hire"

    sim.remove_user(tenant, soft)
    sim.remove_user(tenant, soft, permanent=True)  # purged from the deleted items
    items, _, _ = one_round(client, link)
    assert items == [{"id": soft, "@removed": {"reason": "deleted"}}]


def test_a_user_repeated_within_a_round_comes_last_in_its_latest_state(sim, tenant, client) -> None:
    # Rounds are ordered by id: this user comes on the first page, the other on the second.
    user_id = fresh_user(sim, tenant, "00000000-0000-4000-8000-" + uuid.uuid4().hex[:12])
    other = fresh_user(sim, tenant, "ffffffff-ffff-4fff-8fff-" + uuid.uuid4().hex[:12])
    link = latest(client)
    sim.patch_user(tenant, user_id, {"department": "First"})
    sim.patch_user(tenant, other, {"department": "Other"})
    sim.delta.page_size(1)
    sim.delta.repeat(user_id)
    first = client.get(link).json()
    assert [(i["id"], i["department"]) for i in first["value"]] == [(user_id, "First")]
    sim.patch_user(tenant, user_id, {"department": "Second"})
    rest, _, _ = one_round(client, first["@odata.nextLink"])
    items = first["value"] + rest
    assert [(i["id"], i["department"]) for i in items] == [
        (user_id, "First"),
        (other, "Other"),
        (user_id, "Second"),
    ]


def test_tokens_expire_on_demand_with_410_or_400(sim, tenant, client) -> None:
    link = latest(client)
    sim.delta.expire_tokens(1, status=410)
    gone = client.get(link)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "syncStateNotFound"
    restart = gone.headers["Location"]
    assert "/v1.0/users/delta?" in restart and "$deltatoken" not in restart
    assert "displayName" in restart  # the same $select
    items, _, _ = one_round(client, restart)
    assert sorted(i["id"] for i in items) == listed_ids(client)  # a fresh initial round

    sim.delta.expire_tokens(1, status=400)
    bad = client.get(link)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "syncStateNotFound"
    assert client.get(link).status_code == 200  # one request only


def test_tokens_expire_after_seven_days_of_simulated_time(sim, client) -> None:
    link = latest(client)
    sim.delta.advance_clock(TOKEN_LIFETIME_SECONDS - 3600)
    assert client.get(link).status_code == 200
    sim.delta.advance_clock(7200)
    answer = client.get(link)
    assert answer.status_code == 410 and answer.json()["error"]["code"] == "syncStateNotFound"
    assert client.get(latest(client)).status_code == 200  # a new link is stamped with the new time


@pytest.mark.parametrize(
    "query",
    [
        "$top=5",
        "$orderby=displayName",
        "$expand=manager",
        "$filter=displayName eq 'x'",
        "$filter=id eq 'a' and id eq 'b'",
        "$filter=" + " or ".join(f"id eq '{i}'" for i in range(51)),
    ],
)
def test_query_options_delta_refuses(client, query: str) -> None:
    answer = client.get(f"/v1.0/users/delta?{query}")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "Request_UnsupportedQuery" and error["message"]
    assert set(error["innerError"]) >= {"date", "request-id", "client-request-id"}


def test_id_filter_limits_the_round_and_its_links(sim, tenant, client) -> None:
    users = sim.world.tenants[0].users
    wanted = [users[1]["id"], users[2]["id"]]
    filter_ = " or ".join(f"id eq '{i}'" for i in wanted)
    items, _, link = one_round(client, f"/v1.0/users/delta?$filter={filter_}&$select={SELECT}")
    assert sorted(i["id"] for i in items) == sorted(wanted)
    sim.patch_user(tenant, users[5]["id"], {"department": "Elsewhere"})
    sim.patch_user(tenant, users[1]["id"], {"department": "Here"})
    items, _, _ = one_round(client, link)
    assert [i["id"] for i in items] == [users[1]["id"]]


def test_a_link_from_another_tenant_or_tampered_is_refused(sim, tenant, client) -> None:
    other = generate_world(GeneratorOptions(3, seed=78, client_id=sim.world.apps[0].client_id))[
        "tenants"
    ][0]
    sim.add_tenant(other)
    app = sim.world.apps[0]
    credential = SyncClientSecretCredential(
        other["id"],
        app.client_id,
        app.secrets[0],
        authority=sim.base_url,
        disable_instance_discovery=True,
    )
    token = credential.get_token(f"{sim.base_url}/.default").token
    link = latest(client)
    with httpx.Client(verify=TRUST, headers={"Authorization": f"Bearer {token}"}) as foreign:
        answer = foreign.get(link)
    assert answer.status_code == 410 and answer.json()["error"]["code"] == "syncStateNotFound"
    tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    assert client.get(tampered).status_code == 410


def test_control_api_drives_deletes_restores_and_delta_knobs(sim, tenant, client) -> None:
    user_id = fresh_user(sim, tenant)
    link = latest(client)
    base = f"/_sim/tenants/{tenant}/users/{user_id}"
    assert client.delete(f"{base}?permanent=maybe").status_code == 400
    assert client.delete(base).status_code == 204
    assert client.post(f"{base}/restore").status_code == 204
    assert client.post(f"{base}/restore").status_code == 404  # not deleted any more
    items, _, link = one_round(client, link)
    assert [i["id"] for i in items] == [user_id] and "@removed" not in items[0]
    assert client.delete(f"{base}?permanent=true").status_code == 204

    assert client.post("/_sim/delta", json={"kind": "expireTokens", "status": 400}).is_success
    assert client.post("/_sim/delta", json={"kind": "pageSize", "size": 1}).is_success
    assert client.post("/_sim/delta", json={"kind": "emptyPages", "count": 1}).is_success
    assert client.post("/_sim/delta", json={"kind": "repeat", "userId": user_id}).is_success
    assert client.post("/_sim/delta", json={"kind": "advanceClock", "seconds": 1}).is_success
    described = client.get("/_sim/delta").json()
    assert described["pageSize"] == 1 and described["emptyPages"] == 1
    assert described["expiries"] == [{"count": 1, "status": 400}]
    assert client.get(link).status_code == 400
    assert (
        client.post("/_sim/delta", json={"kind": "expireTokens", "status": 418}).status_code == 400
    )
    assert client.post("/_sim/delta", json={"kind": "pageSize"}).status_code == 400
    assert client.post("/_sim/delta", json={"kind": "rewind"}).status_code == 400
    assert client.delete("/_sim/delta").status_code == 204
    assert client.get("/_sim/delta").json()["pageSize"] == 100


def test_delta_through_the_sdk_request_adapter_raw_json(sim, tenant) -> None:
    """As sync_core's Graph adapter reads pages: kiota's request adapter, bytes, json.loads."""
    app = sim.world.apps[0]
    user = sim.world.tenants[0].users[6]

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], ODataError]:
        async with ClientSecretCredential(
            tenant,
            app.client_id,
            app.secrets[0],
            authority=sim.base_url,
            disable_instance_discovery=True,
        ) as credential:
            auth = AzureIdentityAuthenticationProvider(
                credential, scopes=[f"{sim.base_url}/.default"], allowed_hosts=["localhost"]
            )
            # As sync_core.graph does: the raw adapter parses Graph's error bodies with this.
            register_default_deserializer(JsonParseNodeFactory)
            adapter = GraphRequestAdapter(auth)
            adapter.base_url = f"{sim.base_url}/v1.0"

            async def get(url: str) -> dict[str, Any]:
                request = RequestInformation()
                request.http_method = Method.GET
                request.url = url
                request.headers.try_add("Accept", "application/json")
                return json.loads(
                    await adapter.send_primitive_async(request, "bytes", ERROR_MAPPING)
                )

            async def round_(url: str) -> tuple[list[dict[str, Any]], str]:
                items: list[dict[str, Any]] = []
                while True:
                    body = await get(url)
                    items += body["value"]
                    if "@odata.deltaLink" in body:
                        return items, body["@odata.deltaLink"]
                    url = body["@odata.nextLink"]

            sim.delta.page_size(4)
            initial, link = await round_(f"{sim.base_url}/v1.0/users/delta?$select={SELECT}")
            sim.patch_user(tenant, user["id"], {"department": "Via SDK"})
            changed, link = await round_(link)
            sim.delta.expire_tokens(1)
            try:
                await get(link)
            except ODataError as error:
                return initial, changed, error
            raise AssertionError("the expired link was answered")

    initial, changed, error = asyncio.run(scenario())
    assert len({i["id"] for i in initial}) == len(initial) >= len(sim.world.tenants[0].users)
    assert [(i["id"], i["department"]) for i in changed] == [(user["id"], "Via SDK")]
    assert error.response_status_code == 410
    assert error.error is not None and error.error.code == "syncStateNotFound"
