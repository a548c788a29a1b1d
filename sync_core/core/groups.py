"""Scope by group and the group-membership field: transitive membership and what changed. Pure.

The directory's nesting is kept as a graph of *direct* members (group -> users and groups), the
shape Graph's group delta query reports (`members@delta`, concepts/delta-query-groups.md); the
transitive membership of the configured groups is computed here, so a delta run recomputes it
locally after applying a round. Nesting cycles are harmless: each walk keeps the set of groups
it has visited.

A user dict entering scope and mapping carries its memberships under MEMBERSHIP_KEY (group id ->
display name, for the configured groups it belongs to, transitively); the key cannot collide
with a Graph property (those never start with '@').
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sync_core.core.config import MEMBER_OF_SOURCE, TenantConfig

MEMBERSHIP_KEY = "@sync.memberOf"
REASON_NOT_IN_GROUPS = "notInGroups"


def exclude_group_reason(group_id: str) -> str:
    return f"excludeGroup[{group_id}]"


@dataclass(frozen=True)
class GroupNode:
    """One group's direct members, as the directory has them."""

    display_name: str
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()


Graph = Mapping[str, GroupNode]  # group id -> its direct members


@dataclass(frozen=True)
class GroupChange:
    """One group in a delta round, folded: members added and removed, a new name, or the
    group deleted (`@removed` on the group itself)."""

    group_id: str
    display_name: str | None = None
    added_users: frozenset[str] = frozenset()
    removed_users: frozenset[str] = frozenset()
    added_groups: frozenset[str] = frozenset()
    removed_groups: frozenset[str] = frozenset()
    deleted: bool = False


@dataclass(frozen=True)
class GroupSettings:
    """The groups a configuration names: the scope's include and exclude lists and the groups
    of each membership field, all lower-case ids."""

    include: tuple[str, ...]
    exclude: tuple[str, ...]
    fields: tuple[tuple[str, tuple[str, ...]], ...]  # field name -> its groups, in order

    @classmethod
    def from_config(cls, config: TenantConfig) -> GroupSettings:
        fields = tuple(
            (f.name, tuple(g.lower() for g in f.groups))
            for f in config.fields
            if f.source == MEMBER_OF_SOURCE
        )
        groups = config.filter.groups
        return cls(
            tuple(g.lower() for g in groups.include),
            tuple(g.lower() for g in groups.exclude),
            fields,
        )

    @property
    def listed(self) -> tuple[str, ...]:
        """Every group the configuration names, each once, in the order first named."""
        named = [*self.include, *self.exclude, *(g for _, gs in self.fields for g in gs)]
        return tuple(dict.fromkeys(named))

    @property
    def active(self) -> bool:
        return bool(self.listed)


@dataclass
class Memberships:
    """Which listed groups each user belongs to (transitively), and the groups' names."""

    of_user: dict[str, frozenset[str]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def annotate(self, user: dict[str, Any]) -> dict[str, Any]:
        """The user with its memberships under MEMBERSHIP_KEY (a new dict: pages are shared)."""
        groups = self.of_user.get(str(user.get("id", "")).lower(), frozenset())
        return {**user, MEMBERSHIP_KEY: {g: self.names.get(g, g) for g in sorted(groups)}}

    def member_counts(self, listed: Iterable[str]) -> dict[str, int]:
        counts = dict.fromkeys(listed, 0)
        for groups in self.of_user.values():
            for group in groups:
                if group in counts:
                    counts[group] += 1
        return counts


def from_transitive(
    listed_members: Mapping[str, Iterable[str]], names: Mapping[str, str]
) -> Memberships:
    """Memberships from each listed group's transitive user ids (what a full run reads)."""
    of_user: dict[str, set[str]] = {}
    for group, users in listed_members.items():
        for user in users:
            of_user.setdefault(user.lower(), set()).add(group)
    return Memberships({u: frozenset(g) for u, g in of_user.items()}, dict(names))


def transitive_users(graph: Graph, root: str) -> set[str]:
    """Every user in `root` or in a group nested in it, at any depth; cycles end the walk."""
    users: set[str] = set()
    seen = {root}
    stack = [root]
    while stack:
        node = graph.get(stack.pop())
        if node is None:
            continue
        users |= node.users
        for nested in node.groups - seen:
            seen.add(nested)
            stack.append(nested)
    return users


def nested_groups(graph: Graph, roots: Iterable[str]) -> set[str]:
    """The roots and every group reachable from them (what a delta round must track)."""
    seen = set(roots)
    stack = list(seen)
    while stack:
        node = graph.get(stack.pop())
        for nested in (node.groups if node else frozenset()) - seen:
            seen.add(nested)
            stack.append(nested)
    return seen


def memberships(graph: Graph, listed: Iterable[str]) -> Memberships:
    members = {group: transitive_users(graph, group) for group in listed}
    names = {g: graph[g].display_name for g in members if g in graph}
    return from_transitive(members, names)


def apply_round(graph: Graph, changes: Iterable[GroupChange]) -> dict[str, GroupNode]:
    """The graph after a delta round. Adding a present member or removing an absent one
    changes nothing, so a replayed round is harmless."""
    result = dict(graph)
    for change in changes:
        if change.deleted:
            result.pop(change.group_id, None)
            continue
        node = result.get(change.group_id, GroupNode(change.group_id))
        result[change.group_id] = GroupNode(
            change.display_name if change.display_name is not None else node.display_name,
            (node.users | change.added_users) - change.removed_users,
            (node.groups | change.added_groups) - change.removed_groups,
        )
    return result


def changed_users(
    before: Memberships, after: Memberships, shown: Iterable[str] | None = None
) -> set[str]:
    """Users whose listed memberships differ, plus the members of a group whose name changed
    when a membership field shows it (`shown`: the fields' groups; None: every group)."""
    users = {
        u
        for u in before.of_user.keys() | after.of_user.keys()
        if before.of_user.get(u, frozenset()) != after.of_user.get(u, frozenset())
    }
    named = after.names.keys() if shown is None else set(shown)
    renamed = {
        g for g, name in after.names.items() if g in named and before.names.get(g, name) != name
    }
    if renamed:
        users |= {u for u, groups in after.of_user.items() if groups & renamed}
    return users


def group_exclusion(
    user: Mapping[str, Any], include: frozenset[str], exclude: tuple[str, ...]
) -> str | None:
    """The scope's verdict on a user's groups: None (in), notInGroups, or excludeGroup[<id>]."""
    groups = user.get(MEMBERSHIP_KEY) or {}
    if include and not include & groups.keys():
        return REASON_NOT_IN_GROUPS
    for group in exclude:
        if group in groups:
            return exclude_group_reason(group)
    return None


def in_group_scope(groups: frozenset[str], settings: GroupSettings) -> bool:
    include = frozenset(settings.include)
    if include and not include & groups:
        return False
    return not groups & set(settings.exclude)


def field_value(user: Mapping[str, Any], groups: tuple[str, ...]) -> list[str] | None:
    """A membership field: the display names of the field's groups the user belongs to, in the
    order the field lists them (stable whatever order Graph answers in); None when none."""
    mine = user.get(MEMBERSHIP_KEY) or {}
    names = [mine[g] for g in groups if g in mine]
    return names or None
