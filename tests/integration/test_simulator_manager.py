"""The simulator's manager relationship through plain HTTP, held to what Graph documents
(simulator/manager.py cites the pages): `/users/{id}/manager`, `$expand=manager` on /users (at
most 100 a page, no `$levels` on the list) and `manager@delta` on /users/delta."""

# Trust must be set before any module imports aiohttp (see simulator/testing.py).
# ruff: noqa: E402
from __future__ import annotations

from simulator.testing import prepare_trust

CA = prepare_trust()

from collections.abc import Iterator

import pytest

from simulator import Simulator, World
from simulator.generator import GeneratorOptions, generate_world
from tests.integration import simulator_http
from tests.integration.simulator_http import fresh_user, latest, one_round

pytestmark = pytest.mark.integration
client = simulator_http.client  # the same token-bearing HTTP client, on this module's simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(World.from_dict(generate_world(GeneratorOptions(130, seed=16))), ca=CA)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def tenant(sim: Simulator) -> str:
    return sim.world.tenants[0].id


@pytest.fixture(autouse=True)
def clean(sim: Simulator) -> Iterator[None]:
    sim.delta.clear()
    yield
    sim.delta.clear()


def test_a_users_manager_and_the_404_without_one(sim, tenant, client) -> None:
    boss = fresh_user(sim, tenant, displayName="Bea Boss", jobTitle="CEO")
    report = fresh_user(sim, tenant, manager=boss)
    answer = client.get(f"/v1.0/users/{report}/manager?$select=id,displayName")
    assert answer.status_code == 200
    assert {k: v for k, v in answer.json().items() if not k.startswith("@")} == {
        "id": boss,
        "displayName": "Bea Boss",
    }
    alone = client.get(f"/v1.0/users/{boss}/manager")
    assert (alone.status_code, alone.json()["error"]["code"]) == (404, "Request_ResourceNotFound")
    sim.remove_user(tenant, boss)  # a deleted manager is no one's manager
    assert client.get(f"/v1.0/users/{report}/manager").status_code == 404


def test_expand_manager_caps_pages_at_100_and_refuses_levels_on_the_list(
    sim, tenant, client
) -> None:
    boss = fresh_user(sim, tenant, displayName="Expanded Boss", jobTitle="CFO")
    report = fresh_user(sim, tenant, manager=boss)
    url = "/v1.0/users?$select=id,displayName&$top=999&$expand=manager($select=id,jobTitle)"
    seen: dict[str, dict] = {}
    sizes = []
    while url:
        body = client.get(url).json()
        sizes.append(len(body["value"]))
        seen |= {u["id"]: u for u in body["value"]}
        url = body.get("@odata.nextLink")
    assert max(sizes) == 100 and len(sizes) >= 2
    assert seen[report]["manager"] == {"id": boss, "jobTitle": "CFO"}
    assert "manager" not in seen[boss]
    refused = client.get("/v1.0/users?$expand=manager($levels=max;$select=id)")
    assert refused.status_code == 400
    advanced = client.get(
        "/v1.0/users?$expand=manager&$count=true&$filter=startsWith(displayName,'E')",
        headers={"ConsistencyLevel": "eventual"},
    )
    assert (advanced.status_code, advanced.json()["error"]["code"]) == (
        400,
        "Request_UnsupportedQuery",
    )


def test_delta_with_manager_selected_names_it_and_its_changes(sim, tenant, client) -> None:
    boss = fresh_user(sim, tenant, displayName="Delta Boss")
    other = fresh_user(sim, tenant, displayName="Other Boss")
    report = fresh_user(sim, tenant, manager=boss)
    start = f"/v1.0/users/delta?$select=id,displayName,manager&$filter=id eq '{report}'"
    items, _, _ = one_round(client, start)
    assert items[0]["manager@delta"] == [{"@odata.type": "#microsoft.graph.user", "id": boss}]
    link = latest(client, "id,displayName,manager")
    sim.patch_user(tenant, report, {"manager": other})
    items, _, link = one_round(client, link)
    assert [(i["id"], i["manager@delta"][0]["id"]) for i in items] == [(report, other)]
    sim.patch_user(tenant, report, {"manager": None})
    items, _, link = one_round(client, link)
    assert items[0]["manager@delta"] == [
        {"@odata.type": "#microsoft.graph.user", "id": other, "@removed": {"reason": "deleted"}}
    ]
    sim.patch_user(tenant, report, {"displayName": "Renamed Report"})
    items, _, link = one_round(client, link)
    assert "manager@delta" not in items[0]  # only a change of the relationship carries it
    plain = latest(client, "id,displayName")
    sim.patch_user(tenant, report, {"manager": boss})
    assert one_round(client, plain)[0] == []  # not selected: not reported
