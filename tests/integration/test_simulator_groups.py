"""The simulator's groups through plain HTTP: ``/groups/{id}``, ``/groups/{id}/transitiveMembers``
and ``/groups/delta``, held to what Graph documents (group-get, group-list-transitivemembers,
group-delta, concepts/delta-query-groups.md, concepts/aad-advanced-queries.md; cited in
simulator/groups_api.py)."""

# Trust must be set before any module imports aiohttp (see simulator/testing.py).
# ruff: noqa: E402
from __future__ import annotations

from simulator.testing import prepare_trust

CA = prepare_trust()

import ssl
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.identity import ClientSecretCredential

from simulator import Simulator, World
from simulator.generator import GeneratorOptions, generate_world
from simulator.groups_api import MEMBERS_PER_PAGE

pytestmark = pytest.mark.integration

TRUST = ssl.create_default_context(cafile=str(CA.ca_path))
ADVANCED = {"ConsistencyLevel": "eventual"}


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(World.from_dict(generate_world(GeneratorOptions(12, seed=15))), ca=CA)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def tenant(sim: Simulator) -> str:
    return sim.world.tenants[0].id


def client_with(sim: Simulator, tenant: str, roles: list[str]) -> httpx.Client:
    app = sim.world.apps[0]
    sim.set_consent(tenant, app.client_id, roles)
    credential = ClientSecretCredential(
        tenant, app.client_id, app.secrets[0], authority=sim.base_url,
        disable_instance_discovery=True,
    )  # fmt: skip
    token = credential.get_token(f"{sim.base_url}/.default").token
    return httpx.Client(
        verify=TRUST, base_url=sim.base_url, headers={"Authorization": f"Bearer {token}"}
    )


@pytest.fixture(scope="module")
def client(sim: Simulator, tenant: str) -> Iterator[httpx.Client]:
    with client_with(sim, tenant, ["User.Read.All", "GroupMember.Read.All"]) as http:
        yield http


@pytest.fixture
def nested(sim: Simulator, tenant: str) -> dict[str, Any]:
    users = [u["id"] for u in sim.world.tenants[0].users]
    outer, inner = str(uuid.uuid4()), str(uuid.uuid4())
    sim.groups.put_group(tenant, inner, "Inner", users[2:5])
    sim.groups.put_group(tenant, outer, "Outer", [users[0], users[1], inner, users[2]])
    sim.groups.add_member(tenant, inner, outer)  # a cycle
    return {"outer": outer, "inner": inner, "users": users}


def read_all(client: httpx.Client, url: str, **headers: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        answer = client.get(next_url, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items += body["value"]
        next_url = body.get("@odata.nextLink")
    return items


def test_transitive_members_are_flat_each_once_and_paged(client, nested) -> None:
    u, outer = nested["users"], nested["outer"]
    everyone = read_all(client, f"/v1.0/groups/{outer}/transitiveMembers?$top=2")
    assert sorted(m["id"] for m in everyone) == sorted([*u[:5], nested["inner"]])
    users = read_all(
        client,
        f"/v1.0/groups/{outer}/transitiveMembers/microsoft.graph.user?$select=id&$count=true&$top=2",
        **ADVANCED,
    )
    assert sorted(m["id"] for m in users) == sorted(u[:5])
    assert {m["@odata.type"] for m in users} == {"#microsoft.graph.user"}
    first = client.get(
        f"/v1.0/groups/{outer}/transitiveMembers/microsoft.graph.user?$count=true", headers=ADVANCED
    ).json()
    assert first["@odata.count"] == 5


def test_a_cast_is_an_advanced_query(client, nested) -> None:
    url = f"/v1.0/groups/{nested['outer']}/transitiveMembers/microsoft.graph.user"
    for headers, query in (({}, "?$count=true"), (ADVANCED, "")):
        refused = client.get(url + query, headers=headers)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_unknown_group_permission_and_hidden_membership(sim, tenant, client, nested) -> None:
    missing = client.get(f"/v1.0/groups/{uuid.uuid4()}/transitiveMembers")
    assert (missing.status_code, missing.json()["error"]["code"]) == (
        404,
        "Request_ResourceNotFound",
    )
    assert client.get(f"/v1.0/groups/{nested['outer']}").json()["displayName"] == "Outer"
    hidden = str(uuid.uuid4())
    sim.groups.put_group(tenant, hidden, "Board", nested["users"][:1], hidden_membership=True)
    assert client.get(f"/v1.0/groups/{hidden}/transitiveMembers").status_code == 403
    with client_with(sim, tenant, ["GroupMember.Read.All", "Member.Read.Hidden"]) as allowed:
        assert allowed.get(f"/v1.0/groups/{hidden}/transitiveMembers").status_code == 200
    with client_with(sim, tenant, ["User.Read.All"]) as users_only:
        for path in (f"/v1.0/groups/{nested['outer']}", "/v1.0/groups/delta"):
            refused = users_only.get(path)
            assert (refused.status_code, refused.json()["error"]["code"]) == (
                403, "Authorization_RequestDenied")  # fmt: skip
    sim.set_consent(tenant, sim.world.apps[0].client_id, ["User.Read.All", "GroupMember.Read.All"])


def delta_round(client: httpx.Client, url: str) -> tuple[list[dict[str, Any]], str, int]:
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        body = client.get(url).json()
        pages += 1
        items += body["value"]
        assert ("@odata.nextLink" in body) != ("@odata.deltaLink" in body)
        if "@odata.deltaLink" in body:
            return items, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]


def test_group_delta_reports_direct_members_then_only_changes(sim, tenant, client, nested) -> None:
    u, outer, inner = nested["users"], nested["outer"], nested["inner"]
    first = (
        f"/v1.0/groups/delta?$filter=id eq '{outer}' or id eq '{inner}'&$select=displayName,members"
    )
    items, link, _ = delta_round(client, first)
    by_id = {i["id"]: i for i in items}
    assert set(by_id) == {outer, inner}
    assert {m["id"] for m in by_id[outer]["members@delta"]} == {u[0], u[1], u[2], inner}
    assert {m["@odata.type"] for m in by_id[outer]["members@delta"] if m["id"] == inner} == {
        "#microsoft.graph.group"}  # fmt: skip
    idle, link, _ = delta_round(client, link)
    assert idle == []
    sim.groups.add_member(tenant, inner, u[6])
    sim.groups.remove_member(tenant, outer, u[1])
    changed, link, _ = delta_round(client, link)
    entries = {i["id"]: i["members@delta"] for i in changed}
    assert entries[inner] == [{"@odata.type": "#microsoft.graph.user", "id": u[6]}]
    assert entries[outer] == [
        {"@odata.type": "#microsoft.graph.user", "id": u[1], "@removed": {"reason": "deleted"}}
    ]
    sim.groups.delete_group(tenant, inner)
    gone, _, _ = delta_round(client, link)
    assert {"id": inner, "@removed": {"reason": "changed"}} in gone
    assert client.get("/v1.0/groups/delta?$top=5").status_code == 400


def test_a_large_group_is_split_over_pages(sim, tenant, client) -> None:
    big = str(uuid.uuid4())
    members = [str(uuid.uuid4()) for _ in range(MEMBERS_PER_PAGE + 50)]
    sim.groups.put_group(tenant, big, "Everyone", members)
    items, _, pages = delta_round(
        client, f"/v1.0/groups/delta?$filter=id eq '{big}'&$select=members"
    )
    assert pages == 2 and [i["id"] for i in items] == [big, big]
    assert sorted(m["id"] for i in items for m in i["members@delta"]) == sorted(members)


def test_the_control_api_changes_groups(sim, tenant, client) -> None:
    group, nested = str(uuid.uuid4()), str(uuid.uuid4())
    user = sim.world.tenants[0].users[7]["id"]
    control = f"/_sim/tenants/{tenant}/groups"
    assert (
        client.put(f"{control}/{nested}", json={"displayName": "N", "members": [user]}).status_code
        == 204
    )
    assert client.put(f"{control}/{group}", json={"displayName": "G"}).status_code == 204
    assert client.post(f"{control}/{group}/members", json={"id": nested}).status_code == 204
    listed = read_all(client, f"/v1.0/groups/{group}/transitiveMembers")
    assert sorted(m["id"] for m in listed) == sorted([user, nested])
    assert client.delete(f"{control}/{group}/members/{nested}").status_code == 204
    assert read_all(client, f"/v1.0/groups/{group}/transitiveMembers") == []
    assert client.delete(f"{control}/{group}").status_code == 204
    assert client.delete(f"{control}/{group}").status_code == 404


def test_a_microsoft_365_group_refuses_a_cast_to_groups(sim, tenant, client) -> None:
    # group-list-transitivemembers: a cast to a member type the group cannot hold is 400
    # Request_UnsupportedQuery, e.g. microsoft.graph.group on a Microsoft 365 group.
    users = [u["id"] for u in sim.world.tenants[0].users]
    team = str(uuid.uuid4())
    sim.groups.put_group(tenant, team, "Team", users[:2], unified=True)
    base = f"/v1.0/groups/{team}/transitiveMembers"
    refused = client.get(f"{base}/microsoft.graph.group?$count=true", headers=ADVANCED)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Request_UnsupportedQuery"
    found = read_all(client, f"{base}/microsoft.graph.user?$count=true", **ADVANCED)
    assert sorted(m["id"] for m in found) == sorted(users[:2])
    other = str(uuid.uuid4())
    sim.groups.put_group(tenant, other, "Other")
    with pytest.raises(ValueError):
        sim.groups.add_member(tenant, team, other)
