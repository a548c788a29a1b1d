"""Manager fields, pure: which of the manager's properties the fields read, the values they take,
who a Graph answer names as a user's manager, and what a delta round changes in the manager
index. The reads and writes around it are in manager_pass.py.

The manager index (adapters/tables/managers.py) is what lets a delta run reach every report of
a changed manager without reading the whole table: report id -> manager id, manager id -> the
values of its fields (and their digest), and one edge row per (manager, report) to list a
manager's reports by a range query. It holds ids and the few values fields need, never a copy
of the directory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sync_core.core.config import EmailRules, TenantConfig
from sync_core.core.manager_source import MANAGER, ManagerSource, parse_manager_source
from sync_core.core.mapping import MANAGER_VALUES, FieldValue, resolve_addresses, to_table_value

ManagerValues = dict[str, FieldValue]  # field name -> table value; an empty value is left out
_DELTA = f"{MANAGER}@delta"
# What a user's own answer must carry for the email rules to pick an address.
_ADDRESS_PROPERTIES = frozenset({"mail", "proxyAddresses", "userPrincipalName"})


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()  # a delta item that does not mention the manager relationship


@dataclass(frozen=True)
class ManagerMapping:
    """The configured fields with a `manager.` source, compiled once per run."""

    fields: tuple[tuple[str, ManagerSource], ...]
    email_rules: EmailRules

    @classmethod
    def from_config(cls, config: TenantConfig) -> ManagerMapping:
        return cls(
            tuple(
                (f.name, parse_manager_source(f.source))
                for f in config.fields
                if f.source.lower().startswith(f"{MANAGER}.")
            ),
            config.email,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.fields)

    @property
    def graph_properties(self) -> frozenset[str]:
        """What must be read of a manager (`$select` inside `$expand`, and of every user in a
        delta round, since any user can be someone's manager)."""
        if not self.enabled:
            return frozenset()
        names = {"id"}
        for _, source in self.fields:
            if source.path is None:
                names |= _ADDRESS_PROPERTIES
                names |= {"otherMails"} if self.email_rules.other_mails else set()
            else:
                names.add(source.path.graph_property)
        return frozenset(names)

    def values(self, manager: Mapping[str, Any] | None) -> ManagerValues:
        """The manager fields' values for a manager's Graph JSON; {} without a manager."""
        if not manager:
            return {}
        values: ManagerValues = {}
        for name, source in self.fields:
            if source.path is None:
                value: Any = resolve_addresses(manager, self.email_rules).email
            else:
                value = source.path.read(manager)
            table_value = to_table_value(value)
            if table_value is not None:
                values[name] = table_value
        return values


def values_hash(values: Mapping[str, FieldValue]) -> str:
    text = json.dumps(sorted(values.items()), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def with_values(user: Mapping[str, Any], values: Mapping[str, FieldValue]) -> dict[str, Any]:
    """The user, carrying its manager's values for Mapper.employee (mapping.MANAGER_VALUES)."""
    kept = {k: v for k, v in user.items() if k != MANAGER and k != _DELTA}
    return {**kept, MANAGER_VALUES: dict(values)}


def expanded_manager(user: Mapping[str, Any]) -> dict[str, Any] | None:
    """The manager of a listed user read with `$expand=manager(...)`: absent or null when the
    user has none (Graph's user-list-manager page: no manager, no object)."""
    manager = user.get(MANAGER)
    if isinstance(manager, dict) and isinstance(manager.get("id"), str) and manager["id"]:
        return manager
    return None


def delta_manager_id(item: Mapping[str, Any]) -> str | _Unchanged | None:
    """Who a /users/delta item names as manager: `manager@delta` is a list (user-delta.md,
    "selecting manager"); an entry with `@removed` takes the manager away. UNCHANGED when the
    item does not carry the relationship (it changed only other properties)."""
    if _DELTA not in item:
        return UNCHANGED
    entries = item[_DELTA] if isinstance(item[_DELTA], list) else []
    alive = [
        e["id"]
        for e in entries
        if isinstance(e, dict) and "@removed" not in e and isinstance(e.get("id"), str)
    ]
    return alive[-1] if alive else None


@dataclass
class IndexChanges:
    """What a run changes in the manager index, written after the employees' writes landed: a
    failed run leaves the index as it was, so its replay finds the same differences."""

    reports: dict[str, str | None] = field(default_factory=dict)  # report -> manager (None: drop)
    edges_added: set[tuple[str, str]] = field(default_factory=set)  # (manager, report)
    edges_dropped: set[tuple[str, str]] = field(default_factory=set)
    managers: dict[str, ManagerValues | None] = field(default_factory=dict)  # None: drop

    def move(self, report: str, old: str | None, new: str | None) -> None:
        if old == new:
            return
        if old is not None:
            self.edges_dropped.add((old, report))
            self.edges_added.discard((old, report))
        if new is not None:
            self.edges_added.add((new, report))
            self.edges_dropped.discard((new, report))
        self.reports[report] = new

    @property
    def empty(self) -> bool:
        return not (self.reports or self.edges_added or self.edges_dropped or self.managers)


@dataclass(frozen=True)
class StoredIndexRows:
    """The whole stored index of a tenant (read by full runs only): report -> manager,
    manager -> digest of its values, and the (manager, report) edge rows (None: not read)."""

    reports: dict[str, str]
    manager_hashes: dict[str, str]
    edges: frozenset[tuple[str, str]] | None = None


def full_run_changes(
    stored: StoredIndexRows,
    reports: Mapping[str, str],
    managers: Mapping[str, ManagerValues],
) -> IndexChanges:
    """What a full run changes: the listing saw every user (`reports`: user -> manager) and
    every manager it names with its values; what it did not see is dropped."""
    changes = IndexChanges()
    for report in sorted(set(stored.reports) | set(reports)):
        changes.move(report, stored.reports.get(report), reports.get(report))
    for manager, values in managers.items():
        if stored.manager_hashes.get(manager) != values_hash(values):
            changes.managers[manager] = values
    for manager in set(stored.manager_hashes) - set(managers):
        changes.managers[manager] = None
    if stored.edges is not None:
        # The edges are what a delta run follows to a changed manager's reports: one lost or
        # left behind is put right here, not only when its report's manager changes.
        expected = {(manager, report) for report, manager in reports.items()}
        changes.edges_added = (changes.edges_added | expected) - stored.edges
        changes.edges_dropped |= stored.edges - expected
    return changes


def round_managers(
    users: Mapping[str, Mapping[str, Any]],
    removed: Iterable[str],
    stored_reports: Mapping[str, str],
) -> dict[str, str | None]:
    """Each round user's manager after the round: the one its item names, else the stored one."""
    current: dict[str, str | None] = {}
    for user_id, item in users.items():
        named = delta_manager_id(item)
        current[user_id] = stored_reports.get(user_id) if isinstance(named, _Unchanged) else named
    for user_id in removed:
        current.pop(user_id, None)
    return current
