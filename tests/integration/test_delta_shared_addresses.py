"""A delta run that creates a duplicate address warns as a full run does (issue 14, part 6).

The newcomer shares its address with an employee the round never mentions: only the store knows
that one (core/shared_addresses.py asks it, for the addresses the round wrote)."""

from __future__ import annotations

import pytest

from tests.integration.helpers import members, stored_rows, sync

pytestmark = pytest.mark.integration
WARNING = "1 address(es) belong to more than one employee"


@pytest.fixture(autouse=True)
def _reset_simulator(simulator):
    yield
    simulator.delta.clear()


def test_a_delta_run_that_creates_a_shared_address_warns_like_a_full_run(
    cli, tenant, simulator, app_env
):
    assert sync(cli)["mode"] == "full"
    existing = members(tenant)[0]
    address = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)[existing["id"]]["Email"]
    newcomer = {**existing, "id": "0e9a4f4b-5d1e-4b7a-9d0c-000000000d18",
                "userPrincipalName": "second.holder@contoso.com",
                "proxyAddresses": [f"SMTP:{address}"], "mail": address}  # fmt: skip
    simulator.upsert_user(tenant.id, newcomer)
    delta = sync(cli)
    assert (delta["mode"], delta["counts"]["created"]) == ("delta", 1)
    shared = [w for w in delta["warnings"] if w.startswith(WARNING)]
    assert shared and address.lower() in shared[0].lower(), delta["warnings"]
    full = sync(cli, "--full")
    assert [w for w in full["warnings"] if w.startswith(WARNING)] == shared  # the same words


def test_a_delta_run_whose_addresses_are_their_own_warns_nothing(cli, tenant, simulator):
    assert sync(cli)["mode"] == "full"
    changed = members(tenant)[:20]  # more addresses than one query asks for (14)
    assert len(changed) == 20
    for user in changed:
        simulator.patch_user(tenant.id, user["id"], {"jobTitle": "Still alone"})
    delta = sync(cli)
    assert delta["mode"] == "delta" and delta["counts"]["updated"] == 20
    assert not [w for w in delta["warnings"] if "more than one employee" in w]
