"""A run's group step, between the engine and core/group_sync.py: what a tenant scoped by group
(or with a membership field) adds to a full or a delta run, and what it commits last."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Protocol, cast

from sync_core.core.config import TenantConfig
from sync_core.core.delta import DeltaChanges, SyncState
from sync_core.core.group_sync import (
    GroupRead,
    GroupSource,
    GroupStateMissing,
    MembershipStore,
    delta_read,
    full_read,
)
from sync_core.core.groups import MEMBERSHIP_KEY, GroupSettings, Memberships
from sync_core.core.pages import RunTotals
from sync_core.core.ports import DeltaStateLost, SyncStateStore
from sync_core.core.summary import TenantSummary

log = logging.getLogger("sync_core.run")


class GroupDirectory(Protocol):
    """What the Graph adapter offers for groups (adapters/graph_groups.GraphGroups)."""

    async def users_by_id(
        self, ids: Iterable[str], select: Iterable[str]
    ) -> list[dict[str, Any]]: ...


class GroupStep:
    def __init__(self, config: TenantConfig, tenant_id: str, store: MembershipStore | None):
        self.settings = GroupSettings.from_config(config)
        self.tenant_id = tenant_id
        self.store = store
        self.read: GroupRead | None = None

    @property
    def active(self) -> bool:
        return self.settings.active

    async def full(self, directory: object) -> Memberships:
        self.read = await full_read(_source(directory), self.settings)
        return self.read.memberships

    async def delta(
        self,
        directory: object,
        state: SyncState,
        changes: DeltaChanges,
        select: Iterable[str],
        tally: RunTotals,
    ) -> DeltaChanges | None:
        """The round with the group changes folded in: users who joined or whose membership
        field changed read again, leavers added as out of scope (counted like a full run
        counts them). None (the run goes full) when there is no stored graph to follow or
        Graph forgot a group link."""
        try:
            if self.store is None:  # nowhere to keep the graph: every run is full
                raise GroupStateMissing()
            read = await delta_read(
                _source(directory),
                self.store,
                self.tenant_id,
                self.settings,
                state.group_links,
                state.groups_generation,
                users_changed=bool(changes.users or changes.removed),
            )
        except (GroupStateMissing, DeltaStateLost):
            log.warning("the stored group membership cannot be followed: running full")
            return None
        self.read = read
        if read.idle:  # the links move on, nothing else
            return changes
        users = dict(changes.users)
        wanted = read.fetch - users.keys() - set(changes.removed)
        if wanted:
            fetched = await cast(GroupDirectory, _source(directory)).users_by_id(wanted, select)
            users.update({str(u["id"]): u for u in fetched if str(u["id"]) not in users})
        annotated = {i: read.memberships.annotate(u) for i, u in users.items()}
        leavers = [u for u in sorted(read.leavers) if u not in users and u not in changes.removed]
        for user_id in leavers:
            tally.read_ids.add(user_id)
            tally.counts.read += 1
            tally.counts.excluded += 1
            tally.excluded_by[read.leavers[user_id]] += 1
        return DeltaChanges(annotated, (*changes.removed, *leavers))

    def annotated(self, changes: DeltaChanges) -> DeltaChanges:
        """The round's users with their memberships, those added after `delta` too (a changed
        manager's reports, core/manager_pass.py): scope must never see a user without them."""
        if not self.active or self.read is None or self.read.idle:
            return changes
        memberships = self.read.memberships
        users = {
            i: u if MEMBERSHIP_KEY in u else memberships.annotate(u)
            for i, u in changes.users.items()
        }
        return DeltaChanges(users, changes.removed)

    async def commit(
        self,
        states: SyncStateStore,
        user_state: SyncState | None,
        previous: SyncState | None,
        run_id: str,
        summary: TenantSummary | None,
        summary_etag: str | None,
        *,
        held: bool,
    ) -> None:
        """Last in a run: a new graph generation written whole, then the state naming it (the
        user link with the group links, and the summary: core/run_commit.py), then older
        generations pruned. `user_state` (run_commit.next_state) None: the user link stays as
        stored (an idle round), but group links that moved on are stored with it. A held run
        keeps the stored graph and its links: the run the guard asks for next replays the same
        changes."""
        if held:
            await states.save(self.tenant_id, user_state, summary, summary_etag)
            return
        if user_state is None and self._moved_on() and previous is not None:
            user_state = previous
        state, save = (
            (None, False)
            if user_state is None
            else self._state_for_commit(user_state, previous, run_id)
        )
        if save:
            assert self.store is not None and self.read is not None and self.read.graph is not None
            await self.store.save(self.tenant_id, run_id, self.read.graph)
        await states.save(self.tenant_id, state, summary, summary_etag)
        if save and self.store is not None:
            await self.store.prune(self.tenant_id, keep=run_id)
        elif not self.active and previous and previous.groups_generation and self.store:
            await self.store.prune(self.tenant_id, keep=None)  # groups no longer configured

    def _moved_on(self) -> bool:
        """Whether the group round read a change the stored links would replay."""
        return self.active and self.read is not None and not self.read.idle

    def _state_for_commit(
        self, user_state: SyncState, previous: SyncState | None, run_id: str
    ) -> tuple[SyncState, bool]:
        """The state to commit (group links, generation) and whether a graph must be saved
        first (under the generation `run_id`)."""
        if not self.active or self.read is None or self.store is None:
            return user_state, False
        if self.read.graph is None:
            kept = previous.groups_generation if previous else None
            return replace(user_state, group_links=self.read.links, groups_generation=kept), False
        return replace(user_state, group_links=self.read.links, groups_generation=run_id), True

    def report(self) -> tuple[dict[str, Any], ...]:
        if self.read is None or self.read.idle:
            return ()
        memberships = self.read.memberships
        counts = memberships.member_counts(self.settings.listed)
        return tuple(
            {"id": g, "displayName": memberships.names.get(g), "members": counts[g]}
            for g in self.settings.listed
        )


def _source(directory: Any) -> GroupSource:
    # The Graph adapter's `groups` (GraphDirectory.groups); the UserDirectory port stays as is.
    return cast(GroupSource, directory.groups)
