"""The simulator read through plain HTTP, shared by the tests that hold its Graph endpoints to
Graph's documents (test_simulator_delta.py, test_simulator_manager.py): a token-bearing client
on the module's simulator (its `sim` and `tenant` fixtures), users added by hand, delta rounds
followed to their deltaLink."""

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
from azure.identity import ClientSecretCredential as SyncClientSecretCredential

from simulator import Simulator

TRUST = ssl.create_default_context(cafile=str(CA.ca_path))
SELECT = "id,displayName,department,accountEnabled"


@pytest.fixture(scope="module")
def client(sim: Simulator, tenant: str) -> Iterator[httpx.Client]:
    app = sim.world.apps[0]
    credential = SyncClientSecretCredential(
        tenant,
        app.client_id,
        app.secrets[0],
        authority=sim.base_url,
        disable_instance_discovery=True,
    )
    token = credential.get_token(f"{sim.base_url}/.default").token
    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(verify=TRUST, base_url=sim.base_url, headers=bearer) as http:
        yield http


def fresh_user(sim: Simulator, tenant: str, user_id: str | None = None, **properties: Any) -> str:
    user_id = user_id or str(uuid.uuid4())
    user = {
        "id": user_id,
        "displayName": "New Hire",
        "userPrincipalName": f"{user_id[:8]}@example.com",
        "accountEnabled": True,
        "department": "Sales",
    }
    sim.upsert_user(tenant, user | properties)
    return user_id


def one_round(client: httpx.Client, url: str) -> tuple[list[dict[str, Any]], int, str]:
    """Follow nextLinks until the deltaLink: (items, pages, deltaLink). A page never has both."""
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        answer = client.get(url)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages += 1
        items += body["value"]
        assert ("@odata.nextLink" in body) != ("@odata.deltaLink" in body)
        if "@odata.deltaLink" in body:
            return items, pages, body["@odata.deltaLink"]
        url = body["@odata.nextLink"]


def latest(client: httpx.Client, select: str = SELECT) -> str:
    body = client.get(f"/v1.0/users/delta?$select={select}&$deltatoken=latest").json()
    assert body["value"] == [] and "@odata.nextLink" not in body
    return body["@odata.deltaLink"]
