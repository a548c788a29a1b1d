"""Graph's groups for scope by group (core/group_sync.py): transitive user members, the group
delta query, and users read again by id; raw JSON through the SDK's adapter like graph.py.

- `/groups/{id}/transitiveMembers/microsoft.graph.user?$select=id&$count=true` with
  `ConsistencyLevel: eventual`: the flat list of nested user members; the cast is an advanced
  query (learn.microsoft.com/graph/api/group-list-transitivemembers, concepts/
  aad-advanced-queries.md). Paged like the users listing, with the same page rules.
- `/groups/delta?$filter=id eq '..' or ..&$select=displayName,members`: `members@delta`, direct
  members only, removals with `@removed` (group-delta, concepts/delta-query-groups.md).
- `/users/delta?$filter=id eq '..' or ..&$select=..`: the current state of up to 50 users in one
  request (user-delta: an initial round filtered by id), for users who joined a scope group.
- Permission: `GroupMember.Read.All` (application). A 403 is `group_permission_missing` (also for
  a group with hidden membership: `Member.Read.Hidden`), a 404 `group_not_found`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import quote

from sync_core.adapters.errors import GraphRequestError, classify_graph_error
from sync_core.adapters.graph_delta import SYNC_STATE_NOT_FOUND, _pages
from sync_core.adapters.graph_pages import (
    UNSUPPORTED_QUERY,
    PageTrail,
    malformed_page_failure,
    parse_users_page,
)
from sync_core.core.group_sync import MAX_IDS_PER_ROUND, group_not_found
from sync_core.core.limits import clean_text
from sync_core.core.ports import DeltaStateLost
from sync_core.errors import ErrorCode, FatalError, SyncError

Send = Callable[..., Awaitable[bytes | None]]  # graph.GraphDirectory._send


def permission_missing(group_id: str) -> FatalError:
    return FatalError(
        ErrorCode.GROUP_PERMISSION_MISSING,
        f"Microsoft Graph refused to read the members of group {group_id}: the app lacks the "
        "GroupMember.Read.All application permission in this tenant (or the group hides its "
        "membership, which needs Member.Read.Hidden). An unreadable group is never taken as an "
        "empty one: the run stopped and deleted nothing.",
        "In the Entra admin center, open the app registration > API permissions, add Microsoft "
        "Graph application permission GroupMember.Read.All and grant admin consent (tenants "
        "that scope by no group do not need it).",
    )


def _id_filter(ids: Iterable[str]) -> str:
    return quote(" or ".join(f"id eq '{i}'" for i in ids), safe="'")


class GraphGroups:
    """The GroupSource of core/group_sync.py over one GraphDirectory's transport."""

    def __init__(self, send: Send, api: str):
        self._send = send
        self._api = api

    async def transitive_user_ids(self, group_id: str) -> set[str]:
        return await self._transitive(group_id, "microsoft.graph.user")

    async def transitive_group_ids(self, group_id: str) -> set[str]:
        """The groups nested in `group_id` at any depth (what a group delta round tracks).

        A Microsoft 365 group holds no groups, and Graph answers the cast to groups on one with
        400 Request_UnsupportedQuery (group-list-transitivemembers): no nested group. Safe even
        if that answer meant something else: this list only saves rounds, the group rounds
        themselves find every nested group (group_sync.track)."""
        try:
            return await self._transitive(group_id, "microsoft.graph.group")
        except _NoGroupMembers:
            return set()

    async def _transitive(self, group_id: str, cast: str) -> set[str]:
        first = (
            f"{self._api}/groups/{quote(group_id)}/transitiveMembers/{cast}"
            "?$select=id&$count=true&$top=999"
        )
        trail = PageTrail(first)
        url: str | None = first
        ids: set[str] = set()
        while url is not None:
            try:
                content = await self._send(url, advanced_query=True)
            except GraphRequestError as error:
                if cast == "microsoft.graph.group" and _unsupported_cast(error):
                    raise _NoGroupMembers() from None
                raise _group_failure(error, group_id) from None
            page = parse_users_page(content, trail.page_number)
            trail.follow(page.next_link)
            ids |= {str(member["id"]).lower() for member in page.users}
            url = page.next_link
        return ids

    async def group_round(
        self, ids: Iterable[str] | None, link: str | None
    ) -> tuple[list[dict[str, Any]], str]:
        listed = list(ids or ())
        first = link or (
            f"{self._api}/groups/delta?$filter={_id_filter(listed)}&$select=displayName,members"
        )
        items: list[dict[str, Any]] = []
        delta_link: str | None = None
        pages = 0
        try:
            async for page in _pages(self._send, first):
                pages += 1
                _check_members(page.items, pages)
                items += page.items
                delta_link = page.delta_link or delta_link
        except GraphRequestError as error:
            if link is not None and (
                error.status in (400, 410) or error.code == SYNC_STATE_NOT_FOUND
            ):
                raise DeltaStateLost(f"groups: {error.status} {error.code}") from None
            raise _group_failure(error, ", ".join(listed) or "in the scope") from None
        assert delta_link is not None  # _pages ends only on a page with a delta link
        return items, delta_link

    async def users_by_id(self, ids: Iterable[str], select: Iterable[str]) -> list[dict[str, Any]]:
        """The users' current state (those deleted are simply absent)."""
        ordered = sorted(set(ids))
        chosen = quote(",".join(sorted(select)), safe=",")
        users: list[dict[str, Any]] = []
        for start in range(0, len(ordered), MAX_IDS_PER_ROUND):
            chunk = ordered[start : start + MAX_IDS_PER_ROUND]
            url = f"{self._api}/users/delta?$select={chosen}&$filter={_id_filter(chunk)}"
            try:
                async for page in _pages(self._send, url):
                    users += [u for u in page.items if "@removed" not in u]
            except GraphRequestError as error:
                raise classify_graph_error(error) from error
        return users

    async def group_name(self, group_id: str) -> str:
        """The group's display name (Check Connectivity); SyncError when it cannot be read."""
        url = f"{self._api}/groups/{quote(group_id)}?$select=id,displayName"
        try:
            content = await self._send(url)
        except GraphRequestError as error:
            raise _group_failure(error, group_id) from None
        body = json.loads(content or b"{}")
        name = body.get("displayName") if isinstance(body, dict) else None
        return name if isinstance(name, str) else group_id


class _NoGroupMembers(Exception):
    """The group cannot hold groups (a Microsoft 365 group)."""


def _unsupported_cast(error: GraphRequestError) -> bool:
    return error.status == 400 and error.code == UNSUPPORTED_QUERY


def _check_members(items: list[dict[str, Any]], page_number: int) -> None:
    """Every `members@delta` entry with an id and a type, or the page is refused: an entry
    skipped would drop a nesting (a whole group's users taken as outside the scope) or a
    joiner, and the links would move past it (group-delta documents both on every entry)."""
    for item in items:
        members = item.get("members@delta", [])
        if not isinstance(members, list) or not all(
            isinstance(m, dict)
            and isinstance(m.get("id"), str)
            and isinstance(m.get("@odata.type"), str)
            for m in members
        ):
            group = clean_text(str(item.get("id"))[:64])
            raise malformed_page_failure(
                page_number, f"group {group} has a malformed members@delta"
            )


def _group_failure(error: GraphRequestError, group_id: str) -> SyncError:
    if error.status == 403:
        return permission_missing(group_id)
    if error.status == 404:
        return group_not_found(group_id)
    return classify_graph_error(error)
