"""Manager fields in a run: the reads and index writes around the pure steps of manager.py.

- Full run: the listing expands each user's manager (`$expand=manager($select=...)`), so every
  user gets its manager's values from the page itself, out-of-scope managers included; the run
  keeps only user -> manager id and each manager's few values, and after the writes replaces
  the stored index with what it saw.
- Delta run: the round names who changed (`manager@delta` for a new or removed manager, the
  manager's own item for its new name or title). Point reads of the index for those users give
  their stored managers and which of them manage someone; a manager whose values changed (or who
  left the directory) has its reports listed by the edge rows and read again from Graph (a delta
  query filtered by id, 50 a request), so every report's row is rewritten in the same tick. All
  of it is O(what changed): an idle round reads nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar, cast

from sync_core.core.config import TenantConfig
from sync_core.core.delta import DeltaChanges
from sync_core.core.lease import Lease, Unfenced
from sync_core.core.manager import (
    IndexChanges,
    ManagerMapping,
    ManagerValues,
    StoredIndexRows,
    delta_manager_id,
    expanded_manager,
    full_run_changes,
    round_managers,
    values_hash,
    with_values,
)
from sync_core.core.manager_source import MANAGER

READS_IN_FLIGHT = 8
_T = TypeVar("_T")


class ManagerIndex(Protocol):
    """The stored manager index of each tenant (adapters/tables/managers.py)."""

    async def reports_of(self, tenant_id: str, ids: Iterable[str]) -> dict[str, str]:
        """report id -> manager id, for those of `ids` that have one stored (point reads)."""
        ...

    async def managers(
        self, tenant_id: str, ids: Iterable[str]
    ) -> dict[str, tuple[ManagerValues, str]]:
        """manager id -> (values, their digest), for those of `ids` stored as managers."""
        ...

    async def report_ids(self, tenant_id: str, manager_id: str) -> list[str]: ...

    async def load(self, tenant_id: str) -> StoredIndexRows: ...

    async def apply(self, tenant_id: str, changes: IndexChanges) -> None: ...

    async def fenced(self, lease: Lease) -> ManagerIndex:
        """The index written under `lease`: a run that lost it has its writes refused
        (LeaseLost), as the employees' writes are."""
        ...


class ManagerReader(Protocol):
    """What the Graph adapter reads for manager fields."""

    def users_with_manager(
        self, select: Iterable[str], manager_select: Iterable[str], odata_filter: str | None
    ) -> AsyncIterator[list[dict[str, Any]]]: ...

    async def users_by_id(self, ids: list[str], select: Iterable[str]) -> list[dict[str, Any]]:
        """The users as they are now, `manager@delta` included (a delta query by id)."""
        ...

    async def user(self, user_id: str, select: Iterable[str]) -> dict[str, Any] | None:
        """None when the user is not in the directory (404)."""
        ...


class ManagerSync:
    """One run's manager fields: what the listing saw, and what the index must change."""

    def __init__(
        self,
        tenant_id: str,
        config: TenantConfig,
        index: ManagerIndex | None,
        lease: Lease | Unfenced,
    ):
        self.tenant_id = tenant_id
        self.mapping = ManagerMapping.from_config(config)
        self.index = index
        self._lease = lease  # fences the index once this run first reads it
        self._fenced = False
        self._reports: dict[str, str] = {}  # full run: user -> manager id
        self._values: dict[str, ManagerValues] = {}  # full run: manager -> values
        self._changes: IndexChanges | None = None
        self._expanded = False  # the listing carries each user's manager ($expand)
        self._delta = False  # a delta round was prepared (commit() loads no stored index)

    @property
    def enabled(self) -> bool:
        return self.mapping.enabled

    def delta_select(self, select: Iterable[str]) -> frozenset[str]:
        """A delta link's `$select`: with `manager`, rounds carry `manager@delta`."""
        return frozenset(select) | ({MANAGER} if self.enabled else set())

    def listing(
        self, directory: Any, select: frozenset[str], odata_filter: str | None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The full run's listing. `$expand` is refused in advanced queries (concepts/
        aad-advanced-queries.md: "$expand is not currently supported with advanced queries"),
        and a `filter.odata` listing always is one: then each page's managers are looked up
        (annotate_listing) instead of expanded."""
        self._expanded = self.enabled and odata_filter is None
        if not self._expanded:
            return cast(AsyncIterator[list[dict[str, Any]]], directory.users(select, odata_filter))
        reader = cast(ManagerReader, directory)
        return reader.users_with_manager(select, self.mapping.graph_properties, odata_filter)

    async def annotate_listing(self, page: list[dict[str, Any]], directory: Any) -> list[Any]:
        """Each listed user with its manager's values; remembers user -> manager id."""
        if not self.enabled:
            return page
        if self._expanded:
            named = {u["id"]: m["id"] for u in page if (m := expanded_manager(u))}
            for manager in map(expanded_manager, page):
                if manager is not None and manager["id"] not in self._values:
                    self._values[manager["id"]] = self.mapping.values(manager)
        else:
            named = await self._look_up(page, cast(ManagerReader, directory))
        self._reports |= named
        return [with_values(u, self._values.get(named.get(u["id"], ""), {})) for u in page]

    async def _look_up(self, page: list[dict[str, Any]], reader: ManagerReader) -> dict[str, str]:
        """Who manages each user of a page (a delta query by id, 50 a request, `manager@delta`),
        and the values of the managers not met yet (`/users/{id}`, once a run each)."""
        found = await reader.users_by_id([u["id"] for u in page], frozenset({"id", MANAGER}))
        named = {u["id"]: m for u in found if isinstance(m := delta_manager_id(u), str)}
        missing = sorted(set(named.values()) - self._values.keys())
        select = self.mapping.graph_properties
        looked = await _bounded([_reading(reader, m, select) for m in missing])
        for manager, user in zip(missing, looked, strict=True):
            self._values[manager] = self.mapping.values(user)
        return named

    async def prepare_round(
        self, changes: DeltaChanges, reader: ManagerReader, select: frozenset[str]
    ) -> DeltaChanges:
        """The round's users with their managers' values, plus every report of a manager who
        changed (read again from Graph); the index changes are kept for commit()."""
        if not self.enabled:
            return changes
        self._delta = True
        ids = set(changes.users) | set(changes.removed)
        if not ids:  # an idle round reads and writes no index row
            return changes
        index, tenant = await self._fenced_index(), self.tenant_id
        stored_reports = await index.reports_of(tenant, ids)
        current = round_managers(changes.users, changes.removed, stored_reports)
        named = {m for m in current.values() if m}
        stored = await index.managers(tenant, ids | named)
        values: dict[str, ManagerValues] = {}
        for manager in stored.keys() & changes.users.keys():
            values[manager] = self.mapping.values(changes.users[manager])
        for manager in stored.keys() & set(changes.removed):
            values[manager] = {}  # left the directory: its reports' fields are emptied
        changed = sorted(m for m, v in values.items() if values_hash(v) != stored[m][1])
        edges: dict[str, str] = {}  # report -> the changed manager whose edge names it
        for manager in changed:
            for report in await index.report_ids(tenant, manager):
                edges.setdefault(report, manager)
        extra_ids = edges.keys() - ids
        wanted = self.delta_select(select)
        extra = await reader.users_by_id(sorted(extra_ids), wanted) if extra_ids else []
        # The edge says whom the index has as their manager: no point read for each report.
        stored_reports |= {report: edges[report] for report in extra_ids}
        for user in extra:
            named_now = delta_manager_id(user)
            current[user["id"]] = named_now if isinstance(named_now, str) else None
        await self._known_values(values, stored, changes.users, current, reader)
        self._changes = _round_changes(current, changes.removed, stored_reports, values, stored)
        users = {**changes.users, **{u["id"]: u for u in extra}}
        return DeltaChanges(
            {i: with_values(u, values.get(current.get(i) or "", {})) for i, u in users.items()},
            changes.removed,
        )

    async def commit(self) -> None:
        """After every employee write landed: the index as this run leaves it."""
        if not self.enabled or self.index is None:
            return
        changes = self._changes
        if changes is None and self._delta:
            return  # an idle round
        if changes is None:  # a full run: compared with the whole stored index
            stored = await (await self._fenced_index()).load(self.tenant_id)
            changes = full_run_changes(stored, self._reports, self._values)
        if not changes.empty:
            await (await self._fenced_index()).apply(self.tenant_id, changes)

    async def _known_values(
        self,
        values: dict[str, ManagerValues],
        stored: dict[str, tuple[ManagerValues, str]],
        round_users: dict[str, dict[str, Any]],
        current: dict[str, str | None],
        reader: ManagerReader,
    ) -> None:
        """Values for every manager a user now has: the round's, the stored, else Graph's."""
        missing = []
        for manager in {m for m in current.values() if m} - values.keys():
            if manager in round_users:
                values[manager] = self.mapping.values(round_users[manager])
            elif manager in stored:
                values[manager] = stored[manager][0]
            else:
                missing.append(manager)
        select = self.mapping.graph_properties
        missing.sort()
        found = await _bounded([_reading(reader, m, select) for m in missing])
        for manager, user in zip(missing, found, strict=True):
            values[manager] = self.mapping.values(user)

    async def _fenced_index(self) -> ManagerIndex:
        """The index, fenced by the run's lease before its first read: whatever a run that held
        the lease before wrote is read, and whatever it writes from now on is refused."""
        if self.index is None:
            raise RuntimeError("manager fields in a delta run need the manager index")
        if isinstance(self._lease, Lease) and not self._fenced:
            self.index, self._fenced = await self.index.fenced(self._lease), True
        return self.index


def _round_changes(
    current: dict[str, str | None],
    removed: Iterable[str],
    stored_reports: dict[str, str],
    values: dict[str, ManagerValues],
    stored: dict[str, tuple[ManagerValues, str]],
) -> IndexChanges:
    changes = IndexChanges()
    for user_id, manager in current.items():
        changes.move(user_id, stored_reports.get(user_id), manager)
    for user_id in removed:
        changes.move(user_id, stored_reports.get(user_id), None)
    for manager, manager_values in values.items():
        if manager not in stored or stored[manager][1] != values_hash(manager_values):
            changes.managers[manager] = manager_values
    return changes


def _reading(
    reader: ManagerReader, user_id: str, select: frozenset[str]
) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    return lambda: reader.user(user_id, select)


async def _bounded(calls: list[Callable[[], Awaitable[_T]]]) -> list[_T]:
    limit = asyncio.Semaphore(READS_IN_FLIGHT)

    async def one(call: Callable[[], Awaitable[_T]]) -> _T:
        async with limit:
            return await call()

    return list(await asyncio.gather(*(one(c) for c in calls)))
