"""Property test of convergence with groups (issue 15): random groups, nested (cycles included),
scoped by include and exclude lists and shown in a membership field, then random membership
changes, each followed by a delta run. After every run the Employees table must equal what the
reference says (tests/integration/convergence_reference.py, written from the documented rules,
independent of `sync_core.core.groups`): a user who joins or leaves, directly or through a
nested group, is handled within one run. Finally a full run must find nothing to do.

Examples per run come from the Hypothesis profile (tests/conftest.py): few under `ci`.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.data.tables.aio import TableClient
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import Simulator
from sync_core.adapters.storage_names import EMPLOYEES_TABLE
from sync_core.app.exclusive import sync_exclusively
from sync_core.app.service import SyncService
from sync_core.core.config_parse import parse_config
from sync_core.core.engine import RunRequest
from sync_core.core.report import RunReport, RunStatus
from sync_core.settings import load_settings
from tests.conftest import hypothesis_profile
from tests.integration.convergence_directory import SMALL_FIELDS, plain_member
from tests.integration.convergence_reference import expected_employees, matches

pytestmark = pytest.mark.integration

EXAMPLES = {"ci": 4, "dev": 3, "long": 100}
GROUP_IDS = tuple(str(uuid.UUID(int=0xA000 + n)) for n in range(4))
Change = tuple[str, str, str]  # ("add" | "remove", group id, member id)


@dataclass(frozen=True)
class GroupScenario:
    users: int
    members: dict[str, tuple[str, ...]]  # group id -> its first direct members
    config: dict[str, Any]
    batches: tuple[tuple[Change, ...], ...]


@st.composite
def group_scenarios(draw: st.DrawFn) -> GroupScenario:
    users = draw(st.integers(4, 8))
    groups = GROUP_IDS[: draw(st.integers(2, len(GROUP_IDS)))]
    user_ids = [plain_member(n)["id"] for n in range(users)]
    # Any group may hold any other, itself excluded: nesting at any depth, cycles included.
    members = {
        g: tuple(draw(st.lists(st.sampled_from([*user_ids, *(o for o in groups if o != g)]),
                               unique=True, max_size=4)))
        for g in groups
    }  # fmt: skip
    chosen = st.lists(st.sampled_from(groups), unique=True, max_size=2)
    include = draw(chosen)
    # A group may not be both included and excluded (config validation refuses it).
    others = [g for g in groups if g not in include]
    exclude = draw(st.lists(st.sampled_from(others), max_size=1)) if others else []
    config = {
        "fields": [*SMALL_FIELDS[:1],
                   {"name": "Teams", "source": "memberOf", "groups": draw(chosen) or [groups[0]]}],
        "filter": {"groups": {"include": include, "exclude": exclude}},
        "cleanUp": {"enabled": True, "maxDeletes": 100_000, "maxDeletePercent": 100},
    }  # fmt: skip
    change = st.tuples(
        st.sampled_from(("add", "remove")),
        st.sampled_from(groups),
        st.sampled_from([*user_ids, *groups]),
    ).filter(lambda c: c[1] != c[2])
    batches = draw(st.lists(st.lists(change, min_size=1, max_size=3).map(tuple),
                            min_size=1, max_size=4))  # fmt: skip
    return GroupScenario(users, members, config, tuple(batches))


@pytest.mark.timeout(900)
@settings(
    max_examples=int(
        os.environ.get("CONVERGENCE_EXAMPLES") or EXAMPLES[hypothesis_profile(os.environ)]
    )
)
@given(scenario=group_scenarios())
def test_the_table_follows_group_membership(simulator, azurite, scenario: GroupScenario) -> None:
    GroupPlay(simulator, azurite.connection_string, scenario).run()


@dataclass
class GroupPlay:
    simulator: Simulator
    connection_string: str
    scenario: GroupScenario
    tenant_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # the reference's view

    def run(self) -> None:
        sim, client = self.simulator, self.simulator.world.apps[0].client_id
        users = [plain_member(n) for n in range(self.scenario.users)]
        sim.add_tenant({
            "id": self.tenant_id, "displayName": "Groups",
            "verifiedDomains": [{"name": "contoso.onmicrosoft.com", "isDefault": True}],
            "consents": {client: ["User.Read.All", "GroupMember.Read.All"]},
            "users": users,
        })  # fmt: skip
        for group_id in self.scenario.members:  # every group first, so members are typed
            sim.groups.put_group(self.tenant_id, group_id, f"Team {group_id[-2:]}")
            self.groups[group_id] = {"name": f"Team {group_id[-2:]}", "members": set()}
        for group_id, members in self.scenario.members.items():
            for member in members:
                self._change(("add", group_id, member))
        asyncio.run(self._play(users))

    def _change(self, change: tuple[str, str, str]) -> None:
        kind, group_id, member = change
        if kind == "add":
            self.simulator.groups.add_member(self.tenant_id, group_id, member)
            self.groups[group_id]["members"].add(member)
        else:
            self.simulator.groups.remove_member(self.tenant_id, group_id, member)
            self.groups[group_id]["members"].discard(member)

    async def _play(self, users: list[dict[str, Any]]) -> None:
        env = {
            **self.simulator.environment(self.tenant_id),
            "ENTRA_CLIENT_SECRET": self.simulator.world.apps[0].secrets[0],
            "TABLES_CONNECTION_STRING": self.connection_string,
        }
        async with SyncService(load_settings(env)) as service:
            await service.configs.put(self.tenant_id, parse_config(self.scenario.config))
            await self._check(await self._sync(service), users, "full")
            for batch in self.scenario.batches:
                for change in batch:
                    self._change(change)
                await self._check(await self._sync(service), users, "delta")
            final = await self._sync(service, full=True)
            await self._check(final, users, "full")
            counts = final.counts
            assert (counts.created, counts.updated, counts.deleted) == (0, 0, 0), counts

    async def _sync(self, service: SyncService, *, full: bool = False) -> RunReport:
        request = RunRequest(self.tenant_id, allow_deletes=True, full=full)
        return await sync_exclusively(service, request)

    async def _check(self, report: RunReport, users: list[dict[str, Any]], mode: str) -> None:
        assert report.status == RunStatus.SUCCEEDED, report.errors
        assert report.mode == mode
        expected = expected_employees(users, self.scenario.config, self.groups)
        rows = await self._rows()
        assert set(rows) == set(expected.rows), (sorted(rows), sorted(expected.rows))
        for user_id, want in expected.rows.items():
            for name, value in want.fields:
                assert matches(value, rows[user_id].get(name)), (user_id, name, rows[user_id])

    async def _rows(self) -> dict[str, dict[str, Any]]:
        async with TableClient.from_connection_string(
            self.connection_string, EMPLOYEES_TABLE
        ) as table:
            return {
                row["RowKey"]: dict(row)
                async for row in table.query_entities(
                    "PartitionKey eq @t and RowKey lt '~'", parameters={"t": self.tenant_id}
                )
            }
