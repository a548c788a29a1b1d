"""The tenants' groups as they change while a simulator runs: direct members (users and other
groups, so nesting and cycles), hidden membership, and a change log per tenant that
``/groups/delta`` reads (a delta token is a position in it, like users' in directory.py).

Modelled on Graph's group resource and its membership (api-reference/v1.0/resources/group.md,
group-list-members.md: "A group can have users, ... and other groups as members"; nesting may
form cycles, which Entra does not forbid for security groups). Deleting a group removes it from
the groups it was a member of, as Entra does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Group:
    id: str
    display_name: str
    members: dict[str, str] = field(default_factory=dict)  # member id -> "user" or "group"
    hidden_membership: bool = False  # visibility "HiddenMembership": Member.Read.Hidden needed
    # groupTypes ["Unified"]: a Microsoft 365 group, which "can't have other groups as members"
    # (group-list-transitivemembers; concepts/groups-concept-overview.md, group membership).
    unified: bool = False


@dataclass(frozen=True)
class GroupEvent:
    """One entry of a tenant's group log: a member added or removed, a rename, a deletion."""

    seq: int
    group_id: str
    kind: str  # "member", "renamed", "deleted", "created"
    member_id: str | None = None
    member_kind: str = "user"


@dataclass
class _TenantGroups:
    groups: dict[str, Group] = field(default_factory=dict)
    log: list[GroupEvent] = field(default_factory=list)

    def record(
        self, group_id: str, kind: str, member_id: str | None = None, member_kind: str = "user"
    ) -> None:
        self.log.append(GroupEvent(len(self.log) + 1, group_id, kind, member_id, member_kind))


class GroupStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tenants: dict[str, _TenantGroups] = {}

    # ------------------------------------------------------------------ changes (tests)

    def put_group(
        self,
        tenant_id: str,
        group_id: str,
        display_name: str,
        members: Iterable[str] = (),
        *,
        hidden_membership: bool = False,
        unified: bool = False,
    ) -> None:
        """Create a group (or replace its name); ``members`` are user or group ids (a group
        id known in the tenant makes a nested group)."""
        key = group_id.lower()
        with self._lock:
            state = self._tenant(tenant_id)
            group = state.groups.get(key)
            if group is None:
                group = Group(key, display_name, hidden_membership=hidden_membership)
                group.unified = unified
                state.groups[key] = group
                state.record(key, "created")
            elif group.display_name != display_name:
                group.display_name = display_name
                state.record(key, "renamed")
        for member in members:
            self.add_member(tenant_id, key, member)

    def add_member(self, tenant_id: str, group_id: str, member_id: str) -> None:
        key, member = group_id.lower(), member_id.lower()
        with self._lock:
            state = self._tenant(tenant_id)
            group = self._group(state, key)
            if member in group.members:
                return
            kind = "group" if member in state.groups else "user"
            if kind == "group" and group.unified:
                raise ValueError("a Microsoft 365 group cannot have groups as members")
            group.members[member] = kind
            state.record(key, "member", member, kind)

    def remove_member(self, tenant_id: str, group_id: str, member_id: str) -> None:
        key, member = group_id.lower(), member_id.lower()
        with self._lock:
            state = self._tenant(tenant_id)
            kind = self._group(state, key).members.pop(member, None)
            if kind is not None:
                state.record(key, "member", member, kind)

    def rename(self, tenant_id: str, group_id: str, display_name: str) -> None:
        with self._lock:
            state = self._tenant(tenant_id)
            self._group(state, group_id.lower()).display_name = display_name
            state.record(group_id.lower(), "renamed")

    def delete_group(self, tenant_id: str, group_id: str) -> None:
        key = group_id.lower()
        with self._lock:
            state = self._tenant(tenant_id)
            self._group(state, key)
            del state.groups[key]
            state.record(key, "deleted")
            for parent in state.groups.values():
                if parent.members.pop(key, None) is not None:
                    state.record(parent.id, "member", key, "group")

    # ------------------------------------------------------------------------ reads

    def group(self, tenant_id: str, group_id: str) -> Group | None:
        with self._lock:
            found = self._tenant(tenant_id).groups.get(group_id.lower())
            return None if found is None else _copy(found)

    def member_kind(self, tenant_id: str, group_id: str, member_id: str) -> str | None:
        with self._lock:
            found = self._tenant(tenant_id).groups.get(group_id.lower())
            return None if found is None else found.members.get(member_id.lower())

    def transitive(self, tenant_id: str, group_id: str) -> list[tuple[str, str]]:
        """(id, kind) of every member of the group at any depth, each once, in id order."""
        with self._lock:
            groups = self._tenant(tenant_id).groups
            found: dict[str, str] = {}
            stack = [group_id.lower()]
            seen = set(stack)
            while stack:
                for member, kind in groups[stack.pop()].members.items():
                    found[member] = kind
                    if kind == "group" and member not in seen and member in groups:
                        seen.add(member)
                        stack.append(member)
            found.pop(group_id.lower(), None)  # a cycle back to the group itself
            return sorted(found.items())

    def position(self, tenant_id: str) -> int:
        with self._lock:
            return len(self._tenant(tenant_id).log)

    def events(self, tenant_id: str, after: int, upto: int) -> tuple[GroupEvent, ...]:
        with self._lock:
            return tuple(self._tenant(tenant_id).log[max(after, 0) : upto])

    def _tenant(self, tenant_id: str) -> _TenantGroups:
        return self._tenants.setdefault(tenant_id.lower(), _TenantGroups())

    @staticmethod
    def _group(state: _TenantGroups, key: str) -> Group:
        group = state.groups.get(key)
        if group is None:
            raise KeyError(f"no group {key!r}")
        return group


def _copy(group: Group) -> Group:
    return Group(
        group.id, group.display_name, dict(group.members), group.hidden_membership, group.unified
    )
