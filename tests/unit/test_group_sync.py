"""How a run follows group membership (core/group_sync.py), against list-backed fakes of its two
ports: what an idle round costs, who is a leaver and who is read again, when the graph is read
whole again, and which failures stop a run."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from sync_core.core.config_parse import parse_config
from sync_core.core.group_sync import GroupStateMissing, delta_read, full_read
from sync_core.core.groups import GroupNode, GroupSettings
from sync_core.errors import FatalError

A, B, C = (f"{n}0000000-0000-0000-0000-00000000000{n}" for n in (1, 2, 3))
USER, GROUP = "#microsoft.graph.user", "#microsoft.graph.group"


class Source:
    """Graph's groups as lists: the direct members, and the rounds a test queues."""

    def __init__(self, members: dict[str, list[tuple[str, str]]]):
        self.members = members
        self.rounds: list[list[dict[str, Any]]] = []
        self.calls: list[str] = []

    async def transitive_user_ids(self, group_id: str) -> set[str]:
        self.calls.append(f"users {group_id}")
        return {m for m, kind in self._walk(group_id) if kind == USER}

    async def transitive_group_ids(self, group_id: str) -> set[str]:
        self.calls.append(f"groups {group_id}")
        return {m for m, kind in self._walk(group_id) if kind == GROUP}

    async def group_round(
        self, ids: Iterable[str] | None, link: str | None
    ) -> tuple[list[dict[str, Any]], str]:
        self.calls.append("round")
        if link is not None:
            return (self.rounds.pop(0) if self.rounds else []), "link"
        items = [
            {"id": g, "displayName": g[:1],
             "members@delta": [{"@odata.type": k, "id": m} for m, k in self.members[g]]}
            for g in ids or () if g in self.members
        ]  # fmt: skip
        return items, "link"

    def _walk(self, root: str) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        stack, seen = [root], {root}
        while stack:
            for member, kind in self.members.get(stack.pop(), []):
                found.add((member, kind))
                if kind == GROUP and member not in seen:
                    seen.add(member)
                    stack.append(member)
        return found


class Store:
    def __init__(self, graph: Mapping[str, GroupNode] | None = None):
        self.graph = dict(graph) if graph is not None else None
        self.loads = 0

    async def load(self, tenant_id: str, generation: str) -> dict[str, GroupNode] | None:
        self.loads += 1
        return self.graph

    async def save(self, tenant_id: str, generation: str, graph: Mapping[str, GroupNode]) -> None:
        self.graph = dict(graph)

    async def prune(self, tenant_id: str, keep: str | None) -> None:
        pass


SETTINGS = GroupSettings.from_config(parse_config({"filter": {"groups": {"include": [A]}}}))
MEMBERS = {A: [("u1", USER), (B, GROUP)], B: [("u2", USER)], C: [("u3", USER)]}


def follow(source: Source, store: Store, *, users_changed: bool = False) -> Any:
    return asyncio.run(
        delta_read(source, store, "t", SETTINGS, ("link",), "gen", users_changed=users_changed)
    )


def stored_graph() -> dict[str, GroupNode]:
    read = asyncio.run(full_read(Source(MEMBERS), SETTINGS))
    assert read.graph is not None
    return read.graph


def test_a_full_read_tracks_the_nested_groups_in_one_round():
    source = Source(MEMBERS)
    read = asyncio.run(full_read(source, SETTINGS))
    assert read.memberships.of_user == {"u1": {A}, "u2": {A}}
    assert set(read.graph or {}) == {A, B}
    assert source.calls.count("round") == 1


def test_an_idle_round_reads_no_stored_state():
    store = Store(stored_graph())
    read = follow(Source(MEMBERS), store)
    assert read.idle and store.loads == 0 and read.links == ("link",)


def test_a_leaver_is_known_by_id_and_a_joiner_is_read_again():
    source = Source(MEMBERS)
    source.rounds.append([{"id": B, "members@delta": [
        {"@odata.type": USER, "id": "u2", "@removed": {"reason": "deleted"}},
        {"@odata.type": USER, "id": "u9"}]}])  # fmt: skip
    read = follow(source, Store(stored_graph()))
    assert read.leavers == {"u2": "notInGroups"} and read.fetch == {"u9"}
    assert read.graph is not None and read.graph[B].users == {"u9"}


def test_a_group_nested_anew_makes_the_graph_read_whole_again():
    source = Source({**MEMBERS, B: [("u2", USER), (C, GROUP)]})
    source.rounds.append([{"id": B, "members@delta": [{"@odata.type": GROUP, "id": C}]}])
    read = follow(source, Store(stored_graph()))
    assert set(read.graph or {}) == {A, B, C}
    assert read.fetch == {"u3"}


def test_a_deleted_listed_group_and_a_missing_graph_stop_the_run():
    source = Source(MEMBERS)
    source.rounds.append([{"id": A, "@removed": {"reason": "changed"}}])
    with pytest.raises(FatalError) as raised:
        follow(source, Store(stored_graph()))
    assert raised.value.code == "group_deleted"
    with pytest.raises(GroupStateMissing):
        follow(Source(MEMBERS), Store(None), users_changed=True)
    with pytest.raises(FatalError) as unknown:
        asyncio.run(full_read(Source({}), SETTINGS))
    assert unknown.value.code == "group_not_found"


def test_members_that_are_not_users_are_neither_leavers_nor_read_again():
    # A device or a service principal in a group is no user: the full run's cast to users never
    # sees it, so a delta run must not count it, read it by id or remove it either.
    source = Source(MEMBERS)
    source.rounds.append([{"id": A, "members@delta": [
        {"@odata.type": "#microsoft.graph.device", "id": "d1"},
        {"@odata.type": "#microsoft.graph.servicePrincipal", "id": "s1"},
        {"@odata.type": USER, "id": "u9"}]}])  # fmt: skip
    read = follow(source, Store(stored_graph()))
    assert read.fetch == {"u9"} and read.leavers == {}
    assert read.memberships.member_counts([A]) == {A: 3}  # u1, u2 (through B), u9
