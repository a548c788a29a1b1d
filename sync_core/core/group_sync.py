"""How a run learns group membership: a full run reads it whole, a delta run follows Graph's
group delta query and recomputes transitive membership locally (core/groups.py).

- **Full**: each listed group's transitive user members (`transitiveMembers`, authoritative for
  the scope), and the direct-member graph of the listed groups and every group nested in them,
  from an initial `/groups/delta` round filtered by id (repeated while it finds nested groups
  not yet tracked), whose delta links are kept for the next run.
- **Delta**: the round after the stored links. An idle round costs one request and no storage
  read. Otherwise the stored graph is read, the round applied, membership recomputed; users
  whose listed memberships changed are either *leavers* (now out of the group scope: handled
  from their ids alone, exactly as a full run would: out of scope) or read again (joined, or a
  membership field changed). A nested group added or dropped re-reads the graph whole.
- **Never an empty group by mistake**: a listed group Graph does not know fails the run
  (`group_not_found`), as does a listed group deleted in a round (`group_deleted`); the
  adapters turn 403 into `group_permission_missing`. Nothing is deleted by a failed run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sync_core.core.groups import (
    REASON_NOT_IN_GROUPS,
    GroupChange,
    GroupNode,
    GroupSettings,
    Memberships,
    apply_round,
    changed_users,
    exclude_group_reason,
    from_transitive,
    in_group_scope,
    memberships,
    nested_groups,
)
from sync_core.errors import ErrorCode, FatalError
from sync_core.errors import GroupStateMissing as GroupStateMissing

MAX_IDS_PER_ROUND = 50  # Graph's delta filter takes at most 50 `id eq` terms
_USER = "#microsoft.graph.user"
_GROUP = "#microsoft.graph.group"


class GroupSource(Protocol):
    """Graph's groups, read-only (adapters/graph_groups.py). Errors arrive as SyncError;
    DeltaStateLost when Graph no longer holds a group delta link."""

    async def transitive_user_ids(self, group_id: str) -> set[str]: ...

    async def transitive_group_ids(self, group_id: str) -> set[str]: ...

    async def group_round(
        self, ids: Iterable[str] | None, link: str | None
    ) -> tuple[list[dict[str, Any]], str]:
        """A whole group delta round: the initial one for `ids`, or the one after `link`."""
        ...


class MembershipStore(Protocol):
    """The direct-member graph a run left, per tenant and generation (adapters/tables/)."""

    async def load(self, tenant_id: str, generation: str) -> dict[str, GroupNode] | None: ...

    async def save(
        self, tenant_id: str, generation: str, graph: Mapping[str, GroupNode]
    ) -> None: ...

    async def prune(self, tenant_id: str, keep: str | None) -> None:
        """Delete every generation but `keep` (None: all, the tenant no longer uses groups)."""
        ...


@dataclass
class GroupRead:
    """What a run found out about groups, and what it commits with the delta links."""

    memberships: Memberships
    links: tuple[str, ...] = ()
    graph: dict[str, GroupNode] | None = None  # to store under a new generation; None: unchanged
    leavers: dict[str, str] = field(default_factory=dict)  # user id -> exclusion reason
    fetch: set[str] = field(default_factory=set)  # users to read again
    changed: bool = False  # the group round reported something
    idle: bool = False  # nothing changed at all: memberships were not computed


def fold_group_round(items: Iterable[Mapping[str, Any]]) -> list[GroupChange]:
    """A round's items merged per group (a large group's members come over several pages)."""
    merged: dict[str, dict[str, Any]] = {}
    for item in items:
        group_id = str(item["id"]).lower()
        entry = merged.setdefault(
            group_id,
            {"name": None, "deleted": False, "au": set(), "ru": set(), "ag": set(), "rg": set()},
        )
        if "@removed" in item:
            entry["deleted"] = True
            continue
        entry["deleted"] = False
        if isinstance(item.get("displayName"), str):
            entry["name"] = item["displayName"]
        for member in item.get("members@delta") or []:
            if not isinstance(member, Mapping) or not isinstance(member.get("id"), str):
                continue
            kind = {_GROUP: "g", _USER: "u"}.get(str(member.get("@odata.type")))
            if kind is None:  # a device, service principal or contact: never an employee
                continue
            member_id = member["id"].lower()
            gone = "@removed" in member
            entry[("r" if gone else "a") + kind].add(member_id)
            entry[("a" if gone else "r") + kind].discard(member_id)
    return [
        GroupChange(
            g,
            e["name"],
            frozenset(e["au"]),
            frozenset(e["ru"]),
            frozenset(e["ag"]),
            frozenset(e["rg"]),
            e["deleted"],
        )
        for g, e in merged.items()
    ]


async def track(
    source: GroupSource, listed: tuple[str, ...]
) -> tuple[tuple[str, ...], dict[str, GroupNode]]:
    """The direct-member graph of the listed groups and all nested in them, with the delta
    links that follow it. The nested groups are found first (one cast listing per listed group,
    few pages: groups are few), so one initial round usually reads the whole graph; it is read
    again only if nesting changed in between."""
    known = set(listed)
    for group in listed:
        known |= await source.transitive_group_ids(group)
    while True:
        items: list[dict[str, Any]] = []
        links: list[str] = []
        ordered = sorted(known)
        for start in range(0, len(ordered), MAX_IDS_PER_ROUND):
            found, link = await source.group_round(ordered[start : start + MAX_IDS_PER_ROUND], None)
            items += found
            links.append(link)
        graph = apply_round({}, [c for c in fold_group_round(items) if not c.deleted])
        missing = [g for g in listed if g not in graph]
        if missing:
            raise group_not_found(missing[0])
        reach = nested_groups(graph, listed)
        if reach <= known:
            return tuple(links), {g: graph[g] for g in reach if g in graph}
        known |= reach


async def full_read(source: GroupSource, settings: GroupSettings) -> GroupRead:
    links, graph = await track(source, settings.listed)
    transitive = {g: await source.transitive_user_ids(g) for g in settings.listed}
    names = {g: graph[g].display_name for g in settings.listed if g in graph}
    return GroupRead(from_transitive(transitive, names), links, graph, changed=True)


async def delta_read(
    source: GroupSource,
    store: MembershipStore,
    tenant_id: str,
    settings: GroupSettings,
    links: tuple[str, ...],
    generation: str | None,
    *,
    users_changed: bool,
) -> GroupRead:
    """The round after `links`; `idle` when nothing changed at all (an idle tick: nothing read
    from storage). GroupStateMissing when there is no stored graph to apply it to."""
    if not links or generation is None:
        raise GroupStateMissing()
    changes, tracked = await _round_after(source, links, settings.listed)
    if not changes and not users_changed:
        return GroupRead(Memberships(), tracked, idle=True)
    before_graph = await store.load(tenant_id, generation)
    if before_graph is None:
        raise GroupStateMissing()
    after_graph = apply_round(before_graph, changes)
    if nested_groups(after_graph, settings.listed) != set(before_graph):
        tracked, after_graph = await track(source, settings.listed)
    before = memberships(before_graph, settings.listed)
    after = memberships(after_graph, settings.listed)
    # A rename matters only to a field showing the name: a scope group's members stay as is.
    moved = changed_users(before, after, (g for _, groups in settings.fields for g in groups))
    leavers = _leavers(moved, after, settings)
    return GroupRead(
        after,
        tracked,
        after_graph if changes else None,
        leavers,
        moved - leavers.keys(),
        changed=bool(changes),
    )


async def _round_after(
    source: GroupSource, links: tuple[str, ...], listed: tuple[str, ...]
) -> tuple[list[GroupChange], tuple[str, ...]]:
    """The round after `links`, merged per group, with the links that follow it;
    group_deleted when a listed group was deleted in it."""
    items: list[dict[str, Any]] = []
    following: list[str] = []
    for link in links:
        found, next_link = await source.group_round(None, link)
        items += found
        following.append(next_link)
    changes = fold_group_round(items)
    deleted = next((c.group_id for c in changes if c.deleted and c.group_id in listed), None)
    if deleted is not None:
        raise group_deleted(deleted)
    return changes, tuple(following)


def _leavers(moved: set[str], after: Memberships, settings: GroupSettings) -> dict[str, str]:
    """The users whose memberships moved them out of the group scope, with the reason a full
    run gives (they are handled from their ids alone, never read again)."""
    if not (settings.include or settings.exclude):
        return {}
    leavers: dict[str, str] = {}
    for user_id in moved:
        groups = after.of_user.get(user_id, frozenset())
        if not in_group_scope(groups, settings):
            leavers[user_id] = _reason(groups, settings)
    return leavers


def _reason(groups: frozenset[str], settings: GroupSettings) -> str:
    include = set(settings.include)
    if include and not include & groups:
        return REASON_NOT_IN_GROUPS
    return exclude_group_reason(next(g for g in settings.exclude if g in groups))


def group_not_found(group_id: str) -> FatalError:
    return FatalError(
        ErrorCode.GROUP_NOT_FOUND,
        f"The group {group_id} named in the scope or a membership field does not exist in Entra "
        "ID (deleted, or a wrong id). An unreadable group is never taken as an empty one: the "
        "run stopped and deleted nothing.",
        "Check the id in Entra admin center > Groups (Object Id), restore the group, or remove "
        "it from filter.groups / the field's groups with `config set`.",
    )


def group_deleted(group_id: str) -> FatalError:
    failure = group_not_found(group_id)
    return FatalError(
        ErrorCode.GROUP_DELETED,
        f"The group {group_id} named in the configuration was deleted in Entra ID. "
        "The run stopped and deleted nothing.",
        failure.fix,
    )
