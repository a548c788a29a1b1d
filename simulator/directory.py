"""The live directory: tenants, consents and users as they change while a simulator runs.

Tests change users from their own thread while the server reads them on its event loop, so every
access goes through one lock. User dicts are never mutated in place (a patch stores a new dict),
which lets a page hand out references without copying.

Paging walks the tenant's users ordered by id and continues after the last id a page returned.
A round that overlaps changes therefore never returns a user twice and never skips a user that
existed throughout; users added behind the cursor or removed ahead of it are simply seen or not,
as with Graph.

Every change to a user is also appended to the tenant's change log (a sequence number per
tenant, the user, which properties changed, soft and hard deletions, restores), which is what
``/users/delta`` reads: a delta token is a position in that log.

Two knobs per tenant (``set_paging``) let a test ask for what real Graph does on its own terms:
pages smaller than ``$top`` (a page may hold fewer items than asked; only a missing nextLink ends
the listing, Graph docs concepts/paging.md), and users repeated on the next page, as Graph does
when the directory changes under a paged read (microsoftgraph/microsoft-graph-docs#5363: "the same
user several times on different pages"; msgraph-sdk-dotnet#3070: next pages repeating ids already
served). Both are off by default.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .world import Tenant, World, WorldError

UserPredicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class TenantInfo:
    id: str
    display_name: str
    verified_domains: tuple[dict[str, Any], ...]
    tenant_type: str = "AAD"


@dataclass(frozen=True)
class Paging:
    """How a tenant's listing pages are cut (see the module docstring)."""

    max_page_size: int | None = None  # at most this many users per page, whatever $top says
    repeat_previous: int = 0  # each next page first repeats this many users of the page before

    def __post_init__(self) -> None:
        if self.max_page_size is not None and self.max_page_size < 1:
            raise ValueError("max_page_size must be >= 1 (or None for $top)")
        if self.repeat_previous < 0:
            raise ValueError("repeat_previous must be >= 0")


@dataclass(frozen=True)
class Page:
    users: tuple[dict[str, Any], ...]
    last_id: str | None
    more: bool


class UnknownTenantError(KeyError):
    pass


@dataclass(frozen=True)
class Change:
    """One entry of a tenant's change log.

    ``kind`` is "created", "updated", "restored", "soft_deleted" (in the deleted items, can be
    restored) or "hard_deleted" (gone for good); ``properties`` names the properties an
    update changed (lower-cased), empty for the other kinds."""

    seq: int
    user_id: str
    kind: str
    properties: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UserState:
    """A user as delta sees it: active (``user`` set), soft-deleted (``user`` set, ``deleted``
    true) or hard-deleted (``user`` None)."""

    user: dict[str, Any] | None
    deleted: bool
    user_id: str | None = None  # as the user was spelled, also after a hard delete


class _TenantState:
    def __init__(self, tenant: Tenant):
        self.info = TenantInfo(
            tenant.id, tenant.display_name, tenant.verified_domains, tenant.tenant_type
        )
        self.consents: dict[str, tuple[str, ...]] = dict(tenant.consents)
        self.users: dict[str, dict[str, Any]] = {u["id"].lower(): u for u in tenant.users}
        self.order: list[str] = sorted(self.users)
        self.deleted: dict[str, dict[str, Any]] = {}  # soft-deleted, restorable
        self.purged: dict[str, str] = {}  # hard-deleted: the id as it was spelled
        self.changes: list[Change] = []
        self.paging = Paging()
        # user -> the manager it had before its manager last changed (manager@delta's @removed)
        self.former_managers: dict[str, str] = {}

    def record(self, user_id: str, kind: str, properties: frozenset[str] = frozenset()) -> None:
        self.changes.append(Change(len(self.changes) + 1, user_id, kind, properties))


class Directory:
    def __init__(self, world: World):
        self._lock = threading.Lock()
        self._tenants: dict[str, _TenantState] = {t.id: _TenantState(t) for t in world.tenants}
        # (tenant, client) -> monotonic time until which a fresh consent is still replicating.
        self._replicating: dict[tuple[str, str], float] = {}

    def find_tenant(self, name: str) -> TenantInfo | None:
        """Entra accepts a tenant's GUID or any of its verified domain names."""
        wanted = name.lower()
        with self._lock:
            state = self._tenants.get(wanted)
            if state:
                return state.info
            for state in self._tenants.values():
                if any(
                    str(d.get("name", "")).lower() == wanted for d in state.info.verified_domains
                ):
                    return state.info
        return None

    def tenant_ids(self) -> list[str]:
        with self._lock:
            return list(self._tenants)

    def roles(self, tenant_id: str, client_id: str) -> tuple[str, ...] | None:
        """Roles consented for the app in the tenant; None when the app has no service principal
        there (never consented), which Entra reports as an unknown application."""
        with self._lock:
            return self._state(tenant_id).consents.get(client_id.lower())

    def page(self, tenant_id: str, after: str | None, matches: UserPredicate, limit: int) -> Page:
        with self._lock:
            state = self._state(tenant_id)
            paging = state.paging
            limit = min(limit, paging.max_page_size or limit)
            start = bisect.bisect_right(state.order, after) if after else 0
            repeated = _matching_before(state, start, matches, paging.repeat_previous)
            # Repeats take room on the page, but every page still moves the cursor on.
            fresh = max(1, limit - len(repeated))
            found: list[dict[str, Any]] = []
            for user_id in state.order[start:]:
                user = state.users[user_id]
                if not matches(user):
                    continue
                if len(found) == fresh:
                    return Page((*repeated, *found), found[-1]["id"].lower(), more=True)
                found.append(user)
        last = found[-1]["id"].lower() if found else after
        return Page((*repeated, *found), last, more=False)

    def set_paging(self, tenant_id: str, paging: Paging) -> None:
        with self._lock:
            self._state(tenant_id).paging = paging

    def count(self, tenant_id: str, matches: UserPredicate) -> int:
        with self._lock:
            return sum(1 for user in self._state(tenant_id).users.values() if matches(user))

    def user(self, tenant_id: str, key: str) -> dict[str, Any] | None:
        """A user by id or by userPrincipalName, as Graph's /users/{id-or-upn} resolves it."""
        wanted = key.lower()
        with self._lock:
            state = self._state(tenant_id)
            user = state.users.get(wanted)
            if user is None:
                user = next(
                    (
                        u
                        for u in state.users.values()
                        if str(u.get("userPrincipalName", "")).lower() == wanted
                    ),
                    None,
                )
            return user

    def upsert_user(self, tenant_id: str, user: Mapping[str, Any]) -> None:
        if not isinstance(user.get("id"), str) or not user["id"]:
            raise WorldError(["a user needs a string 'id'"])
        key = user["id"].lower()
        with self._lock:
            state = self._state(tenant_id)
            previous = state.users.get(key)
            if previous is None:
                bisect.insort(state.order, key)
                state.deleted.pop(key, None)
                state.record(key, "created")
            else:
                state.record(key, "updated", _changed(previous, user))
            state.users[key] = dict(user)

    def patch_user(self, tenant_id: str, user_id: str, changes: Mapping[str, Any]) -> None:
        """Merge ``changes`` into the user; a None value clears the property, like a Graph PATCH."""
        key = user_id.lower()
        with self._lock:
            state = self._state(tenant_id)
            if key not in state.users:
                raise KeyError(f"no user {user_id!r} in tenant {tenant_id!r}")
            merged = dict(state.users[key])
            for name, value in changes.items():
                if name == "id":
                    continue
                if value is None:
                    merged.pop(name, None)
                else:
                    merged[name] = value
            changed = _changed(state.users[key], merged)
            if changed:
                state.record(key, "updated", changed)
            if "manager" in changed and state.users[key].get("manager"):
                state.former_managers[key] = str(state.users[key]["manager"])
            state.users[key] = merged

    def remove_user(self, tenant_id: str, user_id: str, *, permanent: bool = False) -> None:
        """Delete a user as Graph's DELETE does: into the deleted items, restorable (soft), or
        for good (``permanent``; also purges a soft-deleted user)."""
        key = user_id.lower()
        with self._lock:
            state = self._state(tenant_id)
            user = state.users.pop(key, None)
            if user is not None:
                state.order.remove(key)
            elif permanent and key in state.deleted:
                user = state.deleted[key]
            if user is None:
                raise KeyError(f"no user {user_id!r} in tenant {tenant_id!r}")
            if permanent:
                state.deleted.pop(key, None)
                state.purged[key] = str(user["id"])
                state.record(key, "hard_deleted")
            else:
                state.deleted[key] = user
                state.record(key, "soft_deleted")

    def restore_user(self, tenant_id: str, user_id: str) -> None:
        """Bring a soft-deleted user back, unchanged (Graph: restore a deleted item)."""
        key = user_id.lower()
        with self._lock:
            state = self._state(tenant_id)
            user = state.deleted.pop(key, None)
            if user is None:
                raise KeyError(f"no deleted user {user_id!r} in tenant {tenant_id!r}")
            state.users[key] = user
            bisect.insort(state.order, key)
            state.record(key, "restored")

    def active_ids(self, tenant_id: str) -> list[str]:
        """The (lower-cased) ids of the tenant's users, in order."""
        with self._lock:
            return list(self._state(tenant_id).order)

    def change_position(self, tenant_id: str) -> int:
        """The sequence number of the tenant's latest change (0: none yet)."""
        with self._lock:
            return len(self._state(tenant_id).changes)

    def changes(self, tenant_id: str, after: int, upto: int) -> tuple[Change, ...]:
        """The tenant's changes with ``after < seq <= upto``."""
        with self._lock:
            return tuple(self._state(tenant_id).changes[max(after, 0) : upto])

    def user_state(self, tenant_id: str, user_id: str) -> UserState:
        key = user_id.lower()
        with self._lock:
            state = self._state(tenant_id)
            if key in state.users:
                return UserState(state.users[key], False, state.users[key]["id"])
            if key in state.deleted:
                return UserState(state.deleted[key], True, state.deleted[key]["id"])
            return UserState(None, False, state.purged.get(key))

    def former_manager(self, tenant_id: str, user_id: str) -> str | None:
        with self._lock:
            return self._state(tenant_id).former_managers.get(user_id.lower())

    def add_tenant(self, tenant: Tenant) -> None:
        with self._lock:
            if tenant.id in self._tenants:
                raise WorldError([f"tenant {tenant.id} already exists"])
            self._tenants[tenant.id] = _TenantState(tenant)

    def set_consent(self, tenant_id: str, client_id: str, roles: Iterable[str] | None) -> None:
        """Grant exactly ``roles``; None removes the app's service principal from the tenant.
        Immediate: ends a replication delay still running for the pair."""
        with self._lock:
            self._replicating.pop((tenant_id.lower(), client_id.lower()), None)
            consents = self._state(tenant_id).consents
            if roles is None:
                consents.pop(client_id.lower(), None)
            else:
                consents[client_id.lower()] = tuple(roles)

    def grant_consent(
        self, tenant_id: str, client_id: str, roles: Iterable[str], replication_seconds: float = 0
    ) -> None:
        """Admin consent: the app's service principal and roles, visible to token requests
        only after ``replication_seconds`` (consent replicates for seconds in Entra: PLATFORM-NOTES,
        "Admin consent for a multi-tenant app")."""
        key = (tenant_id.lower(), client_id.lower())
        with self._lock:
            self._state(tenant_id).consents[key[1]] = tuple(roles)
            if replication_seconds > 0:
                self._replicating[key] = time.monotonic() + replication_seconds
            else:
                self._replicating.pop(key, None)

    def replicating(self, tenant_id: str, client_id: str) -> bool:
        """True while a consent granted with a replication delay is not visible yet."""
        key = (tenant_id.lower(), client_id.lower())
        with self._lock:
            until = self._replicating.get(key)
            if until is None:
                return False
            if time.monotonic() >= until:
                del self._replicating[key]
                return False
            return True

    def _state(self, tenant_id: str) -> _TenantState:
        state = self._tenants.get(tenant_id.lower())
        if state is None:
            raise UnknownTenantError(tenant_id)
        return state


def _changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> frozenset[str]:
    """The (lower-cased) names of the properties whose value differs."""
    names = set(before) | set(after)
    return frozenset(n.lower() for n in names if before.get(n) != after.get(n))


def _matching_before(
    state: _TenantState, start: int, matches: UserPredicate, count: int
) -> tuple[dict[str, Any], ...]:
    """The last ``count`` matching users before position ``start`` (in id order)."""
    repeated: list[dict[str, Any]] = []
    index = start - 1
    while start > 0 and index >= 0 and len(repeated) < count:
        user = state.users[state.order[index]]
        if matches(user):
            repeated.append(user)
        index -= 1
    return tuple(reversed(repeated))
