"""Scope groups in the simulator, shared by the group tests (test_groups.py,
test_idle_budget_scoped.py): the consent they need, nested groups with a cycle, and a
configuration scoped by them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

GROUP_ROLES = ["User.Read.All", "Organization.Read.All", "GroupMember.Read.All"]


def gid() -> str:
    return str(uuid.uuid4())


def people(tenant, count: int) -> list[str]:
    """Ids of members with a mailbox: each becomes an employee when in scope."""
    found = [u["id"] for u in tenant.of_kind("member") if u.get("mail")]
    assert len(found) >= count
    return found[:count]


@pytest.fixture
def nested(simulator, tenant):
    """Alpha holds u0 and Beta; Beta holds u1 and Alpha again (a cycle); Gamma holds u2."""
    simulator.set_consent(tenant.id, simulator.world.apps[0].client_id, GROUP_ROLES)
    u = people(tenant, 6)
    alpha, beta, gamma = gid(), gid(), gid()
    simulator.groups.put_group(tenant.id, alpha, "Alpha", [u[0]])
    simulator.groups.put_group(tenant.id, beta, "Beta", [u[1], alpha])
    simulator.groups.add_member(tenant.id, alpha, beta)
    simulator.groups.put_group(tenant.id, gamma, "Gamma", [u[2]])
    return {"alpha": alpha, "beta": beta, "gamma": gamma, "users": u}


def scoped(include=(), exclude=(), **more: Any) -> dict[str, Any]:
    return {"filter": {"groups": {"include": list(include), "exclude": list(exclude)}}, **more}
