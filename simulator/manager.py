"""The ``manager`` relationship of users, as Graph v1.0 serves it.

A user's manager is kept in its dict under ``"manager"`` (the manager's id; set or cleared with
``patch_user(tenant, user, {"manager": id or None})``, which is a change of the user like any
other, so ``/users/delta`` reports it). It is a navigation property, never a listed property:

- ``GET /users/{id}/manager``: the manager with ``$select`` (default properties without), 404
  ``Request_ResourceNotFound`` when the user has none (api-reference/v1.0/api/
  user-list-manager.md: "If no manager is assigned to the user, this method returns 404").
- ``GET /users?$expand=manager`` and ``$expand=manager($select=a,b)``: each user with its
  ``manager`` object, none when it has no manager. ``$expand`` on directory objects returns at
  most 100 objects a page whatever ``$top`` asks (Graph's known issues, id 13635, quoted on
  techcommunity "The top parameter does not work together with the expand parameter": "$expand
  on directory objects: Returns a maximum of 100 objects"). ``$levels`` is supported only on a
  single user, not the list (user-list-manager.md), so it is refused here with 400.
- ``/users/delta`` with ``manager`` in ``$select``: ``manager@delta``, a list naming the manager
  by ``@odata.type`` and ``id`` only (user-delta.md, example "selecting manager"): in an initial
  round for every user with a manager, in later rounds for a user whose manager changed or who
  was created or restored (delta-query-overview.md: new instances in their standard
  representation, relationships as ``@delta`` annotations); a
  manager taken away is the entry with ``@removed`` (the shape of ``members@delta`` removals,
  concepts/delta-query-groups.md).
- A manager who is deleted is no longer anyone's manager (no object to expand or return); the
  reports themselves do not change, so delta does not list them for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .directory import Directory
from .graph_query import GraphError, parse_select

MANAGER = "manager"
DELTA = "manager@delta"
EXPANDED_PAGE_MAX = 100
_USER_TYPE = "#microsoft.graph.user"
_EXPAND = re.compile(r"^\s*manager\s*(?:\((.*)\))?\s*$", re.IGNORECASE | re.DOTALL)


def parse_expand(value: str) -> tuple[str, ...] | None:
    """The manager's ``$select`` inside ``$expand=manager(...)``; () for its defaults. Any other
    expansion is a 501 (not simulated)."""
    match = _EXPAND.match(value)
    if match is None:
        raise GraphError(
            501, "NotImplemented", f"The simulator expands only 'manager', not '{value}'."
        )
    options = match.group(1)
    if not options:
        return ()
    select: tuple[str, ...] = ()
    for option in options.split(";"):
        name, _, argument = option.partition("=")
        if name.strip().lower() == "$select":
            select = parse_select(argument, collection=False)
        elif name.strip().lower() == "$levels":
            raise GraphError(
                400,
                "Request_BadRequest",
                "$levels in $expand is supported only on a single user, not on a collection.",
            )
        else:
            raise GraphError(
                400, "Request_BadRequest", f"Unsupported option in $expand: '{option.strip()}'."
            )
    return select


def manager_of(directory: Directory, tenant_id: str, user: Mapping[str, Any]) -> Any:
    """The user's manager as a live user dict, or None (no manager, or no longer there)."""
    manager_id = user.get(MANAGER)
    if not isinstance(manager_id, str) or not manager_id:
        return None
    found = directory.user_state(tenant_id, manager_id)
    return found.user if found.user is not None and not found.deleted else None


def expand(
    directory: Directory,
    tenant_id: str,
    items: list[dict[str, Any]],
    users: Iterable[Mapping[str, Any]],
    project: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> None:
    """`$expand=manager`: each listed item with its manager's projection, none without one."""
    for item, listed in zip(items, users, strict=True):
        boss = manager_of(directory, tenant_id, listed)
        if boss is not None:
            item[MANAGER] = project(boss)


def split_select(select: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
    """A delta ``$select`` without ``manager``, and whether it named it."""
    kept = tuple(s for s in select if s.lower() != MANAGER)
    return kept, len(kept) != len(select)


def delta_entry(
    directory: Directory, tenant_id: str, user: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """``manager@delta`` for a user: its manager, or the former one marked removed."""
    manager = manager_of(directory, tenant_id, user)
    if manager is not None:
        return [{"@odata.type": _USER_TYPE, "id": manager["id"]}]
    former = directory.former_manager(tenant_id, user["id"])
    if former is None:
        return []
    return [{"@odata.type": _USER_TYPE, "id": former, "@removed": {"reason": "deleted"}}]
