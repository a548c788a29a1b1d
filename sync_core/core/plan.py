"""The diff against what is stored, and the guard that keeps clean-up from mass accidents."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from datetime import datetime, timedelta

from sync_core.core.config import CleanUp
from sync_core.core.mapping import Employee


@dataclass(frozen=True)
class Plan:
    creates: tuple[Employee, ...]
    updates: tuple[Employee, ...]
    unchanged: tuple[str, ...]  # ids


def plan_writes(employees: Iterable[Employee], stored_hashes: Mapping[str, str]) -> Plan:
    """Split mapped employees by what the store must do; an equal hash costs no write."""
    creates: list[Employee] = []
    updates: list[Employee] = []
    unchanged: list[str] = []
    for employee in employees:
        stored = stored_hashes.get(employee.id)
        if stored is None:
            creates.append(employee)
        elif stored != employee.source_hash:
            updates.append(employee)
        else:
            unchanged.append(employee.id)
    return Plan(tuple(creates), tuple(updates), tuple(unchanged))


def stale_ids(stored_ids: Iterable[str], seen_ids: Set[str]) -> tuple[str, ...]:
    """Stored employees the completed read did not return in scope, in a stable order."""
    return tuple(sorted(i for i in stored_ids if i not in seen_ids))


def expired_without_address(
    missing_since: Mapping[str, datetime], now: datetime, grace: timedelta
) -> tuple[str, ...]:
    """Employees in scope that have had no address for the whole grace period: Clean Up may
    remove them. `missing_since` holds the in-scope employees without an address this run and
    when their row was first marked."""
    return tuple(sorted(i for i, since in missing_since.items() if now - since >= grace))


@dataclass(frozen=True)
class DeletionDecision:
    delete: tuple[str, ...]
    held: int
    reason: str | None  # why deletions were held or skipped, in words for the report


def guard_deletions(
    stale: tuple[str, ...], stored_count: int, clean_up: CleanUp, *, allow_deletes: bool
) -> DeletionDecision:
    """Decide which stale employees to delete.

    Over either threshold nothing is deleted: a half-done mass deletion is worse than none, and
    the usual cause (a filter typo, a wrong tenant, a Graph outage returning few users) means the
    whole set is suspect.
    """
    if not stale:
        return DeletionDecision((), 0, None)
    if not clean_up.enabled:
        return DeletionDecision((), 0, "clean-up is off: stale employees are kept")
    percent = 100.0 * len(stale) / stored_count if stored_count else 100.0
    over_count = len(stale) > clean_up.max_deletes
    over_percent = percent > clean_up.max_delete_percent
    if (over_count or over_percent) and not allow_deletes:
        limits = []
        if over_count:
            limits.append(f"more than maxDeletes ({clean_up.max_deletes})")
        if over_percent:
            limits.append(
                f"{percent:.1f}% of stored employees, more than maxDeletePercent "
                f"({clean_up.max_delete_percent:g}%)"
            )
        return DeletionDecision(
            (),
            len(stale),
            f"{len(stale)} deletions held: "
            + " and ".join(limits)
            + "; check the filters, then run with --allow-deletes (or allowDeletes) to proceed",
        )
    return DeletionDecision(stale, 0, None)
