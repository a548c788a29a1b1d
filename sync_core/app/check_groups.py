"""Check Connectivity for the groups a configuration names (scope and membership fields): each
one read, so a deleted group, a wrong id or a missing permission is found before a run fails on
it; the problem names the group by its display name when Graph shows it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sync_core.core.config import TenantConfig
from sync_core.core.groups import GroupSettings, Memberships, from_transitive
from sync_core.errors import FatalError, SyncError

if TYPE_CHECKING:
    from sync_core.adapters.graph import GraphDirectory


async def check_groups(
    directory: GraphDirectory, config: TenantConfig
) -> tuple[Memberships | None, list[SyncError], list[str]]:
    """The listed groups' memberships (None when the configuration names no group or one
    could not be read), the problems, and what passed."""
    settings = GroupSettings.from_config(config)
    if not settings.active:
        return None, [], []
    groups = directory.groups
    problems: list[SyncError] = []
    members: dict[str, set[str]] = {}
    names: dict[str, str] = {}
    for group_id in settings.listed:
        try:
            names[group_id] = await groups.group_name(group_id)
        except SyncError as failure:
            problems.append(failure)
            continue
        try:
            members[group_id] = await groups.transitive_user_ids(group_id)
        except SyncError as failure:
            problems.append(
                FatalError(
                    failure.code,
                    f"Group {names[group_id]!r}: {failure.message}",
                    failure.fix,
                )
            )
    if problems:
        return None, problems, []
    passed = [
        f"the app may read the members of {len(settings.listed)} group(s) "
        f"(GroupMember.Read.All): {', '.join(names[g] for g in settings.listed)}"
    ]
    return from_transitive(members, names), [], passed
